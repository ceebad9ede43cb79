"""The deprecation report lists who still calls a deprecated version; one action
emails those applications' owners, and only them."""

from __future__ import annotations

import time

import pytest
from django.core import mail

from analytics.models import DeprecationNotice
from tests.analytics.conftest import commit_requests, make_request

pytestmark = pytest.mark.django_db


def test_it_emails_the_owners_of_applications_calling_the_deprecated_version(
    client, olivia, alice, bob, charlie, alice_app, charlie_app, echo_api, django_capture_on_commit_callbacks
):
    now = int(time.time() * 1000)
    events = [make_request(ts=now - 5000, api_id=echo_api.pk, version="v1", application_id=alice_app.pk)
              for _ in range(4)]
    events += [make_request(ts=now - 5000, api_id=echo_api.pk, version="v2", application_id=charlie_app.pk)]
    commit_requests(events, consumer="test")

    client.force_login(olivia)
    page = client.get("/analytics/deprecations/").content.decode()
    assert "Acme Shop" in page
    assert "Globex Tool" not in page  # charlie only calls v2

    with django_capture_on_commit_callbacks(execute=True):  # the mail goes out after commit
        response = client.post("/analytics/deprecations/notify/", {"api_id": echo_api.pk, "version": "v1"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@acme.test"]  # the owner; bob is a plain member
    assert "4 requests" in mail.outbox[0].body
    assert "v2" in mail.outbox[0].body  # the successor
    assert DeprecationNotice.objects.get().application_id == alice_app.pk


def test_developers_cannot_send_deprecation_mail(client, alice, echo_api):
    client.force_login(alice)
    assert client.post("/analytics/deprecations/notify/", {"api_id": echo_api.pk, "version": "v1"}).status_code == 403
    assert mail.outbox == []
