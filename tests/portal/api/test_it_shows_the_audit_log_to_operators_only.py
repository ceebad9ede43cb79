"""The audit log is read-only, operators only, and filterable."""

from __future__ import annotations

import pytest

from portal.keys import services as keys
from tests.portal.api.conftest import assert_error_shape


@pytest.mark.django_db
@pytest.mark.parametrize("user_name", ["alice", "bob", "charlie"])
def test_it_refuses_the_audit_log_to_developers(request, client_for, user_name):
    client = client_for(request.getfixturevalue(user_name))

    assert_error_shape(client.get("/api/v1/audit/"), 403)
    assert_error_shape(client.get("/api/v1/audit/1/"), 403)


@pytest.mark.django_db
def test_it_filters_the_audit_log_for_operators(client_for, olivia, alice, alice_app, acme):
    key = keys.api_key_issue(application=alice_app, label="ci", actor=alice).key
    keys.api_key_revoke(key=key, actor=alice)
    client = client_for(olivia)

    revoked = client.get("/api/v1/audit/?action=key.revoke").json()["results"]
    assert len(revoked) == 1
    assert revoked[0]["actor_email"] == "alice@acme.test"
    assert revoked[0]["before"]["status"] == "active"
    assert revoked[0]["after"]["status"] == "revoked"
    key_events = client.get("/api/v1/audit/?action_prefix=key.&actor_email=ALICE@acme.test").json()["results"]
    assert [e["action"] for e in key_events] == ["key.revoke", "key.issue"]
    assert client.get(f"/api/v1/audit/?organization={acme.pk}").json()["count"] >= 3
    assert client.get(f"/api/v1/audit/{revoked[0]['id']}/").json()["object_id"] == str(key.pk)
    assert_error_shape(client.get("/api/v1/audit/?created_after=yesterday"), 400)
    assert client.post("/api/v1/audit/", {"action": "forged"}).status_code == 405
