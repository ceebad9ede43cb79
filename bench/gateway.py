"""Side-by-side gateway benchmark: ``make bench`` or ``python bench/gateway.py``.

Under the same load generator (wrk -t1 -c50) and the same connection count it measures:

1. upstream      nginx ``return 200`` (what every proxy below forwards to)
2. nginx         nginx ``proxy_pass`` with upstream keepalive
3. gateway_off   ``python -m gateway`` with GATEWAY_POLICIES=none (routing + proxy only)
4. gateway_full  ``python -m gateway`` with every policy: key, rate limit, quota, metering

in two traffic shapes: one hot key (every request the same key and subscription),
and many keys (10,000 keys in rotation over 1,000 subscriptions, so that admission
leases and caches cannot flatter the result); then the added p99 latency at a fixed
rate of half the full gateway's maximum (wrk with exponential think times, so the
arrivals are spread: ``wrk_paced``; and, for comparison, hey -q, whose workers fire
in lockstep bursts); then the Redis bytes
one subscription on a 10,000/min plan holds after --memory-seconds at its limit;
and optionally (--flatness) throughput with 1,000,000 keys and 1,000 APIs published
against one key and one API, both on fresh gateways with the same lease setting. Also a
JSON POST (a ~200-byte body with a nested required field) to a version with
``request_validation: enforce`` against the same POST to a version with it off, on the
full gateway: ``validation.ratio_enforce_vs_off`` (goal >= 0.9), the median ratio of
--validation-rounds ABBA rounds (off, enforce, enforce, off, ...).
``--validation-only`` runs just that and updates the ``validation`` part of gateway.json.
``--policy-sets`` runs only the one-hot-key shape against one gateway per policy set
(none; lifecycle+key_auth+subscription; that plus each other policy alone; all), each
with its req/s and the workers' CPU per request (user + system from /proc, which a
loaded box disturbs far less than req/s); writes bench/results/gateway-policies.json.
Optionally (--cache) the full gateway answering from its
response cache (a version with ``policies.cache``) against the same uncached requests.

Writes bench/results/gateway.json in the shape the issue asks for, plus
bench/results/gateway-extra.json (paced latency, flatness, machine). Everything
runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from gateway import contract  # noqa: E402
from gateway.route_policies import ResponseCache, VersionPolicies  # noqa: E402
from tests.services import RedisServer, free_port, wait_for_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SECRET = "bench-key-hash-secret"
UNLIMITED = 1_000_000_000


def nginx_conf(tmp: Path, upstream_port: int, proxy_port: int) -> Path:
    user = "user root;" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"""
{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    upstream backend {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{upstream_port};
        location / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
    }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )
    return conf


