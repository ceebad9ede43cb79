"""Services announce changes through portal.core.changes; a change nobody listens to would
never reach the gateway, so a missing receiver stops the portal at its system checks."""

from __future__ import annotations

from portal.core import changes
from portal.gateway_state import receivers


def test_every_change_signal_is_connected_to_the_publisher():
    assert changes.check_every_change_has_a_listener() == []


def test_it_reports_a_change_signal_without_a_receiver():
    changes.route_changed.disconnect(dispatch_uid="tollway_publish_routes")
    try:
        errors = changes.check_every_change_has_a_listener()
    finally:
        changes.route_changed.connect(receivers.route_changed, dispatch_uid="tollway_publish_routes")

    assert [error.id for error in errors] == ["core.E001"]
    assert "route_changed" in errors[0].msg
    assert changes.check_every_change_has_a_listener() == []
