"""What each policy costs on the request path, in microseconds, without the HTTP layer.

``python bench/policy_costs.py`` builds the gateway's real pipeline (gateway/app.py's
``Gateway``: its State, its Redis connections, every policy from the registry) for each
policy set of ``bench/gateway.py --policy-sets``, against a real Redis holding the
bench's API, key and plan, and drives requests (``--concurrency`` in flight, 25 by
default) through everything but the sockets: the head checks (``Gateway.admit``), then
the access, admit, response and log phases. The same aiohttp request object is reused
(its headers parsed once), and the figure is this process's CPU time per request, not
wall time (with admission leases off every limited request waits for Redis, which is
Redis's time): the gateway's own work per request, which a loaded box disturbs far less
than req/s. The sets run interleaved, round after round, and each reports its median.
``--sets`` runs only the sets named (with none and auth).

What this leaves out, and bench/gateway.py --policy-sets catches: the HTTP side of the
headers a policy adds (X-Tollway-* upstream, RateLimit-* downstream), background tasks
(the metering flush, lease settlement) and Redis's own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="tollway-policy-costs-prom-"))

import redis  # noqa: E402
from aiohttp.test_utils import make_mocked_request  # noqa: E402
from multidict import CIMultiDict  # noqa: E402

from gateway.app import Gateway  # noqa: E402
from gateway.config import load_config  # noqa: E402
from gateway.exceptions import Reject  # noqa: E402
from gateway.types import RequestContext  # noqa: E402
from tests.services import RedisServer, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _bench_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_gateway", ROOT / "bench" / "gateway.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def measure(gateway: Gateway, key: str, requests: int, concurrency: int = 1) -> float:
    """Microseconds of this process's CPU per request through the head checks and every
    phase, ``concurrency`` requests in flight (as a loaded worker has them: the Redis
    client then sends several calls in one write, as it does under load). CPU, not wall
    time: with admission leases off the limiter waits for Redis on every request, and
    that wait is Redis's time, not the gateway's."""
    request = make_mocked_request("GET", "/bench/v1/", headers=CIMultiDict({"X-API-Key": key, "Host": "bench"}))
    pipeline = gateway.pipeline
    each = max(1, requests // concurrency)

    async def client() -> None:
        for _ in range(each):
            ctx = RequestContext(request=request, request_id="r", event_id=os.urandom(16).hex())
            try:
                gateway.admit(ctx, "/bench/v1/")
                await pipeline.access(ctx)
                pipeline.admit(ctx)
                pipeline.response(ctx)
                ctx.status = 200
            except Reject as reject:
                raise RuntimeError(f"the bench request was refused: {reject.status} {reject.problem}") from None
            pipeline.log(ctx)

    started = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return (time.process_time() - started) / (each * concurrency) * 1e6


async def run(args: argparse.Namespace) -> dict[str, object]:
    bench = _bench_module()
    server = RedisServer(appendonly=False).start()
    tmp = Path(tempfile.mkdtemp(prefix="tollway-policy-costs-"))
    gateways: list[tuple[str, str, Gateway]] = []
    try:
        client = redis.Redis.from_url(server.url)
        key = bench.publish_basic(client, "http://127.0.0.1:9")  # never called
        wanted = {s.strip() for s in args.sets.split(",") if s.strip()} | {"none", "auth"}
        for label, policies in bench.POLICY_SETS:
            if args.sets and label not in wanted:
                continue
            env = {
                "GATEWAY_REDIS_URL": server.url, "GATEWAY_KEY_HASH_SECRET": bench.SECRET,
                "GATEWAY_POLICIES": policies, "GATEWAY_PORT": str(free_port()),
                "GATEWAY_SPILL_DIR": str(tmp / label.replace(" ", "")),
                "GATEWAY_SNAPSHOT_PATH": str(tmp / f"{label.replace(' ', '')}.json"),
            }
            gateway = Gateway(load_config(env))
            await gateway.start()
            gateways.append((label, policies, gateway))
        for _, _, gateway in gateways:
            while not gateway.state.ready:
                await asyncio.sleep(0.05)
            await measure(gateway, key, 2000)  # warm-up: caches filled, a lease in hand
        samples: dict[str, list[float]] = {label: [] for label, _, _ in gateways}
        for _ in range(args.rounds):
            for label, _, gateway in gateways:
                samples[label].append(await measure(gateway, key, args.requests, args.concurrency))
                await asyncio.sleep(0.01)  # background tasks (metering flush, lease sweep) get their turn
    finally:
        for _, _, gateway in gateways:
            await gateway.stop()
        server.cleanup()
    none = statistics.median(samples["none"])
    auth = statistics.median(samples["auth"])
    rows = []
    for label, policies, _ in gateways:
        us = statistics.median(samples[label])
        rows.append({"set": label, "policies": policies, "us_per_request": round(us, 2),
                     "vs_none": round(us - none, 2), "vs_auth": round(us - auth, 2),
                     "rounds": [round(s, 2) for s in samples[label]]})
    return {"command": " ".join(["bench/policy_costs.py", *sys.argv[1:]]), "requests_per_round": args.requests,
            "concurrency": args.concurrency,
            "rounds": args.rounds, "loadavg_1m": round(os.getloadavg()[0], 2), "sets": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per set and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=25, help="requests in flight (the bench's wrk runs 50)")
    parser.add_argument("--sets", default="", help="sets to run, comma-separated (default: all)")
    args = parser.parse_args()
    import uvloop  # the worker's loop (gateway/__main__.py): asyncio's own costs more per call

    result = uvloop.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "policy-costs.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'set':30}{'us/request':>11}{'vs none':>9}{'vs auth':>9}   (load {result['loadavg_1m']})")
    for row in result["sets"]:  # type: ignore[attr-defined]
        print(f"{row['set']:30}{row['us_per_request']:>11.2f}{row['vs_none']:>+9.2f}{row['vs_auth']:>+9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
