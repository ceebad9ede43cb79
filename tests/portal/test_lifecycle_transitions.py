"""Only valid lifecycle transitions are allowed, and each is audited."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.catalog import services as catalog
from portal.catalog.models import LifecycleEvent
from portal.core.errors import ApplicationError, InvalidTransition

VALID = [
    ("draft", "published"),
    ("published", "deprecated"),
    ("deprecated", "published"),
    ("deprecated", "retired"),
    ("published", "retired"),
    ("draft", "retired"),
]
INVALID = [
    ("draft", "deprecated"),
    ("retired", "published"),
    ("retired", "deprecated"),
    ("published", "draft"),
    ("published", "published"),
]


def _version_in(state, api, actor, label="v9"):
    version = catalog.version_create(api=api, label=label, upstreams=[{"url": "http://127.0.0.1:1"}], actor=actor)
    path = {"draft": [], "published": ["published"], "deprecated": ["published", "deprecated"], "retired": ["retired"]}[
        state
    ]
    for step in path:
        version = catalog.version_transition(version=version, to_state=step, actor=actor)
    return version


@pytest.mark.django_db
@pytest.mark.parametrize(("from_state", "to_state"), VALID)
def test_it_allows_and_audits_a_valid_transition(olivia, echo_api, from_state, to_state):
    version = _version_in(from_state, echo_api, olivia)

    version = catalog.version_transition(version=version, to_state=to_state, actor=olivia)

    assert version.state == to_state
    event = LifecycleEvent.objects.filter(version=version).first()
    assert (event.from_state, event.to_state, event.actor) == (from_state, to_state, olivia)
    assert AuditEvent.objects.filter(action=f"version.{to_state}", object_id=str(version.pk)).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("from_state", "to_state"), INVALID)
def test_it_refuses_an_invalid_transition(olivia, echo_api, from_state, to_state):
    version = _version_in(from_state, echo_api, olivia)

    with pytest.raises(InvalidTransition):
        catalog.version_transition(version=version, to_state=to_state, actor=olivia)

    version.refresh_from_db()
    assert version.state == from_state


@pytest.mark.django_db
def test_it_records_sunset_and_successor_on_deprecation(olivia, echo_api):
    v2 = echo_api.versions.get(label="v2")
    v3 = _version_in("published", echo_api, olivia, label="v3")
    sunset = timezone.now() + dt.timedelta(days=30)

    v2 = catalog.version_transition(version=v2, to_state="deprecated", actor=olivia, sunset_at=sunset, successor=v3)

    assert v2.sunset_at == sunset
    assert v2.successor == v3
    assert v2.deprecated_at is not None


@pytest.mark.django_db
def test_it_refuses_a_successor_from_another_api(olivia, echo_api):
    other = catalog.api_create(actor=olivia, slug="other", name="Other")
    foreign = catalog.version_create(api=other, label="v1", upstreams=[{"url": "http://127.0.0.1:1"}], actor=olivia)
    v2 = echo_api.versions.get(label="v2")

    with pytest.raises(ApplicationError, match="same API"):
        catalog.version_transition(version=v2, to_state="deprecated", actor=olivia, successor=foreign)
