"""charlie (Globex) gets 404 for every page and action of alice's (Acme) application,
and nothing changes; anonymous visitors are sent to log in."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_things(alice: Any, alice_app: Any, free_plan: Any) -> dict[str, Any]:
    from portal.keys import services as keys
    from portal.plans import services as plans

    return {
        "key": keys.api_key_issue(application=alice_app, label="acme-prod", actor=alice).key,
        "subscription": plans.subscription_create(application=alice_app, plan=free_plan, actor=alice),
    }


def _urls(app: Any, things: dict[str, Any]) -> list[tuple[str, dict[str, str] | None]]:
    """(url, data to POST, or None for a read-only page)."""
    a, k, s = app.pk, things["key"].pk, things["subscription"].pk
    return [
        (f"/applications/{a}/", None),
        (f"/applications/{a}/edit/", {"name": "pwned"}),
        (f"/applications/{a}/delete/", {}),
        (f"/applications/{a}/keys/new/", {"once": "x", "label": "pwned"}),
        (f"/applications/{a}/keys/{k}/rotate/", {"once": "y", "grace_seconds": "0"}),
        (f"/applications/{a}/keys/{k}/revoke/", {}),
        (f"/applications/{a}/oauth/new/", {"once": "z"}),
        (f"/applications/{a}/oauth/delete/", {}),
        (f"/subscriptions/{s}/change/", {"plan": str(things["subscription"].plan_id)}),
        (f"/subscriptions/{s}/cancel/", {}),
    ]


def test_charlie_gets_404_and_changes_nothing(
    client: Any, charlie: Any, charlie_app: Any, alice_app: Any, acme_things: dict[str, Any]
) -> None:
    client.force_login(charlie)
    for url, data in _urls(alice_app, acme_things):
        if not url.endswith("/oauth/new/"):
            get = client.get(url)
            assert get.status_code == 404, url
            assert "Page not found" in get.content.decode()
            assert "Acme Shop" not in get.content.decode()
        if data is not None:
            assert client.post(url, data).status_code == 404, url
    alice_app.refresh_from_db()
    assert alice_app.name == "Acme Shop"
    assert alice_app.keys.get().status == "active"
    assert alice_app.keys.count() == 1
    assert alice_app.oauth_client is None
    assert alice_app.subscriptions.get().status == "active"


def test_charlie_does_not_see_alices_application_or_keys_anywhere(
    client: Any, charlie: Any, charlie_app: Any, alice_app: Any, acme_things: dict[str, Any], echo_api: Any
) -> None:
    client.force_login(charlie)
    for url in ["/dashboard/", "/subscriptions/new/", "/apis/echo/v2/reference/", "/accounts/profile/"]:
        body = client.get(url).content.decode()
        assert "Acme Shop" not in body, url
        assert acme_things["key"].prefix not in body, url


def test_bob_shares_acmes_applications(client: Any, bob: Any, alice_app: Any) -> None:
    client.force_login(bob)
    assert client.get(f"/applications/{alice_app.pk}/").status_code == 200


def test_anonymous_visitors_are_sent_to_log_in(client: Any, alice_app: Any, acme_things: dict[str, Any]) -> None:
    for url, _ in _urls(alice_app, acme_things):
        if url.endswith("/oauth/new/"):
            continue  # POST only
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
