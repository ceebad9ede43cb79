"""Real Redis topologies on 127.0.0.1 free ports, from Debian's redis-server and
redis-sentinel: a 3-master Cluster, Sentinel (1 primary, 1 replica, 3 sentinels), and a
TLS server with a CA this module generates and an ACL user. Each ``start()`` is bounded
in time; ``cleanup()`` kills the processes and removes their directories.

Used by tests/topology and bench/redis_clients.py (--cluster).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.services import _require, free_port, wait_for_port


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last})")


def _redis_argv(port: int, workdir: Path, *extra: str) -> list[str]:
    return [
        _require("redis-server", "redis-server"),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(workdir),
        "--save", "",
        "--appendonly", "no",
        "--protected-mode", "yes",
        "--loglevel", "warning",
        "--repl-diskless-sync-delay", "0",
        *extra,
    ]


@dataclass
class RedisClusterServers:
    """Three masters, no replicas, slots spread by ``redis-cli --cluster create``."""

    masters: int = 3
    ports: list[int] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tollway-cluster-")))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> RedisClusterServers:
        try:
            return self._start()
        except BaseException:
            self.cleanup()
            raise

    def _start(self) -> RedisClusterServers:
        self.ports = [free_port() for _ in range(self.masters)]
        for port in self.ports:
            node_dir = self.workdir / str(port)
            node_dir.mkdir()
            self.procs.append(_spawn(
                # The bus port is set: the default, port + 10000, may be past 65535 or taken.
                _redis_argv(port, node_dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                            "--cluster-node-timeout", "2000", "--cluster-port", str(free_port())),
                node_dir / "redis.log",
            ))
        for port in self.ports:
            wait_for_port(port)
        created = subprocess.run(
            [_require("redis-cli", "redis-server"), "--cluster", "create",
             *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-yes"],
            capture_output=True, timeout=30, check=False,
        )
        if created.returncode:
            output = created.stdout.decode() + created.stderr.decode()
            raise RuntimeError(f"redis-cli --cluster create failed: {output}")

        def ok() -> bool:
            for port in self.ports:
                info = redis.Redis(port=port).execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info:
                    return False
            return True

        _wait(ok, 20, "Redis Cluster")
        return self

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.ports[0])

    def cleanup(self) -> None:
        _stop(self.procs)
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class SentinelServers:
    """A primary, a replica and three sentinels watching ``service``."""

    service: str = "tollway"
    primary_port: int = field(default_factory=free_port)
    replica_port: int = field(default_factory=free_port)
    sentinel_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tollway-sentinel-")))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports) + f"/{self.service}/0"

    def start(self) -> SentinelServers:
        try:
            return self._start()
        except BaseException:
            self.cleanup()
            raise

    def _start(self) -> SentinelServers:
        for name, port, extra in (
            ("primary", self.primary_port, ()),
            ("replica", self.replica_port, ("--replicaof", "127.0.0.1", str(self.primary_port))),
        ):
            node_dir = self.workdir / name
            node_dir.mkdir()
            self.procs.append(_spawn(_redis_argv(port, node_dir, *extra), node_dir / "redis.log"))
        wait_for_port(self.primary_port)
        wait_for_port(self.replica_port)
        _wait(
            lambda: redis.Redis(port=self.replica_port).info("replication").get("master_link_status") == "up",
            20, "replica",
        )
        sentinel = _require("redis-sentinel", "redis-sentinel")
        for index, port in enumerate(self.sentinel_ports):
            conf = self.workdir / f"sentinel-{index}.conf"
            conf.write_text(
                f"bind 127.0.0.1\nport {port}\ndir {self.workdir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 5000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            self.procs.append(_spawn([sentinel, str(conf)], self.workdir / f"sentinel-{index}.log"))
        for port in self.sentinel_ports:
            wait_for_port(port)

        def ready() -> bool:
            # Every sentinel knows the replica and the other sentinels: a failover can happen.
            for port in self.sentinel_ports:
                fields = redis.Redis(port=port).sentinel_master(self.service)
                if int(fields["num-slaves"]) < 1 or int(fields["num-other-sentinels"]) < 2:
                    return False
            return True

        _wait(ready, 30, "Sentinel")
        return self

    def master(self) -> tuple[str, int]:
        return self._master_by(self.sentinel_ports[0])

    def _master_by(self, sentinel_port: int) -> tuple[str, int]:
        host, port = redis.Redis(port=sentinel_port).sentinel_get_master_addr_by_name(self.service)
        return (host.decode() if isinstance(host, bytes) else str(host)), int(port)

    def failover(self, timeout: float = 20) -> tuple[str, int]:
        """SENTINEL FAILOVER, then wait until every sentinel names the new master and it takes writes."""
        before = self.master()
        redis.Redis(port=self.sentinel_ports[0]).execute_command("SENTINEL", "FAILOVER", self.service)

        def moved() -> bool:
            for port in self.sentinel_ports:
                if self._master_by(port) == before:
                    return False
            return bool(redis.Redis(port=self.master()[1]).info("replication")["role"] == "master")

        _wait(moved, timeout, "failover")
        return self.master()

    def cleanup(self) -> None:
        _stop(self.procs)
        shutil.rmtree(self.workdir, ignore_errors=True)


def make_certificates(directory: Path, *, hostname: str = "127.0.0.1") -> dict[str, Path]:
    """A self-signed CA, a server certificate it signs (for ``hostname``), and a second,
    unrelated CA (the "wrong CA"). PEM files in ``directory``; returns their paths."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        private = key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common)).issuer_name(name(common))
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False)
            .sign(private, hashes.SHA256())
        )
        return private, cert

    ca_key, ca_cert = ca("Tollway test CA")
    _, wrong_cert = ca("Some other CA")
    server_key = key()
    san: x509.GeneralName
    try:
        san = x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        san = x509.DNSName(hostname)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(name(hostname)).issuer_name(ca_cert.subject)
        .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {
        "ca": directory / "ca.pem",
        "wrong_ca": directory / "wrong-ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["wrong_ca"].write_bytes(wrong_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return paths


@dataclass
class TlsRedisServer:
    """redis-server speaking only TLS (no plain port), with an ACL user that may do what
    the gateway and the portal do, and no default user."""

    username: str = "tollway"
    password: str = "s3cret-Tollway-acl"  # a test secret, not a real one
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tollway-tls-")))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    certs: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"rediss://{self.username}:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> TlsRedisServer:
        self.certs = make_certificates(self.workdir)
        acl = self.workdir / "users.acl"
        acl.write_text(
            "user default off\n"
            f"user {self.username} on >{self.password} ~* &* +@all\n"
        )
        self.procs.append(_spawn(
            _redis_argv(0, self.workdir,
                        "--tls-port", str(self.port),
                        "--tls-cert-file", str(self.certs["cert"]),
                        "--tls-key-file", str(self.certs["key"]),
                        "--tls-ca-cert-file", str(self.certs["ca"]),
                        "--tls-auth-clients", "no",
                        "--aclfile", str(acl)),
            self.workdir / "redis.log",
        ))
        wait_for_port(self.port)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, username=self.username, password=self.password, ssl=True,
            ssl_ca_certs=str(self.certs["ca"]), ssl_check_hostname=True,
        )

    def cleanup(self) -> None:
        _stop(self.procs)
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class UnixRedisServer:
    """redis-server on a unix socket only, with a password (AUTH on connect)."""

    password: str = "unix-socket-pass"  # a test secret, not a real one
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tollway-unix-")))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.workdir / "redis.sock"

    def url(self, db: int = 0) -> str:
        return f"unix://:{self.password}@{self.path}?db={db}"

    def start(self) -> UnixRedisServer:
        self.procs.append(_spawn(
            _redis_argv(0, self.workdir, "--unixsocket", str(self.path), "--unixsocketperm", "700",
                        "--requirepass", self.password),
            self.workdir / "redis.log",
        ))
        _wait(lambda: redis.Redis(unix_socket_path=str(self.path), password=self.password).ping(), 15, "unix Redis")
        return self

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.path), password=self.password, db=db)

    def cleanup(self) -> None:
        _stop(self.procs)
        shutil.rmtree(self.workdir, ignore_errors=True)
