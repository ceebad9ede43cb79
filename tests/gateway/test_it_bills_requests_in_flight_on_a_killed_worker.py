"""Journal at admission: a gateway worker SIGKILLed while requests are in flight against a
slow upstream (200 ms each) still bills every request the upstream served, each once.

Bounds: 24 client threads for about 4 s (the kill 1.5 s in), then a graceful stop that
flushes the survivors; the whole test takes about 10 s. The upstream counts a request as
served when it arrives, so "served" includes the requests the kill cut off.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
from collections import Counter

import httpx

from gateway import contract
from tests.gateway.metering import stream_entries, unique_batches

SLOW = "/echo/v1/slow?delay_ms=200"
FLUSH_MS = "1000"  # long enough that a sealed batch is bigger than the requests in flight


def workers_of(master: int) -> list[int]:
    path = f"/proc/{master}/task/{master}/children"
    return sorted(int(p) for p in open(path).read().split()) if os.path.exists(path) else []


class Clients:
    def __init__(self, url: str, headers: dict[str, str], threads: int) -> None:
        self.url, self.headers = url, headers
        self.outcomes: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopping.is_set():
                try:
                    outcome = str(client.get(self.url, headers=self.headers).status_code)
                except httpx.TransportError:
                    outcome = "transport"
                    time.sleep(0.01)
                with self.lock:
                    self.outcomes[outcome] += 1

    def start(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> Counter[str]:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=15)
        return self.outcomes


def test_requests_in_flight_on_a_killed_worker_are_billed_once(start_gateway, world, upstream, redis_client):
    gateway = start_gateway(workers=2, GATEWAY_METERING_FLUSH_MS=FLUSH_MS)
    alice = Clients(f"{gateway.url}{SLOW}", {"X-API-Key": world.alice_key}, threads=20).start()
    bob = Clients(f"{gateway.url}/other/v1/slow?delay_ms=200", {"X-API-Key": world.bob_key}, threads=2).start()
    charlie = Clients(f"{gateway.url}/echo/v1/", {"X-API-Key": world.charlie_key}, threads=2).start()  # 401s
    try:
        time.sleep(1.5)
        victim = workers_of(gateway.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(2.5)  # the master restarts the slot after 1 s; its successor adopts the journal
        assert len(workers_of(gateway.proc.pid)) == 2
    finally:
        outcomes = alice.stop() + bob.stop()
        refused = charlie.stop()
    gateway.stop()  # graceful: the survivors flush what they hold
    served = upstream.served()

    entries = stream_entries(redis_client)
    batches = unique_batches(entries)
    requests = [r for b in batches for r in b.requests]
    billed = [r for r in requests if r.decision == "allowed"]
    unknown = [r for r in billed if r.outcome == contract.OUTCOME_UNKNOWN]
    print(f"served={served} billed={len(billed)} unknown={len(unknown)} outcomes={dict(outcomes)} "
          f"refused={dict(refused)} entries={len(entries)} batches={len(batches)}")

    assert outcomes["200"] > 200, "too little load to mean anything"
    assert outcomes["transport"] > 0, "the kill cut off no request: nothing was in flight"
    # Every request the upstream served is billed...
    assert len(billed) >= served
    # ...once: the only billed requests the upstream never saw are admissions the kill cut
    # off on their way upstream, and each of those left its client with a transport error.
    # (A batch billed twice under two ids would add a whole batch, far more than these.)
    assert len(billed) - served <= outcomes["transport"]
    # The interrupted ones are billed by the successor, as admitted with outcome unknown.
    assert unknown
    assert all(r.status == 0 and r.latency_ms == 0 for r in unknown)
    assert all(r.status == 200 for r in billed if r.outcome == "")
    # A batch id appears more than once only as the same batch (a sealed batch the
    # successor sent again): analytics keeps one copy.
    copies = collections.defaultdict(list)
    for e in entries:
        copies[e.batch.id].append(e.batch)
    assert all(all(b == same[0] for b in same) for same in copies.values())
    # Batch ids name node, worker slot, boot and sequence. The leftovers of the dead worker
    # carry its own slot and boot (so adopting its journal again gives the same ids), beside
    # the batches it sealed itself before the kill.
    leftovers = {tuple(b.id.split(":")[1:3]) for b in batches if b.id.split(":")[3].startswith("u")}
    sealed = {tuple(b.id.split(":")[1:3]) for b in batches if b.id.split(":")[3].isdigit()}
    assert len(leftovers) == 1, leftovers
    assert leftovers <= sealed, (leftovers, sealed)
    # Partitioned by subscription: alice (1001), bob (1002) and the unattributed refusals (0).
    for e in entries:
        assert {contract.metering_partition(r.subscription_id, 4) for r in e.batch.requests} == {e.partition}
    assert {e.partition for e in entries} == {1001 % 4, 1002 % 4, 0}
    # A refusal is journalled right after its response is written, with no await between:
    # only a kill inside those microseconds could lose one (its client got its 401).
    assert sum(1 for r in requests if r.decision == "unauthenticated") >= refused["401"] - 1
    # Nothing left on disk for a next start to send.
    spill = gateway.tmp / "spill"
    assert not any(p.stat().st_size for p in spill.glob("spill-*.jsonl"))
