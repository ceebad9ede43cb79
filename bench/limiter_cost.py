"""What one rate-limiter call costs Redis, in microseconds of Redis CPU per call.

``python bench/limiter_cost.py`` starts its own Redis (AOF off, as bench/gateway.py does;
``--aof`` for the production setting) and drives the real rate_limit policy
(gateway/policies/rate_limit/policy.py: ``RateLimitPolicy.access``, leases off: the call
every request of a quiet subscription makes, leases on or not; its real Redis handle,
limiter.lua) with ``--concurrency`` calls in flight, in
the two traffic shapes of bench/gateway.py:

* **hot**: one subscription, bench/gateway.py's plan (per-second rate, day and month
  quotas, none reached);
* **many**: 1,000 subscriptions in rotation, bench/gateway.py's many-keys plan (both
  rates, both quotas, none reached).

For each case it reports, from Redis itself: ``INFO commandstats``' usec_per_call for
``evalsha`` (the script's run time, the commands it calls included) and Redis's own CPU
(``INFO cpu``, user + system, which adds reading, parsing and answering the calls) per
call. Both are CPU figures, which a loaded box disturbs far less than req/s; the cases
run interleaved, round after round, and each reports its median.

``--baseline FILE|GIT-REF`` also measures another limiter.lua in the same run, under the
same policy code (a git ref means that commit's gateway/policies/rate_limit/limiter.lua),
so before and after come from one run. Writes bench/results/limiter-cost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="tollway-limiter-cost-prom-"))

import redis  # noqa: E402

from gateway import contract  # noqa: E402
from gateway.exceptions import Reject  # noqa: E402
from gateway.policies.rate_limit import policy as rate_limit  # noqa: E402
from gateway.policies.rate_limit.schema import RateLimitSettings  # noqa: E402
from gateway.redis_mux import MuxRedis  # noqa: E402
from gateway.state import RedisHealth  # noqa: E402
from gateway.types import RequestContext  # noqa: E402
from tests.services import RedisServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"
UNLIMITED = 1_000_000_000  # bench/gateway.py's "enforced, never reached"
# bench/gateway.py's plans: publish_basic (one hot key) and publish_many (many keys).
HOT = contract.Limits(rate_per_second=UNLIMITED, quota_per_day=UNLIMITED, quota_per_month=UNLIMITED)
MANY = contract.Limits(rate_per_second=UNLIMITED, rate_per_minute=100_000_000, quota_per_day=UNLIMITED,
                       quota_per_month=UNLIMITED)
SHAPES = {"hot": (HOT, 1), "many": (MANY, 1000)}


def script_text(spec: str) -> str:
    path = Path(spec)
    if path.is_file():
        return path.read_text()
    return subprocess.run(["git", "show", f"{spec}:gateway/policies/rate_limit/limiter.lua"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout


def redis_cpu_us(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6


async def drive(policy: rate_limit.RateLimitPolicy, limits: contract.Limits, subscriptions: int, first_id: int,
                calls: int, concurrency: int) -> None:
    """`calls` admissions through RateLimitPolicy.access, `concurrency` in flight, the
    subscriptions taken in rotation."""
    grants = [contract.SubscriptionGrant(subscription_id=first_id + i, api_id=1, plan_id=1, plan_slug="bench",
                                         status="active", limits=limits) for i in range(subscriptions)]
    counter = iter(range(calls))

    async def worker() -> None:
        for n in counter:
            grant = grants[n % subscriptions]
            ctx = RequestContext(request=None, request_id="r", event_id="e")  # type: ignore[arg-type]
            ctx.grant, ctx.limits = grant, limits
            try:
                await policy.access(ctx)
            except Reject as reject:
                raise RuntimeError(f"the limiter refused a bench call: {reject.problem}") from None
            if ctx.limit_state is None or ctx.limit_state.local:
                raise RuntimeError("the limiter did not answer from Redis")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    scripts = {"current": rate_limit.LUA}
    if args.baseline:
        scripts = {"baseline": script_text(args.baseline), **scripts}
    server = RedisServer(appendonly=args.aof).start()
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        client = redis.Redis.from_url(server.url)
        handle = MuxRedis(server.url, timeout=5.0)
        # One policy per script: a policy keeps each subscription's encoded EVALSHA (its sha).
        policies = {v: rate_limit.RateLimitPolicy(handle, RedisHealth(), RateLimitSettings(lease_ms=0))
                    for v in scripts}
        original = rate_limit.LUA
        try:
            for round_no in range(args.rounds + 1):  # round 0 warms up: scripts loaded, state created
                for v, (variant, text) in enumerate(scripts.items()):
                    rate_limit.LUA = text  # the policy reads the module's script at each call
                    client.script_load(text)  # no NOSCRIPT retries inside the measured calls
                    for s, (shape, (limits, subscriptions)) in enumerate(SHAPES.items()):
                        first_id = 1_000_000 * (1 + v) + 10_000 * s  # no state shared between cases
                        client.config_resetstat()
                        cpu = redis_cpu_us(client)
                        await drive(policies[variant], limits, subscriptions, first_id, args.calls,
                                    args.concurrency)
                        cpu = redis_cpu_us(client) - cpu
                        stats = client.info("commandstats")["cmdstat_evalsha"]
                        if stats["calls"] != args.calls:
                            raise RuntimeError(f"expected {args.calls} EVALSHA calls, Redis saw {stats['calls']}")
                        if round_no:
                            samples.setdefault((variant, shape), []).append(
                                (float(stats["usec_per_call"]), cpu / args.calls))
        finally:
            rate_limit.LUA = original
            await handle.close()
    finally:
        server.cleanup()
    rows = []
    for (variant, shape), values in samples.items():
        rows.append({
            "script": variant, "shape": shape,
            "evalsha_usec_per_call": round(statistics.median(v[0] for v in values), 2),
            "redis_cpu_us_per_call": round(statistics.median(v[1] for v in values), 2),
            "rounds": [[round(a, 2), round(b, 2)] for a, b in values],
        })
    return {"command": " ".join(["bench/limiter_cost.py", *sys.argv[1:]]), "calls_per_case": args.calls,
            "concurrency": args.concurrency, "rounds": args.rounds, "aof": args.aof,
            "baseline": args.baseline, "loadavg_1m": round(os.getloadavg()[0], 2), "cases": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="limiter calls per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=25,
                        help="calls in flight (one of 2 gateway workers under wrk -c50)")
    parser.add_argument("--aof", action="store_true", help="Redis with appendonly yes (everysec), as in production")
    parser.add_argument("--baseline", default="", help="another limiter.lua to compare: a file or a git ref")
    args = parser.parse_args()
    started = time.monotonic()
    result = asyncio.run(run(args))
    result["seconds"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "limiter-cost.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'script':10}{'shape':7}{'evalsha us/call':>17}{'Redis CPU us/call':>19}   "
          f"(load {result['loadavg_1m']}, {result['seconds']} s)")
    for row in result["cases"]:
        print(f"{row['script']:10}{row['shape']:7}{row['evalsha_usec_per_call']:>17.2f}"
              f"{row['redis_cpu_us_per_call']:>19.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
