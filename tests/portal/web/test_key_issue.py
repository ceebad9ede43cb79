from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def _issue(client: Any, app: Any, once: str = "token-1", **extra: str) -> Any:
    return client.post(f"/applications/{app.pk}/keys/new/", {"once": once, "label": "ci", **extra})


def test_the_secret_is_shown_once_and_never_cached(client: Any, alice: Any, alice_app: Any) -> None:
    client.force_login(alice)
    response = _issue(client, alice_app)
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("tw_")
    assert secret in response.content.decode()
    assert "shown only this once" in response.content.decode()
    assert "no-store" in response["Cache-Control"]

    listing = client.get(f"/applications/{alice_app.pk}/").content.decode()
    assert secret[:11] in listing
    assert secret not in listing


def test_resubmitting_the_same_form_does_not_mint_a_second_key(client: Any, alice: Any, alice_app: Any) -> None:
    client.force_login(alice)
    first = _issue(client, alice_app, once="same")
    again = _issue(client, alice_app, once="same")
    assert again.status_code == 302
    assert alice_app.keys.count() == 1
    assert first.context["secret"] not in client.get(again["Location"]).content.decode()


def test_an_expiry_in_the_past_is_an_error_next_to_the_field(client: Any, alice: Any, alice_app: Any) -> None:
    client.force_login(alice)
    response = _issue(client, alice_app, expires_on="2000-01-01")
    assert response.status_code == 200
    assert response.context["form"].errors["expires_on"] == ["Choose a date after today."]
    assert alice_app.keys.count() == 0


def test_an_expiry_date_is_stored_as_the_start_of_that_day(client: Any, alice: Any, alice_app: Any) -> None:
    client.force_login(alice)
    day = dt.date.today() + dt.timedelta(days=10)
    _issue(client, alice_app, expires_on=day.isoformat())
    assert alice_app.keys.get().expires_at == dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def test_the_key_list_shows_prefix_label_dates_and_status(client: Any, alice: Any, alice_app: Any) -> None:
    from portal.keys import services

    key = services.api_key_issue(application=alice_app, label="backend", actor=alice).key
    client.force_login(alice)
    body = client.get(f"/applications/{alice_app.pk}/").content.decode()
    for text in (f"{key.prefix}…", "backend", key.created_at.strftime("%Y-%m-%d"), "Never", "active"):
        assert text in body


def test_a_throttled_attempt_can_be_retried_with_the_same_form(
    client: Any, alice: Any, alice_app: Any, settings: Any
) -> None:
    from django.core.cache import cache

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "key_create": "1/hour"}}
    client.force_login(alice)
    assert _issue(client, alice_app, once="first").status_code == 200
    refused = _issue(client, alice_app, once="second")
    assert refused.status_code == 429
    assert alice_app.keys.count() == 1
    cache.clear()  # the throttle window ends
    retried = _issue(client, alice_app, once="second")
    assert retried.status_code == 200
    assert alice_app.keys.count() == 2
