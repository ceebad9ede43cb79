"""Config: GATEWAY_* settings are checked at start-up and a bad value stops the gateway
with a message naming it; the key hash secret falls back like the portal's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.config import load_config
from gateway.exceptions import ConfigError
from tests.gateway.conftest import ROOT


@pytest.mark.parametrize(
    ("name", "value"),
    [("GATEWAY_PORT", "eighty"), ("GATEWAY_WORKERS", "0"), ("GATEWAY_POLICIES", "key_auth,teleport"),
     ("GATEWAY_TRUSTED_PROXIES", "not-an-ip"), ("GATEWAY_REDIS_URL", "http://x"),
     ("GATEWAY_UPSTREAM_HEADERS", "shoe_size"), ("GATEWAY_MAX_URI_BYTES", "999999"),
     ("GATEWAY_FIRST_BYTE_TIMEOUT_S", "0"), ("GATEWAY_BODY_MIN_RATE_BPS", "-1"),
     ("GATEWAY_SERVER_HEADER", "Tollway\u00e9")],
)
def test_a_bad_value_is_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({"GATEWAY_KEY_HASH_SECRET": "s", name: value})


def test_the_process_exits_with_the_message():
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_PORT": "eighty", "GATEWAY_KEY_HASH_SECRET": "s"}
    done = subprocess.run([sys.executable, "-m", "gateway"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2
    assert "GATEWAY_PORT" in done.stderr


def test_key_hash_secret_falls_back_like_the_portal(tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text("from-a-file\n")
    assert load_config({"GATEWAY_KEY_HASH_SECRET": "a", "TOLLWAY_KEY_HASH_SECRET": "b"}).key_hash_secret == b"a"
    assert load_config({"TOLLWAY_KEY_HASH_SECRET": "b", "SECRET_KEY": "c"}).key_hash_secret == b"b"
    assert load_config({"SECRET_KEY": "c"}).key_hash_secret == b"c"
    assert load_config({"SECRET_KEY_FILE": str(secret_file)}).key_hash_secret == b"from-a-file"
    assert load_config({"DEBUG": "1"}).key_hash_secret == b"insecure-dev-only-" + b"x" * 40
    with pytest.raises(ConfigError, match="GATEWAY_KEY_HASH_SECRET"):
        load_config({})


def test_redis_url_falls_back_to_redis_url_then_localhost():
    assert load_config({"SECRET_KEY": "s", "REDIS_URL": "redis://r:1/2"}).redis_url == "redis://r:1/2"
    assert load_config({"SECRET_KEY": "s"}).redis_url == "redis://127.0.0.1:6379/0"
    assert load_config({"SECRET_KEY": "s"}).port == 8080


def test_metering_waits_for_a_replica_on_sentinel_by_default():
    from gateway.policies.metering.schema import MeteringSettings

    def metering(**env: str) -> MeteringSettings:
        env = {"SECRET_KEY": "s", **env}
        return MeteringSettings.from_env(env, load_config(env))

    sentinel = "redis+sentinel://127.0.0.1:26379/tollway/0"
    assert metering(REDIS_URL=sentinel).wait_replicas == 1
    assert metering(REDIS_URL="redis://r:1/2").wait_replicas == 0
    assert metering(REDIS_URL=sentinel, GATEWAY_METERING_WAIT_REPLICAS="0").wait_replicas == 0
    assert metering(GATEWAY_METERING_WAIT_REPLICAS="2").wait_replicas == 2
    # Within the handle's own timeout (GATEWAY_REDIS_TIMEOUT_MS), which would cut WAIT off first.
    assert metering(GATEWAY_REDIS_TIMEOUT_MS="400").wait_ms == 200
    with pytest.raises(ConfigError, match="GATEWAY_METERING_WAIT_REPLICAS"):
        metering(GATEWAY_METERING_WAIT_REPLICAS="-1")
