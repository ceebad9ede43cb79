"""Django's Redis cache on whatever REDIS_URL names: plain, TLS, unix, Sentinel or Cluster.

Django's own backend splits LOCATION at commas and builds a redis.Redis from a URL,
which neither Sentinel's nor a Cluster's URL survives. This one takes the whole URL,
gets its client from tollway.redis_url (the same one the publisher uses), and on a
cluster replaces the multi-key commands that would cross slots (MGET, MSET) by their
per-slot forms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

from tollway.redis_url import parse_redis_url, sync_client


class TollwayRedisCacheClient(RedisCacheClient):
    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._target = parse_redis_url(servers[0])
        self._redis: Any = None

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        if self._redis is None:
            self._redis = sync_client(self._target, socket_timeout=2, socket_connect_timeout=2)
        return self._redis

    def get_many(self, keys: Any) -> dict[Any, Any]:
        if self._target.kind != "cluster":
            return dict(super().get_many(keys))
        keys = list(keys)
        values = self.get_client().mget_nonatomic(keys)
        loads = self._serializer.loads  # type: ignore[attr-defined]  # set by Django, not in the stubs
        return {k: loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def set_many(self, data: Mapping[Any, Any], timeout: Any) -> None:
        if self._target.kind != "cluster":
            super().set_many(data, timeout)
            return
        pipeline = self.get_client(write=True).pipeline(transaction=False)
        for key, value in data.items():
            pipeline.set(key, self._serializer.dumps(value), ex=timeout)  # type: ignore[attr-defined]  # as above
        pipeline.execute()


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._servers = [server]  # one URL, commas included (Sentinel, Cluster)
        self._class = TollwayRedisCacheClient
