"""Everything identity consumes, in one table."""

from __future__ import annotations

from opr_shared.events.catalogue import IntakeScheduled
from opr_shared.messaging.consumer import Subscriptions

from identity.handlers.intakes import on_intake_scheduled


def subscriptions() -> Subscriptions:
    subs = Subscriptions("identity")
    subs.add(IntakeScheduled, on_intake_scheduled)
    return subs
