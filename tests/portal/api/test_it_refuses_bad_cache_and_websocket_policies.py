"""Bad cache and websocket policies over REST: a TTL or limit of zero or below is a 400
naming the field, and nothing is saved or published."""

from __future__ import annotations

import pytest

from portal.catalog.models import ApiVersion
from portal.gateway_state.models import PublishOutbox
from tests.portal.api.conftest import assert_error_shape

pytestmark = pytest.mark.django_db

BAD = [
    ({"cache": {"ttl_s": 0}}, "cache.ttl_s: 0 caches nothing"),
    ({"cache": {"ttl_s": -30}}, "cache.ttl_s: -30 caches nothing"),
    ({"cache": {"ttl_s": 60, "default_ttl_s": 0}}, "cache.default_ttl_s: 0 caches nothing"),
    ({"cache": {"ttl": 60}}, "cache.ttl: unknown field"),
    ({"websocket": {"idle_timeout_s": 0}}, "websocket.idle_timeout_s: 0 is outside 1 to 86400"),
]


@pytest.mark.parametrize(("policies", "message"), BAD)
def test_rest_refuses_bad_cache_and_websocket_policies(client_for, olivia, echo_api, policies, message):
    v2 = echo_api.versions.get(label="v2")
    PublishOutbox.objects.all().delete()

    response = client_for(olivia).patch(f"/api/v1/apis/{v2.api_id}/versions/{v2.pk}/", {"policies": policies},
                                        format="json")

    body = assert_error_shape(response, 400)
    assert any(message in problem for problem in body["fields"]["policies"]), body
    assert ApiVersion.objects.get(pk=v2.pk).policies == {}
    assert not PublishOutbox.objects.exists()
