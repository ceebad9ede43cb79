"""The application page shows quota use from the rollups and links to the usage charts."""

from __future__ import annotations

import pytest

from portal.plans import services as plans


@pytest.mark.django_db
def test_it_shows_quota_use_and_links_to_the_usage_page(client, alice, alice_app, free_plan):
    plans.subscription_create(application=alice_app, plan=free_plan, actor=alice)
    client.force_login(alice)

    page = client.get(f"/applications/{alice_app.pk}/").content.decode()

    assert "Quota use" in page
    assert "0 of 1,000" in page
    assert f"/analytics/usage/?application={alice_app.pk}" in page


@pytest.mark.django_db
def test_it_puts_usage_and_invoices_in_the_header_but_billing_only_for_finance(client, alice, olivia):
    client.force_login(alice)
    developer_page = client.get("/dashboard/").content.decode()
    client.force_login(olivia)
    operator_page = client.get("/dashboard/").content.decode()

    assert "/analytics/usage/" in developer_page
    assert "/invoices/" in developer_page
    assert "/analytics/billing/" not in developer_page
    assert "/analytics/billing/" in operator_page
