"""No full API key, OAuth client secret or access token appears in a database dump,
in Redis, or in the logs; the gateway finds tokens by their SHA-256 alone."""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging

import pytest
from django.core.management import call_command

from gateway import contract
from portal.gateway_state import publish
from portal.keys import services as keys


def _redis_dump(redis_client) -> str:
    parts = []
    for raw in redis_client.scan_iter(match="*"):
        kind = redis_client.type(raw).decode()
        if kind == "string":
            parts.append(raw.decode() + "=" + (redis_client.get(raw) or b"").decode(errors="replace"))
        elif kind == "hash":
            parts.append(raw.decode() + "=" + str(redis_client.hgetall(raw)))
        else:
            parts.append(raw.decode())
    return "\n".join(parts)


@pytest.mark.django_db(transaction=True)
def test_it_keeps_no_secret_in_db_redis_or_logs(alice, alice_app, redis_client, client, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = []
    issued = keys.api_key_issue(application=alice_app, label="one", actor=alice)
    secrets.append(issued.secret)
    secrets.append(keys.api_key_rotate(key=issued.key, grace=dt.timedelta(hours=1), actor=alice).secret)
    oauth = keys.oauth_client_create(application=alice_app, actor=alice)
    secrets.append(oauth.client_secret)
    basic = base64.b64encode(f"{oauth.client_id}:{oauth.client_secret}".encode()).decode()
    response = client.post(
        "/o/token/", {"grant_type": "client_credentials", "scope": "read"}, HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    secrets.append(token)
    publish.outbox_flush()

    db_dump = io.StringIO()
    call_command("dumpdata", stdout=db_dump)
    haystacks = {"database": db_dump.getvalue(), "redis": _redis_dump(redis_client), "logs": caplog.text}

    assert len(db_dump.getvalue()) > 1000  # the dump really holds the data
    for where, text in haystacks.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into the {where}"
    # ...yet the gateway can find the token by its hash and the keys by their HMAC.
    record = contract.TokenRecord.from_json(redis_client.get(contract.token_key(contract.token_hash(token))))
    assert record.application_id == alice_app.pk
    assert redis_client.get(contract.key_key(keys.key_hash(secrets[1]))) is not None
