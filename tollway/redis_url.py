"""One Redis configuration for every process: REDIS_URL parsed once, clients made here.

The portal's publisher, the Django cache, analytics and the gateway all read the same
``REDIS_URL`` (the gateway lets ``GATEWAY_REDIS_URL`` override it) in one of these forms:

* ``redis://[user:password@]host[:port][/db]``
* ``rediss://…``: TLS. ``REDIS_TLS_CA_FILE`` (the CA that signed the server's
  certificate; the system's CAs when unset), ``REDIS_TLS_CERT_FILE`` and
  ``REDIS_TLS_KEY_FILE`` (a client certificate, when the server asks for one). The
  server's hostname is always verified.
* ``unix://[user:password@]/path/to/redis.sock[?db=N]``
* ``redis+sentinel://[user:password@]h1:26379,h2:26379/<service>[/<db>]``: the master of
  ``service`` as Sentinel names it, found again after every reconnection (a failover).
  ``rediss+sentinel://`` speaks TLS to the sentinels and the master. The credentials are
  the data nodes'; sentinels that need their own are given with
  ``REDIS_SENTINEL_USERNAME`` / ``REDIS_SENTINEL_PASSWORD``.
* ``redis+cluster://[user:password@]h1:7000,h2:7001``: a Redis Cluster, given by some of
  its nodes (the others are discovered). ``rediss+cluster://`` for TLS. A cluster has
  one database, 0.

Bad URLs raise ``EnvError`` naming the variable, so every process refuses them at
start-up the same way (the gateway exits 2, the portal raises ImproperlyConfigured).

Plain Python, no Django: the gateway imports it too. The factories here make redis-py
clients (sync for the portal and analytics, asyncio for the gateway's pub/sub); the
gateway's request path has its own handle built on the same ``RedisTarget``
(gateway/redis_mux.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from tollway.env import EnvError, read

Kind = Literal["tcp", "unix", "sentinel", "cluster"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
# What "Redis is unavailable" looks like from redis-py, whatever the topology: a cluster
# none of whose nodes answers raises RedisClusterException, which is not a RedisError.
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)
# The same, for code that waits for Redis to come up (a refused connection, nothing more).
REDIS_UNREACHABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisClusterException)
URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://", "redis+cluster://",
               "rediss+cluster://")


@dataclass(frozen=True)
class RedisTarget:
    """Where Redis is and how to log in, whatever the topology."""

    kind: Kind
    variable: str  # the setting it came from, for error messages
    url: str
    hosts: tuple[tuple[str, int], ...] = ()  # tcp: one; sentinel: the sentinels; cluster: seed nodes
    path: str = ""  # unix socket
    db: int = 0
    username: str | None = None
    password: str | None = None
    service: str = ""  # sentinel: the master's name
    tls: bool = False
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    @property
    def host(self) -> str:
        return self.hosts[0][0]

    @property
    def port(self) -> int:
        return self.hosts[0][1]

    def describe(self) -> str:
        """The URL without its password, for logs."""
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` with its password replaced by ***, for messages and logs."""
    return re.sub(r"(://[^/?@]*?:)[^/?]*@", r"\1***@", url, count=1)


def _hosts(netloc: str, default_port: int, raw: str, variable: str) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for item in netloc.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [::1]:6379
            host, _, rest = item[1:].partition("]")
            port_text = rest.lstrip(":")
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise EnvError(f"{variable}={raw!r}: a host is missing")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError as exc:
            raise EnvError(f"{variable}={raw!r}: port {port_text!r} is not a number") from exc
        if not 0 < port < 65536:
            raise EnvError(f"{variable}={raw!r}: port {port} is out of range")
        hosts.append((host, port))
    if not hosts:
        raise EnvError(f"{variable}={raw!r}: no host given")
    return tuple(hosts)


def _db(text: str, raw: str, variable: str) -> int:
    try:
        db = int(text) if text else 0
    except ValueError as exc:
        raise EnvError(f"{variable}={raw!r}: database {text!r} is not a number") from exc
    if db < 0:
        raise EnvError(f"{variable}={raw!r}: database must be 0 or more")
    return db


def _tls_file(name: str, env: Mapping[str, str]) -> str | None:
    path = read(name, env)
    if path is not None and not os.path.isfile(path):
        raise EnvError(f"{name}={path!r}: no such file")
    return path


