"""The whole system on one machine, behind ``make up`` / ``make down`` / ``make status``."""

from opr_shared.devstack.stack import (
    DEFAULT_GATEWAY_PORT,
    DEFAULT_SERVICE_PORTS,
    GATEWAY,
    Stack,
    StackPorts,
    service_port_env,
)

__all__ = [
    "DEFAULT_GATEWAY_PORT",
    "DEFAULT_SERVICE_PORTS",
    "GATEWAY",
    "Stack",
    "StackPorts",
    "service_port_env",
]
