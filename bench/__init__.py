"""`make bench`: ingest, latency, recovery and state benchmarks against a real broker (issue 6)."""
