"""Secret scan over the whole test run (pytest plugin, loaded with -p in pyproject.toml).

Every credential that Tollway issues while the suite runs is recorded:

* API keys, new and rotated: ``portal.keys.services.generate_key_secret``;
* OAuth2 client secrets: ``generate_client_secret`` as ``portal.keys.services`` calls it;
* OAuth2 access and refresh tokens from ``/o/token/``: ``OAuth2Validator.save_bearer_token``;
* invitation tokens: ``portal.accounts.services.invitation_token_new`` (not the hash
  function, which also sees whatever a client posts to *accept*, e.g. a fuzzer's "0");
* automation tokens (``twc_``): ``portal.declarative.services.automation_token_secret_new``;
* webhook signing secrets (``whsec_``, stored only encrypted): ``portal.webhooks.crypto.secret_generate``;
* the keys and tokens the gateway tests publish (``tests.gateway.conftest``).

Then every place a secret could come to rest is searched for every recorded secret:

* the database (``dumpdata``) and every Redis the suite started (all keys, all types,
  streams included), at the teardown of each test that issued a secret. That is the
  last moment they hold the test's data: pytest-django rolls back or flushes the
  database and fixtures flush Redis right after, so a check at the end of the run
  would search empty stores and could not fail;
* every log record the portal emits, through the same redaction filter as the
  configured handler (what production would write), for the whole run;
* every file under pytest's base temporary directory (gateway logs, spill files,
  snapshots, worker logs of tests that write them there), at the end of the run.

Findings are reported in the terminal summary and fail the run (exit status 1) in
``pytest_sessionfinish``. A hook and not a test: a test runs before the tests after
it have issued their secrets, so it could only vouch for part of the run.

Not recorded: secrets issued inside child processes (a portal started by an
end-to-end test issues keys in its own process), and access tokens that tests insert
straight into the database (``AccessToken.objects.create(token=...)`` bypasses the
RFC 9700 hashing on purpose, to make bearer clients cheaply).
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MIN_SECRET_LENGTH = 16  # shorter values would match by accident
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class Finding:
    where: str
    secret_kind: str
    issued_in: str
    found_during: str

    def __str__(self) -> str:
        return (f"{self.secret_kind} issued in {self.issued_in} found in {self.where} "
                f"(searched during {self.found_during})")


@dataclass
class SecretLedger:
    """Secrets issued during the run, the findings, and what was searched (for the summary)."""

    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)  # secret -> (kind, nodeid)
    findings: list[Finding] = field(default_factory=list)
    current: str = "(collection)"
    issued_this_test: int = 0
    scans: dict[str, int] = field(default_factory=lambda: {"database": 0, "redis": 0, "logs": 0, "files": 0})
    redis_urls: list[str] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def record(self, kind: str, secret: object) -> None:
        if isinstance(secret, str) and len(secret) >= MIN_SECRET_LENGTH and secret not in self.secrets:
            self.secrets[secret] = (kind, self.current)
            self.issued_this_test += 1

    def search(self, where: str, text: str) -> list[Finding]:
        found = [
            Finding(where=where, secret_kind=kind, issued_in=nodeid, found_during=self.current)
            for secret, (kind, nodeid) in self.secrets.items()
            if secret in text
        ]
        self.findings.extend(found)
        return found


LEDGER = SecretLedger()
CAPTURE: list[logging.Handler] = []  # the one LogCapture, once the session has started


# --- where secrets can rest ---------------------------------------------------------------


def redis_dump(client: Any) -> str:
    """Every key and value of one Redis database, as text."""
    parts: list[str] = []
    for raw_key in client.scan_iter(count=1000):
        kind = client.type(raw_key).decode()
        parts.append(raw_key.decode(errors="replace"))
        if kind == "string":
            parts.append((client.get(raw_key) or b"").decode(errors="replace"))
        elif kind == "hash":
            parts.extend(f"{k!r}={v!r}" for k, v in client.hgetall(raw_key).items())
        elif kind == "list":
            parts.extend(repr(v) for v in client.lrange(raw_key, 0, -1))
        elif kind == "set":
            parts.extend(repr(v) for v in client.smembers(raw_key))
        elif kind == "zset":
            parts.extend(repr(v) for v in client.zrange(raw_key, 0, -1))
        elif kind == "stream":
            parts.extend(repr(entry) for entry in client.xrange(raw_key))
    return "\n".join(parts)


def redis_server_dump(url: str) -> str:
    """Every database of the Redis at ``url``."""
    import redis

    texts = []
    with redis.Redis.from_url(url, socket_timeout=2) as probe:
        databases = [int(str(name).removeprefix("db")) for name in probe.info("keyspace")]
    for index in databases:
        with redis.Redis.from_url(url, db=index, socket_timeout=2) as client:
            texts.append(redis_dump(client))
    return "\n".join(texts)


def database_dump() -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("dumpdata", stdout=out, verbosity=0)
    return out.getvalue()


def _walk(root: Path) -> Iterable[Path]:
    # os.walk, not rglob: a directory that vanishes mid-walk (another pytest session
    # pruning its old basetemps) is skipped instead of ending the scan with an error.
    for parent, _dirs, names in os.walk(root):
        for name in names:
            yield Path(parent) / name


def files_under(root: Path) -> Iterable[tuple[Path, str]]:
    """Each file's text, without its trailing NULs: a metering journal is preallocated (8 MiB
    of zeros after its lines, gateway/policies/metering/journal.py), and a suite's hundreds
    of them made the search ~2.4 GB of zeros per secret. A secret has no NUL in it, and every
    byte up to the file's last non-NUL one is still searched."""
    for path in _walk(root):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_FILE_BYTES:
                yield path, path.read_bytes().rstrip(b"\0").decode("utf-8", errors="replace")
        except OSError:
            continue


