-- daily_counts replaces daily: the same folds with one column per additive indicator
-- (projections/counted.py ADDITIVE; `n_` + the id with dots as underscores) instead of a
-- sumMap over (ids, counts) arrays. Summing maps cost ~3× summing columns, on every fold, on
-- every replay and on every live indicator request (measured on a 200k ledger: 0.9 s vs 0.27 s).
-- `total` is pn plus every count: each is a net count of facts, never negative once summed
-- over whole days, so a summed group counts something exactly when its total is not zero.
-- The table starts empty: the worker's start-up catch-up folds the whole ledger into it.
DROP TABLE IF EXISTS daily;

CREATE TABLE IF NOT EXISTS daily_counts (
    unit_id      String,
    day          Date32,
    person_type  LowCardinality(String),
    person_kind  LowCardinality(String),
    person_rank  LowCardinality(String),
    person_id    String,
    upto_seq     SimpleAggregateFunction(max, UInt64),
    n_petitions_received           SimpleAggregateFunction(sum, Int64),
    n_petitions_accusation         SimpleAggregateFunction(sum, Int64),
    n_clues_registered             SimpleAggregateFunction(sum, Int64),
    n_cases_filed                  SimpleAggregateFunction(sum, Int64),
    n_cases_closed                 SimpleAggregateFunction(sum, Int64),
    n_four_forms_total             SimpleAggregateFunction(sum, Int64),
    n_transfers_procuratorate      SimpleAggregateFunction(sum, Int64),
    n_suggestions_issued           SimpleAggregateFunction(sum, Int64),
    n_rectification_opened         SimpleAggregateFunction(sum, Int64),
    n_rectification_closed         SimpleAggregateFunction(sum, Int64),
    n_talks_total                  SimpleAggregateFunction(sum, Int64),
    n_cases_filed_provincial       SimpleAggregateFunction(sum, Int64),
    n_cases_filed_bureau           SimpleAggregateFunction(sum, Int64),
    n_cases_filed_county           SimpleAggregateFunction(sum, Int64),
    n_cases_filed_township         SimpleAggregateFunction(sum, Int64),
    n_cases_filed_general          SimpleAggregateFunction(sum, Int64),
    n_cases_filed_village          SimpleAggregateFunction(sum, Int64),
    n_cases_filed_other            SimpleAggregateFunction(sum, Int64),
    n_four_forms_form1             SimpleAggregateFunction(sum, Int64),
    n_four_forms_form2             SimpleAggregateFunction(sum, Int64),
    n_four_forms_form3             SimpleAggregateFunction(sum, Int64),
    n_four_forms_form4             SimpleAggregateFunction(sum, Int64),
    n_talks_reminder               SimpleAggregateFunction(sum, Int64),
    n_talks_admonition             SimpleAggregateFunction(sum, Int64),
    n_talks_supervision            SimpleAggregateFunction(sum, Int64),
    n_talks_integrity              SimpleAggregateFunction(sum, Int64),
    pn           SimpleAggregateFunction(sum, Int64),
    total        SimpleAggregateFunction(sum, Int64)
) ENGINE = AggregatingMergeTree
ORDER BY (unit_id, day, person_type, person_kind, person_rank, person_id);
