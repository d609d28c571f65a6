-- items: the live state of every tracked item (a clue's latest disposition; a suggestion, a
-- rectification item, a task with its due date, whether and when it closed, a task's latest
-- progress), folded as events arrive so the indicator API reads a few rows, not the facts.
-- Signed like `daily`: a fold writes -1 for an item's state before the fold's events and +1
-- for its state after them; `upto_seq` on the `kind = 'upto'` rows is each unit's source
-- position, written in the same insert. `pct` is a task's progress in hundredths of a percent.
CREATE TABLE IF NOT EXISTS items (
    kind        LowCardinality(String),
    unit_id     String,
    day         Date32,
    due         Date32,
    is_closed   UInt8,
    closed_day  Date32,
    method      LowCardinality(String),
    upto_seq    SimpleAggregateFunction(max, UInt64),
    n           SimpleAggregateFunction(sum, Int64),
    pct         SimpleAggregateFunction(sum, Int64)
) ENGINE = AggregatingMergeTree
ORDER BY (unit_id, day, kind, due, is_closed, closed_day, method);