def scan_redis(ledger: SecretLedger) -> None:
    import redis

    for url in dict.fromkeys(ledger.redis_urls):
        try:
            text = redis_server_dump(url)
        except (redis.RedisError, OSError):
            continue  # stopped or killed by its test: nothing left to search
        ledger.scans["redis"] += 1
        ledger.search(f"Redis {url}", text)


# --- recording ---------------------------------------------------------------------------


def _wrap_return(owner: Any, name: str, kind: str, pick: Callable[[Any], Iterable[object]]) -> None:
    original = getattr(owner, name)
    if getattr(original, "_secret_scan", False):
        return

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        for value in pick(result):
            LEDGER.record(kind, value)
        return result

    wrapper._secret_scan = True  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def _wrap_args(owner: Any, name: str, kind: str, pick: Callable[..., Iterable[object]]) -> None:
    original = getattr(owner, name)
    if getattr(original, "_secret_scan", False):
        return

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for value in pick(*args, **kwargs):
            LEDGER.record(kind, value)
        return original(*args, **kwargs)

    wrapper._secret_scan = True  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)


def install_recorders() -> None:
    from oauth2_provider.oauth2_validators import OAuth2Validator

    from portal.accounts import services as accounts
    from portal.declarative import services as declarative
    from portal.keys import services as keys
    from portal.webhooks import crypto as webhook_crypto
    from tests import services as test_services
    from tests.gateway import conftest as gateway_conftest

    _wrap_return(keys, "generate_key_secret", "API key", lambda secret: [secret])
    _wrap_return(keys, "generate_client_secret", "OAuth2 client secret", lambda secret: [secret])
    _wrap_return(accounts, "invitation_token_new", "invitation token", lambda token: [token])
    _wrap_return(declarative, "automation_token_secret_new", "automation token", lambda token: [token])
    _wrap_return(webhook_crypto, "secret_generate", "webhook signing secret", lambda secret: [secret])

    def bearer(self: Any, token: dict[str, Any], *args: Any, **kwargs: Any) -> list[object]:
        return [token.get("access_token"), token.get("refresh_token")]

    _wrap_args(OAuth2Validator, "save_bearer_token", "OAuth2 token", bearer)
    _wrap_return(gateway_conftest, "make_key", "gateway test key", lambda key: [key])
    _wrap_args(gateway_conftest.Publisher, "token", "gateway test token",
               lambda self, application_id, token, *a, **k: [token])

    original_start = test_services.RedisServer.start
    if not getattr(original_start, "_secret_scan", False):

        def start(self: Any) -> Any:
            started = original_start(self)
            LEDGER.redis_urls.append(self.url)
            return started

        start._secret_scan = True  # type: ignore[attr-defined]
        test_services.RedisServer.start = start  # type: ignore[method-assign]


