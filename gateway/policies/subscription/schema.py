"""Settings of the subscription policy: none. It reads only the ApplicationRecord
already loaded by key_auth or oauth2, so it has no Redis-down behaviour of its own."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.pipeline import PolicySettings


@dataclass(frozen=True)
class SubscriptionSettings(PolicySettings):
    pass
