"""The admin's "set override" action opens its own form page: bad values are field
errors on that page (never "No action selected"), and blank fields are errors, not x2
for 7 days."""

from __future__ import annotations

import pytest

from portal.plans import services as plans
from portal.plans.models import Override

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/plans/subscription/"


@pytest.fixture
def subscription(alice, alice_app, free_plan):
    return plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)


def _post(client, subscription, **fields):
    return client.post(CHANGELIST, {"action": "subscriptions_set_override", "_selected_action": [subscription.pk],
                                    **fields})


def test_the_action_opens_a_form_page(client, olivia, subscription):
    client.force_login(olivia)
    response = client.post(CHANGELIST, {"action": "subscriptions_set_override", "_selected_action": [subscription.pk],
                                        "index": "0"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Multiply the plan&#x27;s limits by" in html
    assert f'name="_selected_action" value="{subscription.pk}"' in html
    assert not Override.objects.exists()


@pytest.mark.parametrize(("factor", "days", "field", "message"), [
    ("-5", "7", "factor", "greater than or equal to 0.1"),
    ("1e9", "7", "factor", "less than or equal to 1000"),
    ("0.01", "7", "factor", "greater than or equal to 0.1"),
    ("2", "0", "days", "greater than or equal to 1"),
    ("2", "400", "days", "less than or equal to 365"),
    ("", "7", "factor", "This field is required."),
    ("2", "", "days", "This field is required."),
])
def test_bad_values_are_field_errors_on_the_form_page(client, olivia, subscription, factor, days, field, message):
    client.force_login(olivia)
    response = _post(client, subscription, factor=factor, days=days, apply="Set override")
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "No action selected" not in html
    assert response.context["form"].errors[field]
    assert not Override.objects.exists()  # nothing applied, nothing assumed


def test_good_values_set_the_override(client, olivia, subscription, free_plan):
    client.force_login(olivia)
    response = _post(client, subscription, factor="3", days="10", reason="Launch week", apply="Set override")
    assert response.status_code == 302
    override = Override.objects.get()
    assert override.quota_per_day == free_plan.quota_per_day * 3
    assert override.reason == "×3 for 10 days (Launch week)"
