"""The version admin edits allowed methods and CORS as comma-separated lists; the model's
rules apply (no TRACE, exact origins, no * with credentials) and a good change is
audited and published like any other."""

from __future__ import annotations

import pytest

from portal.audit.models import AuditEvent
from portal.catalog.models import ApiVersion
from portal.gateway_state.models import PublishOutbox


def _change(version, **extra):
    data = {
        "api": version.api_id, "label": version.label, "upstreams_text": "http://127.0.0.1:8090",
        "successor": version.successor_id or "", "changelog": "", "connect_timeout_s": "2", "read_timeout_s": "30",
        "total_timeout_s": "60", "max_body_bytes": "1048576", "redis_failure_mode": "fail_closed",
        "allowed_methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", "cors_enabled": "on",
        "cors_allowed_origins": "", "cors_allowed_methods": "", "cors_allowed_headers": "Accept, X-API-Key",
        "cors_exposed_headers": "RateLimit", "cors_max_age_s": "600",
        "lifecycle_events-TOTAL_FORMS": "0", "lifecycle_events-INITIAL_FORMS": "0",
    }
    data.update(extra)
    return data


@pytest.mark.django_db
def test_it_saves_audits_and_publishes_a_cors_change(client, olivia, echo_api):
    client.force_login(olivia)
    v2 = echo_api.versions.get(label="v2")
    PublishOutbox.objects.all().delete()

    response = client.post(
        f"/admin/catalog/apiversion/{v2.pk}/change/",
        _change(v2, allowed_methods="GET, POST", cors_allowed_origins="https://a.example, https://b.example:8443"),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    v2.refresh_from_db()
    assert v2.allowed_methods == ["GET", "POST"]
    assert v2.cors_allowed_origins == ["https://a.example", "https://b.example:8443"]
    event = AuditEvent.objects.filter(action="version.update").latest("id")
    assert event.after["cors_allowed_origins"] == ["https://a.example", "https://b.example:8443"]
    assert PublishOutbox.objects.filter(kind="route").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"allowed_methods": "GET, TRACE"}, "TRACE is never allowed"),
        ({"cors_allowed_origins": "https://a.example/app"}, "is not an origin"),
        ({"cors_allowed_origins": "*", "cors_allow_credentials": "on"}, "cannot be combined with credentials"),
        ({"cors_max_age_s": "999999"}, "less than or equal to 86400"),
    ],
)
def test_it_shows_bad_methods_and_cors_as_form_errors(client, olivia, echo_api, changes, message):
    client.force_login(olivia)
    v2 = echo_api.versions.get(label="v2")

    response = client.post(f"/admin/catalog/apiversion/{v2.pk}/change/", _change(v2, **changes))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert ApiVersion.objects.get(pk=v2.pk).cors_allowed_origins == []
