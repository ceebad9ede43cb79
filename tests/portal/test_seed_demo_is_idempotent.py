"""`seed_demo` can run on every start: same objects, fresh demo key, logins printed."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command

from gateway import contract
from portal.catalog.models import Api, ApiVersion
from portal.keys.models import ApiKey, Application
from portal.plans.models import Plan, Subscription


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_it_creates_the_demo_and_prints_logins_and_a_key(settings):
    settings.TOLLWAY_DEMO_PASSWORD = "demo-password-for-tests"

    output = _seed()

    assert "Demo operator: operator@tollway.localhost / demo-password-for-tests" in output
    assert "Demo developer: developer@tollway.localhost / demo-password-for-tests" in output
    key = re.search(r"^Demo API key: (\S+)$", output, re.M).group(1)
    assert contract.key_is_well_formed(key)
    v1, v2 = ApiVersion.objects.get(label="v1"), ApiVersion.objects.get(label="v2")
    assert (v1.state, v1.successor, v2.state) == ("deprecated", v2, "published")
    assert v1.sunset_at is not None
    assert {p.slug for p in Plan.objects.all()} == {"free", "pro"}
    pro = Plan.objects.get(slug="pro")
    assert pro.monthly_price > 0
    assert pro.overage_price_per_1000 > 0
    assert Subscription.objects.get().plan.slug == "free"


@pytest.mark.django_db
def test_it_is_idempotent_and_keeps_one_working_demo_key(settings):
    settings.TOLLWAY_DEMO_PASSWORD = "demo-password-for-tests"
    _seed()
    counts = [m.objects.count() for m in (Api, ApiVersion, Plan, Application, Subscription)]

    _seed()

    assert [m.objects.count() for m in (Api, ApiVersion, Plan, Application, Subscription)] == counts
    assert ApiKey.objects.filter(status="active").count() == 1
    assert ApiKey.objects.filter(status="revoked").count() == 1