def parse_redis_url(url: str, *, variable: str = "REDIS_URL", env: Mapping[str, str] | None = None) -> RedisTarget:
    """Parse one of the forms above; ``EnvError`` names ``variable`` if it is not one."""
    env = os.environ if env is None else env
    raw = url.strip()
    shown = redact(raw)
    scheme, sep, rest = raw.partition("://")
    if not sep:
        raise EnvError(f"{variable}={shown!r} is not a URL (expected e.g. redis://host:6379/0)")
    scheme = scheme.lower()
    # Credentials end at the last "@" (a password may hold "@" if percent-encoded or not).
    at = rest.partition("?")[0].rfind("@")
    userinfo, hostpart = (rest[:at], rest[at + 1:]) if at >= 0 else ("", rest)
    username: str | None = None
    password: str | None = None
    if userinfo:
        user_text, colon, pass_text = userinfo.partition(":")
        if colon:
            username, password = unquote(user_text) or None, unquote(pass_text)
        else:
            password = unquote(user_text)  # redis://secret@host: a password alone
    netloc, _, path_and_query = hostpart.partition("/")
    path_text, _, query_text = path_and_query.partition("?")
    if "?" in netloc:
        netloc, _, query_text = netloc.partition("?")
    query = parse_qs(query_text)
    tls = scheme in ("rediss", "rediss+sentinel", "rediss+cluster")
    common: dict[str, Any] = {"variable": variable, "url": raw, "username": username, "password": password, "tls": tls}
    if tls:
        common.update(
            tls_ca_file=_tls_file("REDIS_TLS_CA_FILE", env),
            tls_cert_file=_tls_file("REDIS_TLS_CERT_FILE", env),
            tls_key_file=_tls_file("REDIS_TLS_KEY_FILE", env),
        )
        if (common["tls_cert_file"] is None) != (common["tls_key_file"] is None):
            raise EnvError("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together: set both or neither")
    if scheme in ("redis", "rediss"):
        hosts = _hosts(netloc, 6379, shown, variable)
        if len(hosts) > 1:
            raise EnvError(f"{variable}={shown!r}: several hosts need redis+sentinel:// or redis+cluster://")
        db = _db(path_text.strip("/") or (query.get("db") or [""])[0], shown, variable)
        return RedisTarget(kind="tcp", hosts=hosts, db=db, **common)
    if scheme == "unix":
        # unix:///run/redis.sock: the path is what follows the empty authority.
        path = "/" + path_and_query.partition("?")[0] if not netloc else ""
        if not path or path == "/":
            raise EnvError(f"{variable}={shown!r}: expected unix:///path/to/redis.sock[?db=N]")
        return RedisTarget(kind="unix", path=path, db=_db((query.get("db") or [""])[0], shown, variable), **common)
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        hosts = _hosts(netloc, 26379, shown, variable)
        parts = [p for p in path_text.split("/") if p]
        if not parts or len(parts) > 2:
            raise EnvError(f"{variable}={shown!r}: expected redis+sentinel://h1:26379,h2:26379/<service>/<db>")
        return RedisTarget(
            kind="sentinel",
            hosts=hosts,
            service=unquote(parts[0]),
            db=_db(parts[1] if len(parts) > 1 else "", shown, variable),
            sentinel_username=read("REDIS_SENTINEL_USERNAME", env),
            sentinel_password=read("REDIS_SENTINEL_PASSWORD", env),
            **common,
        )
    if scheme in ("redis+cluster", "rediss+cluster"):
        hosts = _hosts(netloc, 6379, shown, variable)
        if path_text.strip("/") not in ("", "0"):
            raise EnvError(f"{variable}={shown!r}: a Redis Cluster has only database 0")
        return RedisTarget(kind="cluster", hosts=hosts, **common)
    raise EnvError(
        f"{variable}={shown!r}: unsupported scheme {scheme!r} (use redis://, rediss://, unix://, "
        "redis+sentinel:// or redis+cluster://)"
    )


def redis_target(
    env: Mapping[str, str] | None = None, *, names: tuple[str, ...] = ("REDIS_URL",), default: str = DEFAULT_URL
) -> RedisTarget:
    """The first of ``names`` that is set (e.g. GATEWAY_REDIS_URL, then REDIS_URL), parsed."""
    env = os.environ if env is None else env
    for name in names:
        value = read(name, env)
        if value:
            return parse_redis_url(value, variable=name, env=env)
    return parse_redis_url(default, variable=names[-1], env=env)


