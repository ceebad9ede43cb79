"""Extension points: where an app built on the portal adds to a portal page.

The portal never imports such apps (analytics depends on the portal, not the other
way round). An app registers its providers from its ``AppConfig.ready()``; the
portal calls whatever is registered, and renders the same page without them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

# application id -> extra entries for that application's usage panel
# (templates/keys/_usage_panel.html), e.g. analytics adds {"quotas": [...]}.
ApplicationUsageProvider = Callable[[int], dict[str, object]]

_application_usage: list[ApplicationUsageProvider] = []


def application_usage_register(provider: ApplicationUsageProvider) -> None:
    """Add a provider once; registering the same one again (a second ready()) is a no-op."""
    if provider not in _application_usage:
        _application_usage.append(provider)


def application_usage(application_id: int) -> dict[str, object]:
    """Every registered provider's entries for one application, merged in registration order."""
    out: dict[str, object] = {}
    for provider in _application_usage:
        out.update(provider(application_id))
    return out


# (api id, version label, since) -> requests the gateway saw for that version since then.
# Analytics registers the one provider (its rollups); without it the portal knows of no traffic.
VersionTrafficProvider = Callable[[int, str, datetime], int]

_version_traffic: list[VersionTrafficProvider] = []


def version_traffic_register(provider: VersionTrafficProvider) -> None:
    """Add a provider once; registering the same one again (a second ready()) is a no-op."""
    if provider not in _version_traffic:
        _version_traffic.append(provider)


def version_traffic(api_id: int, label: str, since: datetime) -> int:
    """Requests to one version since a moment, summed over every registered provider."""
    return sum(provider(api_id, label, since) for provider in _version_traffic)
