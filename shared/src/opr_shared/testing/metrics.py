"""Reading a service's ``/metrics`` page (Prometheus text format)."""

from __future__ import annotations

from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families


def totals_by_label(page: str, sample: str, label: str) -> dict[str, float]:
    """The values of ``sample`` (e.g. ``events_consumed_total``) on ``page``,
    summed by the value of ``label`` (samples without it count under "")."""
    totals: defaultdict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(page):
        for found in family.samples:
            if found.name == sample:
                totals[found.labels.get(label, "")] += found.value
    return dict(totals)
