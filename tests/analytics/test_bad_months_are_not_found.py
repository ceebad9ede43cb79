"""?month= on the billing report and the reconciliation page: anything that is not a
month with an end (a typo, or December 9999) is a 404, never a 500."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/analytics/billing/", "/analytics/reconciliation/"])
@pytest.mark.parametrize("month", ["2026-13", "soon", "9999-12"])
def test_a_bad_month_is_a_404(client, olivia, page, month):
    client.force_login(olivia)
    assert client.get(page, {"month": month}).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/analytics/billing/", "/analytics/reconciliation/"])
def test_a_good_month_is_shown(client, olivia, page):
    client.force_login(olivia)
    assert client.get(page, {"month": "2026-10"}).status_code == 200
