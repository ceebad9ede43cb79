"""Demo content for `make run`: idempotent, safe to run on every start."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Membership, Organization, Role, User
from portal.catalog import services as catalog
from portal.catalog.models import Api, ApiVersion, LifecycleState
from portal.keys import services as keys
from portal.keys.models import Application, KeyStatus
from portal.plans import services as plans
from portal.plans.models import LIVE_SUBSCRIPTION_STATES, Plan

OPERATOR_EMAIL = "operator@tollway.localhost"
DEVELOPER_EMAIL = "developer@tollway.localhost"
DEMO_KEY_LABEL = "demo (seed_demo)"
DEMO_UPSTREAM = os.environ.get("TOLLWAY_DEMO_UPSTREAM", "http://127.0.0.1:8090")
ECHO_DESCRIPTION = """\
**Echo** answers every request with a JSON description of what it received:
method, path, query string, headers and body size.

Use it to see exactly what the Tollway gateway forwards upstream, and to try
keys, rate limits and quotas without side effects.

```
curl -H "X-API-Key: $KEY" http://127.0.0.1:8080/echo/v2/anything?hello=world
```
"""


@dataclass(frozen=True)
class DemoResult:
    operator_email: str
    developer_email: str
    password: str
    api_key: str


def _demo_password() -> str:
    """TOLLWAY_DEMO_PASSWORD, else one generated at first seed and kept next to the
    embedded SQLite database in var/ (mode 0600), so every run can print the logins."""
    if settings.TOLLWAY_DEMO_PASSWORD:
        return str(settings.TOLLWAY_DEMO_PASSWORD)
    path = Path(settings.BASE_DIR) / "var" / "demo_password"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def _user(email: str, password: str, *, staff: bool) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, is_staff=staff, email_verified=True)
        if staff:
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
    elif not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def seed_demo() -> DemoResult:
    password = _demo_password()
    operator = _user(OPERATOR_EMAIL, password, staff=True)
    developer = _user(DEVELOPER_EMAIL, password, staff=False)
    Group.objects.get_or_create(name="finance")

    organization, _ = Organization.objects.get_or_create(slug="demo", defaults={"name": "Demo Organization"})
    Membership.objects.get_or_create(organization=organization, user=developer, defaults={"role": Role.OWNER})

    api = Api.objects.filter(slug="echo").first() or catalog.api_create(
        actor=operator,
        slug="echo",
        name="Echo",
        summary="Echoes every request back as JSON: see what the gateway forwards.",
        description=ECHO_DESCRIPTION,
        tags=["demo", "testing", "http"],
    )
    openapi = catalog.openapi_parse((Path(__file__).parent / "echo-openapi.yaml").read_text())
    upstreams = [{"url": DEMO_UPSTREAM, "weight": 1}]
    v2 = ApiVersion.objects.filter(api=api, label="v2").first() or catalog.version_create(
        api=api, label="v2", upstreams=upstreams, actor=operator, openapi=openapi,
        changelog="v2: responses list headers as pairs.",
    )
    v1 = ApiVersion.objects.filter(api=api, label="v1").first() or catalog.version_create(
        api=api, label="v1", upstreams=upstreams, actor=operator, openapi=openapi, changelog="v1: first release.",
    )
    if v2.state == LifecycleState.DRAFT:
        catalog.version_transition(version=v2, to_state=LifecycleState.PUBLISHED, actor=operator)
    if v1.state == LifecycleState.DRAFT:
        catalog.version_transition(version=v1, to_state=LifecycleState.PUBLISHED, actor=operator)
    v1.refresh_from_db()
    if v1.state == LifecycleState.PUBLISHED:
        catalog.version_transition(
            version=v1,
            to_state=LifecycleState.DEPRECATED,
            actor=operator,
            sunset_at=timezone.now() + dt.timedelta(days=90),
            successor=v2,
        )

    free = Plan.objects.filter(api=api, slug="free").first() or plans.plan_create(
        actor=operator, api=api, slug="free", name="Free", description="For trying things out.",
        rate_per_second=5, rate_per_minute=100, burst=5, quota_per_day=1000,
    )
    if not Plan.objects.filter(api=api, slug="pro").exists():
        plans.plan_create(
            actor=operator, api=api, slug="pro", name="Pro", description="For production traffic.",
            rate_per_second=100, rate_per_minute=3000, burst=50, quota_per_month=1_000_000,
            monthly_price=Decimal("49.00"), currency="EUR", included_requests=500_000,
            overage_price_per_1000=Decimal("0.40"), requires_approval=True,
        )

    application = Application.objects.filter(organization=organization, name="Demo App").first()
    if application is None:
        application = keys.application_create(
            organization=organization, name="Demo App", description="Created by seed_demo.", actor=developer
        )
    if not application.subscriptions.filter(status__in=LIVE_SUBSCRIPTION_STATES).exists():
        plans.subscription_create(application=application, plan=free, actor=developer)

    # One working demo key at a time: each run issues a fresh one and revokes the previous.
    for old in application.keys.filter(label=DEMO_KEY_LABEL, status=KeyStatus.ACTIVE):
        keys.api_key_revoke(key=old, actor=developer)
    issued = keys.api_key_issue(application=application, label=DEMO_KEY_LABEL, actor=developer)
    return DemoResult(OPERATOR_EMAIL, DEVELOPER_EMAIL, password, issued.secret)
