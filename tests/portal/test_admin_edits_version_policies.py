"""The version admin edits the edge policies as JSON: a good object is saved and published,
a bad one is a form error naming the field, and nothing is saved."""

from __future__ import annotations

import json

import pytest

from portal.catalog.models import ApiVersion
from portal.gateway_state.models import PublishOutbox
from tests.portal.test_admin_edits_methods_and_cors import _change


@pytest.mark.django_db
def test_it_saves_and_publishes_policies(client, olivia, echo_api):
    client.force_login(olivia)
    v2 = echo_api.versions.get(label="v2")
    PublishOutbox.objects.all().delete()
    policies = {"request_transform": {"add_headers": {"X-Example": "1"}}}

    response = client.post(f"/admin/catalog/apiversion/{v2.pk}/change/", _change(v2, policies=json.dumps(policies)))

    assert response.status_code == 302, response.content.decode()[:3000]
    assert ApiVersion.objects.get(pk=v2.pk).policies == policies
    assert PublishOutbox.objects.filter(kind="route").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("policies", "message"),
    [
        ({"ip_rules": {"allow": ["10.1.2.300"]}}, "ip_rules.allow: &#x27;10.1.2.300&#x27; is not an IP address"),
        ({"request_transform": {"remove_headers": ["X-Request-ID"]}}, "one of the gateway&#x27;s own headers"),
        ({"request_validation": "enforce"}, "has no OpenAPI document"),
    ],
)
def test_bad_policies_are_a_form_error(client, olivia, echo_api, policies, message):
    client.force_login(olivia)
    v2 = echo_api.versions.get(label="v2")
    PublishOutbox.objects.all().delete()

    response = client.post(f"/admin/catalog/apiversion/{v2.pk}/change/", _change(v2, policies=json.dumps(policies)))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert ApiVersion.objects.get(pk=v2.pk).policies == {}
    assert not PublishOutbox.objects.exists()


@pytest.mark.django_db
def test_an_empty_field_means_no_policies(client, olivia, echo_api):
    client.force_login(olivia)
    v2 = echo_api.versions.get(label="v2")
    response = client.post(f"/admin/catalog/apiversion/{v2.pk}/change/", _change(v2, policies=""))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert ApiVersion.objects.get(pk=v2.pk).policies == {}
