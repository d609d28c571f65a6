"""Pure domain rules: decoding, hierarchy, rounding, hash chain, upcasting."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import upcasting
from domain.chain import GENESIS, link_hash
from domain.decode import DecodeError, Problem, decode_batch, decode_body, decode_each, decode_event
from domain.hierarchy import Hierarchy, Span
from domain.indicators import largest_remainder_shares, percent
from domain.records import decode_events, decode_record, encode_record


def _event(**overrides):
    base = {"event_id": str(uuid.uuid4()), "type": "clue_registered", "unit_id": "u1",
            "subject_id": "c1", "occurred_at": "2024-03-01T10:00:00+08:00",
            "payload": {"source": "petition", "subject_rank": "county"}}
    base.update(overrides)
    return base


def test_valid_event_decodes_to_its_type_with_utc_time():
    event = decode_event(_event())
    assert event.type == "clue_registered"
    assert event.occurred_at == dt.datetime(2024, 3, 1, 2, 0, tzinfo=dt.UTC)


def test_unknown_payload_field_is_rejected_by_name():
    with pytest.raises(DecodeError) as err:
        decode_event(_event(payload={"source": "petition", "subject_rank": "county", "extra": 1}))
    assert [p.field for p in err.value.problems] == ["payload.extra"]


def test_naive_time_is_rejected():
    with pytest.raises(DecodeError) as err:
        decode_event(_event(occurred_at="2024-03-01T10:00:00"))
    assert err.value.problems[0].field == "occurred_at"


def test_batch_lists_every_problem_with_its_index():
    good, dup = _event(), _event()
    bad = _event(type="nonsense")
    with pytest.raises(DecodeError) as err:
        decode_batch([good, bad, dup, dict(dup)])
    assert [(p.index, p.field) for p in err.value.problems] == [(1, "type"), (3, "event_id")]


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                    max_leaves=20))
def test_decoder_raises_only_decode_errors(value):
    try:
        decode_event(value)
    except DecodeError:
        pass


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                     max_leaves=8)


@given(st.sampled_from(["type", "event_id", "schema_version", "unit_id", "subject_id", "occurred_at",
                        "payload"]), _JSON)
def test_any_value_in_any_envelope_field_is_a_decode_error_or_an_event(name, value):
    """Random whole values rarely look like events; this puts them into an otherwise valid one
    (it would have found `"type": [...]`, which raised TypeError)."""
    for decode in (lambda raw: decode_event(raw), lambda raw: decode_each([raw])[0]):
        try:
            decode(_event(**{name: value}))
        except DecodeError:
            pass


_SPOILERS = [
    lambda e: e | {"type": "nonsense"},
    lambda e: e | {"type": ["clue_registered"]},  # unhashable: once a TypeError, i.e. a 500
    lambda e: e | {"type": {"a": 1}},
    lambda e: e | {"seq": 3},  # a server field
    lambda e: e | {"schema_version": 9},  # newer than the server knows
    lambda e: e | {"schema_version": 0},
    lambda e: e | {"occurred_at": "2024-03-01T10:00:00"},
    lambda e: e | {"payload": {"source": "petition"}},
    lambda e: e | {"unit_id": ""},
    lambda e: [e],
]


@given(st.lists(st.sampled_from([None, *range(len(_SPOILERS))]), min_size=1, max_size=12))
def test_batch_decoding_says_what_one_by_one_decoding_says(spoil):
    """decode_each validates a clean batch in one call: it must accept, reject and word the
    problems exactly as decode_event does event by event."""
    raws = [_event(subject_id=f"c{i}") if s is None else _SPOILERS[s](_event()) for i, s in enumerate(spoil)]

    def one(raw, index):
        try:
            return decode_event(raw, index)
        except DecodeError as exc:
            return exc.problems

    expected = [one(raw, 5 + i) for i, raw in enumerate(raws)]
    got = [r.problems if isinstance(r, DecodeError) else r for r in decode_each(raws, 5)]
    assert got == expected
    assert sum(isinstance(r, list) for r in got) == sum(s is not None for s in spoil)


@given(st.lists(st.sampled_from([None, *range(len(_SPOILERS))]), min_size=1, max_size=12))
def test_a_record_decodes_as_its_events_do_from_parsed_json(spoil):
    """The worker validates a record from its bytes in one call when every event is valid as
    sent: it must accept, reject and word the problems as parsing the JSON and then decoding
    the events does, and take the one-call way only for such records."""
    raws = [_event(subject_id=f"c{i}") if s is None else _SPOILERS[s](_event()) for i, s in enumerate(spoil)]
    value = encode_record("b1", "tester", raws)
    record, got = decode_events(value)
    expected = decode_each(decode_record(value).events)
    assert (record.batch_id, record.submitted_by) == ("b1", "tester")
    assert [r.problems if isinstance(r, DecodeError) else r for r in got] == \
           [r.problems if isinstance(r, DecodeError) else r for r in expected]
    assert record.events == ([] if all(s is None for s in spoil) else raws)


def _slow_body(body):
    data = json.loads(body)
    if not isinstance(data, dict) or set(data) != {"events"}:
        raise DecodeError([Problem(0, None, "(body)", '请求体必须是 {"events": [...]} (body must be {"events": [...]})')])
    return decode_batch(data["events"])


@given(st.lists(st.sampled_from([None, "dup", *range(len(_SPOILERS))]), max_size=12),
       st.sampled_from([None, "extra", "not a list"]))
def test_a_request_body_decodes_as_its_parsed_json_does(spoil, shape):
    """The API validates a body from its bytes in one call when every event is valid as sent:
    the events, or every problem, must be those of parsing the JSON and then the batch."""
    twice = _event(subject_id="d")  # every "dup" is this one: two make a duplicate id
    raws = [_event(subject_id=f"c{i}") if s is None else dict(twice) if s == "dup" else _SPOILERS[s](_event())
            for i, s in enumerate(spoil)]
    body = {"events": raws} | ({"extra": 1} if shape == "extra" else {})
    if shape == "not a list":
        body["events"] = {"0": raws}
    text = json.dumps(body, ensure_ascii=False).encode()
    outcomes = []
    for decode in (decode_body, _slow_body):
        try:
            outcomes.append(decode(text))
        except DecodeError as exc:
            outcomes.append(exc.problems)
    assert outcomes[0] == outcomes[1]


def test_a_record_of_an_older_schema_version_is_upcast(monkeypatch):
    monkeypatch.setattr(upcasting, "_UPCASTERS", {})
    monkeypatch.setattr(upcasting, "CURRENT_VERSION", {})

    @upcasting.upcaster("clue_registered", 1)
    def rank_renamed(payload):
        return payload | {"subject_rank": "bureau"}

    _, events = decode_events(encode_record("b1", "tester", [_event()]))
    assert events[0].payload.subject_rank == "bureau"  # "county" is valid too: only the version tells


def _tree() -> Hierarchy:
    h = Hierarchy()
    d = dt.date
    h.register("p", "P", "province", None, d(2020, 1, 1))
    h.register("c1", "C1", "city", "p", d(2020, 1, 1))
    h.register("c2", "C2", "city", "p", d(2020, 1, 1))
    h.register("k", "K", "county", "c1", d(2020, 1, 1))
    h.move("k", "c2", d(2024, 7, 1))
    return h


def test_path_follows_the_parent_in_force_on_the_date():
    h = _tree()
    assert h.path_of("k", dt.date(2024, 6, 30)) == ["p", "c1", "k"]
    assert h.path_of("k", dt.date(2024, 7, 1)) == ["p", "c2", "k"]


def test_moved_unit_rolls_up_to_old_parent_before_the_move():
    spans = {(s.unit_id, s.key, s.end) for s in _tree().subtree_spans("p")}
    assert ("k", "c1", dt.date(2024, 7, 1)) in spans
    assert {s.unit_id for s in _tree().subtree_spans("c1")} == {"c1", "k"}


def _ancestry_by_paths(tree: Hierarchy) -> set[tuple[str, str, dt.date, str]]:
    """(ancestor, unit, day, key) on every day a parent link starts, from `path_of` alone."""
    days = {dt.date.min} | {link.effective_from for u in tree.units.values() for link in u.links}
    found = set()
    for unit in tree.units:
        for day in days:
            path = tree.path_of(unit, day)
            for i, ancestor in enumerate(path):
                found.add((ancestor, unit, day, path[i + 1] if i + 1 < len(path) else unit))
    return found


def test_ancestry_puts_each_unit_under_every_ancestor_on_its_path():
    from producers.simulate import build_province  # a real-sized province, no moves

    province = Hierarchy()
    for raw in build_province():
        payload = raw["payload"]
        province.register(raw["subject_id"], payload["name"], payload["level"], payload.get("parent_id"),
                          dt.date.fromisoformat(payload["effective_from"]))
    for tree in (_tree(), province):
        pairs = tree.ancestry()
        assert len(pairs) == len(set(pairs))
        days = {d for _, _, d, _ in _ancestry_by_paths(tree)}
        got = {(a, s.unit_id, day, s.key) for a, s in pairs for day in days if s.start <= day < s.end}
        assert got == _ancestry_by_paths(tree)
        root = tree.roots()[0]
        assert {s for a, s in pairs if a == root} == set(tree.subtree_spans(root))
    assert ("c1", Span("k", dt.date.min, dt.date(2024, 7, 1), "k")) in _tree().ancestry()


def test_ancestry_of_a_cycle_in_bad_data_ends():
    tree = _tree()
    tree.move("c2", "k", dt.date(2025, 1, 1))  # k is under c2 from 2024-07: now c2 → k → c2
    pairs = tree.ancestry()
    assert ("c2", Span("k", dt.date(2024, 7, 1), dt.date.max, "k")) in pairs
    assert ("k", Span("c2", dt.date(2025, 1, 1), dt.date.max, "c2")) in pairs


def test_published_wuhua_shares_round_to_100():
    assert largest_remainder_shares([368, 231, 22, 33]) == [56.3, 35.3, 3.4, 5.0]


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=4, max_size=4).filter(any))
def test_shares_always_sum_to_exactly_100(counts):
    shares = largest_remainder_shares(counts)
    assert round(sum(shares) * 10) == 1000
    assert all(abs(s - c * 100 / sum(counts)) <= 0.1 + 1e-9 for s, c in zip(shares, counts, strict=True))


def test_rate_is_one_decimal_half_up_and_undefined_without_denominator():
    assert percent(1, 8) == 12.5 and percent(2, 3) == 66.7 and percent(1, 0) is None


def test_any_change_to_a_chained_row_changes_its_hash():
    row = {"event_id": uuid.uuid4(), "type": "case_filed", "schema_version": 1, "unit_id": "u",
           "subject_id": "s", "occurred_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
           "recorded_at": dt.datetime(2024, 1, 2, tzinfo=dt.UTC), "submitted_by": "x", "seq": 1,
           "payload": '{"subject_rank":"county"}'}
    original = link_hash(GENESIS, row)
    assert link_hash(GENESIS, dict(row)) == original
    assert link_hash(GENESIS, {**row, "payload": '{"subject_rank":"bureau"}'}) != original
    assert link_hash(GENESIS, {**row, "seq": 2}) != original
    assert link_hash("1" * 64, row) != original


def test_old_schema_versions_are_upcast_by_registered_functions(monkeypatch):
    monkeypatch.setattr(upcasting, "_UPCASTERS", {})
    monkeypatch.setattr(upcasting, "CURRENT_VERSION", {})

    @upcasting.upcaster("clue_disposed", 1)
    def rename_method(payload):
        return {"method": {"talk": "talk_inquiry"}.get(payload["method"], payload["method"])}

    assert upcasting.upcast("clue_disposed", 1, {"method": "talk"}) == {"method": "talk_inquiry"}
    with pytest.raises(upcasting.UnknownSchemaVersion):
        upcasting.upcast("clue_disposed", 3, {"method": "talk"})


@given(st.text(max_size=30), st.text(max_size=30), st.integers(1, 10**9),
       st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2199, 1, 1)),
       st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers() | st.floats(allow_nan=False), max_size=4))
def test_fast_chain_hash_equals_the_generic_one(subject, submitted_by, seq, when, payload):
    from domain.chain import canonical_json, link_hash_parts

    when = when.replace(tzinfo=dt.UTC)
    event_id = str(uuid.uuid4())
    row = {"event_id": event_id, "type": "case_filed", "schema_version": 1, "unit_id": "单位-1",
           "subject_id": subject, "occurred_at": when.replace(microsecond=when.microsecond // 1000 * 1000),
           "recorded_at": when, "submitted_by": submitted_by, "seq": seq, "payload": canonical_json(payload)}
    fast = link_hash_parts(GENESIS, event_id, "case_filed", 1, "单位-1", subject, row["occurred_at"], when,
                           submitted_by, seq, row["payload"])
    assert fast == link_hash(GENESIS, row)


@given(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2199, 1, 1),
                    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8)),
                                               dt.timezone(dt.timedelta(hours=-5, minutes=-30))])))
def test_iso_forms_are_utc_with_z_whatever_the_offset(when):
    from domain.chain import iso_ms, iso_us

    utc = when.astimezone(dt.UTC).replace(tzinfo=None)
    assert iso_us(when) == utc.isoformat(timespec="microseconds") + "Z"
    assert iso_ms(when) == utc.isoformat(timespec="milliseconds") + "Z"
