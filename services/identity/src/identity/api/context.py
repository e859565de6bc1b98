"""What identity's routes need, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from opr_shared.runtime import ServiceRuntime

from identity.domain.passwords import PasswordHashing
from identity.handlers.admissions import InvitePolicy
from identity.handlers.imports import RosterImports
from identity.handlers.sessions import Authenticator
from identity.settings import Settings
from identity.store.keys import SigningKeyStore


@dataclass(frozen=True)
class Identity:
    settings: Settings
    runtime: ServiceRuntime
    hashing: PasswordHashing
    keys: SigningKeyStore
    authenticator: Authenticator
    imports: RosterImports

    @property
    def invite_policy(self) -> InvitePolicy:
        return InvitePolicy(
            public_base_url=self.settings.public_base_url,
            ttl=timedelta(hours=self.settings.activation_token_ttl_hours),
        )


async def identity_of(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity
