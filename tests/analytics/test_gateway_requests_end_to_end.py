"""End to end: N requests through the real gateway (python -m gateway) come out as
exactly N in the rollups, in the usage API, and on the invoice line, via a real
Celery worker consuming the gateway's metering stream."""

from __future__ import annotations

import os
from decimal import Decimal

import httpx
import pytest
from django.db.models import Sum
from rest_framework.test import APIClient

from analytics.billing import services
from analytics.billing.rules import month_start
from analytics.ingest.tasks import metering_consume
from analytics.models import Rollup
from analytics.reports import reconcile, selectors
from gateway.contract import DEFAULT_METERING_PARTITIONS, METERING_GROUP, metering_partition, metering_stream
from tests.analytics.conftest import requires_postgres, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

N = 240


def _admitted(subscription_id: int) -> int:
    n = Rollup.objects.filter(granularity="d", subscription_id=subscription_id).aggregate(n=Sum("admitted"))["n"]
    return int(n or 0)


@requires_postgres
def test_n_requests_through_the_gateway_are_n_everywhere(
    metering_redis, start_worker, tmp_path, alice, acme, alice_app, echo_api, olivia
):
    from django.conf import settings
    from django.utils import timezone

    from portal.catalog.models import UpstreamTarget
    from portal.gateway_state.sync import state_rebuild
    from portal.keys import services as keys
    from portal.plans import services as plans
    from tests.gateway.conftest import GatewayProcess, start_echo

    echo = start_echo()
    gateway = None
    try:
        UpstreamTarget.objects.filter(version__api=echo_api).update(url=echo.url)
        # No rate limit (every request is admitted), but a daily quota: the gateway then
        # keeps the admitted counter that reconciliation reads.
        plan = plans.plan_create(
            actor=olivia, api=echo_api, slug="metered", name="Metered", quota_per_day=100_000,
            monthly_price=Decimal("10.00"), included_requests=100, overage_price_per_1000=Decimal("1.00"),
        )
        subscription = plans.subscription_create(application=alice_app, plan=plan, actor=alice)
        key = keys.api_key_issue(application=alice_app, label="e2e", actor=alice).secret
        state_rebuild()  # the portal's full publish: routes, application, key

        gateway = GatewayProcess(
            redis_url=os.environ["REDIS_URL"], tmp=tmp_path,
            env={"GATEWAY_KEY_HASH_SECRET": settings.KEY_HASH_SECRET.decode()},
        ).start()
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            statuses = [http.get(f"/echo/v2/items/{i}", headers={"X-API-Key": key}).status_code for i in range(N)]
            # Turned away before the upstream: metered, but neither admitted nor billed.
            denied = http.get("/echo/v2/items/x", headers={"X-API-Key": key[:-1] + "0"}).status_code
        assert statuses == [200] * N
        assert denied == 401

        worker = start_worker("e2e")
        # The gateway wrote the requests, in batches, to their subscription's partition.
        stream = metering_stream(metering_partition(subscription.pk, DEFAULT_METERING_PARTITIONS))

        def counted() -> bool:
            if _admitted(subscription.pk) >= N and metering_redis.xlen(stream) > 0 and \
                    metering_redis.xpending(stream, METERING_GROUP)["pending"] == 0:
                return True
            metering_consume.delay()
            return False

        wait_until(counted, timeout=60, interval=1.0, message="rollups never reached N:\n" + worker.output())
    finally:
        if gateway is not None:
            gateway.stop()
        echo.proc.terminate()
        echo.proc.wait(timeout=10)

    # Rollups: every granularity, exactly N admitted on this subscription.
    for granularity in ("m", "h", "d"):
        rows = Rollup.objects.filter(granularity=granularity, subscription_id=subscription.pk)
        assert rows.aggregate(n=Sum("admitted"))["n"] == N, granularity
        assert rows.aggregate(n=Sum("requests"))["n"] == N, granularity
    assert set(Rollup.objects.filter(subscription_id=subscription.pk).values_list("version", flat=True)) == {"v2"}

    # Usage API, as alice.
    api = APIClient()
    api.force_authenticate(alice)
    summary = api.get("/api/v1/usage/summary/", {"granularity": "d", "application_id": alice_app.pk}).json()
    assert summary["requests"] == N
    assert summary["admitted"] == N
    assert summary["errors"] == 0

    # Invoice line.
    [invoice] = services.invoice_refresh(organization_id=acme.pk, month=month_start(timezone.now()))
    [line] = invoice.lines.all()
    assert line.subscription_id == subscription.pk
    assert line.used_requests == N
    assert sum(line.daily_usage.values()) == N

    # Reconciliation: the gateway's own admitted counter agrees.
    reconcile.reconcile_recent_days(client=metering_redis)
    today = timezone.now().date()
    [row] = selectors.reconciliation_rows(month=month_start(today), subscription_ids=[subscription.pk])
    assert row["day"] == today
    assert (row["gateway"], row["rollups"], row["invoice"], row["mismatch"]) == (N, N, N, False)
