-- The live folds keyed by subtree: a fact's fold rows are written once for every unit whose
-- subtree holds the fact's unit on the fact's day (the unit itself included), so the indicator
-- API reads one unit's rows by primary key instead of joining a subtree's units.
-- `ancestry` is that relation for one version of the hierarchy (`tree_id`, a hash of its rows),
-- one row per family a fold row is written under: 'child' (`scope_key`: the child of `ancestor`
-- the unit rolls up through, or the unit itself) and 'level' (`scope_key`: the unit's level);
-- the folds record which version they were written with (`projection_settings`, `daily.tree`,
-- `items.tree`), and are rebuilt when a unit moves.
CREATE TABLE IF NOT EXISTS ancestry (
    tree_id    String,
    unit_id    String,
    start_day  Date32,
    end_day    Date32,
    ancestor   String,
    family     LowCardinality(String),
    scope_key  String
) ENGINE = MergeTree
ORDER BY (tree_id, unit_id);

-- daily and items change their key: drop them; the next start rebuilds them from the ledger.
DROP TABLE IF EXISTS daily;

-- `unit_id`: the unit whose subtree the row counts in; on watermark rows (person_type 'upto'),
-- the unit folded. `person_type` comes early in the key: counts ('') and persons are read
-- apart. `family` 'child' rows are keyed by the child of `unit_id` the fact rolls up
-- through (`unit_id` itself for its own facts), 'level' rows by the level of the fact's unit.
CREATE TABLE IF NOT EXISTS daily (
    unit_id      String,
    family       LowCardinality(String),
    scope_key    String,
    day          Date32,
    person_type  LowCardinality(String),
    person_kind  LowCardinality(String),
    person_rank  LowCardinality(String),
    person_id    String,
    upto_seq     SimpleAggregateFunction(max, UInt64),
    n            SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(Int64))),
    pn           SimpleAggregateFunction(sum, Int64)
) ENGINE = AggregatingMergeTree
ORDER BY (unit_id, family, person_type, scope_key, day, person_kind, person_rank, person_id);

DROP TABLE IF EXISTS items;

-- Keyed like `daily`; watermark rows have kind 'upto'.
CREATE TABLE IF NOT EXISTS items (
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
) ENGINE = AggregatingMergeTree
ORDER BY (unit_id, family, scope_key, day, kind, due, is_closed, closed_day, method);
