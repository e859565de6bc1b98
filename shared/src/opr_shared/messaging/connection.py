"""How a service authenticates to Kafka, from its settings, for every client it opens.

Locally the broker takes plain connections; in production each service has its
own SCRAM credential (a Strimzi KafkaUser) over TLS with the cluster's CA.
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from opr_shared.settings import ServiceSettings


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    username = settings.kafka_sasl_username or ""
    password = (
        settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    )
    use_ssl = protocol == "SASL_SSL"
    mechanism = {
        "SCRAM-SHA-512": SASLScram512,
        "SCRAM-SHA-256": SASLScram256,
        "PLAIN": SASLPlaintext,
    }[settings.kafka_sasl_mechanism]
    return mechanism(username, password, ssl_context=context, use_ssl=use_ssl)


def kafka_client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients (producer, admin, consumer)."""
    return parse_security(kafka_security(settings))
