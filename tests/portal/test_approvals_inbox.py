"""One approvals inbox for pending subscriptions and pending plan changes; its count
shows on the admin index and the operators' dashboard. The admin names developer
applications and OAuth clients so that nobody confuses the two."""

from __future__ import annotations

import pytest

from portal.plans import services as plans
from portal.plans.models import SubscriptionStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_requests(alice, alice_app, charlie, charlie_app, free_plan, pro_plan):
    new = plans.subscription_create(application=alice_app, plan=pro_plan, actor=alice)  # pending
    change = plans.subscription_create(application=charlie_app, plan=free_plan, actor=charlie)  # active at once
    change = plans.subscription_change_plan(subscription=change, plan=pro_plan, actor=charlie)  # Free -> Pro waits
    return new, change


def test_the_inbox_holds_new_subscriptions_and_plan_changes(client, olivia, two_requests):
    _new, change = two_requests
    assert change.status == SubscriptionStatus.ACTIVE
    assert change.requested_plan_id is not None
    client.force_login(olivia)
    html = client.get("/admin/plans/approval/").content.decode()
    assert "New subscription to Pro" in html
    assert "Plan change Free → Pro" in html
    filtered = client.get("/admin/plans/subscription/", {"awaiting": "yes"}).content.decode()
    assert "Acme Shop" in filtered
    assert "2 subscriptions" in filtered


def test_approving_from_the_inbox_empties_it(client, olivia, two_requests, pro_plan):
    new, change = two_requests
    client.force_login(olivia)
    response = client.post("/admin/plans/approval/", {"action": "approvals_approve", "index": "0",
                                                      "_selected_action": [new.pk, change.pk]})
    assert response.status_code == 302
    new.refresh_from_db()
    change.refresh_from_db()
    assert new.status == SubscriptionStatus.ACTIVE
    assert (change.plan_id, change.requested_plan_id) == (pro_plan.pk, None)
    assert "<strong>0</strong> requests awaiting approval" in client.get("/admin/").content.decode()


def test_the_count_shows_on_the_admin_index_and_the_dashboard(client, olivia, two_requests):
    client.force_login(olivia)
    index = client.get("/admin/").content.decode()
    assert "<strong>2</strong> requests awaiting approval" in index
    dashboard = client.get("/analytics/").content.decode()
    assert "<strong>2</strong> requests awaiting approval" in dashboard


def test_the_admin_tells_developer_applications_from_oauth_clients(client, olivia):
    client.force_login(olivia)
    index = client.get("/admin/").content.decode()
    assert ">Developer applications<" in index
    assert ">OAuth clients (of developer applications)<" in index
    assert ">Applications<" not in index
    assert client.get("/admin/keys/oauthclient/").status_code == 200
