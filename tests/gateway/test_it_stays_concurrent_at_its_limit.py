"""A busy subscription at or near its limit, with leases on (the default), is answered as
fast as with leases off: admission leases must not slow down the subscriptions that need
the limiter most.

* When the script gives no lease (a refusal, or 4 or fewer left: the quarter rule), the
  worker does not ask for one again for a lease's lifetime. Before, each request of a busy
  subscription asked again, and a lease call in flight makes the subscription's other
  requests in that worker wait for it: at the limit they went to Redis one round trip
  after another (over sockets, a subscription past a 3,000/s limit got 8,500 answers a
  second with leases on against 12,800 off, and a p99 of 26-120 ms against 7.5 ms).
* A refusal made while another worker holds a lease waits for that lease only when the
  lease ends before the refusal's own retry time: a bucket that refills by itself sooner
  (a fast rate) is answered at once. Waiting for the lease there only held back the
  subscription's 429s, up to 2 x LEASE_MS each.

Two RateLimitPolicy instances on their own Redis connections are two workers, called as
the gateway calls them, on a real Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from gateway import contract
from gateway.policies.rate_limit.policy import Reply
from tests.gateway.test_it_waits_for_leases_held_elsewhere import LEASE_MS, Workers, grant, hold_a_lease, request


class Calls:
    """Every limiter call a worker makes: when, how many admissions it asked for, the
    reply, and how many were in flight at once."""

    def __init__(self, worker: Any) -> None:
        self.made: list[tuple[float, int, Reply]] = []
        self.in_flight = self.most_in_flight = 0
        original = worker._call

        async def call(subscription_id: int, limits: contract.Limits, want: int, *args: Any) -> Reply:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            started = time.monotonic()
            try:
                reply: Reply = await original(subscription_id, limits, want, *args)
            finally:
                self.in_flight -= 1
            self.made.append((started, want, reply))
            return reply

        worker._call = call


def test_a_busy_subscription_given_no_lease_makes_single_concurrent_calls(gw_redis):
    # 4 a second: a bucket of 4, so the quarter rule never leaves room for a lease.
    sub = grant(5301, contract.Limits(rate_per_second=4))

    async def run() -> Calls:
        async with Workers(gw_redis.url) as (worker, _):
            calls = Calls(worker)
            for _ in range(30):  # back to back: the pace soon asks for a lease
                await request(worker, sub)
            await asyncio.gather(*(request(worker, sub) for _ in range(20)))
            return calls

    calls = asyncio.run(run())
    asks = [(at, reply) for at, want, reply in calls.made if want > 1]
    assert asks, "the busy pace never asked for a lease"
    assert all(reply.granted <= 1 for _, reply in asks)
    # One ask per lease lifetime at most: the rest are the single, pre-encoded admission.
    assert all(b - a >= LEASE_MS / 1000 - 0.01 for (a, _), (b, _) in itertools.pairwise(asks)), asks
    # The 20 concurrent requests went to Redis together, not one behind the other.
    assert calls.most_in_flight == 20


def test_a_refusal_whose_bucket_refills_before_the_lease_ends_is_answered_at_once(gw_redis):
    # 200 a second: the bucket refills one admission in 5 ms, long before a lease ends in
    # Redis (2 x LEASE_MS after it was taken).
    sub = grant(5302, contract.Limits(rate_per_second=200))

    async def run() -> tuple[int, list[tuple[bool, float]], Calls]:
        async with Workers(gw_redis.url) as (a, b):
            await hold_a_lease(a, sub)
            held = a.leases[sub.subscription_id].left
            calls = Calls(b)
            results = []
            for _ in range(400):  # B empties the bucket and goes on past it
                results.append(await request(b, sub))
                if sum(not ok for ok, _ in results) >= 5:
                    break
            return held, results, calls

    held, results, calls = asyncio.run(run())
    assert held > 0
    # The scenario: B was refused while A's lease was live (the reply named the wait)...
    assert any(reply.denied and reply.wait_ms > reply.retry_ms for _, _, reply in calls.made), calls.made
    assert sum(not ok for ok, _ in results) == 5
    # ...and every request was answered at once: none waited for the lease's end.
    assert max(seconds for _, seconds in results) < 0.1, results
