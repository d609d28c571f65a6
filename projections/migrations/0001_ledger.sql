-- The ledger: append-only system of record. One row per accepted event, chained per unit.
CREATE TABLE IF NOT EXISTS ledger (
    unit_id         String,
    seq             UInt64,
    event_id        UUID,
    type            LowCardinality(String),
    schema_version  UInt16,
    subject_id      String,
    occurred_at     DateTime64(3, 'UTC'),
    recorded_at     DateTime64(6, 'UTC'),
    submitted_by    String,
    payload         String,
    prev_hash       String,
    hash            String,
    -- enrichment, not covered by the hash: what a correction/retraction points at
    target_id       UUID,
    target_type     LowCardinality(String),
    -- where the event came from: the Kafka position and the outbox batch
    source_partition Int32,
    source_offset    Int64,
    batch_id         String,
    INDEX idx_event_id event_id TYPE bloom_filter GRANULARITY 2,
    INDEX idx_subject subject_id TYPE bloom_filter GRANULARITY 2,
    INDEX idx_target target_id TYPE bloom_filter GRANULARITY 2
) ENGINE = MergeTree
ORDER BY (unit_id, seq)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

-- Rejected records: the reason, where they came from. Replacing on the source position so a
-- re-delivered record after a crash is not listed twice.
CREATE TABLE IF NOT EXISTS dlq (
    source_partition Int32,
    source_offset    Int64,
    idx              UInt32,
    rejected_at      DateTime64(3, 'UTC'),
    unit_id          String,
    event_id         String,
    field            String,
    reason           String,
    raw              String
) ENGINE = ReplacingMergeTree
ORDER BY (source_partition, source_offset, idx);

-- Outbox batches the worker has fully handled (stored or rejected): the relay's receipt.
CREATE TABLE IF NOT EXISTS ingested_batches (
    batch_id    String,
    finished_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY batch_id;
