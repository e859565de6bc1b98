"""Identity's rules, without I/O: passwords, login matching, lockout, masking,
activation, signing keys, TOTP, CSV rosters and settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyotp
import pytest
from identity.domain.accounts import ActivationRefused, check_activation, university_email
from identity.domain.keys import KeyRecord, published_keys, signing_key
from identity.domain.login import (
    LockoutPolicy,
    LockoutState,
    after_failure,
    jupas_particulars_match,
    mask_identifier,
    normalise_name,
    parse_login_dob,
)
from identity.domain.passwords import HashParameters, PasswordHashing, password_problems
from identity.domain.roster import RosterFormatError, rows_from_csv, validate_rows
from identity.domain.staff import check_totp
from identity.settings import Settings
from pydantic import ValidationError

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
CHEAP = HashParameters(time_cost=1, memory_kib=8192, parallelism=1)


# --- passwords ---------------------------------------------------------------------


def test_a_long_unguessable_password_passes() -> None:
    assert password_problems("violet kettle 42 harbour", ["20261234", "Chan"]) == []


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Short1!", "at least 10 characters"),
        ("x" * 129 + "abcde", "at most 128 characters"),
        ("aaaaabbbbbaaaaa", "at least 5 different characters"),
        ("Password123", "too common"),
        ("my 20261234 secret", "must not contain your name"),
        ("chantaiman2026!", "must not contain your name"),
        ("tm.chan.is.here!", "must not contain your name"),
    ],
)
def test_a_weak_password_is_refused_with_the_reason(password: str, reason: str) -> None:
    problems = password_problems(password, ["20261234", "Chan Tai Man", "tm.chan@example.com"])
    assert any(reason in p for p in problems), problems


def test_passwords_are_hashed_with_argon2id_and_verified() -> None:
    hashing = PasswordHashing(CHEAP)
    stored = hashing.hash("violet kettle 42 harbour")
    assert stored.startswith("$argon2id$")
    assert hashing.verify(stored, "violet kettle 42 harbour")
    assert not hashing.verify(stored, "violet kettle 42 harbor")
    assert not hashing.verify("not a hash", "anything")
    assert hashing.verify_dummy("violet kettle 42 harbour") is False
    assert PasswordHashing(
        HashParameters(time_cost=2, memory_kib=8192, parallelism=1)
    ).needs_rehash(stored)


# --- login A -----------------------------------------------------------------------


def test_names_compare_case_and_whitespace_insensitively() -> None:
    assert normalise_name("  siu  MING ") == normalise_name("Siu Ming") == "siuming"
    assert (
        normalise_name("\uff37\uff4f\uff4e\uff47") == "wong"
    )  # full-width letters from a Chinese IME
    assert normalise_name("Siu Man") != normalise_name("Siu Ming")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("05/11/2007", date(2007, 11, 5)),
        (" 05/11/2007 ", date(2007, 11, 5)),
        ("2007-11-05", None),
        ("5/11/2007", None),
        ("31/02/2007", None),
        ("11/05/07", None),
        ("", None),
    ],
)
def test_the_login_date_of_birth_is_dd_mm_yyyy_only(text: str, expected: date | None) -> None:
    assert parse_login_dob(text) == expected


def test_jupas_particulars_match_needs_every_field() -> None:
    record = {"surname": "Wong", "given_names": "Siu Ming", "date_of_birth": date(2007, 11, 5)}
    good = {"last_name": "WONG", "first_name": "siuming", "dob": date(2007, 11, 5)}
    assert jupas_particulars_match(**record, **good)
    assert not jupas_particulars_match(**record, **(good | {"last_name": "Wang"}))
    assert not jupas_particulars_match(**record, **(good | {"first_name": "Siu"}))
    assert not jupas_particulars_match(**record, **(good | {"dob": date(2007, 5, 11)}))
    assert not jupas_particulars_match(**record, **(good | {"dob": None}))


# --- lockout -------------------------------------------------------------------------


def test_the_fifth_failure_within_the_window_locks_the_account_for_a_while() -> None:
    policy = LockoutPolicy(
        max_failures=5, window=timedelta(minutes=15), lock_for=timedelta(minutes=15)
    )
    state = LockoutState()
    for minute in range(4):
        state = after_failure(state, NOW + timedelta(minutes=minute), policy)
        assert not state.is_locked(NOW + timedelta(minutes=minute))
    state = after_failure(state, NOW + timedelta(minutes=4), policy)
    assert state.is_locked(NOW + timedelta(minutes=5))
    assert state.is_locked(NOW + timedelta(minutes=18))
    assert not state.is_locked(NOW + timedelta(minutes=19, seconds=1))


def test_failures_older_than_the_window_do_not_count() -> None:
    policy = LockoutPolicy(max_failures=3, window=timedelta(minutes=15))
    state = LockoutState([NOW - timedelta(minutes=20), NOW - timedelta(minutes=16)])
    state = after_failure(state, NOW, policy)
    assert not state.is_locked(NOW)
    assert state.failures == [NOW]


def test_a_failure_while_locked_does_not_extend_the_lock() -> None:
    policy = LockoutPolicy(max_failures=2)
    locked = LockoutState([], NOW + timedelta(minutes=10))
    again = after_failure(locked, NOW, policy)
    assert again.locked_until == locked.locked_until


def test_identifiers_are_masked_for_the_audit() -> None:
    assert mask_identifier("87654321") == "*****321"
    assert mask_identifier("20260042@connect.university.example") == (
        "2***@connect.university.example"
    )
    assert mask_identifier("abc") == "***"
    assert "87654321" not in mask_identifier(" 87654321 ")


# --- activation ------------------------------------------------------------------------


def student(**invitation: Any) -> dict[str, Any]:
    return {
        "_id": "20260042",
        "personal_email": "sm.wong@example.com",
        "status": "admitted",
        "invitation": {"expires_at": NOW + timedelta(days=1), "used_at": None} | invitation,
    }


def test_a_valid_token_activates_with_the_university_address() -> None:
    activation = check_activation(student(), NOW, "university.example")
    assert activation.university_email == "20260042@connect.university.example"
    assert university_email("20260042", "hku.example") == "20260042@connect.hku.example"


@pytest.mark.parametrize(
    ("record", "status", "words"),
    [
        (None, 400, "not valid"),
        (student(used_at=NOW - timedelta(hours=1)), 409, "already been used"),
        (student(expires_at=NOW), 410, "expired"),
        (student(expires_at=None), 410, "expired"),
    ],
)
def test_an_unknown_used_or_expired_token_is_refused_with_a_reason(
    record: dict[str, Any] | None, status: int, words: str
) -> None:
    with pytest.raises(ActivationRefused) as refused:
        check_activation(record, NOW, "university.example")
    assert refused.value.status == status
    assert words in refused.value.reason


# --- signing keys ------------------------------------------------------------------------


def key(kid: str, created: int, retired: int | None = None) -> KeyRecord:
    retired_at = NOW + timedelta(minutes=retired) if retired is not None else None
    return KeyRecord(kid, NOW + timedelta(minutes=created), retired_at, {"kid": kid})


def test_the_newest_live_key_signs() -> None:
    current = signing_key([key("a", 0, retired=5), key("b", 5), key("c", 3)])
    assert current is not None
    assert current.kid == "b"
    assert signing_key([key("a", 0, retired=5)]) is None


def test_a_retired_key_stays_published_while_its_tokens_may_live() -> None:
    keys = [key("old", 0, retired=10), key("new", 10)]
    lifetime = timedelta(minutes=15)
    assert [k.kid for k in published_keys(keys, NOW + timedelta(minutes=20), lifetime)] == [
        "old",
        "new",
    ]
    assert [k.kid for k in published_keys(keys, NOW + timedelta(minutes=27), lifetime)] == ["new"]


# --- TOTP ----------------------------------------------------------------------------


def test_a_totp_code_is_accepted_once_and_with_one_step_of_drift() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    at = 1_800_000_000.0
    first = check_totp(secret, totp.at(at), None, at)
    assert first.ok
    assert not check_totp(secret, totp.at(at), first.timestep, at).ok  # replay
    assert check_totp(secret, totp.at(at - 30), None, at).ok  # clock drift
    assert not check_totp(secret, totp.at(at - 90), None, at).ok
    assert not check_totp(secret, None, None, at).ok
    assert not check_totp(secret, "12a456", None, at).ok


# --- CSV rosters ---------------------------------------------------------------------------

HEADER = (
    "student_no,jupas_app_no,surname,given_names,chinese_name,date_of_birth,personal_email,"
    "mobile,programme_code,programme_name,intake_year,admission_route"
)


def test_a_csv_roster_is_read_into_rows_validated_like_json() -> None:
    text = "\ufeff" + HEADER + "\n"
    text += "20260001,12345678,Chan,Tai Man,,01/03/2008,a@example.com,+852 9123 4567,"
    text += "BBA,BBA,2026,JUPAS\n"
    text += "\n"
    text += "20260002,,Lee,Ka Yan,李嘉欣,2008-04-02,b@example.com,91234567,BBA,BBA,2026,NON_JUPAS\n"
    text += "20260003,1,2\n"
    rows = rows_from_csv(text)
    good, errors = validate_rows(rows)
    assert [row.student_no for _, row in good] == ["20260001", "20260002"]
    assert good[0][1].chinese_name is None
    assert good[0][1].intake_year == 2026
    assert [(e.row, e.message) for e in errors] == [(3, "expected 12 cells, found 3")]


def test_a_csv_roster_without_the_needed_columns_is_refused_as_a_whole() -> None:
    with pytest.raises(RosterFormatError, match="lacks column"):
        rows_from_csv("student_no,surname\n20260001,Chan\n")
    with pytest.raises(RosterFormatError, match="empty"):
        rows_from_csv("")
    with pytest.raises(RosterFormatError, match="repeats"):
        rows_from_csv(HEADER + ",surname\n")


# --- settings ----------------------------------------------------------------------------


def test_demo_staff_are_seeded_in_development_and_never_in_production() -> None:
    assert Settings(environment="development").seeds_demo_staff
    assert not Settings(environment="development", seed_demo_staff=False).seeds_demo_staff
    production = {
        "environment": "production",
        "mongodb_uri": "mongodb://identity:secret@db:27017/",
        "signing_key_passphrase": "a-long-production-passphrase",
    }
    assert not Settings(**production).seeds_demo_staff
    with pytest.raises(ValidationError, match="demo staff"):
        Settings(**production, seed_demo_staff=True)
    with pytest.raises(ValidationError, match="SIGNING_KEY_PASSPHRASE"):
        Settings(**(production | {"signing_key_passphrase": None}))


def test_the_university_domain_and_token_lifetime_are_settings() -> None:
    settings = Settings(university_email_domain="hku.example", access_token_ttl_seconds=600)
    assert settings.access_token_ttl_seconds == 600
    with pytest.raises(ValidationError):
        Settings(university_email_domain="not a domain")
