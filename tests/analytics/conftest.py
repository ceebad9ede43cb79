"""Analytics fixtures: metering events in the contract's exact stream format."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.contract import METERING_STREAM, MeteringEvent


def make_event(
    *,
    ts: int,
    api_id: int | None = 1,
    version: str = "v1",
    application_id: int | None = 1,
    key_prefix: str = "tw_abcdefgh",
    subscription_id: int | None = 1,
    plan_id: int | None = 1,
    status: int = 200,
    decision: str = "allowed",
    latency_ms: float = 12.5,
    bytes_in: int = 100,
    bytes_out: int = 400,
    api: str = "echo",
    method: str = "GET",
) -> MeteringEvent:
    return MeteringEvent(
        id=uuid.uuid4().hex, ts=ts, api_id=api_id, api=api, version=version, application_id=application_id,
        key_prefix=key_prefix, subscription_id=subscription_id, plan_id=plan_id, method=method, status=status,
        decision=decision, latency_ms=latency_ms, bytes_in=bytes_in, bytes_out=bytes_out,
    )


def random_events(n: int, *, ts0: int, seed: int = 7, apps: int = 5, span_ms: int = 3_600_000) -> list[MeteringEvent]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        app = rng.randint(1, apps)
        status = rng.choice([200, 200, 200, 201, 304, 404, 429, 500, 502])
        out.append(
            make_event(
                ts=ts0 + rng.randrange(span_ms), application_id=app, subscription_id=app, plan_id=1 + app % 2,
                api_id=1 + app % 3, version=rng.choice(["v1", "v2"]), key_prefix=f"tw_key{app:05d}",
                status=status, decision="rate_limited" if status == 429 else "allowed",
                latency_ms=rng.lognormvariate(3, 1), bytes_in=rng.randint(0, 2000), bytes_out=rng.randint(0, 9000),
            )
        )
    return out


def xadd_events(client: Any, events: list[MeteringEvent], *, chunk: int = 1000) -> None:
    """The gateway's way: pipelined XADDs in batches."""
    for start in range(0, len(events), chunk):
        pipe = client.pipeline(transaction=False)
        for e in events[start : start + chunk]:
            pipe.xadd(METERING_STREAM, e.to_fields())
        pipe.execute()


def expected_totals(events: list[MeteringEvent]) -> dict[str, int]:
    return {
        "requests": len(events),
        "admitted": sum(e.decision == "allowed" for e in events),
        "errors": sum(e.status >= 400 for e in events),
        "bytes_in": sum(e.bytes_in for e in events),
        "bytes_out": sum(e.bytes_out for e in events),
    }


def rollup_totals(granularity: str) -> dict[str, int]:
    from django.db.models import Sum

    from analytics.models import Rollup

    agg = Rollup.objects.filter(granularity=granularity).aggregate(
        requests=Sum("requests"), admitted=Sum("admitted"), errors=Sum("errors"),
        bytes_in=Sum("bytes_in"), bytes_out=Sum("bytes_out"),
    )
    return {k: int(v or 0) for k, v in agg.items()}


def rollup_snapshot() -> list[tuple[Any, ...]]:
    from analytics.metering import METRIC_COLUMNS
    from analytics.models import Rollup

    cols = ["granularity", "bucket", "api_id", "version", "application_id", "key_prefix", "plan_id",
            "subscription_id", "status_class", *METRIC_COLUMNS]
    return sorted(Rollup.objects.values_list(*cols))


@pytest.fixture
def metering_redis(redis_client: Any) -> Iterator[Any]:
    """A decode_responses client on the suite's Redis, emptied first."""
    import redis

    from analytics.consumer import redis_client as make_client

    client: redis.Redis = make_client()
    yield client
    client.close()
