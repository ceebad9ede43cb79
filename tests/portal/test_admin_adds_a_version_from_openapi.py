"""An operator adds a version with upstreams and an OpenAPI upload; bad documents are form errors."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portal.catalog.models import ApiVersion

VALID = b"""openapi: 3.0.3
info: {title: Echo, version: "3"}
paths:
  /anything:
    get:
      responses:
        "200": {description: ok}
"""


def _form(api, **extra):
    data = {
        "api": api.pk, "label": "v3", "upstreams_text": "http://127.0.0.1:8090 3\nhttp://127.0.0.1:8091",
        "changelog": "", "connect_timeout_s": "2", "read_timeout_s": "30", "total_timeout_s": "60",
        "max_body_bytes": "1048576", "redis_failure_mode": "fail_open",
        "lifecycle_events-TOTAL_FORMS": "0", "lifecycle_events-INITIAL_FORMS": "0",
    }
    data.update(extra)
    return data


@pytest.mark.django_db
def test_it_creates_a_draft_version_with_weighted_upstreams(client, olivia, echo_api):
    client.force_login(olivia)

    response = client.post(
        "/admin/catalog/apiversion/add/",
        _form(echo_api, openapi_file=SimpleUploadedFile("echo.yaml", VALID)),
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    version = ApiVersion.objects.get(api=echo_api, label="v3")
    assert version.state == "draft"
    assert version.openapi["info"]["version"] == "3"
    assert [(u.url, u.weight) for u in version.upstreams.all()] == [
        ("http://127.0.0.1:8090", 3), ("http://127.0.0.1:8091", 1)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("upload", "upstreams", "message"),
    [
        (b"openapi: [unclosed", "http://127.0.0.1:8090", "neither valid JSON nor valid YAML"),
        (b'{"openapi": "3.0.3", "info": {}}', "http://127.0.0.1:8090", "OpenAPI"),
        (None, "ftp://files.example.com", "http or https"),
        (None, "http://user:pw@127.0.0.1:8090", "credentials"),
        (None, "http://127.0.0.1:8090 heavy", "URL weight"),
    ],
)
def test_it_shows_bad_input_as_form_errors(client, olivia, echo_api, upload, upstreams, message):
    client.force_login(olivia)
    extra = {"upstreams_text": upstreams}
    if upload is not None:
        extra["openapi_file"] = SimpleUploadedFile("doc.yaml", upload)

    response = client.post("/admin/catalog/apiversion/add/", _form(echo_api, **extra))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ApiVersion.objects.filter(label="v3").exists()
