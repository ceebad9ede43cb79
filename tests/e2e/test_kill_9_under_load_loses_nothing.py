"""Kill -9 under load: a gateway worker, the Celery worker and the Redis server, each
twice, at random moments, while four clients keep calling Echo through the gateway.
Afterwards the billed total is held to the upstream's own count of served requests.

Bounds (stated, and asserted):

* Duration: load runs for the whole fault schedule, 6 slots of 4 s (about 25 s),
  then stops; the stack gets at most 90 s to settle (spill replayed, stream drained).
* Requests: whatever four keep-alive clients manage in that time (thousands here);
  the number is printed. The route is ``fail_open`` and the plan unlimited, so no
  request is refused by design, including while Redis is down.
* What counts as lost: a request the upstream served that is not on the invoice.
  Nothing may be lost except requests in flight on a gateway worker at the moment it
  is SIGKILLed: the upstream may have served them, but the worker died before it
  could answer or record them, and each such client saw a transport error. So:
  ``served - transport_errors <= billed``. Every request a client got an answer for
  is billed (``billed >= answered 200s``), including those served while Redis was
  down (spilled to disk by the gateway and replayed).
* What counts as a duplicate: admission is journalled before a request goes upstream,
  so a worker killed between the two bills a request the upstream never saw, with the
  outcome "unknown" (status 0 in the rollups; so are the requests it finished but had
  not yet flushed). A request billed but never served was in flight on a killed worker
  (its client saw a transport error). So the requests billed with a known outcome are
  at most those served, ``billed - served <= transport_errors``, and one ledger row per
  counted batch means no batch twice, although the gateway replays at-least-once and
  Celery redelivers a killed batch.
"""

from __future__ import annotations

import os
import random
import signal
import time
from typing import Any

import pytest

from tests.e2e.conftest import (
    Load,
    admitted_total,
    billed_requests,
    publish_cast,
    requires_postgres,
    wait_drained,
    wait_for,
    worker_pids,
)

pytestmark = [requires_postgres, pytest.mark.slow]

SLOT_S = 4.0
KILLS_EACH = 2


def _diagnosis(stack: Any, gateway: Any) -> str:
    """Where events were counted, for a failure report: the stream, the ledger, the gateway."""
    import httpx
    import redis

    from analytics.models import DeadLetter
    from gateway.contract import DEFAULT_METERING_PARTITIONS, METERING_STREAM, metering_stream

    client = redis.Redis.from_url(stack.redis.url, decode_responses=True)
    try:
        stream = sum(client.xlen(name) for name in
                     [METERING_STREAM, *(metering_stream(p) for p in range(DEFAULT_METERING_PARTITIONS))])
    finally:
        client.close()
    metering = [line for line in httpx.get(f"{gateway.url}/_tollway/metrics").text.splitlines()
                if line.startswith("tollway_gateway_metering")]
    return (f"stream entries {stream}, ledger {_ledger_requests()}, dead letters "
            f"{DeadLetter.objects.count()}, gateway (surviving workers) {metering}")


def _ledger_requests() -> int:
    from django.db.models import Sum

    from analytics.models import ProcessedBatch

    return int(ProcessedBatch.objects.aggregate(n=Sum("requests"))["n"] or 0)


def _billed_with_unknown_outcome(subscription_id: int) -> int:
    from django.db.models import Sum

    from analytics.models import Rollup

    return int(Rollup.objects.filter(granularity="d", subscription_id=subscription_id, status=0)
               .aggregate(n=Sum("admitted"))["n"] or 0)


def test_kill_9_of_gateway_worker_celery_and_redis_under_load_loses_nothing(make_stack: Any) -> None:
    stack = make_stack()
    cast = publish_cast(stack, redis_failure_mode="fail_open")
    gateway = stack.start_gateway(workers=2)
    wait_for(lambda: stack.call(cast.key).status_code == 200, timeout=5, message="key never reached the gateway")
    # Warm every worker's cache so the key is judged from it while Redis is down.
    for _ in range(20):
        assert stack.call(cast.key).status_code == 200

    seed = int(os.environ.get("TOLLWAY_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    faults = ["gateway"] * KILLS_EACH + ["celery"] * KILLS_EACH + ["redis"] * KILLS_EACH
    rng.shuffle(faults)
    print(f"fault seed {seed}: {faults}")

    load = Load(f"{gateway.url}/echo/v1/load", cast.key).start()
    fault_log: list[str] = []
    t0 = time.monotonic()
    try:
        for slot, fault in enumerate(faults):
            time.sleep(max(0.0, t0 + slot * SLOT_S + rng.uniform(0.3, 1.5) - time.monotonic()))
            fault_log.append(f"{time.monotonic():.2f} {fault}")
            if fault == "gateway":
                pids = worker_pids(gateway)
                assert len(pids) == 2, f"gateway workers: {pids}"
                os.kill(rng.choice(pids), signal.SIGKILL)
            elif fault == "celery":
                stack.workers[-1].kill()
                time.sleep(rng.uniform(0.5, 1.5))
                stack.start_worker()
            else:
                stack.redis.kill()
                time.sleep(rng.uniform(1.0, 2.5))
                stack.restart_redis()
        time.sleep(max(0.0, t0 + len(faults) * SLOT_S - time.monotonic()))
    finally:
        outcomes = load.stop()
    print(f"load outcomes: {dict(outcomes)}")

    wait_drained(stack, timeout=90)
    # The last batch is committed before its XACK, so once drained the rollups are final.
    served = stack.echo.served()
    billed = billed_requests(cast.acme.pk)
    admitted = admitted_total(cast.subscription.pk)
    unknown = _billed_with_unknown_outcome(cast.subscription.pk)
    answered = outcomes["200"]
    transport = outcomes["transport"]
    print(f"served={served} billed={billed} (outcome unknown {unknown}) admitted={admitted} answered={answered} "
          f"transport={transport}")

    diagnosis = _diagnosis(stack, gateway)
    print(diagnosis)
    # Every answer is a 200: fail_open and no limits, so no refusal and no 5xx.
    assert set(outcomes) <= {"200", "transport"}, (outcomes, load.samples, fault_log)
    assert answered > 1000, "too little load to mean anything"
    assert billed == admitted
    assert billed >= answered, f"a request a client got an answer for is missing from the bill: {diagnosis}"
    assert billed - unknown <= served, "billed more completed requests than the upstream served: a duplicate"
    assert billed - served <= transport, (
        f"{billed - served} billed but never served, yet only {transport} were in flight on killed workers"
    )
    assert served - billed <= transport, (
        f"{served - billed} served requests unbilled, but only {transport} were in flight on killed workers: "
        f"{diagnosis}"
    )
    # Each counted request once in the batch ledger (at-least-once replay and redelivery deduped).
    assert _ledger_requests() == admitted
