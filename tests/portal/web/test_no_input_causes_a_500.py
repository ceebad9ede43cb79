"""Whatever a browser can submit to a form, the answer is never a server error."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "x" * 5000,
    "é中𝄞",
    "<script>alert(1)</script>",
    "'; DROP TABLE accounts_user; --",
    "-1",
    "0",
    "9" * 40,
    "1.5",
    "2000-13-45",
    "9999-12-31",
    "0001-01-01",
    "../../etc/passwd",
    "%00",
]


def _form_posts(alice_app: Any, key: Any, subscription: Any, membership: Any) -> list[tuple[str, list[str]]]:
    a = alice_app.pk
    return [
        ("/accounts/profile/", ["first_name", "last_name"]),
        ("/organizations/new/", ["name"]),
        ("/organizations/acme/invite/", ["email", "role"]),
        (f"/organizations/acme/members/{membership.pk}/role/", [f"m{membership.pk}-role"]),
        ("/applications/new/", ["organization", "name", "description"]),
        (f"/applications/{a}/edit/", ["name", "description"]),
        (f"/applications/{a}/keys/new/", ["once", "label", "expires_on"]),
        (f"/applications/{a}/keys/{key.pk}/rotate/", ["once", "grace_seconds"]),
        (f"/applications/{a}/oauth/new/", ["once"]),
        ("/subscriptions/new/", ["application", "plan"]),
        (f"/subscriptions/{subscription.pk}/change/", ["plan"]),
    ]


ANONYMOUS_POSTS = [
    ("/accounts/signup/", ["email", "password", "organization_name"]),
    ("/accounts/login/", ["username", "password"]),
    ("/accounts/verify/resend/", ["email"]),
    ("/accounts/password_reset/", ["email"]),
]


@pytest.mark.parametrize("value", NASTY, ids=range(len(NASTY)))
def test_forms_answer_without_a_server_error(
    client: Any, alice: Any, bob: Any, alice_app: Any, free_plan: Any, value: str
) -> None:
    from portal.accounts.models import Membership
    from portal.keys import services as keys
    from portal.plans import services as plans

    key = keys.api_key_issue(application=alice_app, actor=alice).key
    subscription = plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    membership = Membership.objects.get(user=bob)

    for url, fields in ANONYMOUS_POSTS:
        response = client.post(url, dict.fromkeys(fields, value))
        assert response.status_code < 500, (url, value)

    client.force_login(alice)
    for url, fields in _form_posts(alice_app, key, subscription, membership):
        response = client.post(url, dict.fromkeys(fields, value))
        assert response.status_code < 500, (url, value)
    for url, params in [
        ("/", {"q": value, "tag": value}),
        ("/subscriptions/new/", {"plan": value, "application": value}),
    ]:
        assert client.get(url, params).status_code == 200, (url, value)
