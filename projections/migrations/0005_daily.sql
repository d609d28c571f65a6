-- daily: the live count figures, folded per unit and local day as events arrive, so the
-- indicator API sums a few rows per unit instead of scanning every fact.
-- A fold writes signed rows: +1 for a fact's current version, -1 for the version a correction
-- or retraction replaced. `n` maps indicator id → signed count; person rows (person_type set)
-- carry one person's signed count in `pn`, for the distinct-person indicators.
-- `upto_seq` is the fold's source position: the unit's last ledger seq folded in, written in
-- the same insert as the counts, so a restart resumes exactly where the last fold ended.
CREATE TABLE IF NOT EXISTS daily (
    unit_id      String,
    day          Date32,
    person_type  LowCardinality(String),
    person_kind  LowCardinality(String),
    person_rank  LowCardinality(String),
    person_id    String,
    upto_seq     SimpleAggregateFunction(max, UInt64),
    n            SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(Int64))),
    pn           SimpleAggregateFunction(sum, Int64)
) ENGINE = AggregatingMergeTree
ORDER BY (unit_id, day, person_type, person_kind, person_rank, person_id);

-- Settings a projection was built with (the time zone that defines `daily.day`).
CREATE TABLE IF NOT EXISTS projection_settings (
    name  String,
    value String,
    set_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(set_at)
ORDER BY name;

-- Large query scopes (a subtree's unit spans), content-addressed: see projections/scopes.py.
CREATE TABLE IF NOT EXISTS scopes (
    scope_id   String,
    unit_id    String,
    start_day  Date32,
    end_day    Date32,
    scope_key  String
) ENGINE = MergeTree
ORDER BY (scope_id, unit_id);
