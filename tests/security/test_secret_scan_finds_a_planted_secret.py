"""The secret scan (tests/security/secret_scan.py) can fail: a secret planted in the
database, in Redis (string, hash, stream), in a log record or in a file is found, and
the recorders really see what the portal issues. Plants go into a ledger of their own,
so the run-wide scan does not count them."""

from __future__ import annotations

import base64
import logging
import os
import secrets

import pytest

from portal.core.logging import RedactSecrets
from tests.security import secret_scan
from tests.security.secret_scan import LEDGER, LogCapture, SecretLedger

pytestmark = pytest.mark.django_db


@pytest.fixture
def planted():
    ledger = SecretLedger()
    secret = "planted-" + secrets.token_urlsafe(24)
    ledger.record("planted secret", secret)
    return ledger, secret


def test_it_finds_a_secret_in_the_database(planted, alice_app):
    ledger, secret = planted
    alice_app.description = f"notes: {secret}"
    alice_app.save()

    assert [f.where for f in ledger.search("db", secret_scan.database_dump())] == ["db"]


def test_it_finds_a_secret_in_every_redis_type(planted, redis_client):
    ledger, secret = planted
    url = os.environ["REDIS_URL"]
    for plant in (lambda: redis_client.set("a", secret), lambda: redis_client.hset("b", "f", secret),
                  lambda: redis_client.xadd("c", {"f": secret}), lambda: redis_client.rpush("d", secret),
                  lambda: redis_client.sadd("e", secret), lambda: redis_client.zadd("g", {secret: 1})):
        redis_client.flushdb()
        assert ledger.search("redis", secret_scan.redis_server_dump(url)) == []
        plant()
        assert len(ledger.search("redis", secret_scan.redis_server_dump(url))) == 1


def test_it_finds_a_secret_in_a_log_record_unless_redaction_removed_it(planted):
    ledger, secret = planted
    key = "tw_" + "a1B2" * 8 + "Zz09Yy"
    ledger.record("key-shaped secret", key)
    like = logging.StreamHandler()
    like.addFilter(RedactSecrets())
    capture = LogCapture(ledger, like)
    logger = logging.getLogger("tollway.test.secret_scan")
    logger.addHandler(capture)
    try:
        logger.warning("a careless line with %s and key=%s", secret, key)
    finally:
        logger.removeHandler(capture)

    found = ledger.search("logs", "\n".join(ledger.log_lines))
    assert [f.secret_kind for f in found] == ["planted secret"]  # the key shape was redacted


def test_it_finds_a_secret_in_a_file(planted, tmp_path):
    ledger, secret = planted
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "gateway.log").write_text(f"GET /x?token={secret}\n")

    hits = [ledger.search(str(path), text) for path, text in secret_scan.files_under(tmp_path)]
    assert sum(len(h) for h in hits) == 1


def test_it_finds_a_secret_between_runs_of_nuls_in_a_preallocated_file(planted, tmp_path):
    # A metering journal's shape: lines, then zeros to its preallocated size; a torn store
    # can leave a line whose first byte is still NUL. Both places are searched.
    ledger, secret = planted
    head = b"A 1 {}\n" + b"\0" + f"A 2 {secret}\n".encode()
    (tmp_path / "journal-0").write_bytes(head + b"\0" * (1 << 20))
    (tmp_path / "journal-1").write_bytes(b"\0" * (1 << 20))

    texts = dict(secret_scan.files_under(tmp_path))
    hits = [ledger.search(str(path), text) for path, text in texts.items()]
    assert sum(len(h) for h in hits) == 1
    assert texts[tmp_path / "journal-0"].endswith(f"A 2 {secret}\n")  # the zeros are not searched
    assert texts[tmp_path / "journal-1"] == ""


def test_the_recorders_see_issued_keys_client_secrets_and_tokens(client, alice, alice_app):
    from portal.keys import services as keys

    issued = keys.api_key_issue(application=alice_app, label="recorded", actor=alice)
    oauth = keys.oauth_client_create(application=alice_app, actor=alice)
    basic = base64.b64encode(f"{oauth.client_id}:{oauth.client_secret}".encode()).decode()
    token = client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}")

    assert token.status_code == 200
    recorded = {secret: kind for secret, (kind, _) in LEDGER.secrets.items()}
    assert recorded[issued.secret] == "API key"
    assert recorded[oauth.client_secret] == "OAuth2 client secret"
    assert recorded[token.json()["access_token"]] == "OAuth2 token"


def test_the_run_wide_log_capture_is_attached_to_every_test():
    """Even after something reconfigured logging (django.setup() at collection replaces
    the root handlers), the capture is back on the root logger for each test."""
    from tests.security.secret_scan import CAPTURE

    marker = "capture-check-" + secrets.token_hex(8)
    logging.getLogger("portal.test").warning(marker)

    assert CAPTURE[0] in logging.getLogger().handlers
    assert any(marker in line for line in LEDGER.log_lines)
