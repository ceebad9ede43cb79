"""Ingest: the metering stream in, rollups and the dedupe ledger out.

consumer.py (Redis consumer group) -> services.metering_batch_commit (one
transaction: ledger.py claims event ids, metering.py aggregates, ledger.py upserts
the rollups) -> XACK. services.rollups_prune applies retention.
"""
