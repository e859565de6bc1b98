"""The benchmark's command line and cohort: the card photo's size, how the report states it,
the students drawn."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(module: str) -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(module)


def test_the_photo_is_phone_sized_unless_asked_otherwise() -> None:
    main = bench("bench.__main__")
    assert main.parse([]).photo == (2419, 3024)
    assert main.parse(["--photo", "480x600"]).photo == (480, 600)


@pytest.mark.parametrize("bad", ["480", "x600", "480x", "0x600", "480x-6", "big"])
def test_a_malformed_photo_size_is_refused_with_the_expected_form(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main = bench("bench.__main__")
    with pytest.raises(SystemExit):
        main.parse(["--photo", bad])
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err


def test_the_report_states_the_uploaded_files() -> None:
    report = bench("bench.report")
    files = {"photo_pixels": [2419, 3024], "photo_bytes": 1_089_723, "document_bytes": 1_234}
    assert report._uploads({"uploads": files}) == [
        "Each student uploads a 2419x3024 card photo (1.09 MB) and a 1.2 kB PDF."
    ]
    assert report._uploads({}) == []


def test_a_student_password_never_holds_the_student_particulars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    driver = bench("bench.driver")
    row = {"student_no": "20001234", "surname": "Wong", "given_names": "Siu Ming"}
    draws = iter([list("xxWONGxxxxxx"), list("abcdefghijkl")])
    monkeypatch.setattr(driver.random, "choices", lambda *a, **k: next(draws))
    # The first draw holds the surname, which the activation would refuse: drawn again.
    assert driver.new_password(row) == "Harbour-Lantern-abcdefghijkl"


def test_particulars_no_password_can_avoid_are_an_error_not_a_hang() -> None:
    driver = bench("bench.driver")
    with pytest.raises(ValueError, match="no acceptable password"):
        driver.new_password({"student_no": "1", "surname": "Lantern"})


@pytest.mark.parametrize("n", [5, 1_000, 8_000])
def test_a_cohort_has_as_many_distinct_students_as_asked(n: int) -> None:
    cohort = bench("bench.driver").make_cohort(n, "a1b2c3")
    assert len(cohort) == n
    assert len({student.student_no for student in cohort}) == n


def test_the_collections_table_counts_the_run_alone_per_student_most_time_first() -> None:
    report = bench("bench.report")
    before = {
        "notifier.notifications": {"queries": 40, "insert": 10, "update": 0, "time_us": 9_000},
        "card.card_holders": {"queries": 5, "update": 5, "time_us": 1_000},
        "identity.students": {"queries": 7, "time_us": 700},
    }
    after = {
        "notifier.notifications": {"queries": 60, "insert": 20, "update": 20, "time_us": 19_000},
        "card.card_holders": {"queries": 15, "update": 15, "time_us": 41_000},
        "identity.students": {"queries": 7, "time_us": 700},  # untouched by the run
        "registration.intakes": {"queries": 10, "time_us": 2_000},  # new during the run
    }
    rows = report.collections(before, after, students=10)
    assert [r["collection"] for r in rows] == [
        "card.card_holders",
        "notifier.notifications",
        "registration.intakes",
    ]
    assert rows[0] == {
        "collection": "card.card_holders",
        "operations": 2.0,
        "server_ms": 4.0,
        "queries": 1.0,
        "update": 1.0,
    }
    assert rows[1]["operations"] == 5.0
    assert (rows[1]["queries"], rows[1]["insert"], rows[1]["update"]) == (2.0, 1.0, 2.0)
    text = report.markdown_collections(rows)
    assert "| card.card_holders | 2.0 | 4.0 | 1.0 | 0 | 1.0 | 0 |" in text
