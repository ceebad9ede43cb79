"""/api/v1/webhook-endpoints/: the secret once (in ``secret``), the delivery log, test
events, retries and rotation; bad input is a 4xx JSON error; charlie sees none of Acme's."""

from __future__ import annotations

import json

import pytest

from portal.keys import services as keys
from portal.webhooks.models import WebhookEndpoint
from tests.portal.webhooks.conftest import Listener, deliver_pending, verified

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhook-endpoints/"


@pytest.fixture
def listener():
    made = Listener()
    yield made
    made.close()


def _create(client, acme, url, events=("key.revoked",)):
    return client.post(URL, {"organization": acme.pk, "url": url, "events": list(events)}, format="json")


def test_create_returns_the_secret_once(client_for, alice, acme, listener):
    client = client_for(alice)

    response = _create(client, acme, listener.url())

    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"].startswith(body["secret_prefix"])
    assert (body["organization"], body["url"], body["events"], body["enabled"]) == (
        acme.pk, listener.url(), ["key.revoked"], True,
    )
    later = "\n".join(
        client.get(path).content.decode()
        for path in [URL, f"{URL}{body['id']}/", f"{URL}{body['id']}/deliveries/"]
    )
    assert body["secret"] not in later
    assert '"secret"' not in later


def test_the_delivery_log_test_events_and_retries(client_for, alice, acme, alice_app, listener):
    client = client_for(alice)
    created = _create(client, acme, listener.url(), events=["key.revoked"]).json()
    endpoint_id = created["id"]

    accepted = client.post(f"{URL}{endpoint_id}/test/")
    assert accepted.status_code == 202
    assert accepted.json()["event_type"] == "webhook.test"
    deliver_pending()
    [received] = listener.received
    assert verified(created["secret"], received)["type"] == "webhook.test"

    log = client.get(f"{URL}{endpoint_id}/deliveries/").json()["results"]
    assert [(d["event_type"], d["status"], d["last_status_code"]) for d in log] == [
        ("webhook.test", "succeeded", 200)
    ]
    assert log[0]["webhook_id"] == received.headers["webhook-id"]
    assert log[0]["last_latency_ms"] is not None
    assert log[0]["last_response_excerpt"] == "ok"

    retried = client.post(f"{URL}{endpoint_id}/deliveries/{log[0]['id']}/retry/")
    assert retried.status_code == 202
    assert retried.json()["status"] == "pending"
    deliver_pending()
    assert [r.headers["webhook-id"] for r in listener.received] == [log[0]["webhook_id"]] * 2