def ssl_context(target: RedisTarget) -> ssl.SSLContext:
    """A client TLS context: the configured CA (or the system's), hostname verified.
    A CA or key file that cannot be loaded raises EnvError naming its variable."""
    context = ssl.create_default_context()
    if target.tls_ca_file:
        try:
            context.load_verify_locations(cafile=target.tls_ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise EnvError(f"REDIS_TLS_CA_FILE={target.tls_ca_file!r} is not a readable PEM CA: {exc}") from exc
    if target.tls_cert_file and target.tls_key_file:
        try:
            context.load_cert_chain(target.tls_cert_file, target.tls_key_file)
        except (ssl.SSLError, OSError) as exc:
            raise EnvError(
                f"REDIS_TLS_CERT_FILE/REDIS_TLS_KEY_FILE ({target.tls_cert_file!r}, {target.tls_key_file!r}) "
                f"cannot be loaded: {exc}"
            ) from exc
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def is_certificate_error(exc: BaseException) -> bool:
    """True if ``exc`` (or what it wraps) is a failed certificate check: a configuration
    error that no retry can fix, unlike a server that is down."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current) or "certificate verify failed" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def certificate_error_message(target: RedisTarget, exc: BaseException) -> str:
    return (
        f"REDIS_TLS_CA_FILE={target.tls_ca_file or '(system CAs)'!r}: the certificate of Redis at "
        f"{target.describe()} (from {target.variable}) does not verify against it: {exc}"
    )


# --- redis-py clients ------------------------------------------------------------------


def _tls_kwargs(target: RedisTarget) -> dict[str, Any]:
    if not target.tls:
        return {}
    ssl_context(target)  # refuse an unloadable CA or key here, naming the variable
    return {
        "ssl": True,
        "ssl_ca_certs": target.tls_ca_file,
        "ssl_certfile": target.tls_cert_file,
        "ssl_keyfile": target.tls_key_file,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
    }


def _sentinel_kwargs(target: RedisTarget, timeout: float | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if target.sentinel_password:
        kwargs.update(username=target.sentinel_username, password=target.sentinel_password)
    kwargs.update(_tls_kwargs(target))
    return kwargs


SENTINEL_RECHECK_S = 0.5


def _rechecking_pool_class() -> Any:
    """A Sentinel pool that asks the sentinels where the master is at most every
    SENTINEL_RECHECK_S when a connection is taken. redis-py asks only when it connects,
    but after a failover the old master keeps accepting writes for seconds, until
    Sentinel demotes it, and those writes are then lost: a revocation published there
    would never arrive. On a change, idle connections are closed and busy ones are closed
    when returned (the pool no longer owns them)."""
    import time

    import redis
    from redis.sentinel import SentinelConnectionPool

    class RecheckingSentinelConnectionPool(SentinelConnectionPool):
        _checked_at = 0.0

        def get_connection(self, *args: Any, **kwargs: Any) -> Any:
            now = time.monotonic()
            if self.is_master and now - self._checked_at >= SENTINEL_RECHECK_S:
                self._checked_at = now
                # No sentinel answers: keep the master we have.
                with contextlib.suppress(redis.RedisError):
                    self.get_master_address()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            return super().get_connection(*args, **kwargs)

    return RecheckingSentinelConnectionPool


def sync_client(
    target: RedisTarget,
    *,
    socket_timeout: float | None = None,
    socket_connect_timeout: float | None = None,
    decode_responses: bool = False,
) -> Any:
    """A redis-py client for ``target``: ``redis.Redis`` (plain, TLS, unix, or Sentinel's
    master, rediscovered on reconnection) or ``redis.cluster.RedisCluster`` (follows
    MOVED/ASK; its pipelines group commands by node). Typed Any: the two classes share
    the command methods but no base class that declares them."""
    import redis
    from redis.cluster import ClusterNode, RedisCluster
    from redis.sentinel import Sentinel

    common: dict[str, Any] = {
        "username": target.username,
        "password": target.password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "decode_responses": decode_responses,
    }
    if target.kind == "tcp":
        return redis.Redis(host=target.host, port=target.port, db=target.db, **common, **_tls_kwargs(target))
    if target.kind == "unix":
        return redis.Redis(unix_socket_path=target.path, db=target.db, **common)
    if target.kind == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            list(target.hosts),
            sentinel_kwargs=_sentinel_kwargs(target, socket_connect_timeout),
            db=target.db,
            **common,
            **_tls_kwargs(target),
        )
        return sentinel.master_for(  # type: ignore[no-untyped-call]  # as above
            target.service, connection_pool_class=_rechecking_pool_class()
        )
    return RedisCluster(
        startup_nodes=[ClusterNode(h, p) for h, p in target.hosts],  # type: ignore[no-untyped-call]  # as above
        **common,
        **_tls_kwargs(target),
    )


def async_client(
    target: RedisTarget,
    *,
    socket_timeout: float | None = None,
    socket_connect_timeout: float | None = None,
    node: int = 0,
) -> Any:
    """A redis-py asyncio client for one node, for what needs a connection of its own
    (the gateway's pub/sub listener): the Sentinel's current master, or, on a cluster, seed
    node ``node`` (modulo their number). Classic PUBLISH reaches every node of a cluster,
    so a subscriber may listen on any one and move to the next when it fails. No retries:
    the caller has its own loop."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.asyncio.sentinel import Sentinel
    from redis.backoff import NoBackoff

    common: dict[str, Any] = {
        "username": target.username,
        "password": target.password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        "retry": Retry(NoBackoff(), 0),
    }
    if target.kind == "tcp":
        return aioredis.Redis(host=target.host, port=target.port, db=target.db, **common, **_tls_kwargs(target))
    if target.kind == "unix":
        return aioredis.Redis(unix_socket_path=target.path, db=target.db, **common)
    if target.kind == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            list(target.hosts),
            sentinel_kwargs=_sentinel_kwargs(target, socket_connect_timeout),
            db=target.db,
            **common,
            **_tls_kwargs(target),
        )
        return sentinel.master_for(target.service)
    host, port = target.hosts[node % len(target.hosts)]
    return aioredis.Redis(host=host, port=port, **common, **_tls_kwargs(target))


async def sentinel_master(target: RedisTarget, *, timeout: float) -> tuple[str, int]:
    """Ask the sentinels, in turn, where ``target.service``'s master is now."""
    import redis.asyncio as aioredis

    errors: list[str] = []
    for host, port in target.hosts:
        client = aioredis.Redis(host=host, port=port, **_sentinel_kwargs(target, timeout))
        try:
            reply = await client.execute_command(  # type: ignore[no-untyped-call]  # unannotated in redis-py
                "SENTINEL", "get-master-addr-by-name", target.service
            )
        except Exception as exc:  # one sentinel down: ask the next
            errors.append(f"{host}:{port}: {exc}")
            continue
        finally:
            await client.aclose()
        if reply:
            master_host, master_port = reply
            if isinstance(master_host, bytes):
                master_host = master_host.decode()
            return str(master_host), int(master_port)
        errors.append(f"{host}:{port}: does not know {target.service!r}")
    raise RedisConnectionError(f"no sentinel names a master for {target.service!r}: {'; '.join(errors)}")


# --- Celery's broker -------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerSettings:
    url: str
    transport_options: dict[str, Any]
    use_ssl: dict[str, Any] | None


def celery_broker(target: RedisTarget) -> BrokerSettings:
    """Celery (kombu) settings for ``target``. kombu speaks to one Redis or to Sentinel
    (its ``sentinel://`` transport with the ``master_name`` option); it has no Cluster
    transport, so a cluster is refused: set CELERY_BROKER_URL to a separate Redis."""
    from urllib.parse import quote

    auth = ""
    if target.password is not None:
        auth = f"{quote(target.username or '', safe='')}:{quote(target.password, safe='')}@"
    ssl_options: dict[str, Any] | None = None
    if target.tls:
        ssl_options = {
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
            "ssl_ca_certs": target.tls_ca_file,
            "ssl_certfile": target.tls_cert_file,
            "ssl_keyfile": target.tls_key_file,
        }
    if target.kind == "tcp":
        scheme = "rediss" if target.tls else "redis"
        return BrokerSettings(f"{scheme}://{auth}{target.host}:{target.port}/{target.db}", {}, ssl_options)
    if target.kind == "unix":
        return BrokerSettings(f"socket://{auth}{target.path}?virtual_host={target.db}", {}, None)
    if target.kind == "sentinel":
        url = ";".join(f"sentinel://{auth}{h}:{p}/{target.db}" for h, p in target.hosts)
        options: dict[str, Any] = {"master_name": target.service}
        sentinel_kwargs: dict[str, Any] = {}
        if target.sentinel_password:
            sentinel_kwargs.update(username=target.sentinel_username, password=target.sentinel_password)
        if sentinel_kwargs:
            options["sentinel_kwargs"] = sentinel_kwargs
        return BrokerSettings(url, options, ssl_options)
    raise EnvError(
        f"{target.variable}={target.describe()!r} is a Redis Cluster, which Celery cannot use as its broker "
        "(kombu has no Cluster transport): set CELERY_BROKER_URL to a separate Redis (redis://, rediss://, "
        "unix:// or redis+sentinel://)"
    )


def check_certificate(target: RedisTarget, *, timeout: float = 2.0) -> None:
    """For a TLS target, one handshake with the first endpoint that answers: a certificate
    that does not verify is a configuration error (EnvError naming REDIS_TLS_CA_FILE), to
    stop the process at start-up instead of failing every connection afterwards. An
    endpoint that is down is not an error here: Redis may come later."""
    import socket

    if not target.tls:
        return
    context = ssl_context(target)
    for host, port in target.hosts:
        try:
            with (
                socket.create_connection((host, port), timeout) as sock,
                context.wrap_socket(sock, server_hostname=host),
            ):
                return
        except ssl.SSLCertVerificationError as exc:
            raise EnvError(certificate_error_message(target, exc)) from exc
        except OSError:
            continue
