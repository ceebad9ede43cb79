"""Rollups carry the endpoint and the exact status code (the portal's usage breakdowns),
requests whose outcome the gateway never learnt are billed, and the traffic rollups
carry their writer's partition so that each row has one writer."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from analytics.ingest.metering import aggregate
from analytics.models import ENDPOINT_MAX_CHARS, Rollup, TrafficRollup
from analytics.reports.selectors import version_requests_since
from gateway.contract import OUTCOME_UNKNOWN
from tests.analytics.conftest import commit_requests, make_request

pytestmark = pytest.mark.django_db


def test_it_counts_per_endpoint_and_status_code():
    now = int(time.time() * 1000) - 1000
    commit_requests([
        make_request(ts=now, endpoint="/items", status=200),
        make_request(ts=now, endpoint="/items", status=200),
        make_request(ts=now, endpoint="/items/{id}", status=404),
        make_request(ts=now, endpoint="/items/{id}", status=401, decision="unauthenticated"),
    ])
    rows = Rollup.objects.filter(granularity="h").values("endpoint", "status", "status_class").annotate(
        n=Sum("requests"), admitted=Sum("admitted"), errors=Sum("errors"))
    got = sorted((r["endpoint"], r["status"], r["status_class"], r["n"], r["admitted"], r["errors"]) for r in rows)
    assert got == [
        ("/items", 200, 2, 2, 2, 0),
        ("/items/{id}", 401, 4, 1, 0, 1),
        ("/items/{id}", 404, 4, 1, 1, 1),
    ]
    # Minute rows keep the status class only: the breakdowns read hours and days.
    minute = Rollup.objects.filter(granularity="m").values_list("endpoint", "status", "status_class", "requests")
    assert sorted(minute) == [("", 0, 2, 2), ("", 0, 4, 2)]


def test_an_unknown_outcome_is_billed():
    now = int(time.time() * 1000) - 1000
    commit_requests([make_request(ts=now, status=0, outcome=OUTCOME_UNKNOWN, decision="allowed"),
                     make_request(ts=now, status=0, outcome=OUTCOME_UNKNOWN, decision="")])
    day = Rollup.objects.get(granularity="d")
    assert (day.requests, day.admitted, day.errors, day.status, day.status_class) == (2, 2, 0, 0, 0)


def test_over_long_labels_are_cut_to_their_columns_and_merged():
    now = int(time.time() * 1000) - 1000
    long = "/x" * 200
    commit_requests([make_request(ts=now, endpoint=long + "a"), make_request(ts=now, endpoint=long + "b"),
                     make_request(ts=now, version="v" * 50)])
    cut = Rollup.objects.get(granularity="d", endpoint=long[:ENDPOINT_MAX_CHARS])
    assert cut.requests == 2
    assert Rollup.objects.get(granularity="d", version="v" * 40).requests == 1


def test_labels_with_tabs_newlines_and_backslashes_survive_the_copy():
    now = int(time.time() * 1000) - 1000
    odd = "/a\tb\nc\\d\re"
    commit_requests([make_request(ts=now, endpoint=odd, version="v\t1")])
    row = Rollup.objects.get(granularity="d")
    assert (row.endpoint, row.version) == (odd, "v\t1")


def test_traffic_rows_carry_the_partition_and_readers_sum_them():
    now = int(time.time() * 1000) - 1000
    commit_requests([make_request(ts=now, subscription_id=1)], partition=1)
    commit_requests([make_request(ts=now, subscription_id=2), make_request(ts=now, subscription_id=2)], partition=2)
    rows = TrafficRollup.objects.filter(granularity="d")
    assert sorted(rows.values_list("partition", "requests")) == [(1, 1), (2, 2)]
    assert version_requests_since(api_id=1, version="v1", since=timezone.now() - timedelta(hours=2)) == 3


def test_aggregation_keeps_minute_cells_per_endpoint_and_status():
    agg = aggregate([make_request(ts=60_000 * 5 + i, endpoint=e, status=s)
                     for i, (e, s) in enumerate([("/a", 200), ("/a", 200), ("/a", 500), ("/b", 200)])])
    assert sorted((k[7], k[8], v[0]) for k, v in agg.minute.items()) == [("/a", 200, 2), ("/a", 500, 1), ("/b", 200, 1)]


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL storage settings")
def test_rollup_tables_compare_text_bytewise_and_leave_room_for_updates():
    with connection.cursor() as cur:
        cur.execute("SELECT relname, reloptions FROM pg_class WHERE relname IN "
                    "('analytics_rollup', 'analytics_trafficrollup') ORDER BY relname")
        assert cur.fetchall() == [("analytics_rollup", ["fillfactor=70"]),
                                  ("analytics_trafficrollup", ["fillfactor=70"])]
        cur.execute("SELECT table_name, column_name, collation_name FROM information_schema.columns "
                    "WHERE table_name IN ('analytics_rollup', 'analytics_trafficrollup') "
                    "AND column_name IN ('version', 'key_prefix', 'endpoint') ORDER BY 1, 2")
        assert {row[2] for row in cur.fetchall()} == {"C"}


def test_traffic_rows_match_the_python_fold_at_every_granularity():
    """PostgreSQL folds TrafficRollup's hours and days from its own minute rows (SQLite
    from the minute cells in Python): both give the rows ``traffic_cells`` gives, with
    labels cut before they merge, big byte counts kept whole, and minute rows only
    within their retention."""
    from analytics import conf
    from analytics.ingest.metering import HOUR_MS, METRIC_COLUMNS

    now = int(time.time() * 1000) - 1000
    hour = now - now % HOUR_MS
    long = "/x" * 200
    requests = [
        make_request(ts=hour - 1, endpoint="/a"),  # the previous hour
        make_request(ts=hour + 5, endpoint="/a", status=500),
        make_request(ts=hour + 61_000, endpoint="/a", bytes_out=3_000_000_000, latency_ms=250.0),
        make_request(ts=hour + 61_000, endpoint=long + "1", version="v2", plan_id=2),
        make_request(ts=hour + 62_000, endpoint=long + "2", version="v2", plan_id=2, decision="rate_limited",
                     status=429),
        make_request(ts=now - (conf.MINUTE_RETENTION_HOURS + 1) * HOUR_MS, endpoint="/old"),  # no minute row
    ]
    commit_requests(requests, now_ms=now, partition=3)

    floor = now - conf.MINUTE_RETENTION_HOURS * HOUR_MS
    agg = aggregate(requests)
    fields = ["bucket", "partition", "api_id", "version", "plan_id", "endpoint", "status", "status_class",
              *METRIC_COLUMNS]
    for granularity in ("m", "h", "d"):
        expected = sorted(
            (key[0], *key[1:], *(round(v, 6) for v in vec))
            for key, vec in agg.traffic_cells(granularity, partition=3, min_minute_ts=floor).items()
        )
        got = sorted(
            (int(row[0].timestamp() * 1000), *row[1:-len(METRIC_COLUMNS)],
             *(round(float(v), 6) for v in row[-len(METRIC_COLUMNS):]))
            for row in TrafficRollup.objects.filter(granularity=granularity).values_list(*fields)
        )
        assert got == expected, granularity
    assert TrafficRollup.objects.filter(granularity="d").aggregate(n=Sum("bytes_out"))["n"] == 3_000_002_000
