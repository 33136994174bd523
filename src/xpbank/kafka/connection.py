"""How every Kafka client connects: the one place that turns the configured security
(`XPBANK_KAFKA_*`, SPEC §6 style) into each library's options. aiokafka clients (the
CLI, projector, curriculum view, gap reader, demo, benchmarks), confluent-kafka's admin
and Faust's `broker_credentials` are all built from here. The password is handed to the
client and nowhere else."""

from __future__ import annotations

import ssl
from typing import Any

from xpbank.config import KafkaSecurity, Settings


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """Verifies the brokers' certificates and host names (against the CA file, else the
    system's roots); presents a client certificate when one is configured."""
    context = ssl.create_default_context(cafile=security.ca_file or None)
    if security.cert_file:
        context.load_cert_chain(security.cert_file, security.key_file)
    return context


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
    security = settings.kafka
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers,
                               "security_protocol": security.protocol}
    if security.tls:
        options["ssl_context"] = ssl_context(security)
    if security.sasl:
        options |= {"sasl_mechanism": security.mechanism, "sasl_plain_username": security.username,
                    "sasl_plain_password": security.password.reveal()}
    return options


def librdkafka_config(settings: Settings) -> dict[str, str]:
    """Configuration for confluent-kafka (librdkafka) clients."""
    security = settings.kafka
    config = {"bootstrap.servers": settings.bootstrap_servers, "security.protocol": security.protocol}
    if security.sasl:
        config |= {"sasl.mechanism": security.mechanism, "sasl.username": security.username,
                   "sasl.password": security.password.reveal()}
    if security.ca_file:
        config["ssl.ca.location"] = security.ca_file
    if security.cert_file:
        config |= {"ssl.certificate.location": security.cert_file, "ssl.key.location": security.key_file}
    return config
