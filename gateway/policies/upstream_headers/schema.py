"""Settings of the upstream_headers policy (environment: GATEWAY_UPSTREAM_HEADERS).

A comma-separated list of what to tell the upstream about the caller, each as
an X-Tollway-* header: application, organization, plan, subscription, key_prefix,
client_id. Default: application, plan, subscription, key_prefix. Whatever the
client sent under X-Tollway-* is always removed first, so these cannot be forged.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import DEFAULT_UPSTREAM_HEADERS
from gateway.pipeline import setting


@dataclass(frozen=True)
class UpstreamHeadersSettings:
    fields: tuple[str, ...] = setting(DEFAULT_UPSTREAM_HEADERS, "Which X-Tollway-* headers to add upstream.")
