"""The Quix Streams engine: every learner's state in one Quix store (RocksDB with a
changelog, written at checkpoints: one changelog record per changed key), outputs through
the checkpoint's producer (inside the Kafka transaction under exactly-once)."""

import warnings

# quixstreams imports confluent-kafka's schema registry, whose authlib warns at import
# about a module xpbank never uses
warnings.filterwarnings("ignore", message="The httpx module is deprecated")
