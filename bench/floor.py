"""How close full/off can come on this machine: throughput and CPU per request by process
for policy sets from none to all, in both traffic shapes, in one run.

``python bench/floor.py`` starts bench/gateway.py's Redis (AOF off), nginx and one
gateway per case (2 workers, `GATEWAY_WORKERS` as bench/gateway.py), publishes
bench/gateway.py's one hot key and its many-keys rotation (10,000 keys over 1,000
subscriptions), then drives each case with ``wrk -t1 -c50`` in both shapes, round after
round, the order reversed every other round. Per case and shape: the median req/s, its
ratio to policies off in the same shape, and the CPU per request of the gateway (its
workers), Redis, nginx and wrk (from /proc and the child's rusage).

The cases:

* ``off``: no policy (bench/gateway.py's gateway_off);
* ``auth``: lifecycle, key_auth, subscription;
* ``all - rate_limit - metering``: every policy but the two that do Redis or disk work on
  a request's path;
* ``all - metering``, ``all - rate_limit``;
* ``all``: every policy (bench/gateway.py's gateway_full);
* ``all, leases off``: the same with `GATEWAY_RATE_LIMIT_LEASE_MS=0`;
* ``all, leases off, no-op script``: the same, from a copy of gateway/ whose limiter.lua
  admits at once and returns a fixed reply of the real one's shape. What is left is the
  limiter's round trip to Redis: the floor of any per-request limiter call, however cheap
  its script.

The question it answers: which part of the gap between every policy and none is the
policies' work, and which is there before any of it. Writes bench/results/floor.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis

# bench/gateway.py under another name: "gateway" is the package it starts and imports.
_spec = importlib.util.spec_from_file_location("bench_gateway", Path(__file__).resolve().parent / "gateway.py")
assert _spec is not None
assert _spec.loader is not None
bg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bg)

from gateway.policies.registry import POLICY_NAMES  # noqa: E402  (bench/gateway.py put the repository on the path)

ROOT = bg.ROOT
RESULTS = ROOT / "bench" / "results"
NO_LEASES = {"GATEWAY_RATE_LIMIT_LEASE_MS": "0"}
# Admit at once, with the reply's shape unchanged (limiter.lua's header says what each
# value is); 'r' (return a lease) cannot happen with leases off.
NOOP_LIMITER = """-- bench/floor.py: admits at once; only the round trip is left
local out = {0, 0, 1, 1000000, 0, 1000000, 0, 1, 86400, 1, 2592000}
if ARGV[16] == nil then out[12], out[13] = ARGV[2], ARGV[3] end
return out
"""


def minus(*names: str) -> str:
    return ",".join(n for n in POLICY_NAMES if n not in names)


CASES: tuple[tuple[str, str, dict[str, str], bool], ...] = (
    ("off", "none", {}, False),
    ("auth", bg.AUTH_SET, {}, False),
    ("all - rate_limit - metering", minus("rate_limit", "metering"), {}, False),
    ("all - metering", minus("metering"), {}, False),
    ("all - rate_limit", minus("rate_limit"), {}, False),
    ("all", "all", {}, False),
    ("all, leases off", "all", NO_LEASES, False),
    ("all, leases off, no-op script", "all", NO_LEASES, True),
)


def noop_tree(tmp: Path) -> Path:
    """A copy of the gateway package whose limiter script only answers."""
    tree = tmp / "noop-tree"
    shutil.copytree(ROOT / "gateway", tree / "gateway", ignore=shutil.ignore_patterns("__pycache__"))
    for entry in ROOT.iterdir():  # the rest as it is (tollway/, the venv, ...)
        if entry.name != "gateway":
            (tree / entry.name).symlink_to(entry)
    (tree / "gateway" / "policies" / "rate_limit" / "limiter.lua").write_text(NOOP_LIMITER)
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="per case, shape and round")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--only", default="", help="a ';'-separated list of case names")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c[0] in args.only.split(";")]
    tmp = Path(tempfile.mkdtemp(prefix="tollway-floor-"))
    redis_server = bg.RedisServer(appendonly=False).start()
    upstream_port, nginx_port = bg.free_port(), bg.free_port()
    nginx = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(bg.nginx_conf(tmp, upstream_port, nginx_port))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    gateways: dict[str, bg.Gateway] = {}
    load_before = os.getloadavg()[0]
    try:
        bg.wait_for_port(upstream_port)
        client = redis.Redis.from_url(redis_server.url)
        redis_pid = int(client.info()["process_id"])
        key = bg.publish_basic(client, f"http://127.0.0.1:{upstream_port}")
        many = bg.publish_many(client, 1000, 10_000, tmp)
        shapes: tuple[tuple[str, dict[str, str], Path | None], ...] = (
            ("hot", {"X-API-Key": key}, None), ("many", {}, many))
        tree = noop_tree(tmp) if any(c[3] for c in cases) else None
        for name, policies, settings, noop in cases:
            bg.ROOT = tree if noop and tree else ROOT  # Gateway starts `python -m gateway` in bg.ROOT
            gateways[name] = bg.Gateway(tmp, redis_server.url, policies, args.workers, **settings)
        bg.ROOT = ROOT
        for gw in gateways.values():
            for _, headers, script in shapes:
                bg.wrk(f"http://127.0.0.1:{gw.port}/bench/v1/", 2, headers, script)  # warm-up
        samples: dict[tuple[str, str], list[dict[str, float]]] = {}
        for n in range(args.rounds):
            order = list(gateways) if n % 2 == 0 else list(reversed(gateways))
            for name in order:
                gw = gateways[name]
                for shape, headers, script in shapes:
                    watched = {"gateway": gw.proc.pid, "redis": redis_pid, "nginx": nginx.pid}
                    before = {k: bg.process_cpu_s(pid) for k, pid in watched.items()}
                    t0 = os.times()
                    r = bg.wrk(f"http://127.0.0.1:{gw.port}/bench/v1/", args.seconds, headers, script)
                    t1 = os.times()
                    after = {k: bg.process_cpu_s(pid) for k, pid in watched.items()}
                    requests = r["requests"] or 1
                    row = {k: (after[k] - before[k]) / requests * 1e6 for k in watched}
                    row["wrk"] = (t1.children_user + t1.children_system - t0.children_user
                                  - t0.children_system) / requests * 1e6
                    row["rps"] = r["rps"]
                    row["non_2xx"] = r.get("non_2xx", 0)
                    samples.setdefault((name, shape), []).append(row)
                    print(f"round {n + 1} {name:32} {shape:5} {r['rps']:8.0f} req/s  "
                          + " ".join(f"{k} {row[k]:.1f}" for k in ("gateway", "redis", "nginx", "wrk"))
                          + f"  load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        for gw in gateways.values():
            gw.stop()
        os.killpg(nginx.pid, 15)
        redis_server.stop()
    result: dict[str, Any] = {"load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
                              "rounds": args.rounds, "seconds": args.seconds, "workers": args.workers,
                              "unit": "median req/s; µs of CPU per request by process", "cases": {}}
    print("\nmedians: req/s, ratio to off in the same shape, µs of CPU per request (gateway, redis, nginx, wrk)")
    for shape in ("hot", "many"):
        off = statistics.median(s["rps"] for s in samples[("off", shape)]) if ("off", shape) in samples else None
        for name, *_ in cases:
            rows = samples[(name, shape)]
            med = {k: statistics.median(s[k] for s in rows) for k in rows[0]}
            ratio = round(med["rps"] / off, 3) if off else None
            result["cases"].setdefault(name, {})[shape] = {
                "rps": round(med["rps"]), "ratio_to_off": ratio, "non_2xx": sum(s["non_2xx"] for s in rows),
                "cpu_us_per_request": {k: round(med[k], 1) for k in ("gateway", "redis", "nginx", "wrk")},
                "rps_by_round": [round(s["rps"]) for s in rows]}
            print(f"{shape:5} {name:32} {med['rps']:8.0f}  {ratio if ratio is not None else '':>6}  "
                  + " ".join(f"{med[k]:6.1f}" for k in ("gateway", "redis", "nginx", "wrk")))
    print(f"load {result['load_before']} before, {result['load_after']} after")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "floor.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"written: {RESULTS / 'floor.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
