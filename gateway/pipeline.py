"""The policy pipeline, in the manner of Kong plugins.

Each policy lives in ``gateway/policies/<name>/`` with ``policy.py`` (a class with
a ``PRIORITY`` and any of the phase methods) and ``schema.py`` (its typed, documented
settings). Phases run in this order for every request:

    access    async, may raise Reject; higher PRIORITY runs first
    (proxy)   the request goes upstream, unless access rejected it
    response  adds headers to whatever is sent back, proxied or rejected
    log       after the response is written, even after a reject; must not block

A policy that does not override a phase costs nothing in that phase: the
pipeline keeps one list per phase with only the policies that implement it.
"""

from __future__ import annotations

import logging
from dataclasses import MISSING, Field, field, fields
from typing import Any, ClassVar

from gateway.types import RequestContext

log = logging.getLogger("gateway.pipeline")


class Policy:
    NAME: ClassVar[str] = ""
    PRIORITY: ClassVar[int] = 0

    async def access(self, ctx: RequestContext) -> None:
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
        self.response_phase = tuple(p for p in self.policies if _overrides(p, "response"))
        self.log_phase = tuple(p for p in self.policies if _overrides(p, "log"))

    async def access(self, ctx: RequestContext) -> None:
        for policy in self.access_phase:
            await policy.access(ctx)

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