class LogCapture(logging.Handler):
    """Keeps every record as the configured console handler would write it (its
    formatter and its filters, i.e. the redaction), at the configured levels."""

    def __init__(self, ledger: SecretLedger, like: logging.Handler | None) -> None:
        super().__init__(level=logging.NOTSET)
        self.ledger = ledger
        if like is not None:
            self.setFormatter(like.formatter)
            for f in like.filters:
                self.addFilter(f)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.ledger.log_lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted cannot leak either
            self.handleError(record)


# --- hooks ----------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("REDIS_URL"):
        LEDGER.redis_urls.append(os.environ["REDIS_URL"])


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    import django

    django.setup()  # idempotent; pytest-django has configured the settings by now
    install_recorders()
    root = logging.getLogger()
    console = next((h for h in root.handlers if type(h) is logging.StreamHandler), None)
    CAPTURE.append(LogCapture(LEDGER, console))
    root.addHandler(CAPTURE[0])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    LEDGER.current = item.nodeid
    LEDGER.issued_this_test = 0
    # Anything that reconfigures logging (logging.config.dictConfig, an in-process Celery
    # worker hijacking the root logger) drops our handler: put it back for every test.
    root = logging.getLogger()
    if CAPTURE and CAPTURE[0] not in root.handlers:
        root.addHandler(CAPTURE[0])


def _uses_database(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & {"db", "transactional_db", "_django_db_helper", "live_server"}) or bool(
        item.get_closest_marker("django_db")
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    # Before the fixtures are torn down: the test's rows and Redis keys are still there.
    if LEDGER.issued_this_test:
        if _uses_database(item):
            try:
                text = database_dump()
            except Exception as exc:  # a closed connection (the test broke it) is not a finding
                LEDGER.notes.append(f"no database dump after {item.nodeid}: {exc!r}")
            else:
                LEDGER.scans["database"] += 1
                LEDGER.search("the database dump", text)
        scan_redis(LEDGER)
    yield


def final_scan(session: pytest.Session) -> None:
    LEDGER.current = "(end of run)"
    if not LEDGER.secrets:
        return
    scan_redis(LEDGER)
    LEDGER.scans["logs"] = len(LEDGER.log_lines)
    LEDGER.search("the portal's log records", "\n".join(LEDGER.log_lines))
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        root = factory.getbasetemp()
        for path, text in files_under(root):
            LEDGER.scans["files"] += 1
            LEDGER.search(f"file {path.relative_to(root)}", text)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    final_scan(session)
    if LEDGER.findings and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    s = LEDGER.scans
    terminalreporter.write_sep("-", "secret scan")
    terminalreporter.write_line(
        f"{len(LEDGER.secrets)} secrets issued; searched {s['database']} database dumps, {s['redis']} Redis dumps, "
        f"{s['logs']} log records, {s['files']} files"
    )
    for note in LEDGER.notes:
        terminalreporter.write_line(f"note: {note}")
    for finding in LEDGER.findings:
        terminalreporter.write_line(f"LEAK: {finding}", red=True)
    if LEDGER.findings:
        terminalreporter.write_line("secret scan FAILED: the run fails", red=True, bold=True)
