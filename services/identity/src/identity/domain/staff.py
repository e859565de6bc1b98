"""Staff users: roles and the TOTP second factor."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp

TOTP_ISSUER = "Online Program Registration"

# What the sealer binds sealed TOTP secrets to.
TOTP_PURPOSE = "staff-totp-secret"


@dataclass(frozen=True)
class TotpCheck:
    ok: bool
    timestep: int | None = None


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def check_totp(secret: str, code: str | None, last_timestep: int | None, at: float) -> TotpCheck:
    """A 6-digit code of the current 30-second step (or one either side, for clock drift).

    A code is accepted once: a step at or before ``last_timestep`` is refused, so
    a code seen by someone else cannot be replayed.
    """
    if code is None or not code.isdigit() or len(code) != 6:
        return TotpCheck(False)
    totp = pyotp.TOTP(secret)
    current = int(at // totp.interval)
    for step in (current - 1, current, current + 1):
        if last_timestep is not None and step <= last_timestep:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return TotpCheck(True, step)
    return TotpCheck(False)
