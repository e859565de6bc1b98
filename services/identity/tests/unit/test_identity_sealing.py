"""Sealed secrets: what is stored does not show the secret, and only the same
passphrase (and purpose) opens it."""

from __future__ import annotations

import base64

import pyotp
import pytest
from identity.domain.sealing import PREFIX, Sealer, SealError

PASSPHRASE = b"a passphrase of the deployment"


def test_a_sealed_secret_hides_the_secret_and_opens_with_the_same_passphrase() -> None:
    secret = pyotp.random_base32()
    sealer = Sealer(PASSPHRASE, "staff-totp-secret")
    stored = sealer.seal(secret)
    assert stored.startswith(PREFIX)
    assert secret not in stored
    assert sealer.seal(secret) != stored  # a fresh nonce every time
    assert Sealer(PASSPHRASE, "staff-totp-secret").open(stored) == secret


@pytest.mark.parametrize(
    "other",
    [Sealer(b"another passphrase altogether", "staff-totp-secret"), Sealer(PASSPHRASE, "other")],
)
def test_another_passphrase_or_purpose_cannot_open_it(other: Sealer) -> None:
    stored = Sealer(PASSPHRASE, "staff-totp-secret").seal("JBSWY3DPEHPK3PXP")
    with pytest.raises(SealError):
        other.open(stored)


def test_a_tampered_value_is_refused() -> None:
    sealer = Sealer(PASSPHRASE, "staff-totp-secret")
    stored = sealer.seal("JBSWY3DPEHPK3PXP")
    # Flip a bit of the sealed bytes (a changed base64 character may differ only in
    # padding bits that decode to the same bytes).
    raw = bytearray(base64.urlsafe_b64decode(stored[len(PREFIX) :]))
    raw[-1] ^= 0x01
    flipped = PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode()
    assert flipped != stored
    with pytest.raises(SealError):
        sealer.open(flipped)


def test_without_a_passphrase_values_are_kept_and_sealed_ones_are_refused() -> None:
    plain = Sealer(None, "staff-totp-secret")
    assert not plain.seals
    assert plain.seal("JBSWY3DPEHPK3PXP") == "JBSWY3DPEHPK3PXP"
    with pytest.raises(SealError):
        plain.open(Sealer(PASSPHRASE, "staff-totp-secret").seal("JBSWY3DPEHPK3PXP"))
    # A value stored before a passphrase was configured still opens.
    assert Sealer(PASSPHRASE, "staff-totp-secret").open("JBSWY3DPEHPK3PXP") == "JBSWY3DPEHPK3PXP"
