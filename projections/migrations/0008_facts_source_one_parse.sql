-- facts_source parses each payload once (one JSONExtract into a named tuple) instead of once
-- per field: the same rows (checked equal over a 10M-event ledger), about half the time, and
-- far less for ClickHouse to plan on every projection and fold that reads it.
DROP VIEW IF EXISTS facts_source;

CREATE VIEW IF NOT EXISTS facts_source AS
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
    FROM ledger
);
