"""Histogram percentiles stay close to the exact ones."""

from __future__ import annotations

import random

from analytics.ingest.metering import HIST0, aggregate, latency_bucket
from analytics.models import LATENCY_BUCKETS_MS
from analytics.reports.selectors import percentile_from_histogram
from tests.analytics.conftest import make_request


def _exact(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_estimates_fall_within_a_quarter_of_the_exact_value():
    rng = random.Random(1)
    latencies = [rng.lognormvariate(3.5, 1.0) for _ in range(20_000)]
    agg = aggregate([make_request(ts=0, latency_ms=v) for v in latencies])
    [vec] = agg.minute.values()
    hist = vec[HIST0:]
    assert sum(hist) == 20_000
    for q in (0.5, 0.95, 0.99):
        estimate = percentile_from_histogram(hist, q)
        exact = _exact(latencies, q)
        assert abs(estimate - exact) / exact < 0.25, (q, estimate, exact)


def test_bucket_edges_are_inclusive_upper_bounds():
    assert latency_bucket(0) == 0
    assert latency_bucket(1) == 0
    assert latency_bucket(1.0001) == 1
    assert latency_bucket(10**6) == len(LATENCY_BUCKETS_MS)


def test_an_empty_histogram_has_no_percentile():
    assert percentile_from_histogram([0] * (len(LATENCY_BUCKETS_MS) + 1), 0.5) is None
