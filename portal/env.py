"""The portal's environment readers: tollway.env's, failing with ImproperlyConfigured.

The rules (NAME_FILE, whitespace, empty means unset) live in tollway/env.py and
are the gateway's too. A bad value fails at start-up with ImproperlyConfigured
naming the variable, rather than surfacing later as a confusing runtime error.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from django.core.exceptions import ImproperlyConfigured

from tollway import env as _env
from tollway import redis_url as _redis_url

P = ParamSpec("P")
R = TypeVar("R")


def _improperly_configured(reader: Callable[P, R]) -> Callable[P, R]:
    @wraps(reader)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return reader(*args, **kwargs)
        except _env.EnvError as exc:
            raise ImproperlyConfigured(str(exc)) from exc

    return wrapper


@_improperly_configured
def env(name: str, default: str | None = None) -> str | None:
    value = _env.read(name)
    return default if value is None else value


@_improperly_configured
def env_str(name: str, default: str) -> str:
    return _env.read_str(name, default)


@_improperly_configured
def env_bool(name: str, default: bool) -> bool:
    return _env.read_bool(name, default)


@_improperly_configured
def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    return _env.read_int(name, default, minimum=minimum, maximum=maximum)


@_improperly_configured
def env_list(name: str, default: str = "") -> list[str]:
    return _env.read_list(name, [item.strip() for item in default.split(",") if item.strip()])


@_improperly_configured
def env_redis_target(name: str, url: str) -> _redis_url.RedisTarget:
    """``url`` (the value of ``name``) parsed by tollway.redis_url, the gateway's parser."""
    return _redis_url.parse_redis_url(url, variable=name)


@_improperly_configured
def celery_broker_settings(name: str, url: str, *, eager: bool = False) -> _redis_url.BrokerSettings:
    """Celery's broker from ``url``: our Redis URL forms are translated for kombu; anything
    else (kombu's own sentinel://, amqp://, memory://) is passed on as given, with the
    Sentinel master's name from CELERY_BROKER_MASTER_NAME. A cluster is refused unless
    tasks run eagerly (no broker at all)."""
    if not url.startswith(_redis_url.URL_SCHEMES):
        master_name = _env.read("CELERY_BROKER_MASTER_NAME")
        return _redis_url.BrokerSettings(url, {"master_name": master_name} if master_name else {}, None)
    target = _redis_url.parse_redis_url(url, variable=name)
    if eager and target.kind == "cluster":
        return _redis_url.BrokerSettings("memory://", {}, None)
    return _redis_url.celery_broker(target)