def test_update_rotate_and_delete(client_for, alice, acme):
    client = client_for(alice)
    endpoint_id = _create(client, acme, "https://hooks.example.com/a").json()["id"]

    changed = client.patch(f"{URL}{endpoint_id}/", {"events": ["key.rotated", "key.revoked"], "enabled": False})
    assert changed.status_code == 200
    assert (changed.json()["events"], changed.json()["enabled"]) == (["key.revoked", "key.rotated"], False)

    rotated = client.post(f"{URL}{endpoint_id}/rotate-secret/", {"overlap_seconds": 3600})
    assert rotated.status_code == 201
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["previous_secret_until"] is not None

    assert client.delete(f"{URL}{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://hooks.example.com/", "events": ["key.revoked"]}, "organization"),
        ({"organization": "ACME", "url": "https://hooks.example.com/", "events": ["key.revoked"]}, "organization"),
        ({"organization": 0, "url": "https://hooks.example.com/", "events": ["nope.never"]}, "organization"),
        ({"organization": "{acme}", "url": "https://hooks.example.com/", "events": ["nope.never"]}, "events"),
        ({"organization": "{acme}", "url": "https://hooks.example.com/", "events": []}, "events"),
        ({"organization": "{acme}", "url": "https://hooks.example.com/", "events": "key.revoked"}, "events"),
        ({"organization": "{acme}", "url": "https://hooks.example.com/", "events": [7]}, "events"),
        ({"organization": "{acme}", "url": "https://h.example.com/", "events": ["metering.lag_exceeded"]}, "events"),
        ({"organization": "{acme}", "url": "http://10.0.0.1/", "events": ["key.revoked"]}, "url"),
        ({"organization": "{acme}", "url": "not a url", "events": ["key.revoked"]}, "url"),
        ({"organization": "{acme}", "url": "https://xn--/", "events": ["key.revoked"]}, "url"),
        ({"organization": "{acme}", "url": "https://h.example.com:99999/", "events": ["key.revoked"]}, "url"),
        ({"organization": "{acme}", "url": "https://a b.example.com/", "events": ["key.revoked"]}, "url"),
        ({"organization": "{acme}", "url": "https://u:p@hooks.example.com/", "events": ["key.revoked"]}, "url"),
        ({"organization": "{acme}", "url": ["https://hooks.example.com/"], "events": ["key.revoked"]}, "url"),
        ({"organization": "{acme}", "url": "https://" + "a" * 2000 + ".com/", "events": ["key.revoked"]}, "url"),
    ],
)
def test_bad_input_is_a_400_json_error(client_for, alice, acme, body, field):
    body = json.loads(json.dumps(body).replace('"{acme}"', str(acme.pk)))

    response = client_for(alice).post(URL, body, format="json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "invalid"
    assert field in error["fields"]


def test_http_is_refused_when_the_operator_turned_it_off(settings, client_for, alice, acme):
    settings.WEBHOOK_ALLOW_HTTP = False
    response = _create(client_for(alice), acme, "http://hooks.example.com/")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"url": ["The URL must use https."]}


def test_a_bad_rotation_overlap_and_a_bad_delivery_id_are_4xx(client_for, alice, acme):
    client = client_for(alice)
    endpoint_id = _create(client, acme, "https://hooks.example.com/").json()["id"]
    assert client.post(f"{URL}{endpoint_id}/rotate-secret/", {"overlap_seconds": -1}).status_code == 400
    assert client.post(f"{URL}{endpoint_id}/rotate-secret/", {"overlap_seconds": "1h"}).status_code == 400
    missing = client.post(f"{URL}{endpoint_id}/deliveries/nope/retry/")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"
    assert client.get(f"{URL}not-an-id/").status_code == 404


def test_only_operators_make_platform_wide_endpoints(client_for, alice, olivia):
    body = {"organization": None, "url": "https://ops.example.com/", "events": ["metering.lag_exceeded"]}

    refused = client_for(alice).post(URL, body, format="json")
    made = client_for(olivia).post(URL, body, format="json")

    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_denied"
    assert made.status_code == 201
    assert made.json()["organization"] is None


def test_charlie_sees_nothing_of_acmes(client_for, alice, charlie, acme, alice_app):
    endpoint_id = _create(client_for(alice), acme, "https://hooks.example.com/").json()["id"]
    client = client_for(charlie)

    assert client.get(URL).json()["results"] == []
    for method, path in [
        ("get", f"{URL}{endpoint_id}/"),
        ("patch", f"{URL}{endpoint_id}/"),
        ("delete", f"{URL}{endpoint_id}/"),
        ("post", f"{URL}{endpoint_id}/test/"),
        ("post", f"{URL}{endpoint_id}/rotate-secret/"),
        ("get", f"{URL}{endpoint_id}/deliveries/"),
    ]:
        assert getattr(client, method)(path).status_code == 404, path
    stolen = client.post(URL, {"organization": acme.pk, "url": "https://x.example.com/", "events": ["key.revoked"]})
    assert stolen.status_code == 400
    keys.api_key_revoke(key=keys.api_key_issue(application=alice_app, actor=alice).key, actor=alice)
    assert WebhookEndpoint.objects.count() == 1


def test_anonymous_callers_get_401(client_for):
    assert client_for(None).get(URL).status_code in {401, 403}
