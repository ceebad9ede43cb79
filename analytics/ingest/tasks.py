"""Ingest's Celery tasks: drain the metering stream, prune past retention.

Task names are the ones beat and queued messages already use (analytics/schedule.py),
so they stay as they were when these lived in analytics/tasks.py.

The consumer's time limits sit above its own budget (CONSUME_BUDGET_S) so that a
hung call is killed rather than holding a worker forever; the killed batch's
entries stay pending and are claimed back.
"""

from __future__ import annotations

import logging

from celery import shared_task

from analytics import conf
from analytics.ingest import consumer, services

log = logging.getLogger(__name__)


@shared_task(
    name="analytics.metering_consume",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=conf.CONSUME_BUDGET_S + 30,
    time_limit=conf.CONSUME_BUDGET_S + 60,
)
def metering_consume() -> int:
    """Not a single service call: the consumer reads Redis, commits each batch
    through services.metering_batch_commit, then acknowledges it."""
    report = consumer.consume()
    if report.batches:
        log.info(
            "metering: %d batches, %d events, %d counted, %d duplicates, %d claimed, %d trimmed",
            report.batches, report.received, report.counted, report.duplicates, report.claimed, report.trimmed,
        )
    return report.counted


@shared_task(name="analytics.rollups_prune", acks_late=True, ignore_result=True, soft_time_limit=600,
             time_limit=900)
def rollups_prune() -> dict[str, int]:
    return services.rollups_prune()
