"""REDIS_URL's forms (tollway/redis_url.py), read the same way by portal, analytics and
gateway: each parses to the topology it names, a bad one is refused naming the variable
(without echoing the password), and Celery gets a broker URL kombu understands."""

from __future__ import annotations

import ssl

import pytest

from gateway.config import load_config
from gateway.exceptions import ConfigError
from tollway.env import EnvError
from tollway.redis_url import celery_broker, parse_redis_url, redact, redis_target


def test_plain_tcp_with_an_acl_user_and_a_database():
    t = parse_redis_url("redis://tollway:p%40ss@redis.internal:6380/3", env={})
    assert (t.kind, t.hosts, t.db, t.username, t.password, t.tls) == (
        "tcp", (("redis.internal", 6380),), 3, "tollway", "p@ss", False
    )


def test_a_password_alone():
    t = parse_redis_url("redis://:secret@127.0.0.1", env={})
    assert (t.username, t.password, t.port, t.db) == (None, "secret", 6379, 0)


def test_tls_reads_its_files_and_checks_they_exist(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    t = parse_redis_url("rediss://h:6390/1", env={"REDIS_TLS_CA_FILE": str(ca)})
    assert (t.tls, t.tls_ca_file, t.db) == (True, str(ca), 1)
    with pytest.raises(EnvError, match="REDIS_TLS_CA_FILE"):
        parse_redis_url("rediss://h", env={"REDIS_TLS_CA_FILE": str(tmp_path / "missing.pem")})
    with pytest.raises(EnvError, match="REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together"):
        parse_redis_url("rediss://h", env={"REDIS_TLS_CERT_FILE": str(ca)})


def test_unix_socket_with_a_database():
    t = parse_redis_url("unix://:pw@/run/redis/redis.sock?db=2", env={})
    assert (t.kind, t.path, t.db, t.password) == ("unix", "/run/redis/redis.sock", 2, "pw")


def test_sentinel_names_its_sentinels_service_and_database():
    t = parse_redis_url("redis+sentinel://s1:26379,s2,[::1]:26380/mymaster/4", env={})
    assert t.kind == "sentinel"
    assert t.hosts == (("s1", 26379), ("s2", 26379), ("::1", 26380))
    assert (t.service, t.db) == ("mymaster", 4)


def test_cluster_names_its_seed_nodes():
    t = parse_redis_url("rediss+cluster://u:p@n1:7000,n2:7001", env={})
    assert (t.kind, t.hosts, t.tls, t.username) == ("cluster", (("n1", 7000), ("n2", 7001)), True, "u")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "unsupported scheme"),
        ("redis:/h", "is not a URL"),
        ("redis://h:70000", "out of range"),
        ("redis://h:port", "is not a number"),
        ("redis://h/db", "is not a number"),
        ("redis://a:1,b:2", "several hosts"),
        ("unix://", "unix:///path"),
        ("redis+sentinel://s1:26379", "<service>"),
        ("redis+cluster://n1:7000/2", "only database 0"),
    ],
)
def test_bad_urls_are_refused_naming_the_variable(url, message):
    with pytest.raises(EnvError, match=message) as caught:
        parse_redis_url(url, variable="GATEWAY_REDIS_URL", env={})
    assert str(caught.value).startswith("GATEWAY_REDIS_URL=")


def test_errors_and_logs_never_show_the_password():
    with pytest.raises(EnvError) as caught:
        parse_redis_url("redis://user:hunter2-secret@h/notadb", env={})
    assert "hunter2-secret" not in str(caught.value)
    assert redact("rediss://user:hunter2@h:1/0") == "rediss://user:***@h:1/0"


def test_the_gateway_url_overrides_the_shared_one():
    env = {"GATEWAY_REDIS_URL": "redis+cluster://n1:7000", "REDIS_URL": "redis://other:6379/0"}
    assert redis_target(env, names=("GATEWAY_REDIS_URL", "REDIS_URL")).kind == "cluster"
    assert redis_target({"REDIS_URL": "unix:///s.sock"}, names=("GATEWAY_REDIS_URL", "REDIS_URL")).kind == "unix"


def test_the_gateway_refuses_a_bad_url_at_start_up():
    env = {"GATEWAY_KEY_HASH_SECRET": "x" * 32, "GATEWAY_REDIS_URL": "redis+sentinel://s1:26379"}
    with pytest.raises(ConfigError, match="GATEWAY_REDIS_URL"):
        load_config(env)
    config = load_config({"GATEWAY_KEY_HASH_SECRET": "x" * 32, "REDIS_URL": "unix:///run/r.sock?db=1"})
    assert (config.redis.kind, config.redis.db) == ("unix", 1)


def test_celery_broker_for_each_topology(tmp_path):
    assert celery_broker(parse_redis_url("redis://:p@h:6380/2", env={})).url == "redis://:p@h:6380/2"
    sentinel = celery_broker(parse_redis_url("redis+sentinel://:p@s1:26379,s2:26380/mymaster/1", env={}))
    assert sentinel.url == "sentinel://:p@s1:26379/1;sentinel://:p@s2:26380/1"
    assert sentinel.transport_options == {"master_name": "mymaster"}
    assert celery_broker(parse_redis_url("unix:///run/r.sock?db=3", env={})).url == "socket:///run/r.sock?virtual_host=3"
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    tls = celery_broker(parse_redis_url("rediss://h/0", env={"REDIS_TLS_CA_FILE": str(ca)}))
    assert tls.url.startswith("rediss://")
    assert tls.use_ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(ca), "ssl_certfile": None,
                           "ssl_keyfile": None}
    with pytest.raises(EnvError, match="CELERY_BROKER_URL"):
        celery_broker(parse_redis_url("redis+cluster://n1:7000", env={}))
