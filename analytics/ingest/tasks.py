"""Ingest's Celery tasks: drain the metering partitions, keep the batch ledger's
partitions, prune past retention.

Task names are the ones beat and queued messages already use (analytics/schedule.py).
``metering_consume`` takes the partition to drain (beat sends one per partition, on
the ``metering`` queue); without one (a message queued before partitions existed)
it drains every partition whose lease is free.

The consumer's time limits sit above its own budget (CONSUME_BUDGET_S) so that a
hung call is killed rather than holding a worker forever; the killed read's
entries stay pending and are claimed back once the lease has lapsed.
"""

from __future__ import annotations

import logging

from celery import shared_task

from analytics import conf
from analytics.ingest import consumer, services

log = logging.getLogger(__name__)

# The queue of the metering consumers: never the default queue, which carries the
# portal's publish_outbox_flush, so a busy consumer never delays a gateway update.
METERING_QUEUE = "metering"


@shared_task(
    name="analytics.metering_consume",
    queue=METERING_QUEUE,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=conf.CONSUME_BUDGET_S + 30,
    time_limit=conf.CONSUME_BUDGET_S + 60,
)
def metering_consume(partition: int | None = None) -> int:
    """Not a single service call: the consumer reads Redis, commits each read
    through services.metering_batch_commit, then acknowledges it."""
    report = consumer.consume() if partition is None else consumer.consume_partition(int(partition))
    if report.reads:
        log.info(
            "metering: partitions %s, %d reads, %d batches, %d requests, %d counted, %d duplicates, "
            "%d dead letters, %d claimed, %d trimmed",
            report.partitions, report.reads, report.batches, report.received, report.counted, report.duplicates,
            report.dead_letters, report.claimed, report.trimmed,
        )
    return report.counted


@shared_task(name="analytics.rollups_prune", acks_late=True, ignore_result=True, soft_time_limit=600,
             time_limit=900)
def rollups_prune() -> dict[str, int]:
    return services.rollups_prune()


@shared_task(name="analytics.processed_batches_prepare", acks_late=True, ignore_result=True, soft_time_limit=60,
             time_limit=120)
def processed_batches_prepare() -> list[int]:
    return services.processed_batch_partitions_prepare()
