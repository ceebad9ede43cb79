"""Which Redis client should the gateway's hot path use? ``python bench/redis_clients.py``.

The gateway's workload, per worker process: 50 requests in flight at once; each runs the
limiter's EVALSHA (three counters, every key in KEYS, one hash tag), and a flusher writes
the metering records in pipelined batches of XADDs to a partition stream, as the metering
policy does. Each candidate runs the same loop for ``--seconds`` against the same
redis-server (and, with ``--cluster``, against a 3-master Redis Cluster the script starts);
we report requests per second and the p50/p99 of one request's EVALSHA.

Candidates: MuxRedis (gateway/redis_mux.py; on a cluster its ClusterMux), redis-py's
asyncio Redis and RedisCluster, coredis (Redis, RedisCluster), valkey-glide (standalone,
cluster). The last two are not dependencies of the project:
install them somewhere for the measurement (e.g. ``pip install --target /tmp/b coredis
valkey-glide`` and ``PYTHONPATH=/tmp/b``); a candidate that is not importable is skipped
and said so. The machine's load average is printed with the figures: compare rows of one
run only. Writes bench/results/redis_clients.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.services import RedisServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"
CONCURRENCY = 50
FLUSH_EVERY_S = 0.005
MAX_BATCH = 500

# The shape of the limiter's script: every counter it touches is in KEYS (one hash tag).
LUA = """
local n = 0
for i = 1, #KEYS do
  local v = redis.call('INCR', KEYS[i])
  if v == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[i]) end
  n = n + v
