"""Monitoring's periodic task (beat entry in analytics/schedule.py)."""

from __future__ import annotations

import logging

import redis
from celery import shared_task

from analytics.monitoring import services

log = logging.getLogger(__name__)


@shared_task(name="analytics.metering_lag_check", acks_late=True, ignore_result=True, soft_time_limit=30, time_limit=60)
def metering_lag_check() -> float | None:
    """The worst partition's lag in seconds; None when Redis did not answer (logged: the
    next run, seconds later, tries again, and the dashboard says Redis did not answer)."""
    try:
        return services.metering_lag_check().worst_age_s
    except redis.RedisError as exc:
        log.warning("metering lag check: Redis did not answer: %s", exc)
        return None
