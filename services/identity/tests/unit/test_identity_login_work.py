"""An unknown account costs the same password work as a known one: the dummy hash
that :meth:`PasswordHashing.verify_dummy` checks is made with the very parameters
(memory, time, parallelism) of real password hashes."""

from __future__ import annotations

from identity.domain.passwords import HashParameters, PasswordHashing


def parameters(encoded: str) -> str:
    # $argon2id$v=19$m=...,t=...,p=...$salt$hash
    return "$".join(encoded.split("$")[:4])


def test_the_dummy_hash_costs_what_a_real_one_does() -> None:
    params = HashParameters(time_cost=2, memory_kib=16 * 1024, parallelism=2)
    hashing = PasswordHashing(params)
    real = hashing.hash("Violet-Kettle-Harbour-42")
    assert parameters(hashing._dummy) == parameters(real)
    assert parameters(real) == "$argon2id$v=19$m=16384,t=2,p=2"
    assert hashing.verify_dummy("Violet-Kettle-Harbour-42") is False


def test_default_cost_is_owasp_recommendation_in_settings_and_domain_alike() -> None:
    from identity.settings import Settings

    fields = Settings.model_fields
    from_settings = HashParameters(
        time_cost=fields["argon2_time_cost"].default,
        memory_kib=fields["argon2_memory_kib"].default,
        parallelism=fields["argon2_parallelism"].default,
    )
    assert from_settings == HashParameters()
    real = PasswordHashing().hash("Violet-Kettle-Harbour-42")
    # OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
    assert parameters(real) == "$argon2id$v=19$m=19456,t=2,p=1"
