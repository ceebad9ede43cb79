"""API6 Unrestricted access to sensitive business flows: signing up and minting keys are
throttled, on the web and through the API, and the throttle cannot be dodged with a
forged X-Forwarded-For. (The API's key_create throttle: tests/portal/api/
test_it_answers_every_error_in_one_shape.py::test_it_throttles_key_creation; login:
tests/portal/web/test_login.py::test_it_throttles_attempts_even_with_the_right_password.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]


def _issue(client: Any, app: Any, once: str) -> Any:
    return client.post(f"/applications/{app.pk}/keys/new/", {"once": once, "label": once})


def test_web_key_creation_is_throttled_per_user(client, alice, bob, alice_app, throttle_rates):
    throttle_rates(key_create="3/hour")
    client.force_login(alice)

    statuses = [_issue(client, alice_app, f"once-{n}").status_code for n in range(3)]
    refused = _issue(client, alice_app, "once-3")

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert "created many keys recently" in refused.content.decode()
    assert "secret" not in refused.context
    assert alice_app.keys.count() == 3
    # Per user: bob, in the same organization, has his own budget.
    client.force_login(bob)
    assert _issue(client, alice_app, "bob-0").status_code == 200
    assert alice_app.keys.count() == 4


def test_web_key_rotation_spends_the_same_budget(client, alice, alice_app, throttle_rates):
    throttle_rates(key_create="2/hour")
    client.force_login(alice)
    assert _issue(client, alice_app, "once-0").status_code == 200
    key = alice_app.keys.get()

    rotated = client.post(f"/applications/{alice_app.pk}/keys/{key.pk}/rotate/", {"once": "r1", "grace_seconds": 0})
    refused = client.post(f"/applications/{alice_app.pk}/keys/{key.pk}/rotate/", {"once": "r2", "grace_seconds": 0})

    assert rotated.status_code == 200, rotated.content[:300]
    assert refused.status_code == 302
    assert alice_app.keys.count() == 2  # the first key and its one replacement
    page = client.get(refused["Location"]).content.decode()
    assert "created many keys recently" in page


def test_api_key_creation_and_rotation_share_one_throttle(alice, alice_app, client):
    from rest_framework.throttling import ScopedRateThrottle

    client.force_login(alice)
    url = f"/api/v1/applications/{alice_app.pk}/keys/"
    # DRF binds the rates when the throttle class is created; set them on the class.
    rates = {**ScopedRateThrottle.THROTTLE_RATES, "key_create": "2/hour"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
        first = client.post(url, {"label": "a"}, content_type="application/json")
        rotate = client.post(f"{url}{first.json()['id']}/rotate/", {"grace_seconds": 0},
                             content_type="application/json")
        refused = client.post(url, {"label": "c"}, content_type="application/json")

    assert (first.status_code, rotate.status_code) == (201, 201)
    assert refused.status_code == 429
    assert "secret" not in refused.json()
    assert alice_app.keys.count() == 2


def test_signup_throttle_ignores_a_forged_forwarded_for(client, throttle_rates, settings):
    from portal.accounts.models import User

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    throttle_rates(signup="2/hour")
    statuses = [
        client.post("/accounts/signup/", {"email": f"bot{n}@example.test", "password": PASSWORD},
                    HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(4)
    ]

    assert statuses == [200, 200, 429, 429]
    assert User.objects.filter(email__startswith="bot").count() == 2


def test_resending_verification_spends_the_signup_budget(client, throttle_rates):
    throttle_rates(signup="1/hour")
    assert client.post("/accounts/verify/resend/", {"email": "x@example.test"}).status_code == 302
    assert client.post("/accounts/verify/resend/", {"email": "y@example.test"}).status_code == 429
