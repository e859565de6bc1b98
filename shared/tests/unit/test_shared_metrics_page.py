"""opr_shared.testing.metrics: sums a labelled counter of a /metrics page."""

from __future__ import annotations

from opr_shared.testing.metrics import totals_by_label
from prometheus_client import CollectorRegistry, Counter, generate_latest


def test_a_counter_is_summed_by_one_label_and_other_samples_are_left_out() -> None:
    registry = CollectorRegistry()
    consumed = Counter("events_consumed", "consumed", ["service", "outcome"], registry=registry)
    consumed.labels("card", "handled").inc(3)
    consumed.labels("card", "duplicate").inc(2)
    consumed.labels("notifier", "handled").inc(4)
    Counter("other", "other", ["outcome"], registry=registry).labels("handled").inc(100)
    page = generate_latest(registry).decode()

    by_outcome = totals_by_label(page, "events_consumed_total", "outcome")

    assert by_outcome == {"handled": 7.0, "duplicate": 2.0}  # no *_created, no other metric
    assert totals_by_label(page, "events_consumed_total", "missing") == {"": 9.0}
