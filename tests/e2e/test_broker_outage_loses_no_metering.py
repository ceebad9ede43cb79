"""Broker outage: with the Celery broker (a Redis of its own here) gone, the gateway
keeps serving and metering into the stream; the events wait there, and once the
broker is back every one of them is aggregated, once.

Bounds: 30 calls before the outage (aggregated as a baseline), then the broker is
SIGKILLed; after 6 s (longer than a consume task's 5 s budget here, so no run that
started before the outage is still draining) 50 calls; 3 s later all 50 are still
waiting in the stream and the rollups have not moved. The broker is started again
(same AOF) and the stack gets at most 60 s to aggregate. Lost = a served request
that is not in the rollups; none may be.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from gateway.contract import (
    DEFAULT_METERING_PARTITIONS,
    METERING_BATCH_FIELD,
    METERING_GROUP,
    decode_batch,
    metering_partition,
    metering_stream,
)
from tests.e2e.conftest import Stack, admitted_total, publish_cast, requires_postgres, wait_drained, wait_for

pytestmark = [requires_postgres, pytest.mark.slow]

BEFORE, DURING = 30, 50


def test_metering_waits_out_a_broker_outage_and_is_all_aggregated(make_stack: Any) -> None:
    stack: Stack = make_stack(separate_broker=True)
    assert stack.broker is not None
    cast = publish_cast(stack)
    stack.start_gateway()
    wait_for(lambda: stack.call(cast.key).status_code == 200, timeout=5, message="key never reached the gateway")
    for _ in range(BEFORE - 1):
        assert stack.call(cast.key).status_code == 200
    wait_drained(stack)
    assert admitted_total(cast.subscription.pk) == BEFORE

    stack.broker.kill()
    time.sleep(6)
    assert [stack.call(cast.key).status_code for _ in range(DURING)] == [200] * DURING
    time.sleep(3)
    # The requests made while the broker was away wait, unread, in their partition stream.
    stream = metering_stream(metering_partition(cast.subscription.pk, DEFAULT_METERING_PARTITIONS))
    client = redis.Redis.from_url(stack.redis.url)
    try:
        group = {g["name"]: g for g in client.xinfo_groups(stream)}[METERING_GROUP.encode()]
        last = group["last-delivered-id"].decode()
        unread = [fields for entry_id, fields in client.xrange(stream, min=f"({last}")]
    finally:
        client.close()
    waiting = sum(len(decode_batch(fields[METERING_BATCH_FIELD.encode()]).requests) for fields in unread)
    assert waiting == DURING, (group, waiting)
    assert admitted_total(cast.subscription.pk) == BEFORE

    stack.restart_redis(stack.broker)
    wait_drained(stack, timeout=60)
    assert admitted_total(cast.subscription.pk) == BEFORE + DURING == stack.echo.served()
