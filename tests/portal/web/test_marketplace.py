from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_it_lists_public_apis_with_latest_version_and_cheapest_plan(client: Any, echo_api: Any) -> None:
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Echo" in body
    assert "Latest: <strong>v2</strong>" in body
    assert "v1 Deprecated" in body
    assert "v2 Published" in body
    assert "<strong>Free plan</strong> available (Free)" in body


def test_it_searches_name_summary_and_tags(client: Any, echo_api: Any) -> None:
    assert "Echo" in client.get("/", {"q": "echoes"}).content.decode()
    assert "Echo" in client.get("/", {"q": "demo"}).content.decode()
    miss = client.get("/", {"q": "weather"}).content.decode()
    assert 'href="/apis/echo/"' not in miss
    assert "No API matches your search." in miss


def test_it_filters_by_tag(client: Any, echo_api: Any) -> None:
    assert 'href="/apis/echo/"' in client.get("/", {"tag": "demo"}).content.decode()
    assert 'href="/apis/echo/"' not in client.get("/", {"tag": "payments"}).content.decode()


def test_it_hides_private_apis_and_drafts(client: Any, olivia: Any) -> None:
    from portal.catalog import services as catalog

    upstreams = [{"url": "http://127.0.0.1:8090"}]
    private = catalog.api_create(actor=olivia, slug="secret", name="Secret", visibility="private")
    catalog.version_create(api=private, label="v1", upstreams=upstreams, actor=olivia)
    draft_only = catalog.api_create(actor=olivia, slug="draft", name="Drafty")
    catalog.version_create(api=draft_only, label="v1", upstreams=upstreams, actor=olivia)
    body = client.get("/").content.decode()
    assert "Secret" not in body
    assert "Drafty" not in body
    assert client.get("/apis/secret/").status_code == 404


@pytest.mark.parametrize("query", ["%", "_", "'; drop table", "\x00", "é" * 500, '"demo"'])
def test_it_survives_odd_search_input(client: Any, echo_api: Any, query: str) -> None:
    assert client.get("/", {"q": query, "tag": query}).status_code == 200


def test_the_card_shows_the_cheapest_paid_plan_when_there_is_no_free_one(
    client: Any, echo_api: Any, free_plan: Any, olivia: Any
) -> None:
    from portal.plans import services

    services.plan_update(plan=free_plan, actor=olivia, is_active=False)
    body = client.get("/").content.decode()
    assert "From <strong>49.00 EUR</strong> / month (Pro)" in body
