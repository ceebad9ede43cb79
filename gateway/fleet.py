"""The fleet: which gateway nodes are alive, and how many workers they run in total.

Several gateway nodes (separate ``python -m gateway`` processes, usually on separate
hosts) share one Redis. Each node announces itself every GATEWAY_NODE_ANNOUNCE_S with
fleet.lua: its id (GATEWAY_NODE_ID, default the host name) and worker count go into
``contract.FLEET_NODES_KEY`` / ``FLEET_WORKERS_KEY`` with an expiry of GATEWAY_NODE_TTL_S
on Redis's clock; the same call drops expired nodes and returns the live total.
Every worker of a node announces (the same value), so the node stays listed while any
of its workers lives.

What it is for: during a Redis outage a ``fail_open`` version is limited in each worker
to the plan's rate divided by the fleet's worker count, so the whole fleet stays at
the plan's rate, not one node's worth per node. The last total read is kept in memory
through the outage (that is when it is needed); before the first read it is this
node's own worker count.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from redis.exceptions import RedisError

from gateway import contract, metrics, tasks
from gateway.config import GatewayConfig
from gateway.redis_mux import RedisHandle

log = logging.getLogger("gateway.fleet")

LUA = (Path(__file__).parent / "fleet.lua").read_text()
TASK_NAME = "fleet"


class Fleet:
    def __init__(self, config: GatewayConfig, redis: RedisHandle) -> None:
        self.config = config
        self.redis = redis
        self.node_id = config.node_id
        self.nodes = 1
        self.total_workers = config.workers  # last known; this node alone until Redis answers
        self.known = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = tasks.spawn(TASK_NAME, self._run)

    async def stop(self) -> None:
        await tasks.stop(self._task, TASK_NAME)
        self._task = None

    async def announce(self) -> bool:
        """Announce this node and read the live fleet; False when Redis did not answer
        (the last known figures stay)."""
        keys = (contract.FLEET_NODES_KEY, contract.FLEET_WORKERS_KEY)
        args = (self.node_id, self.config.workers, int(self.config.node_ttl_s * 1000))
        try:
            reply = await self.redis.evalsha(LUA, keys, args)
        except (RedisError, OSError) as exc:
            log.debug("fleet announcement failed: %s", exc)
            return False
        try:
            nodes, total = (int(v) for v in reply)
        except (TypeError, ValueError) as exc:
            tasks.bad_input("fleet", reply, exc)
            return False
        self.nodes = max(1, nodes)
        # Never below our own count: our own entry is in the total unless Redis lost it.
        self.total_workers = max(self.config.workers, total)
        self.known = True
        metrics.FLEET_NODES.set(self.nodes)
        metrics.FLEET_WORKERS.set(self.total_workers)
        return True

    async def _run(self) -> None:
        while True:
            tasks.beat(TASK_NAME)
            await self.announce()
            await asyncio.sleep(self.config.node_announce_s)
