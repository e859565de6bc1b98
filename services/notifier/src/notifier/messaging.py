"""Everything notifier consumes, in one table."""

from __future__ import annotations

from opr_shared.events.catalogue import InvitationIssued
from opr_shared.messaging.consumer import Subscriptions

from notifier.handlers.milestones import on_invitation_issued


def subscriptions() -> Subscriptions:
    subs = Subscriptions("notifier")
    subs.add(InvitationIssued, on_invitation_issued)
    return subs
