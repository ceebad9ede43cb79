"""Gateway errors.

Exception tree::

    GatewayError
    ├── ConfigError          a GATEWAY_* setting is missing or malformed; raised at start-up only
    ├── SnapshotError        the on-disk snapshot is unreadable or fails its checksum: refused
    ├── StateUnavailable     Redis did not answer in time; the version's failure mode decides
    └── Reject               the request is refused; carries the problem document to send
        └── Answer           the gateway answers the request itself, without a body (a CORS preflight)

A ``Reject`` is the only exception that crosses the policy pipeline: a policy
raises it in ``access`` and the app turns it into an ``application/problem+json``
response (RFC 9457), after which the ``log`` phase still runs. An ``Answer`` takes
the same path but is sent as a bodiless response with its status and headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBLEM_BASE = "https://tollway.dev/problems/"


class GatewayError(Exception):
    pass


class ConfigError(GatewayError):
    pass


class SnapshotError(GatewayError):
    pass


class StateUnavailable(GatewayError):
    pass


class Reject(GatewayError):
    """A refusal: ``problem`` is the slug of the problem type, ``decision`` the metering decision."""

    def __init__(
        self,
        status: int,
        problem: str,
        title: str,
        *,
        decision: str,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.problem = problem
        self.title = title
        self.decision = decision
        self.detail = detail
        self.headers = dict(headers or {})
        self.close = close
        self.extra = extra  # more members of the problem document, e.g. request_validation's "errors"


class Answer(Reject):
    """Not a refusal: the gateway answers the request itself (a CORS preflight), so it
    never reaches the later policies or the upstream. Sent with no body."""

    def __init__(self, status: int, *, decision: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, "", "", decision=decision, headers=headers)
