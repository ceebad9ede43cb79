"""Every kind of bad input names the file and the YAML line, and changes nothing."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from portal.catalog import services as catalog
from portal.declarative.selectors import config_dump
from portal.declarative.services import ConfigError, config_sync
from tests.portal.declarative.conftest import line_of, load, plan_entry, version_entry


def _refused(path, olivia) -> str:
    before = config_dump()
    with pytest.raises(ConfigError) as caught:
        config_sync(document=load(path), actor=olivia)
    assert config_dump() == before
    return caught.value.message


@pytest.mark.django_db
def test_a_schema_error(olivia, echo_api, dumped):
    path = dumped(lambda d: plan_entry(d, "echo", "pro").update(quota_per_month="lots"))
    line = line_of(path.read_text(), "quota_per_month: lots")

    message = _refused(path, olivia)

    assert message.startswith(f"{path}:{line}: plans[1].quota_per_month: 'lots' is not of type")


@pytest.mark.django_db
def test_an_unknown_field(olivia, echo_api, dumped):
    path = dumped(lambda d: version_entry(d, "echo", "v2").update(timeout=3))
    line = line_of(path.read_text(), "label: v2")

    message = _refused(path, olivia)

    assert message.startswith(f"{path}:{line}: apis[0].versions[1]: unknown field(s) ('timeout' was unexpected)")


@pytest.mark.django_db
def test_a_plan_naming_an_unknown_api(olivia, echo_api, dumped):
    path = dumped(lambda d: plan_entry(d, "echo", "pro").update(api="nope"))
    line = line_of(path.read_text(), "api: nope")

    message = _refused(path, olivia)

    assert message == f"{path}:{line}: plans[1].api: unknown API 'nope': neither in this file nor in the portal"


@pytest.mark.django_db
def test_an_override_naming_an_unknown_subscription(olivia, echo_api, dumped):
    override = {"subscription": 999999, "expires_at": "2999-01-01T00:00:00Z", "quota_per_day": 10}
    path = dumped(lambda d: d["overrides"].append(override))
    line = line_of(path.read_text(), "subscription: 999999")

    message = _refused(path, olivia)

    assert message == f"{path}:{line}: overrides[0].subscription: unknown subscription 999999"


@pytest.mark.django_db
def test_a_lifecycle_transition_that_is_not_allowed(olivia, echo_api, dumped):
    v1 = echo_api.versions.get(label="v1")
    catalog.version_transition(version=v1, to_state="retired", actor=olivia)
    path = dumped(lambda d: version_entry(d, "echo", "v1").update(state="published"))
    line = line_of(path.read_text(), "state: published", after="label: v1")

    message = _refused(path, olivia)

    assert message == f"{path}:{line}: apis[0].versions[0].state: cannot go from retired to published"


@pytest.mark.django_db
def test_publishing_again_with_a_sunset_date_left_in_the_file(olivia, echo_api, dumped):
    # Publishing clears the sunset date, so the file would disagree with the portal on
    # every later diff: the file must say what the portal will hold.
    path = dumped(lambda d: version_entry(d, "echo", "v1").update(state="published", sunset_at="2999-01-01T00:00:00Z"))
    line = line_of(path.read_text(), "sunset_at:", after="label: v1")

    message = _refused(path, olivia)

    assert message.startswith(
        f"{path}:{line}: apis[0].versions[0].sunset_at: a version that becomes published has no sunset date"
    )


@pytest.mark.django_db
def test_broken_yaml(olivia, echo_api, written):
    path = written("format_version: 1\napis:\n  - slug: echo\n    name: [unclosed\n")

    message = _refused(path, olivia)

    assert message.startswith(f"{path}:5: not valid YAML")


@pytest.mark.django_db
def test_the_command_says_it_without_a_traceback(olivia, echo_api, dumped):
    path = dumped(lambda d: plan_entry(d, "echo", "pro").update(api="nope"))

    with pytest.raises(CommandError, match=r"tollway\.yaml:\d+: plans\[1\].api: unknown API 'nope'"):
        call_command("config", "sync", str(path), "--actor", olivia.email)


@pytest.mark.django_db
def test_the_command_refuses_an_actor_who_is_not_an_operator(alice, echo_api, dumped):
    with pytest.raises(CommandError, match=r"alice@acme\.test is not an operator"):
        call_command("config", "sync", str(dumped()), "--actor", alice.email)


@pytest.mark.django_db
def test_a_date_that_is_not_on_the_calendar(olivia, echo_api, written):
    # Quoted, the schema's date-time format refuses it at its line; unquoted, YAML itself
    # cannot build it. Neither may become a 500.
    quoted = written(
        "format_version: 1\napis:\n  - slug: echo\n    name: Echo\n    versions:\n      - label: v1\n"
        "        upstreams: [{url: 'http://127.0.0.1:9/'}]\n        sunset_at: '2027-02-30T00:00:00Z'\n"
    )
    assert _refused(quoted, olivia).startswith(f"{quoted}:8: apis[0].versions[0].sunset_at:")

    unquoted = written(quoted.read_text().replace("'2027-02-30T00:00:00Z'", "2027-02-30T00:00:00Z"))
    assert _refused(unquoted, olivia).startswith(f"{unquoted}:1: not a valid date")


@pytest.mark.django_db
def test_unprintable_characters(olivia, echo_api, written):
    path = written("format_version: 1\napis: []\n# \u0083\n")

    assert _refused(path, olivia).startswith(f"{path}:")
