"""An application's IP rules (set by an operator in the admin) reach its gateway record as
an override of its versions' rules; a malformed CIDR is a field error and nothing is saved
or published."""

from __future__ import annotations

import json

import pytest

from gateway import contract
from portal.core.errors import ApplicationError
from portal.gateway_state.models import PublishOutbox
from portal.keys import services as keys
from portal.keys.models import Application


@pytest.mark.django_db
def test_rules_are_published_and_cleared(olivia, alice_app, redis_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        keys.application_update(application=alice_app, actor=olivia, ip_rules={"allow": ["203.0.113.0/24"]})
    record = contract.ApplicationRecord.from_json(redis_client.get(contract.app_key(alice_app.pk)))
    assert record.ip_rules is not None
    assert record.ip_rules.allow == ("203.0.113.0/24",)

    with django_capture_on_commit_callbacks(execute=True):
        keys.application_update(application=alice_app, actor=olivia, ip_rules={})
    assert contract.ApplicationRecord.from_json(redis_client.get(contract.app_key(alice_app.pk))).ip_rules is None


@pytest.mark.django_db
def test_a_malformed_cidr_is_a_field_error(olivia, alice_app):
    PublishOutbox.objects.all().delete()
    with pytest.raises(ApplicationError) as caught:
        keys.application_update(application=alice_app, actor=olivia, ip_rules={"deny": ["10.0.0.0/40"]})
    assert "deny: '10.0.0.0/40' is not an IP address or CIDR" in caught.value.fields["ip_rules"][0]
    assert Application.objects.get(pk=alice_app.pk).ip_rules is None
    assert not PublishOutbox.objects.exists()


@pytest.mark.django_db
def test_the_admin_shows_a_malformed_cidr_as_a_form_error(client, olivia, alice_app):
    client.force_login(olivia)
    response = client.post(
        f"/admin/keys/application/{alice_app.pk}/change/",
        {"name": alice_app.name, "description": "", "ip_rules": json.dumps({"allow": ["not-an-ip"]}),
         "keys-TOTAL_FORMS": "0", "keys-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 200
    assert "is not an IP address or CIDR network" in response.content.decode()
    assert Application.objects.get(pk=alice_app.pk).ip_rules is None
