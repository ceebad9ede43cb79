"""?month= on the billing report and the reconciliation page: anything that is not a
month with an end (a typo, or December 9999) is a 400 with the error beside the field
(or a JSON error for an export), never a 404 or a 500."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/analytics/billing/", "/analytics/reconciliation/"])
@pytest.mark.parametrize("month", ["2026-13", "abc", "9999-12"])
def test_a_bad_month_is_a_form_error(client, olivia, page, month):
    client.force_login(olivia)
    response = client.get(page, {"month": month})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Give a month as YYYY-MM" in html
    assert 'aria-invalid="true"' in html
    assert f'value="{month}"' in html  # what was typed stays, to be corrected


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_bad_month_in_an_export_is_a_json_error(client, olivia, fmt):
    client.force_login(olivia)
    response = client.get("/analytics/billing/", {"month": "abc", "format": fmt})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["month"] == ["Give a month as YYYY-MM, e.g. 2026-10."]


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/analytics/billing/", "/analytics/reconciliation/"])
def test_a_good_month_is_shown(client, olivia, page):
    client.force_login(olivia)
    assert client.get(page, {"month": "2026-10"}).status_code == 200
    assert client.get(page).status_code == 200