def parse_wrk(output: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        assert m, output
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = re.search(r"(\d+) requests in", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    result = {"rps": round(rps, 1), "p50_ms": round(pct("50"), 3), "p99_ms": round(pct("99"), 3)}
    if requests:
        result["requests"] = int(requests.group(1))
    if non2xx:
        result["non_2xx"] = int(non2xx.group(1))
    if errors:
        result["socket_errors"] = errors.group(1)  # type: ignore[assignment]
    return result


def wrk(url: str, seconds: int, headers: dict[str, str], script: Path | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t1", "-c50", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    if script:
        cmd += ["-s", str(script)]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    return parse_wrk(out)


def hey_paced(url: str, seconds: int, rate: float, headers: dict[str, str]) -> dict[str, float]:
    concurrency = 10
    per_worker = max(1, round(rate / concurrency))
    cmd = ["hey", "-z", f"{seconds}s", "-c", str(concurrency), "-q", str(per_worker)]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout

    def pct(p: str) -> float:
        m = re.search(rf"{p}% in ([\d.]+) secs", out)
        assert m, out
        return float(m.group(1)) * 1000

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rate": per_worker * concurrency, "rps": round(rps, 1), "p50_ms": round(pct("50"), 3),
            "p99_ms": round(pct("99"), 3)}


PACED_CONNECTIONS = 30


def wrk_paced(url: str, seconds: int, rate: float, headers: dict[str, str], tmp: Path) -> dict[str, float]:
    """Latency at a fixed rate with the arrivals spread out: wrk with PACED_CONNECTIONS
    connections, each waiting an exponentially distributed think time (wrk's Lua ``delay()``,
    whole milliseconds) before each request, so the requests arrive about as a Poisson stream
    of ``rate`` per second. (``hey -c N -q r`` paces each of its N workers with its own ticker,
    all started together: the N requests of a tick arrive at once, every tick, so its latency
    is that of a burst of N, whatever the rate; ``hey_paced`` keeps that figure for
    comparison.) The mean think time is calibrated in a 2 s run first, so the measured run
    lands near ``rate`` whatever the proxy's own latency."""
    mean_ms = PACED_CONNECTIONS * 1000 / rate

    def run(duration: int, mean: float) -> dict[str, float]:
        script = tmp / "paced.lua"
        script.write_text(
            f"local mean = {mean:.4f}\n"
            "math.randomseed(os.time())\n"
            "function delay()\n"
            "  return math.floor(-mean * math.log(1 - math.random()) + 0.5)\n"
            "end\n"
        )
        cmd = ["wrk", "-t1", f"-c{PACED_CONNECTIONS}", f"-d{duration}s", "--latency", "-s", str(script)]
        for k, v in headers.items():
            cmd += ["-H", f"{k}: {v}"]
        out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True, timeout=duration + 30).stdout
        return parse_wrk(out)

    trial = run(2, mean_ms)
    mean_ms *= trial["rps"] / rate  # longer think times if it ran fast, shorter if slow
    result = run(seconds, mean_ms)
    result["rate"] = round(rate, 1)
    return result


def scrape_statuses(port: int) -> dict[str, float]:
    """Responses by status and Redis errors, from the gateway's own metrics: shows what
    any non-2xx responses under load were (e.g. 503s from Redis timeouts)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_tollway/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r'tollway_gateway_requests_total\{api="bench",status="(\d+)",version="v1"\} ([\d.e+]+)', line)
        if m:
            out[f"status_{m.group(1)}"] = float(m.group(2))
        elif line.startswith("tollway_gateway_redis_errors_total "):
            out["redis_errors"] = float(line.split()[1])
    return out


def fast_key() -> str:
    random_part = contract.base62(int.from_bytes(secrets.token_bytes(24)), contract.KEY_RANDOM_CHARS)
    return contract.KEY_PREFIX + random_part + contract.key_checksum(random_part)


def publish_basic(client: redis.Redis, upstream_url: str) -> str:
    route = contract.RouteRecord(
        api_id=1, api_slug="bench", version="v1", version_id=1, state="published",
        upstreams=(contract.Upstream(url=upstream_url),),
    )
    client.hset(contract.ROUTES_KEY, "bench/v1", route.to_json())
    limits = contract.Limits(rate_per_second=UNLIMITED, rate_per_minute=None, quota_per_day=UNLIMITED,
                             quota_per_month=UNLIMITED)
    grant = contract.SubscriptionGrant(subscription_id=1, api_id=1, plan_id=1, plan_slug="bench", status="active",
                                       limits=limits)
    app = contract.ApplicationRecord(application_id=1, organization_id=1, name="bench", subscriptions={"1": grant})
    client.set(contract.app_key(1), app.to_json())
    key = fast_key()
    record = contract.KeyRecord(key_id=1, prefix=contract.key_display_prefix(key), application_id=1, status="active")
    client.set(contract.key_key(contract.key_hash(key, SECRET.encode())), record.to_json())
    client.incr(contract.GENERATION_KEY)
    return key


VALIDATION_DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "Bench orders", "version": "1"},
    "paths": {
        "/orders": {
            "post": {
                "parameters": [{"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["item", "quantity", "address"],
                    "properties": {
                        "item": {"type": "string", "maxLength": 100},
                        "quantity": {"type": "integer", "minimum": 1},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "note": {"type": "string", "nullable": True},
                        "address": {"type": "object", "required": ["city"], "properties": {
                            "street": {"type": "string"}, "city": {"type": "string"},
                            "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}},
                    }}}}},
                "responses": {"200": {"description": "ok"}},
            }
        }
    },
}
VALIDATION_BODY = json.dumps({"item": "desk lamp", "quantity": 2, "tags": ["office", "light"], "note": None,
                              "address": {"street": "Invalidenstrasse 1", "city": "Berlin", "zip": "10115"}})


def publish_validation(client: redis.Redis, upstream_url: str) -> None:
    """bench/v2 validates against VALIDATION_DOCUMENT (enforce), bench/v3 is the same without."""
    raw, digest = contract.openapi_payload(VALIDATION_DOCUMENT)
    for version, version_id, mode in (("v2", 2, "enforce"), ("v3", 3, "off")):
        route = contract.RouteRecord(
            api_id=1, api_slug="bench", version=version, version_id=version_id, state="published",
            upstreams=(contract.Upstream(url=upstream_url),),
            policies=VersionPolicies(request_validation=mode),  # type: ignore[arg-type]
            openapi_sha256=digest if mode != "off" else None,
        )
        client.set(contract.openapi_key(version_id), raw)
        client.hset(contract.ROUTES_KEY, f"bench/{version}", route.to_json())
    client.incr(contract.GENERATION_KEY)


def post_script(tmp: Path) -> Path:
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(VALIDATION_BODY)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (the gateway's master and workers),
    from /proc (0.0 where there is none)."""
    total = 0
    try:
        entries = [e for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return 0.0
    for entry in entries:
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def validation_run(
    port: int, seconds: int, auth: dict[str, str], tmp: Path, rounds: int = 4, pid: int | None = None
) -> dict[str, object]:
    """The same JSON POST, to the same upstream, with ``request_validation: enforce`` (v2)
    and with it off (v3). On a shared 2-core box one 8-second run of each moved by more
    than the gap being measured (0.84 to 0.90 for the same code), so each mode gets
    ``seconds`` in total, cut into ``rounds`` pairs of slices run in ABBA order (off,
    enforce, enforce, off, off, ...): drift over the run falls on both, and the
    figure is the median of the pairs' ratios. Both totals are reported too, and (given
    the gateway's ``pid``) its CPU time per request in each mode, which other load on the
    box moves much less than throughput: the cost of validation itself."""
    script = post_script(tmp)
    urls = {mode: f"http://127.0.0.1:{port}/bench/{v}/orders?dry_run=false" for mode, v in (("enforce", "v2"),
                                                                                          ("off", "v3"))}
    for url in urls.values():  # warm-up: every worker fetches and compiles the document, pools fill
        wrk(url, 2, auth, script)
    rounds = max(1, rounds)
    slice_s = max(1, round(seconds / rounds))
    runs: dict[str, list[dict[str, float]]] = {"off": [], "enforce": []}
    cpu = {"off": 0.0, "enforce": 0.0}
    ratios = []
    for n in range(rounds):
        order = ("off", "enforce") if n % 2 == 0 else ("enforce", "off")
        pair = {}
        for mode in order:
            before = cpu_seconds(pid) if pid else 0.0
            pair[mode] = wrk(urls[mode], slice_s, auth, script)
            cpu[mode] += (cpu_seconds(pid) if pid else 0.0) - before
        for mode, result in pair.items():
            runs[mode].append(result)
        ratios.append(pair["enforce"]["rps"] / pair["off"]["rps"])
    summary: dict[str, object] = {"body_bytes": len(VALIDATION_BODY)}
    for mode, results in runs.items():
        non_2xx = sum(int(r.get("non_2xx", 0)) for r in results)
        if non_2xx:
            print(f"warning: validation {mode} had {non_2xx} non-2xx responses", file=sys.stderr)
        summary[mode] = {
            "rps": round(sum(r["rps"] for r in results) / len(results), 1),  # mean over slices of equal length
            "p50_ms": sorted(r["p50_ms"] for r in results)[len(results) // 2],
            "p99_ms": max(r["p99_ms"] for r in results),
            "non_2xx": non_2xx,
        }
        served = sum(int(r.get("requests", 0)) for r in results)
        if cpu[mode] and served:
            summary[mode]["gateway_cpu_us_per_request"] = round(cpu[mode] / served * 1e6, 1)  # type: ignore[index]
    ratios.sort()
    middle = len(ratios) // 2
    median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    summary["ratio_enforce_vs_off"] = round(median, 3)
    summary["ratios_per_round"] = [round(r, 3) for r in ratios]
    summary["ratio_of_means"] = round(summary["enforce"]["rps"] / summary["off"]["rps"], 3)  # type: ignore[index]
    if cpu["off"] and cpu["enforce"]:
        per = {m: summary[m]["gateway_cpu_us_per_request"] for m in ("off", "enforce")}  # type: ignore[index]
        summary["gateway_cpu_ratio_off_vs_enforce"] = round(per["off"] / per["enforce"], 3)
    summary["method"] = f"{rounds} ABBA rounds of {slice_s} s per mode (wrk -t1 -c50), median of the rounds' ratios"
    return summary


def print_validation(v: dict[str, Any]) -> None:
    print(f"validation: enforce {v['enforce']['rps']:.0f} req/s vs off {v['off']['rps']:.0f} req/s; "
          f"median ratio of {len(v['ratios_per_round'])} ABBA rounds {v['ratio_enforce_vs_off']:.3f} (goal >= 0.9), "
          f"rounds {v['ratios_per_round']}")
    if "gateway_cpu_ratio_off_vs_enforce" in v:
        print(f"validation: gateway CPU per request off {v['off']['gateway_cpu_us_per_request']} us, "
              f"enforce {v['enforce']['gateway_cpu_us_per_request']} us "
              f"(off / enforce = {v['gateway_cpu_ratio_off_vs_enforce']})")


def publish_many(client: redis.Redis, subscriptions: int, keys: int, tmp: Path) -> Path:
    """`subscriptions` applications, each subscribed to the bench API on its own plan
    (limits enforced, never reached), and `keys` keys spread over them. Returns a wrk
    script that sends every request with the next key in rotation."""
    # Both buckets and both quotas enforced, none reached (the limiter's arithmetic is exact
    # up to 150 million a minute: beyond that it still works, on rounded numbers).
    limits = contract.Limits(rate_per_second=UNLIMITED, rate_per_minute=100_000_000, quota_per_day=UNLIMITED,
                             quota_per_month=UNLIMITED)
    pipe = client.pipeline(transaction=False)
    for i in range(subscriptions):
        app_id = 100_000 + i
        grant = contract.SubscriptionGrant(subscription_id=app_id, api_id=1, plan_id=1, plan_slug="bench",
                                           status="active", limits=limits)
        app = contract.ApplicationRecord(application_id=app_id, organization_id=1, name=f"many{i}",
                                         subscriptions={"1": grant})
        pipe.set(contract.app_key(app_id), app.to_json())
    secret = SECRET.encode()
    all_keys = []
    for n in range(keys):
        key = fast_key()
        record = contract.KeyRecord(key_id=200_000 + n, prefix=contract.key_display_prefix(key),
                                    application_id=100_000 + n % subscriptions, status="active")
        pipe.set(contract.key_key(contract.key_hash(key, secret)), record.to_json())
        all_keys.append(key)
    pipe.execute()
    client.incr(contract.GENERATION_KEY)
    lines = ["local keys = {"]
    lines += [f'  "{key}",' for key in all_keys]
    lines += [
        "}",
        "local n = 0",
        "request = function()",
        "  n = n + 1",
        '  return wrk.format("GET", "/bench/v1/", {["X-API-Key"] = keys[n % #keys + 1]})',
        "end",
    ]
    script = tmp / "many.lua"
    script.write_text("\n".join(lines))
    return script


def redis_bytes_per_subscription(client: redis.Redis, gateway_port: int, seconds: int) -> dict[str, object]:
    """One subscription on a 10,000/min plan, driven past its limit for `seconds`: the Redis
    memory of every key it owns (MEMORY USAGE), which must not grow with the limit."""
    subscription_id = 900_001
    limits = contract.Limits(rate_per_minute=10_000, quota_per_day=10_000_000, quota_per_month=100_000_000)
    grant = contract.SubscriptionGrant(subscription_id=subscription_id, api_id=1, plan_id=2, plan_slug="10k-min",
                                       status="active", limits=limits)
    app = contract.ApplicationRecord(application_id=subscription_id, organization_id=1, name="memory",
                                     subscriptions={"1": grant})
    client.set(contract.app_key(subscription_id), app.to_json())
    key = fast_key()
    record = contract.KeyRecord(key_id=subscription_id, prefix=contract.key_display_prefix(key),
                                application_id=subscription_id, status="active")
    client.set(contract.key_key(contract.key_hash(key, SECRET.encode())), record.to_json())
    client.incr(contract.GENERATION_KEY)
    load = wrk(f"http://127.0.0.1:{gateway_port}/bench/v1/", seconds, {"X-API-Key": key})
    day_counter = contract.quota_day_counter_key(subscription_id, int(time.time()) // 86400)
    names = client.keys(f"*{contract.subscription_hash_tag(subscription_id)}*")
    sizes = {name.decode() if isinstance(name, bytes) else name: int(client.memory_usage(name) or 0) for name in names}
    # The same run is a subscription past its limit with leases on (the default): its
    # answers, 429s included, should come as fast as with leases off (docs/gateway.md).
    return {"bytes": sum(sizes.values()), "keys": sizes, "plan": "10,000/min", "seconds": seconds,
            "admitted": int(client.get(day_counter) or 0),
            "requests_per_s": load["rps"], "p50_ms": load["p50_ms"], "p99_ms": load["p99_ms"]}


def publish_large(client: redis.Redis, upstream_url: str, apis: int, keys: int, tmp: Path) -> Path:
    """1,000 APIs (app i subscribed to API i) and `keys` keys spread over the apps.
    Returns a wrk script that spreads requests over every API, one key of each: the
    question is whether a large published state slows the steady state, not how fast
    cold cache misses are (so the working set is kept to what the warm-up covers)."""
    pipe = client.pipeline(transaction=False)
    limits = contract.Limits(rate_per_second=UNLIMITED, quota_per_day=UNLIMITED, quota_per_month=UNLIMITED)
    for i in range(apis):
        route = contract.RouteRecord(
            api_id=1000 + i, api_slug=f"api{i}", version="v1", version_id=1000 + i, state="published",
            upstreams=(contract.Upstream(url=upstream_url),),
        )
        pipe.hset(contract.ROUTES_KEY, f"api{i}/v1", route.to_json())
        grant = contract.SubscriptionGrant(subscription_id=1000 + i, api_id=1000 + i, plan_id=1, plan_slug="bench",
                                           status="active", limits=limits)
        app = contract.ApplicationRecord(application_id=1000 + i, organization_id=1, name=f"app{i}",
                                         subscriptions={str(1000 + i): grant})
        pipe.set(contract.app_key(1000 + i), app.to_json())
    pipe.execute()
    used: list[tuple[int, str]] = []
    secret = SECRET.encode()
    for start in range(0, keys, 20_000):
        pipe = client.pipeline(transaction=False)
        for n in range(start, min(keys, start + 20_000)):
            i = n % apis
            key = fast_key()
            record = contract.KeyRecord(key_id=n + 10, prefix=contract.key_display_prefix(key),
                                        application_id=1000 + i, status="active")
            pipe.set(contract.key_key(contract.key_hash(key, secret)), record.to_json())
            if n < apis:
                used.append((i, key))
        pipe.execute()
    client.incr(contract.GENERATION_KEY)
    return rotation_script(tmp, "flat.lua", [(f"/api{i}/v1/", key) for i, key in used])


def rotation_script(tmp: Path, name: str, pairs: list[tuple[str, str]]) -> Path:
    """A wrk script that sends each request to the next (path, key) pair, in a stride."""
    lines = ["local pairs = {"]
    lines += [f'  {{"{path}", "{key}"}},' for path, key in pairs]
    lines += [
        "}",
        "local n = 0",
        "request = function()",
        "  n = n + 1",
        "  local p = pairs[(n * 7919) % #pairs + 1]",
        '  return wrk.format("GET", p[1], {["X-API-Key"] = p[2]})',
        "end",
    ]
    script = tmp / name
    script.write_text("\n".join(lines))
    return script


class Gateway:
    def __init__(self, tmp: Path, redis_url: str, policies: str, workers: int, **settings: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PROMETHEUS_"))}
        env.update(
            GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(self.port), GATEWAY_WORKERS=str(workers),
            GATEWAY_REDIS_URL=redis_url, GATEWAY_KEY_HASH_SECRET=SECRET, GATEWAY_POLICIES=policies,
            GATEWAY_SNAPSHOT_PATH=str(tmp / f"snapshot-{self.port}.json"),
            GATEWAY_SPILL_DIR=str(tmp / f"spill-{self.port}"),  # its own: a starting worker adopts its slot's journal
            GATEWAY_LOG_LEVEL="WARNING",
        )
        env.update(settings)
        self.log = (tmp / f"gateway-{self.port}.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout=30)
        import urllib.request

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_tollway/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gateway not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


AUTH_SET = "lifecycle,key_auth,subscription"
POLICY_SETS: tuple[tuple[str, str], ...] = (
    ("none", "none"),
    ("auth", AUTH_SET),
    *((f"auth + {name}", f"{AUTH_SET},{name}") for name in (
        "upstream_headers", "rate_limit", "metering", "ip_rules", "request_validation", "transform", "cache",
        "websocket", "cors", "oauth2")),
    ("all", "all"),
)


def process_cpu_s(root_pid: int) -> float:
    """User + system CPU seconds of a process and its children (the gateway's workers)."""
    total = 0.0
    pids = [root_pid]
    seen: set[int] = set()
    while pids:
        pid = pids.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{pid}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def policy_sets_run(tmp: Path, redis_url: str, url_path: str, seconds: int, workers: int,
                    auth: dict[str, str], rounds: int) -> list[dict[str, object]]:
    """One gateway per policy set, all started first, then the same load against each in
    turn, round after round (so that the box's drift hits every set alike); per set the
    median of its rounds."""
    gateways: list[tuple[str, str, Gateway]] = []
    samples: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in POLICY_SETS}
    try:
        for label, policies in POLICY_SETS:
            gateways.append((label, policies, Gateway(tmp, redis_url, policies, workers)))
        for _, _, gw in gateways:
            wrk(f"http://127.0.0.1:{gw.port}{url_path}", 1, auth)  # warm-up
        for n in range(rounds):
            for label, _, gw in gateways:
                cpu_before = process_cpu_s(gw.proc.pid)
                r = wrk(f"http://127.0.0.1:{gw.port}{url_path}", seconds, auth)
                cpu = process_cpu_s(gw.proc.pid) - cpu_before
                if r.get("non_2xx"):
                    print(f"warning: {label} had {r['non_2xx']} non-2xx responses", file=sys.stderr)
                us = cpu / r["requests"] * 1e6 if r.get("requests") else float("nan")
                samples[label].append((r["rps"], us, r["p99_ms"]))
                print(f"round {n + 1} {label:30}{r['rps']:>9.0f} req/s {us:>7.1f} us CPU/request"
                      f"  load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        for _, _, gw in gateways:
            gw.stop()
    rows: list[dict[str, object]] = []
    for label, policies in POLICY_SETS:
        runs = samples[label]
        rows.append({"set": label, "policies": policies,
                     "rps": statistics.median(r[0] for r in runs),
                     "cpu_us_per_request": round(statistics.median(r[1] for r in runs), 1),
                     "p99_ms": statistics.median(r[2] for r in runs),
                     "rounds": [{"rps": r[0], "cpu_us_per_request": round(r[1], 1)} for r in runs]})
    return rows


def metering_summary(client: redis.Redis) -> dict[str, float]:
    """What the full gateway metered: stream entries (batches) and the requests in them."""
    time.sleep(0.5)  # one flush interval and more: the last requests reach the streams
    entries = requests = 0
    for p in range(contract.DEFAULT_METERING_PARTITIONS):
        for _, fields in client.xrange(contract.metering_stream(p)):
            entries += 1
            requests += len(contract.decode_batch(fields[contract.METERING_BATCH_FIELD.encode()]).requests)
    return {"entries": entries, "requests": requests,
            "requests_per_entry": round(requests / entries, 1) if entries else 0.0}


def machine() -> dict[str, str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    return {"cpus": str(os.cpu_count()), "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version(), "nginx": nginx_version}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--flatness", action="store_true", help="also publish 1,000,000 keys and 1,000 APIs")
    parser.add_argument("--flatness-rounds", type=int, default=3,
                        help="alternating rounds of the large state and the one key (median of each)")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--apis", type=int, default=1_000)
    parser.add_argument("--many-keys", type=int, default=10_000, help="keys in rotation, many-keys shape")
    parser.add_argument("--many-subscriptions", type=int, default=1_000, help="subscriptions, many-keys shape")
    parser.add_argument("--lease-ms", type=int, default=None,
                        help="GATEWAY_RATE_LIMIT_LEASE_MS for the full gateway (default: the gateway's own, 0 = off)")
    parser.add_argument("--memory-seconds", type=int, default=60,
                        help="how long the 10,000/min subscription runs at its limit before its memory is read")
    parser.add_argument("--validation-only", action="store_true",
                        help="only the request_validation run; updates the validation part of gateway.json")
    parser.add_argument("--validation-rounds", type=int, default=4,
                        help="ABBA rounds of the validation run (each mode gets --seconds in total)")
    parser.add_argument("--policy-sets", action="store_true",
                        help="only the hot-key shape, one gateway per policy set (what each policy costs); "
                             "writes bench/results/gateway-policies.json")
    parser.add_argument("--rounds", type=int, default=3, help="--policy-sets: interleaved rounds per set")
    parser.add_argument("--cache", action="store_true",
                        help="also measure cache hits: bench/v2 with policies.cache, against the uncached v1")
    args = parser.parse_args()
    for tool in ("nginx", "wrk", "hey", "redis-server"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is missing: run `make bench`, which installs it", file=sys.stderr)
            return 1

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="tollway-bench-"))
    redis_server = RedisServer(appendonly=False).start()
    upstream_port, nginx_port = free_port(), free_port()
    nginx = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(nginx_conf(tmp, upstream_port, nginx_port))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    gateways: list[Gateway] = []
    plain: subprocess.Popen[bytes] | None = None
    try:
        wait_for_port(upstream_port)
        wait_for_port(nginx_port)
        client = redis.Redis.from_url(redis_server.url)
        key = publish_basic(client, f"http://127.0.0.1:{upstream_port}")
        publish_validation(client, f"http://127.0.0.1:{upstream_port}")
        if args.validation_only:
            full = Gateway(tmp, redis_server.url, "all", args.workers)
            gateways.append(full)
            validation = validation_run(full.port, args.seconds, {"X-API-Key": key}, tmp, args.validation_rounds,
                                        full.proc.pid)
            validation["loadavg_1m"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
            RESULTS.mkdir(parents=True, exist_ok=True)
            path = RESULTS / "gateway.json"
            current = json.loads(path.read_text()) if path.exists() else {}
            path.write_text(json.dumps({**current, "validation": validation}, indent=2) + "\n")
            print_validation(validation)
            return 0
        if args.policy_sets:
            rows = policy_sets_run(tmp, redis_server.url, "/bench/v1/", args.seconds, args.workers,
                                   {"X-API-Key": key}, args.rounds)
            none_us = float(rows[0]["cpu_us_per_request"])  # type: ignore[arg-type]
            print(f"{'median of ' + str(args.rounds) + ' rounds':32}{'req/s':>9} {'CPU us/req':>11} {'vs none':>8}")
            for row in rows:
                us = float(row["cpu_us_per_request"])  # type: ignore[arg-type]
                print(f"{row['set']:32}{row['rps']:>9.0f} {us:>11.1f} {us - none_us:>+8.1f}")
            base = {r["set"]: r for r in rows}
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / "gateway-policies.json").write_text(json.dumps({
                "command": " ".join([os.path.relpath(sys.executable, ROOT), "bench/gateway.py", *sys.argv[1:]]),
                "load": f"wrk -t1 -c50 -d{args.seconds}s, one hot key, {args.workers} workers",
                "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
                "sets": rows,
                "ratio_all_vs_none": round(float(base["all"]["rps"]) / float(base["none"]["rps"]), 3),  # type: ignore[arg-type]
            }, indent=2) + "\n")
            return 0
        many_script = publish_many(client, args.many_subscriptions, args.many_keys, tmp)
        plain_port = free_port()
        plain = subprocess.Popen([sys.executable, str(ROOT / "bench" / "plain_proxy.py"), "--port", str(plain_port),
                                  "--upstream", f"http://127.0.0.1:{upstream_port}"], start_new_session=True)
        wait_for_port(plain_port)
        off = Gateway(tmp, redis_server.url, "none", args.workers)
        gateways.append(off)
        leases = {} if args.lease_ms is None else {"GATEWAY_RATE_LIMIT_LEASE_MS": str(args.lease_ms)}
        full = Gateway(tmp, redis_server.url, "all", args.workers, **leases)
        gateways.append(full)
        auth = {"X-API-Key": key}
        s = args.seconds
        # Warm-up: fills connection pools and caches so that the first measured seconds are not cold.
        for url in (f"http://127.0.0.1:{off.port}/bench/v1/", f"http://127.0.0.1:{full.port}/bench/v1/"):
            wrk(url, 2, auth)
            wrk(url, 2, {}, many_script)  # every worker sees (and caches) the many keys
        results = {
            "upstream": wrk(f"http://127.0.0.1:{upstream_port}/bench/v1/", s, {}),
            "nginx": wrk(f"http://127.0.0.1:{nginx_port}/bench/v1/", s, {}),
            "gateway_off": wrk(f"http://127.0.0.1:{off.port}/bench/v1/", s, auth),
            "gateway_full": wrk(f"http://127.0.0.1:{full.port}/bench/v1/", s, auth),
            "many_keys_gateway_off": wrk(f"http://127.0.0.1:{off.port}/bench/v1/", s, {}, many_script),
            "many_keys_gateway_full": wrk(f"http://127.0.0.1:{full.port}/bench/v1/", s, {}, many_script),
        }
        full_statuses = scrape_statuses(full.port)
        for name, r in results.items():
            if r.get("non_2xx"):
                print(f"warning: {name} had {r['non_2xx']} non-2xx responses", file=sys.stderr)
        shaped: dict[str, object] = {
            k: {m: v[m] for m in ("rps", "p50_ms", "p99_ms")} for k, v in results.items() if not k.startswith("many")
        }
        shaped["ratios"] = {
            "full_vs_nginx": round(results["gateway_full"]["rps"] / results["nginx"]["rps"], 3),
            "full_vs_off": round(results["gateway_full"]["rps"] / results["gateway_off"]["rps"], 3),
        }
        shaped["many_keys"] = {
            "keys": args.many_keys,
            "subscriptions": args.many_subscriptions,
            "gateway_off": {m: results["many_keys_gateway_off"][m] for m in ("rps", "p50_ms", "p99_ms")},
            "gateway_full": {m: results["many_keys_gateway_full"][m] for m in ("rps", "p50_ms", "p99_ms")},
            "ratios": {
                "full_vs_nginx": round(results["many_keys_gateway_full"]["rps"] / results["nginx"]["rps"], 3),
                "full_vs_off": round(
                    results["many_keys_gateway_full"]["rps"] / results["many_keys_gateway_off"]["rps"], 3
                ),
            },
        }

        shaped["validation"] = validation_run(full.port, s, auth, tmp, args.validation_rounds, full.proc.pid)

        rate = results["gateway_full"]["rps"] / 2
        # Reference only (not in gateway.json): one process of the plainest aiohttp proxy.
        plain_result = wrk(f"http://127.0.0.1:{plain_port}/bench/v1/", s, {})
        plain.terminate()
        plain.wait(timeout=10)
        # The same proxy served by granian (RSGI) instead of aiohttp's server: issue 16's question.
        granian_port = free_port()
        granian = subprocess.Popen([sys.executable, str(ROOT / "bench" / "plain_proxy.py"), "--port",
                                    str(granian_port), "--upstream", f"http://127.0.0.1:{upstream_port}",
                                    "--server", "granian"], start_new_session=True)
        try:
            wait_for_port(granian_port)
            wrk(f"http://127.0.0.1:{granian_port}/bench/v1/", 1, {})  # its worker starts the client lazily
            granian_result = wrk(f"http://127.0.0.1:{granian_port}/bench/v1/", s, {})
        finally:
            os.killpg(granian.pid, signal.SIGTERM)  # granian's master and its worker
            granian.wait(timeout=10)
        paced_upstream = wrk_paced(f"http://127.0.0.1:{upstream_port}/bench/v1/", s, rate, {}, tmp)
        paced_full = wrk_paced(f"http://127.0.0.1:{full.port}/bench/v1/", s, rate, auth, tmp)
        burst_upstream = hey_paced(f"http://127.0.0.1:{upstream_port}/bench/v1/", s, rate, {})
        burst_full = hey_paced(f"http://127.0.0.1:{full.port}/bench/v1/", s, rate, auth)
        metering = metering_summary(client)
        shaped["added_p99_ms"] = round(paced_full["p99_ms"] - paced_upstream["p99_ms"], 3)
        memory = redis_bytes_per_subscription(client, full.port, args.memory_seconds)
        shaped["redis_bytes_per_subscription"] = memory["bytes"]
        extra: dict[str, object] = {
            "machine": machine(),
            # Other work on the box skews everything; the 1-minute load average says how much.
            "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
            "command": " ".join([os.path.relpath(sys.executable, ROOT), "bench/gateway.py", *sys.argv[1:]]),
            "load": f"wrk -t1 -c50 -d{s}s --latency",
            "workers": args.workers,
            "raw": results,
            "gateway_full_metrics": full_statuses,
            # Every request of the full gateway (warm-up, wrk, paced) is metered, in batches.
            "gateway_full_metering": metering,
            "redis_bytes_per_subscription": memory,
            "lease_ms": "gateway default (250)" if args.lease_ms is None else args.lease_ms,
            "reference_plain_aiohttp_proxy_1_process": plain_result,
            "reference_plain_proxy_granian_1_process": granian_result,
            "paced": {"load": f"wrk -t1 -c{PACED_CONNECTIONS}, exponential think times (wrk_paced)",
                      "upstream": paced_upstream, "gateway_full": paced_full,
                      "added_p99_ms": round(paced_full["p99_ms"] - paced_upstream["p99_ms"], 3)},
            # The earlier method: hey -c10 -q rate/10, whose workers fire in lockstep (bursts of 10).
            "paced_hey_bursts_of_10": {"upstream": burst_upstream, "gateway_full": burst_full,
                                       "added_p99_ms": round(burst_full["p99_ms"] - burst_upstream["p99_ms"], 3)},
        }
        if args.cache:
            cached = contract.RouteRecord(
                api_id=1, api_slug="bench", version="v2", version_id=2, state="published",
                upstreams=(contract.Upstream(url=f"http://127.0.0.1:{upstream_port}"),),
                policies=VersionPolicies(cache=ResponseCache(ttl_s=60, default_ttl_s=60)),
            )
            client.hset(contract.ROUTES_KEY, contract.route_field("bench", "v2"), cached.to_json())
            client.incr(contract.GENERATION_KEY)
            client.publish(contract.INVALIDATION_CHANNEL, contract.Invalidation(kind="route", id="bench/v2").to_json())
            time.sleep(1)
            wrk(f"http://127.0.0.1:{full.port}/bench/v2/", 2, auth)  # every worker stores the one resource
            hits = wrk(f"http://127.0.0.1:{full.port}/bench/v2/", s, auth)
            extra["cache"] = {
                "gateway_full_cache_hit": hits,
                "ratio_vs_gateway_full": round(hits["rps"] / results["gateway_full"]["rps"], 3),
            }
        if args.flatness:
            script = publish_large(client, f"http://127.0.0.1:{upstream_port}", args.apis, args.keys, tmp)
            # The question is the published state's size, so both runs make the same Redis calls
            # per request: leases off in both (or --lease-ms in both). With the default leases the
            # one hot key would lease its admissions while the 1,000 subscriptions of the large
            # run (a few requests a second each) make a limiter call per request: that difference
            # is the traffic's shape, which the many-keys shape measures, not the state's size.
            # The ratio against the default full gateway is kept too (ratio_against_leased_one_key).
            same = {"GATEWAY_RATE_LIMIT_LEASE_MS": str(args.lease_ms or 0)}
            flat_gw = Gateway(tmp, redis_server.url, "all", args.workers, **same)
            one_gw = Gateway(tmp, redis_server.url, "all", args.workers, **same)
            gateways += [flat_gw, one_gw]
            # The same client on both sides: wrk's Lua request() costs the client more than a
            # fixed request, and wrk shares the cores, so the one key is sent through the same
            # script shape (a list of one path and key) as the large run's 1,000.
            one_script = rotation_script(tmp, "one.lua", [("/bench/v1/", key)])
            wrk(f"http://127.0.0.1:{flat_gw.port}/", 10, {}, script)  # warm every worker's cache
            wrk(f"http://127.0.0.1:{one_gw.port}/", 2, {}, one_script)
            # Rounds alternate between the two gateways (the box drifts): the ratio is that of
            # the medians, and each round's ratio is kept.
            larges: list[dict[str, float]] = []
            ones: list[dict[str, float]] = []
            for n in range(args.flatness_rounds):
                pair = [("large", flat_gw, script), ("one", one_gw, one_script)]
                for name, gw, sc in (pair if n % 2 == 0 else pair[::-1]):
                    (larges if name == "large" else ones).append(wrk(f"http://127.0.0.1:{gw.port}/", s, {}, sc))
            large = sorted(larges, key=lambda r: r["rps"])[len(larges) // 2]
            one = sorted(ones, key=lambda r: r["rps"])[len(ones) // 2]
            one_leased = wrk(f"http://127.0.0.1:{full.port}/", s, {}, one_script)
            extra["flatness"] = {
                "one_key_one_api": one,
                "large": large,
                "one_key_one_api_default_leases": one_leased,
                "keys": args.keys,
                "apis": args.apis,
                "lease_ms": same["GATEWAY_RATE_LIMIT_LEASE_MS"],
                "working_set": "one key per API, 1,000 keys, cached after a 10 s warm-up",
                "rounds": [round(a["rps"] / b["rps"], 3) for a, b in zip(larges, ones, strict=True)],
                "ratio": round(large["rps"] / one["rps"], 3),
                "ratio_against_leased_one_key": round(large["rps"] / one_leased["rps"], 3),
            }
    finally:
        if plain is not None and plain.poll() is None:
            plain.terminate()
            plain.wait(timeout=10)
        for gw in gateways:
            gw.stop()
        nginx.terminate()
        nginx.wait(timeout=10)
        redis_server.cleanup()
        if not os.environ.get("BENCH_KEEP_TMP"):  # BENCH_KEEP_TMP=1 keeps the gateways' logs for a post-mortem
            shutil.rmtree(tmp, ignore_errors=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gateway.json").write_text(json.dumps(shaped, indent=2) + "\n")
    (RESULTS / "gateway-extra.json").write_text(json.dumps(extra, indent=2) + "\n")
    print(f"{'':14}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name in ("upstream", "nginx", "gateway_off", "gateway_full"):
        r = results[name]
        print(f"{name:14}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    for name in ("many_keys_gateway_off", "many_keys_gateway_full"):
        r = results[name]
        print(f"{name:14}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    for name, r in (("plain_aiohttp", plain_result), ("plain_granian", granian_result)):
        print(f"{name:14}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}  (reference, 1 process)")
    ratios = shaped["ratios"]
    print(f"full / nginx = {ratios['full_vs_nginx']:.3f} (goal >= 0.25)")  # type: ignore[index]
    print(f"full / off   = {ratios['full_vs_off']:.3f} (goal >= 0.85)")  # type: ignore[index]
    many = shaped["many_keys"]["ratios"]  # type: ignore[index]
    print(f"many keys: full / nginx = {many['full_vs_nginx']:.3f}, full / off = {many['full_vs_off']:.3f}")
    print(f"Redis bytes per subscription (10,000/min, {args.memory_seconds} s at its limit): "
          f"{shaped['redis_bytes_per_subscription']} (goal <= 1024)")
    print(f"  that subscription past its limit: {memory['requests_per_s']:.0f} answers/s, "
          f"{memory['admitted']} admitted, p50 {memory['p50_ms']:.2f} ms, p99 {memory['p99_ms']:.2f} ms")
    paced = extra["paced"]
    print(f"paced at {paced_full['rate']} req/s: upstream p99 {paced_upstream['p99_ms']:.2f} ms, "
          f"gateway_full p99 {paced_full['p99_ms']:.2f} ms, added {paced['added_p99_ms']:.2f} ms (goal <= 2), "  # type: ignore[index]
          f"{paced_upstream['rps']:.0f} and {paced_full['rps']:.0f} req/s achieved")
    bursts = extra["paced_hey_bursts_of_10"]
    print(f"  the same rate as hey's bursts of 10: upstream p99 {burst_upstream['p99_ms']:.2f} ms, gateway_full p99 "
          f"{burst_full['p99_ms']:.2f} ms, added {bursts['added_p99_ms']:.2f} ms")  # type: ignore[index]
    print(f"metering: {metering['requests']:.0f} requests in {metering['entries']:.0f} stream entries "
          f"({metering['requests_per_entry']} per batch)")
    print_validation(shaped["validation"])  # type: ignore[arg-type]
    if "cache" in extra:
        c = extra["cache"]
        print(f"cache hits: {c['gateway_full_cache_hit']['rps']:.0f} req/s = {c['ratio_vs_gateway_full']:.3f} "  # type: ignore[index]
              "x gateway_full (uncached)")
    if "flatness" in extra:
        f = extra["flatness"]
        print(f"flatness: {f['keys']} keys / {f['apis']} APIs {f['large']['rps']:.0f} req/s vs one key "  # type: ignore[index]
              f"{f['one_key_one_api']['rps']:.0f} req/s = {f['ratio']:.3f} (goal >= 0.9; both with leases at "  # type: ignore[index]
              f"{f['lease_ms']} ms); against the default full gateway's leased key "  # type: ignore[index]
              f"{f['one_key_one_api_default_leases']['rps']:.0f} req/s = {f['ratio_against_leased_one_key']:.3f}")  # type: ignore[index]
    print(f"written: {RESULTS / 'gateway.json'}, {RESULTS / 'gateway-extra.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
