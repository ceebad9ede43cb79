"""The portal's production server, chosen by measurement: ``python bench/portal_server.py``.

Serves the portal (DEBUG off, whitenoise, SQLite with the demo content, a Redis of its
own) under each candidate WSGI server in turn, on 127.0.0.1, and loads three pages
with ``wrk -t1 -c16``: the marketplace (``/``), an API's page (``/apis/echo/``) and a
JSON endpoint of the REST API (``/api/v1/apis/``, signed in). The candidates:

* ``gunicorn-sync``     gunicorn, 2 x cores + 1 sync workers (its documented default advice)
* ``gunicorn-gthread``  gunicorn, one gthread worker per core, 4 threads each
* ``granian``           granian ``--interface wsgi``, one worker per core, 1 blocking thread each
* ``portal-serve``      what ships: ``python -m portal.serve`` (granian, one worker per core,
                        4 blocking threads each, access log on), the exact command `make run` starts

gunicorn is not in requirements.txt (granian won); to compare again, install it into the
virtualenv first (``pip install gunicorn==27.0.1``), or its candidates are skipped.

Pages are measured round-robin (page by page, every server in turn) so that a change in
the box's other load hits every candidate alike; the 1-minute load average is recorded
before and after. Also records each server's resident memory (its whole process tree)
after the load. Writes bench/results/portal_server.json. The chosen server is the one
bin/portal-serve starts (`make run`); docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway import parse_wrk  # noqa: E402
from portal.serve import server_argv  # noqa: E402
from tests.services import RedisServer, free_port, wait_for_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PAGES = {"marketplace": "/", "api_page": "/apis/echo/", "api_json": "/api/v1/apis/"}


def candidates(port: int, cores: int) -> dict[str, list[str]]:
    bind = f"127.0.0.1:{port}"
    gunicorn = [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", bind,
                "--access-logfile", "/dev/null"]
    granian = [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(cores), "--no-ws", "--log-level", "warning", "portal.wsgi:application"]
    return {
        "gunicorn-sync": [*gunicorn, "--workers", str(2 * cores + 1)],
        "gunicorn-gthread": [*gunicorn, "--workers", str(cores), "--worker-class", "gthread", "--threads", "4"],
        "granian": [*granian, "--blocking-threads", "1"],
        "portal-serve": server_argv({"PORTAL_PORT": str(port or 8000), "PORTAL_WORKERS": str(cores)}),
    }


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return round(total / 1024, 1)


def wrk(url: str, seconds: int, cookie: str) -> dict[str, float]:
    cmd = ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-H", f"Cookie: {cookie}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    return parse_wrk(out)


def prepare(tmp: Path, redis_url: str) -> dict[str, str]:
    """A fresh portal, as `make run` makes it: migrated, seeded, static files collected."""
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{tmp / 'portal.sqlite3'}",
        "REDIS_URL": redis_url,
        "STATIC_ROOT": str(tmp / "static"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "TOLLWAY_DEMO_PASSWORD": "bench-" + secrets.token_urlsafe(12),
        "LOG_LEVEL": "WARNING",
    }
    for command in (["migrate", "--noinput"], ["seed_demo"], ["collectstatic", "--noinput"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
    return env


def login(base: str, password: str) -> str:
    with httpx.Client(base_url=base, timeout=10) as client:
        client.get("/accounts/login/")
        answer = client.post("/accounts/login/", data={"username": "developer@tollway.localhost",
                                                       "password": password,
                                                       "csrfmiddlewaretoken": client.cookies["csrftoken"]},
                             headers={"Referer": f"{base}/accounts/login/"})
        assert answer.status_code == 302, answer.text[:500]
        return f"sessionid={client.cookies['sessionid']}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="duration of each wrk run")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", nargs="*", help="candidate names (default: all)")
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if not shutil.which(tool):
            print(f"{tool} is missing: run `make bench`, which installs it", file=sys.stderr)
            return 1
    tmp = Path(tempfile.mkdtemp(prefix="tollway-bench-portal-"))
    redis_server = RedisServer(appendonly=False).start()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        env = prepare(tmp, redis_server.url)
        ports = {}
        names = [n for n in candidates(0, args.cores) if importlib.util.find_spec("gunicorn") or "gunicorn" not in n]
        if len(names) < len(candidates(0, args.cores)):
            print("gunicorn is not installed: its candidates are skipped (pip install gunicorn==27.0.1 to compare)")
        for name in args.only or names:
            port = free_port()
            ports[name] = port
            procs[name] = subprocess.Popen(candidates(port, args.cores)[name], cwd=ROOT, env=env,
                                           stdout=(tmp / f"{name}.log").open("ab"), stderr=subprocess.STDOUT,
                                           start_new_session=True)
        for port in ports.values():
            wait_for_port(port, timeout=60)
        cookie = login(f"http://127.0.0.1:{next(iter(ports.values()))}", env["TOLLWAY_DEMO_PASSWORD"])
        for port in ports.values():  # warm-up: imports, template caches, database connections
            for path in PAGES.values():
                wrk(f"http://127.0.0.1:{port}{path}", 1, cookie)
        load_before = os.getloadavg()[0]
        results: dict[str, dict[str, object]] = {name: {} for name in ports}
        for page, path in PAGES.items():
            for name, port in ports.items():
                results[name][page] = wrk(f"http://127.0.0.1:{port}{path}", args.seconds, cookie)
        for name in ports:
            results[name]["rss_mb"] = tree_rss_mb(procs[name].pid)
        load_after = os.getloadavg()[0]
    finally:
        for proc in procs.values():
            stop(proc)
        redis_server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

    report = {
        "command": " ".join(["python", "bench/portal_server.py", *sys.argv[1:]]),
        "load": f"wrk -t1 -c16 -d{args.seconds}s --latency, pages round-robin",
        "cores": args.cores,
        "loadavg_1m": {"before": round(load_before, 2), "after": round(load_after, 2)},
        "commands": {name: " ".join(["python", *candidates(0, args.cores)[name][1:]]) for name in ports},
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "portal_server.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"1-minute load average: {load_before:.2f} before, {load_after:.2f} after")
    print(f"{'':18}" + "".join(f"{page:>26}" for page in PAGES) + f"{'RSS MB':>9}")
    print(f"{'':18}" + "".join(f"{'req/s':>10}{'p50':>8}{'p99 ms':>8}" for _ in PAGES))
    for name, r in results.items():
        cells = "".join(f"{r[p]['rps']:>10.0f}{r[p]['p50_ms']:>8.1f}{r[p]['p99_ms']:>8.1f}"  # type: ignore[index]
                        for p in PAGES)
        errors = {p: r[p].get("non_2xx") or r[p].get("socket_errors") for p in PAGES}  # type: ignore[union-attr]
        print(f"{name:18}{cells}{r['rss_mb']:>9}" + (f"  errors {errors}" if any(errors.values()) else ""))
    print(f"written: {RESULTS / 'portal_server.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
