"""Composition root of the identity service."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from opr_shared.demo import DEMO_STAFF, DEMO_STAFF_PASSWORD
from opr_shared.runtime import ServiceRuntime, create_http_app
from opr_shared.settings import ServiceSettings

from identity import messaging
from identity.api.accounts import router as accounts_router
from identity.api.context import Identity
from identity.api.routes import router as admissions_router
from identity.domain.login import LockoutPolicy
from identity.domain.passwords import HashParameters, PasswordHashing
from identity.domain.sealing import Sealer
from identity.domain.staff import TOTP_PURPOSE
from identity.handlers.imports import RosterImports
from identity.handlers.sessions import Authenticator
from identity.handlers.staff import seed_demo_staff
from identity.settings import Settings
from identity.store import indexes
from identity.store.keys import SigningKeyStore


def compose(settings: ServiceSettings) -> Identity:
    if not isinstance(settings, Settings):
        settings = Settings()
    passphrase = settings.signing_key_passphrase
    keys = SigningKeyStore(
        passphrase=passphrase.get_secret_value().encode() if passphrase else None,
        token_lifetime=timedelta(seconds=settings.access_token_ttl_seconds),
        cache_seconds=settings.signing_key_cache_seconds,
    )
    hashing = PasswordHashing(
        HashParameters(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        ),
        max_concurrent=settings.argon2_max_concurrent,
    )

    async def on_start(runtime: ServiceRuntime) -> None:
        await keys.ensure_key()
        if settings.seeds_demo_staff:
            await seed_demo_staff(runtime.db, hashing, DEMO_STAFF, DEMO_STAFF_PASSWORD)

    runtime = ServiceRuntime(
        settings,
        subscriptions=messaging.subscriptions(),
        indexes=indexes(settings.login_audit_retention_days),
        on_start=on_start,
        # Identity verifies its own tokens from its database, not over HTTP.
        signing_keys=keys.jwks,
    )
    keys.attach(runtime.db)
    imports = RosterImports(runtime.db, runtime.uow)
    runtime.workers.append(imports)
    authenticator = Authenticator(
        db=runtime.db,
        hashing=hashing,
        keys=keys,
        lockout=LockoutPolicy(
            max_failures=settings.lockout_max_failures,
            window=timedelta(minutes=settings.lockout_window_minutes),
            lock_for=timedelta(minutes=settings.lockout_minutes),
        ),
        token_ttl_seconds=settings.access_token_ttl_seconds,
        sealer=Sealer(passphrase.get_secret_value().encode() if passphrase else None, TOTP_PURPOSE),
    )
    return Identity(settings, runtime, hashing, keys, authenticator, imports)


def build_runtime(settings: ServiceSettings) -> ServiceRuntime:
    return compose(settings).runtime


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    identity = compose(settings or Settings())
    app = create_http_app(
        identity.runtime,
        routers=[admissions_router, accounts_router],
        title="Identity",
        description="Admitted-student roster, invitations, accounts, logins and tokens.",
        body_limits={"/admissions/import": identity.settings.import_max_bytes},
    )
    app.state.identity = identity
    return app
