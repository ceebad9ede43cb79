"""Real Redis and PostgreSQL servers for the test suite, on free loopback ports.

Used by tests/plugin.py (which starts them before Django reads its settings)
and by tests that need a server of their own, e.g. to kill and restart Redis.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if not path:
        for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{binary}"), reverse=True):
            return str(candidate)
        raise RuntimeError(f"{binary} not found: install the Debian package '{package}' (make test does this as root)")
    return path


@dataclass
class RedisServer:
    """A redis-server child process. ``appendonly`` mirrors the run config (AOF)."""

    port: int = field(default_factory=free_port)
    appendonly: bool = True
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tollway-redis-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = _require("redis-server", "redis-server")
        self.proc = subprocess.Popen(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.workdir),
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec",
                "--save", "",
                "--protected-mode", "yes",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port)
        return self

    def kill(self) -> None:
        """SIGKILL: what a crash looks like, no chance to save."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) owned by a non-root user."""

    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tollway-pg-")))
    user: str = "tollway"
    password: str = "tollway-test"

    @property
    def url(self) -> str:
        return f"postgres://{self.user}:{self.password}@127.0.0.1:{self.port}/tollway"

    def _run(self, argv: list[str]) -> None:
        # PostgreSQL refuses to run as root; drop to the 'postgres' system user.
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PostgresServer:
        initdb = _require("initdb", "postgresql")
        pg_ctl = _require("pg_ctl", "postgresql")
        data = self.workdir / "data"
        pwfile = self.workdir / "pw"
        pwfile.write_text(self.password)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self._run([initdb, "-D", str(data), "-U", self.user, f"--pwfile={pwfile}", "-A", "scram-sha-256",
                   "-E", "UTF8", "--no-sync"])
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.workdir} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run([pg_ctl, "-D", str(data), "-o", options, "-l", str(self.workdir / "log"), "-w", "start"])
        createdb = _require("createdb", "postgresql")
        env_pw = {"PGPASSWORD": self.password}
        subprocess.run([createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "tollway"],
                       check=True, env={**os.environ, **env_pw})
        return self

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self._run([_require("pg_ctl", "postgresql"), "-D", str(self.workdir / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(self.workdir, ignore_errors=True)


def requires_postgres(reason: str) -> pytest.MarkDecorator:
    """Skip on SQLite, saying why: for what only PostgreSQL has (row locks, partitions, a
    worker subprocess sharing the test database). `make test` runs these on PostgreSQL."""
    return pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason=reason)
