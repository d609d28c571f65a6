-- `daily` and `items` gain coarser rows beside their daily ones, written by the same folds
-- (`projections.daily`, `projections.items`): families 'child:month' and 'level:month' (each
-- day's rows again under its month), and for `daily`'s persons 'child:all' and 'unit:all'
-- (a row per person and person indicator over all time). Whole months and all time read those;
-- what remains of a period are days at its edges, so `day` now comes before `scope_key` in
-- both keys: a few days of a province's fifty children are one range of the key, not fifty.
-- Both tables are dropped and their stamps cleared: the API computes from `facts` until the
-- worker's next start has rebuilt them from the ledger (`Folds.catch_up`: an empty table is
-- rebuilt).
DROP TABLE IF EXISTS daily;

CREATE TABLE IF NOT EXISTS daily (
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
) ENGINE = AggregatingMergeTree
ORDER BY (unit_id, family, person_type, day, scope_key, person_kind, person_rank, person_key);

DROP TABLE IF EXISTS items;

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
ORDER BY (unit_id, family, day, scope_key, kind, due, is_closed, closed_day, method);

INSERT INTO projection_settings (name, value) VALUES ('daily.tree', ''), ('items.tree', '');
