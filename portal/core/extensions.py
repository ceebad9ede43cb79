"""Extension points: where an app built on the portal adds to a portal page.

The portal never imports such apps (analytics depends on the portal, not the other
way round). An app registers its providers from its ``AppConfig.ready()``; the
portal calls whatever is registered, and renders the same page without them.
"""

from __future__ import annotations

from collections.abc import Callable

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
