"""Ingest: the gateways' metering batches in, rollups and the batch ledger out.

consumer.py (one owner per partition stream: a lease and a consumer group) ->
services.metering_batch_commit (one transaction: ledger.py claims batch ids,
metering.py folds requests into minute cells, ledger.py merges the rollups) -> XACK
-> XTRIM of what was acknowledged. selectors.metering_lag reports how far behind it is;
services.rollups_prune and processed_batch_partitions_prepare keep retention.
"""
