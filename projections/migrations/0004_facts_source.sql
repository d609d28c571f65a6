-- facts are no longer pushed by a materialized view: an INSERT into ledger and the view's
-- INSERT into facts are two parts, and a kill -9 between them lost facts rows for good
-- (the re-delivered events are duplicates by then). The worker now projects explicitly from
-- this plain view, and catches up on start: every ledger row not yet in facts, by (unit_id, seq).
DROP VIEW IF EXISTS facts_mv;

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
