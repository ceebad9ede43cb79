"""A change committed while Redis is down is not lost: the outbox keeps it and the
next flush (the beat task) publishes it once Redis is back."""

from __future__ import annotations

import pytest
import redis
from django.test import override_settings

from gateway import contract
from portal.gateway_state import publish
from portal.gateway_state.models import PublishOutbox
from portal.keys import services as keys
from tests.services import RedisServer


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    with override_settings(REDIS_URL=server.url):
        publish.redis_client.cache_clear()
        yield server
    publish.redis_client.cache_clear()
    server.cleanup()


@pytest.mark.django_db(transaction=True)
def test_it_publishes_after_redis_comes_back(alice, alice_app, own_redis):
    own_redis.kill()

    issued = keys.api_key_issue(application=alice_app, actor=alice)  # commits; the flush fails quietly

    assert PublishOutbox.objects.filter(kind="key", ref=issued.key.key_hash).exists()
    with pytest.raises(redis.ConnectionError):
        publish.outbox_flush()

    own_redis.start()
    publish.redis_client.cache_clear()
    published = publish.outbox_flush()

    assert published >= 1
    assert not PublishOutbox.objects.exists()
    client = redis.Redis.from_url(own_redis.url)
    record = contract.KeyRecord.from_json(client.get(contract.key_key(issued.key.key_hash)))
    assert record.status == "active"
    client.close()
