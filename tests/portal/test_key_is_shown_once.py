"""A key's secret exists only in the value returned at issue time."""

from __future__ import annotations

import pytest

from gateway import contract
from portal.keys import services as keys
from portal.keys.models import ApiKey


@pytest.mark.django_db
def test_it_returns_a_well_formed_secret_once(alice, alice_app):
    issued = keys.api_key_issue(application=alice_app, label="ci", actor=alice)

    assert contract.key_is_well_formed(issued.secret)
    assert issued.key.prefix == issued.secret[: len(issued.key.prefix)]
    stored = ApiKey.objects.get(pk=issued.key.pk)
    assert issued.secret not in {getattr(stored, f.attname) for f in ApiKey._meta.concrete_fields}
    assert stored.key_hash == contract.key_hash(issued.secret, b"test-key-hash-secret-0123456789")


@pytest.mark.django_db
def test_it_rejects_a_key_with_a_bad_checksum(alice, alice_app):
    secret = keys.api_key_issue(application=alice_app, actor=alice).secret
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")

    assert not contract.key_is_well_formed(tampered)
