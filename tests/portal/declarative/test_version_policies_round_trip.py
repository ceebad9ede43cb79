"""A version's edge policies in the configuration file: the sync sets and publishes them,
the dump writes them back (a dump syncs to zero changes), and bad policies name the file,
the line and the field, and change nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from gateway import contract
from portal.declarative.selectors import config_diff, config_dump
from portal.declarative.services import ConfigError, config_sync
from tests.portal.declarative.conftest import load, version_entry

POLICIES = {
    "request_transform": {"add_headers": {"X-Caller": "$(application_id)"}, "remove_query": ["debug"]},
    "ip_rules": {"deny": ["198.51.100.0/24"]},
}


@pytest.mark.django_db
def test_a_file_sets_policies_the_gateway_reads_and_a_dump_writes_them_back(
    olivia, echo_api, dumped, redis_client, django_capture_on_commit_callbacks
):
    path = dumped(lambda d: version_entry(d, "echo", "v2").update(policies=POLICIES))
    assert next(str(c) for c in config_diff(document=load(path))).startswith("version echo v2: policies {} -> ")

    with django_capture_on_commit_callbacks(execute=True):
        call_command("config", "sync", str(path), "--actor", olivia.email)

    raw = redis_client.hget(contract.ROUTES_KEY, contract.route_field("echo", "v2"))
    route = contract.RouteRecord.from_json(raw)
    assert route.policies.request_transform is not None
    assert route.policies.request_transform.add_headers == {"X-Caller": "$(application_id)"}
    assert route.policies.ip_rules is not None
    assert route.policies.ip_rules.deny == ("198.51.100.0/24",)
    assert version_entry(config_dump(), "echo", "v2")["policies"] == POLICIES
    assert config_diff(document=load(dumped())) == []


@pytest.mark.django_db
def test_bad_policies_name_the_field_and_change_nothing(olivia, echo_api, dumped):
    bad = {"request_transform": {"set_headers": {"Transfer-Encoding": "chunked"}}}
    path = dumped(lambda d: version_entry(d, "echo", "v2").update(policies=bad))
    before = config_dump()

    with pytest.raises(ConfigError) as caught:
        config_sync(document=load(path), actor=olivia)

    assert "request_transform.set_headers.Transfer-Encoding: Transfer-Encoding is a hop-by-hop header" in (
        caught.value.message
    )
    assert config_dump() == before
