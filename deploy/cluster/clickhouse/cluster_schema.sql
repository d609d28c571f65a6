-- jiandu schema for the ClickHouse cluster `jiandu` (1 shard × 3 replicas, see config.d/cluster.xml).
--
-- The same tables and columns as projections/migrations/0001_ledger.sql … 0009_write_once.sql,
-- made replicated:
--   * ledger and facts: a ReplicatedMergeTree `<name>_local` on every node, and a Distributed
--     table under the name jiandu queries (`ledger`, `facts`), sharded by cityHash64(unit_id)
--     so that a unit's hash chain and every version of its entities stay on one shard;
--   * the small tables (dlq, ingested_batches, tokens, schema_migrations): replicated under
--     their own names; with a single shard every replica holds every row.
--
-- Apply once, BEFORE `jiandu migrate` (the compose override's `clickhouse-schema` service does):
--   clickhouse-client --host clickhouse --user … --password … --multiquery --queries-file cluster_schema.sql
-- `jiandu migrate` then sees a replicated `schema_migrations` and only records the migrations
-- as applied, running none of their statements. A NEW migration file needs its replicated
-- counterpart here before it is deployed to a cluster, or its table never exists there.
-- (0009 turns on insert deduplication for `ancestry` and `scopes`: replicated tables have it.)
-- tests/unit/test_deploy_files.py checks that the columns here match the migrations.
--
-- Every statement is ON CLUSTER jiandu: run on one node, executed on all (through Keeper).

CREATE DATABASE IF NOT EXISTS jiandu ON CLUSTER jiandu;

-- ---------------------------------------------------------------------------- ledger
-- The append-only system of record: one row per accepted event, chained per unit.
CREATE TABLE IF NOT EXISTS jiandu.ledger_local ON CLUSTER jiandu
(
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
    target_id       UUID,
    target_type     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64,
    batch_id         String,
    INDEX idx_event_id event_id TYPE bloom_filter GRANULARITY 2,
    INDEX idx_subject subject_id TYPE bloom_filter GRANULARITY 2,
    INDEX idx_target target_id TYPE bloom_filter GRANULARITY 2
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/jiandu/ledger_local', '{replica}')
ORDER BY (unit_id, seq)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1;

CREATE TABLE IF NOT EXISTS jiandu.ledger ON CLUSTER jiandu
(
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
    target_id       UUID,
    target_type     LowCardinality(String),
    source_partition Int32,
    source_offset    Int64,
    batch_id         String
)
ENGINE = Distributed(jiandu, jiandu, ledger_local, cityHash64(unit_id));

-- ---------------------------------------------------------------------------- facts
-- One row per ledger event; corrections/retractions are rows about their target (op 1 / 2).
CREATE TABLE IF NOT EXISTS jiandu.facts_local ON CLUSTER jiandu
(
    target_id      UUID,
    event_id       UUID,
    op             UInt8,
    type           LowCardinality(String),
    unit_id        String,
    subject_id     String,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(6, 'UTC'),
    seq            UInt64,
    person_id      String,
    kind           LowCardinality(String),
    rank           LowCardinality(String),
    form           UInt8,
    method         LowCardinality(String),
    channel        LowCardinality(String),
    category       LowCardinality(String),
    source         LowCardinality(String),
    due_date       Nullable(Date),
    percent        Nullable(Float64),
    assignee_unit  String,
    parent_id      String,
    level          LowCardinality(String),
    name           String,
    effective_from Nullable(Date),
    INDEX idx_target target_id TYPE bloom_filter GRANULARITY 2,
    INDEX idx_subject subject_id TYPE bloom_filter GRANULARITY 2
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/jiandu/facts_local', '{replica}')
ORDER BY (type, unit_id, occurred_at, target_id);

CREATE TABLE IF NOT EXISTS jiandu.facts ON CLUSTER jiandu
(
    target_id      UUID,
    event_id       UUID,
    op             UInt8,
    type           LowCardinality(String),
    unit_id        String,
    subject_id     String,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(6, 'UTC'),
    seq            UInt64,
    person_id      String,
    kind           LowCardinality(String),
    rank           LowCardinality(String),
    form           UInt8,
    method         LowCardinality(String),
    channel        LowCardinality(String),
    category       LowCardinality(String),
    source         LowCardinality(String),
    due_date       Nullable(Date),
    percent        Nullable(Float64),
    assignee_unit  String,
    parent_id      String,
    level          LowCardinality(String),
    name           String,
    effective_from Nullable(Date)
)
ENGINE = Distributed(jiandu, jiandu, facts_local, cityHash64(unit_id));

-- The fold from ledger to facts: a plain view the worker projects through (INSERT INTO facts
-- SELECT * FROM facts_source WHERE …) right after each ledger insert, and catches up from on
-- start. Same SELECT as 0008_facts_source_one_parse.sql. (Not a materialized view: its part commits
-- separately from the ledger's, and a crash between the two lost facts rows.)
CREATE VIEW IF NOT EXISTS jiandu.facts_source ON CLUSTER jiandu AS
SELECT
    target_id,
    event_id,
    op_ AS op,
    target_type AS type,
    unit_id,
    subject_id,
    occurred_at,
    recorded_at,
    seq,
    f.person_id AS person_id,
    f.kind AS kind,
    ifNull(f.rank, f.subject_rank) AS rank,
    toUInt8(f.form) AS form,
    f.method AS method,
    f.channel AS channel,
    f.category AS category,
    f.source AS source,
    toDateOrNull(f.due_date) AS due_date,
    f.percent AS percent,
    f.assignee_unit AS assignee_unit,
    f.parent_id AS parent_id,
    f.level AS level,
    f.name AS name,
    toDateOrNull(f.effective_from) AS effective_from
FROM (
    SELECT *,
           toUInt8(multiIf(type = 'event_corrected', 1, type = 'event_retracted', 2, 0)) AS op_,
           JSONExtract(if(type = 'event_corrected', JSONExtractRaw(payload, 'payload'), payload),
                       'Tuple(person_id String, kind String, rank Nullable(String), subject_rank String, form UInt64, method String, channel String, category String, source String, due_date String, percent Nullable(Float64), assignee_unit String, parent_id String, level String, name String, effective_from String)') AS f
    FROM jiandu.ledger_local
);

-- ---------------------------------------------------------------------------- small tables
-- Rejected records (the DLQ), replacing on the source position.
CREATE TABLE IF NOT EXISTS jiandu.dlq ON CLUSTER jiandu
(
    source_partition Int32,
    source_offset    Int64,
    idx              UInt32,
    rejected_at      DateTime64(3, 'UTC'),
    unit_id          String,
    event_id         String,
    field            String,
    reason           String,
    raw              String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/jiandu/dlq', '{replica}')
ORDER BY (source_partition, source_offset, idx);

-- Outbox batches the worker has fully handled: the outbox relay's receipt.
CREATE TABLE IF NOT EXISTS jiandu.ingested_batches ON CLUSTER jiandu
(
    batch_id    String,
    finished_at DateTime64(3, 'UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/jiandu/ingested_batches', '{replica}')
ORDER BY batch_id;

-- API tokens (SHA-256 hashes); the latest version of a token id wins.
CREATE TABLE IF NOT EXISTS jiandu.tokens ON CLUSTER jiandu
(
    token_id    String,
    token_hash  String,
    unit_id     String,
    role        LowCardinality(String),
    created_by  String,
    created_at  DateTime64(3, 'UTC'),
    expires_at  Nullable(DateTime64(3, 'UTC')),
    revoked     UInt8,
    version     UInt64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/jiandu/tokens', '{replica}', version)
ORDER BY token_id;

-- What `jiandu migrate` has applied (projections/store.py creates it with the same columns).
CREATE TABLE IF NOT EXISTS jiandu.schema_migrations ON CLUSTER jiandu
(
    name       String,
    applied_at DateTime DEFAULT now()
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/jiandu/schema_migrations', '{replica}')
ORDER BY name;

-- ---------------------------------------------------------------------------- 0005_daily, 0007
-- Live count folds per subtree and local day, and by month and all time (projections/daily.py;
-- migrations 0010, 0011).
-- Replicated under its own name: with one shard every replica holds every unit. Sharding it
-- like `facts` would need the fold's reads to stay shard-local, not done yet.
CREATE TABLE IF NOT EXISTS jiandu.daily ON CLUSTER jiandu
(
    unit_id      String,
    family       LowCardinality(String),
    scope_key    String,
    day          Date32,
    person_type  LowCardinality(String),
    person_kind  LowCardinality(String),
    person_rank  LowCardinality(String),
    person_key   UInt64,
    upto_seq     SimpleAggregateFunction(max, UInt64),
    n            SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(Int64))),
    pn           SimpleAggregateFunction(sum, Int64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/jiandu/daily', '{replica}')
ORDER BY (unit_id, family, person_type, day, scope_key, person_kind, person_rank, person_key);

CREATE TABLE IF NOT EXISTS jiandu.projection_settings ON CLUSTER jiandu
(
    name   String,
    value  String,
    set_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/jiandu/projection_settings', '{replica}', set_at)
ORDER BY name;

CREATE TABLE IF NOT EXISTS jiandu.scopes ON CLUSTER jiandu
(
    scope_id   String,
    unit_id    String,
    start_day  Date32,
    end_day    Date32,
    scope_key  String
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/jiandu/scopes', '{replica}')
ORDER BY (scope_id, unit_id);

-- ---------------------------------------------------------------------------- 0006_items, 0007, 0011
-- Live item states per subtree (projections/items.py), replicated like `daily` (one shard).
CREATE TABLE IF NOT EXISTS jiandu.items ON CLUSTER jiandu
(
    kind        LowCardinality(String),
    unit_id     String,
    family      LowCardinality(String),
    scope_key   String,
    day         Date32,
    due         Date32,
    is_closed   UInt8,
    closed_day  Date32,
    method      LowCardinality(String),
    upto_seq    SimpleAggregateFunction(max, UInt64),
    n           SimpleAggregateFunction(sum, Int64),
    pct         SimpleAggregateFunction(sum, Int64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/jiandu/items', '{replica}')
ORDER BY (unit_id, family, day, scope_key, kind, due, is_closed, closed_day, method);

-- ---------------------------------------------------------------------------- 0007_subtree_folds
-- Each hierarchy version's unit → ancestor relation, joined by the folds (projections/ancestry.py).
CREATE TABLE IF NOT EXISTS jiandu.ancestry ON CLUSTER jiandu
(
    tree_id    String,
    unit_id    String,
    start_day  Date32,
    end_day    Date32,
    ancestor   String,
    family     LowCardinality(String),
    scope_key  String
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/jiandu/ancestry', '{replica}')
ORDER BY (tree_id, unit_id);
