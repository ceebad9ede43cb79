"""The policy pipeline, in the manner of Kong plugins.

Each policy lives in ``gateway/policies/<name>/`` with ``policy.py`` (a ``Policy``
subclass with a ``PRIORITY``, any of the phase methods and a ``create`` factory) and
``schema.py`` (a ``PolicySettings`` dataclass: its typed, documented settings and their
``from_env``). ``gateway/policies/registry.py`` lists them. Phases run in this order
for every request:

    access    async, may raise Reject; higher PRIORITY runs first
    admit     once access has let the request through, just before it goes upstream;
              must not block (metering journals the admission here)
    (proxy)   the request goes upstream, unless access rejected it
    response  adds headers to whatever is sent back, proxied or rejected
    log       after the response is written, even after a reject; must not block

A policy that does not override a phase costs nothing in that phase: the
pipeline keeps one list per phase with only the policies that implement it.

Outside the request path a policy may also declare ``REQUIRES`` (policies that must
run with it, switched on by the registry), ``credentials`` (what the proxy must not
forward upstream) and ``start``/``stop`` (background work such as metering's flusher).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Self

from gateway.types import RequestContext

if TYPE_CHECKING:
    from gateway.config import GatewayConfig
    from gateway.fleet import Fleet
    from gateway.redis_mux import RedisHandle
    from gateway.state import RedisHealth, State

log = logging.getLogger("gateway.pipeline")


class PolicySettings:
    """Base of every policy's settings dataclass (its ``schema.py``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], config: GatewayConfig) -> Self:
        """Read the policy's settings; a bad value raises tollway.env.EnvError naming it.
        ``config`` is the gateway-wide part, already read. No settings by default."""
        return cls()


@dataclass(frozen=True, slots=True)
class PolicyDeps:
    """What a worker hands every policy factory; each takes what it needs."""

    config: GatewayConfig
    state: State
    redis: RedisHandle  # the request path's connection
    health: RedisHealth
    metering_redis: RedisHandle  # a separate connection with a longer timeout, for metering writes
    worker_index: int
    fleet: Fleet | None = None  # the live gateway nodes and their workers (gateway/fleet.py)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What carries a credential a policy accepts, so the proxy can keep it from the upstream."""

    headers: frozenset[str] = frozenset()  # lower-case header names
    bearer: bool = False  # Authorization: Bearer ... (other schemes are the upstream's business)
    query_params: tuple[str, ...] = ()

    def __or__(self, other: Credentials) -> Credentials:
        return Credentials(
            headers=self.headers | other.headers,
            bearer=self.bearer or other.bearer,
            query_params=self.query_params + tuple(p for p in other.query_params if p not in self.query_params),
        )


class Policy:
    NAME: ClassVar[str] = ""
    PRIORITY: ClassVar[int] = 0
    # Policies this one cannot work without; the registry switches them on too.
    REQUIRES: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def create(cls, settings: Any, deps: PolicyDeps) -> Policy:
        """The factory the registry calls with this policy's settings; override to take deps."""
        return cls()

    @classmethod
    def credentials(cls, settings: Any) -> Credentials:
        """Where this policy finds credentials. The registry asks every registered policy,
        on or off, so that no credential the gateway accepts ever reaches an upstream."""
        return Credentials()

    async def start(self) -> None:
        """Start background work, once the worker's state and proxy are up."""

    async def stop(self) -> None:
        """Stop background work, before the worker's state and proxy go down."""

    async def access(self, ctx: RequestContext) -> None:
        raise NotImplementedError

    def admit(self, ctx: RequestContext) -> None:
        raise NotImplementedError

    def response(self, ctx: RequestContext) -> None:
        raise NotImplementedError

    def log(self, ctx: RequestContext) -> None:
        raise NotImplementedError


def _overrides(policy: Policy, phase: str) -> bool:
    return getattr(type(policy), phase) is not getattr(Policy, phase)


class Pipeline:
    def __init__(self, policies: list[Policy]) -> None:
        self.policies = tuple(sorted(policies, key=lambda p: -p.PRIORITY))
        self.access_phase = tuple(p for p in self.policies if _overrides(p, "access"))
        self.admit_phase = tuple(p for p in self.policies if _overrides(p, "admit"))
        self.response_phase = tuple(p for p in self.policies if _overrides(p, "response"))
        self.log_phase = tuple(p for p in self.policies if _overrides(p, "log"))

    async def access(self, ctx: RequestContext) -> None:
        for policy in self.access_phase:
            await policy.access(ctx)

    def admit(self, ctx: RequestContext) -> None:
        for policy in self.admit_phase:
            policy.admit(ctx)

    def response(self, ctx: RequestContext) -> None:
        for policy in self.response_phase:
            policy.response(ctx)

    def log(self, ctx: RequestContext) -> None:
        for policy in self.log_phase:
            try:
                policy.log(ctx)
            except Exception:  # a logging bug must never turn into a failed request
                log.exception("policy %s failed in log phase", policy.NAME)


def setting(default: Any, description: str) -> Any:
    """A schema field: every setting has a default and says what it does."""
    return field(default=default, metadata={"description": description})


def describe(schema: type[Any]) -> list[dict[str, Any]]:
    """The schema as data: name, default and description of every field (used by docs and tests)."""
    out = []
    for f in fields(schema):
        assert isinstance(f, Field)
        out.append(
            {
                "name": f.name,
                "default": None if f.default is MISSING else f.default,
                "description": f.metadata.get("description", ""),
            }
        )
    return out
