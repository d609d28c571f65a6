-- facts: one row per ledger event, fields pulled out of the payload. Corrections and
-- retractions become rows about the event they target (op 1 / 2), so a read can pick
-- the latest version known at `as_of`.
CREATE TABLE IF NOT EXISTS facts (
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
) ENGINE = MergeTree
ORDER BY (type, unit_id, occurred_at, target_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS facts_mv TO facts AS
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
    JSONExtractString(p, 'person_id') AS person_id,
    JSONExtractString(p, 'kind') AS kind,
    if(JSONHas(p, 'rank'), JSONExtractString(p, 'rank'), JSONExtractString(p, 'subject_rank')) AS rank,
    toUInt8(JSONExtractUInt(p, 'form')) AS form,
    JSONExtractString(p, 'method') AS method,
    JSONExtractString(p, 'channel') AS channel,
    JSONExtractString(p, 'category') AS category,
    JSONExtractString(p, 'source') AS source,
    toDateOrNull(JSONExtractString(p, 'due_date')) AS due_date,
    if(JSONHas(p, 'percent'), JSONExtractFloat(p, 'percent'), NULL) AS percent,
    JSONExtractString(p, 'assignee_unit') AS assignee_unit,
    JSONExtractString(p, 'parent_id') AS parent_id,
    JSONExtractString(p, 'level') AS level,
    JSONExtractString(p, 'name') AS name,
    toDateOrNull(JSONExtractString(p, 'effective_from')) AS effective_from
FROM (
    SELECT *,
           toUInt8(multiIf(type = 'event_corrected', 1, type = 'event_retracted', 2, 0)) AS op_,
           if(type = 'event_corrected', JSONExtractRaw(payload, 'payload'), payload) AS p
    FROM ledger
);
