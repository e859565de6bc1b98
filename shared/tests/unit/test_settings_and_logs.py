"""Settings refuse development secrets in production; logs are JSON, correlated and masked."""

from __future__ import annotations

import json
import logging

import pytest
from opr_shared.jsonlog import JsonFormatter, correlation_id_var, mask_identifiers
from opr_shared.settings import ServiceSettings
from pydantic import ValidationError


def test_development_defaults_are_fine_outside_production() -> None:
    settings = ServiceSettings(service_name="card", s3_endpoint="http://127.0.0.1:19000")
    assert settings.database_name == "card"
    assert settings.bucket_name == "card"


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValidationError) as err:
        ServiceSettings(
            service_name="card", environment="production", s3_endpoint="https://minio:9000"
        )
    message = str(err.value)
    assert "MONGODB_URI carries no credentials" in message
    assert "S3_ACCESS_KEY" in message
    assert "S3_SECRET_KEY" in message


def test_production_starts_with_real_secrets() -> None:
    settings = ServiceSettings(
        service_name="card",
        environment="production",
        mongodb_uri="mongodb://card:s3cr3t-from-vault@mongo:27017/card?replicaSet=rs0",  # type: ignore[arg-type]
        s3_endpoint="https://minio:9000",
        s3_access_key="card-writer",  # type: ignore[arg-type]
        s3_secret_key="long-random-value",  # type: ignore[arg-type]
    )
    assert "s3cr3t" not in repr(settings)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("HTTP_PORT", "8123")
    settings = ServiceSettings(service_name="identity")
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.http_port == 8123


@pytest.mark.parametrize(
    ("text", "hidden", "shown"),
    [
        ("hkid A123456(3) given", "123456", "A******(*)"),
        ("HKID AB9876543 on file", "9876543", "A******(*)"),
        ("passport K12345678 scanned", "12345678", "K********"),
        ("mail tai.man.chan@example.com now", "tai.man.chan", "t***@example.com"),
    ],
)
def test_identifiers_are_masked(text: str, hidden: str, shown: str) -> None:
    masked = mask_identifiers(text)
    assert hidden not in masked
    assert shown in masked


def test_log_lines_are_json_with_the_correlation_id_and_masked_extras() -> None:
    formatter = JsonFormatter("registration")
    token = correlation_id_var.set("corr-42")
    try:
        record = logging.makeLogRecord(
            {
                "name": "x",
                "levelno": logging.INFO,
                "levelname": "INFO",
                "msg": "checked %s",
                "args": ("A123456(3)",),
                "student": "hkid Z987654(1)",
            }
        )
        line = json.loads(formatter.format(record))
    finally:
        correlation_id_var.reset(token)
    assert line["correlation_id"] == "corr-42"
    assert line["service"] == "registration"
    assert "123456" not in line["message"]
    assert "987654" not in line["student"]


def test_kafka_credentials_become_client_options() -> None:
    from opr_shared.messaging.connection import kafka_client_options

    assert kafka_client_options(ServiceSettings(service_name="card")) == {}
    options = kafka_client_options(
        ServiceSettings(
            service_name="card",
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="card",
            kafka_sasl_password="from-the-kafkauser-secret",  # type: ignore[arg-type]
        )
    )
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "card",
        "from-the-kafkauser-secret",
    )


def test_production_refuses_sasl_without_credentials() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME"):
        ServiceSettings(
            service_name="card",
            environment="production",
            mongodb_uri="mongodb://card:pw@mongo:27017/card",  # type: ignore[arg-type]
            kafka_security_protocol="SASL_SSL",
        )