end
return n
"""
KEYS = ["{s1}:rl:sec", "{s1}:q:day", "{s1}:q:month"]
ARGS = [1000, 86_400_000, 2_764_800_000]
STREAM = "tollway:v1:metering:{m0}"
RECORD = b"\x93\x01\xa4evt1" + b"x" * 180  # about the size of one encoded request record


class Candidate:
    """evalsha(keys, args) and xadd_batch(records) on one client; open() and close()."""

    name = ""

    async def open(self, url: str, cluster: bool) -> None:
        raise NotImplementedError

    async def evalsha(self) -> Any:
        raise NotImplementedError

    async def xadd_batch(self, records: list[bytes]) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        pass


class Mux(Candidate):
    name = "MuxRedis"

    async def open(self, url: str, cluster: bool) -> None:
        from gateway.redis_mux import new_handle

        self.client = new_handle(url, timeout=1.0)
        self.name = "ClusterMux (MuxRedis per node)" if cluster else "MuxRedis"

    async def evalsha(self) -> Any:
        return await self.client.evalsha(LUA, KEYS, ARGS)

    async def xadd_batch(self, records: list[bytes]) -> Any:
        return await self.client.pipeline(
            [("XADD", STREAM, "MAXLEN", "~", 1_000_000, "*", "b", r) for r in records]
        )

    async def close(self) -> None:
        await self.client.close()


class RedisPy(Candidate):
    name = "redis-py asyncio"

    async def open(self, url: str, cluster: bool) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.cluster import RedisCluster

        self.client: Any = (
            RedisCluster(host=url.split("//")[1].split(",")[0].split(":")[0],
                         port=int(url.split("//")[1].split(",")[0].split(":")[1]))
            if cluster
            else aioredis.Redis.from_url(url, max_connections=CONCURRENCY + 2)
        )
        self.name = "redis-py asyncio RedisCluster" if cluster else "redis-py asyncio Redis"
        self.sha = await self.client.script_load(LUA)

    async def evalsha(self) -> Any:
        return await self.client.evalsha(self.sha, len(KEYS), *KEYS, *ARGS)

    async def xadd_batch(self, records: list[bytes]) -> Any:
        pipe = self.client.pipeline(transaction=False)
        for r in records:
            pipe.xadd(STREAM, {"b": r}, maxlen=1_000_000, approximate=True)
        return await pipe.execute()

    async def close(self) -> None:
        await self.client.aclose()


class Coredis(Candidate):
    name = "coredis"

    async def open(self, url: str, cluster: bool) -> None:
        import coredis

        host, port = url.split("//", 1)[1].split("/")[0].split(",")[0].split(":")
        self.client: Any = (
            coredis.RedisCluster(host, int(port)) if cluster else coredis.Redis(host, int(port))
        )
        self.name = "coredis RedisCluster" if cluster else "coredis Redis"
        await self.client.__aenter__()
        self.sha = await self.client.script_load(LUA)

    async def evalsha(self) -> Any:
        return await self.client.evalsha(self.sha, KEYS, ARGS)

    async def xadd_batch(self, records: list[bytes]) -> Any:
        async with self.client.pipeline(transaction=False) as pipe:
            for r in records:
                pipe.xadd(STREAM, {"b": r}, trim_strategy="MAXLEN", threshold=1_000_000, trim_operator="~")

    async def close(self) -> None:
        await self.client.__aexit__(None, None, None)


class Glide(Candidate):
    name = "valkey-glide"

    async def open(self, url: str, cluster: bool) -> None:
        from glide import (
            Batch,
            ClusterBatch,
            GlideClient,
            GlideClientConfiguration,
            GlideClusterClient,
            GlideClusterClientConfiguration,
            NodeAddress,
            Script,
        )

        host, port = url.split("//", 1)[1].split("/")[0].split(",")[0].split(":")
        nodes = [NodeAddress(host, int(port))]
        self.script = Script(LUA)
        if cluster:
            self.client: Any = await GlideClusterClient.create(GlideClusterClientConfiguration(nodes))
            self.batch: Any = lambda: ClusterBatch(is_atomic=False)
            self.name = "valkey-glide cluster"
        else:
            self.client = await GlideClient.create(GlideClientConfiguration(nodes))
            self.batch = lambda: Batch(is_atomic=False)

    async def evalsha(self) -> Any:
        return await self.client.invoke_script(self.script, keys=KEYS, args=[str(a) for a in ARGS])

    async def xadd_batch(self, records: list[bytes]) -> Any:
        batch = self.batch()
        for r in records:
            batch.custom_command(["XADD", STREAM, "MAXLEN", "~", "1000000", "*", "b", r])
        return await self.client.exec(batch, raise_on_error=True)

    async def close(self) -> None:
        await self.client.close()


CANDIDATES: list[Callable[[], Candidate]] = [Mux, RedisPy, Coredis, Glide]


async def measure(candidate: Candidate, url: str, cluster: bool, seconds: float) -> dict[str, Any]:
    await candidate.open(url, cluster)
    latencies: list[float] = []
    buffer: list[bytes] = []
    done = 0
    errors = 0
    stop = False

    async def request() -> None:
        nonlocal done, errors
        while not stop:
            started = time.perf_counter()
            try:
                await candidate.evalsha()
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            buffer.append(RECORD)
            done += 1

    async def flusher() -> None:
        nonlocal errors
        while not stop:
            await asyncio.sleep(FLUSH_EVERY_S)
            while buffer:
                batch = buffer[:MAX_BATCH]
                del buffer[:MAX_BATCH]
                try:
                    await candidate.xadd_batch(batch)
                except Exception:
                    errors += 1

    # Warm-up: connections made, script loaded.
    await candidate.evalsha()
    tasks = [asyncio.create_task(request()) for _ in range(CONCURRENCY)]
    flush = asyncio.create_task(flusher())
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    stop = True
    elapsed = time.perf_counter() - started
    await asyncio.gather(*tasks, flush)
    await candidate.close()
    latencies.sort()
    return {
        "client": candidate.name,
        "requests_per_s": round(done / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 3) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3) if latencies else None,
        "errors": errors,
    }


def run_one(factory: Callable[[], Candidate], url: str, cluster: bool, seconds: float) -> dict[str, Any] | None:
    candidate = factory()
    try:
        import uvloop

        return uvloop.run(measure(candidate, url, cluster, seconds))
    except ImportError as exc:
        print(f"  {candidate.name}: skipped, not installed ({exc.name})")
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="per candidate")
    parser.add_argument("--cluster", action="store_true", help="also measure on a 3-master Redis Cluster")
    parser.add_argument("--only", default="", help="comma-separated class names (Mux,RedisPy,Coredis,Glide)")
    args = parser.parse_args()
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    factories = [f for f in CANDIDATES if not wanted or f.__name__ in wanted]
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    server = RedisServer(appendonly=False).start()
    try:
        print(f"single Redis at {server.url}, {CONCURRENCY} concurrent requests, {args.seconds:.0f} s each")
        for factory in factories:
            row = run_one(factory, server.url, False, args.seconds)
            if row:
                row["topology"] = "single"
                rows.append(row)
                print(f"  {row}")
    finally:
        server.cleanup()
    if args.cluster:
        from tests.topology.servers import RedisClusterServers

        cluster = RedisClusterServers().start()
        try:
            print(f"3-master cluster at {cluster.url}")
            for factory in factories:
                row = run_one(factory, cluster.url, True, args.seconds)
                if row:
                    row["topology"] = "cluster"
                    rows.append(row)
                    print(f"  {row}")
        finally:
            cluster.cleanup()
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "redis_clients.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(f"load average before {machine['loadavg_before']}, after {machine['loadavg_after']}")
    print("| topology | client | requests/s | p50 ms | p99 ms | errors |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        cells = [r["topology"], r["client"], r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["errors"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
