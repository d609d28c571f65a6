"""The worker's index of known event ids: never says "new" of a known id."""

from hypothesis import given
from hypothesis import strategies as st

from streams.known_ids import KnownIds

IDS = st.binary(min_size=16, max_size=16)


@given(st.lists(st.lists(IDS, max_size=40), max_size=12), st.lists(IDS, max_size=40))
def test_known_ids_are_always_maybe_known_and_others_only_when_their_prefix_is(batches, others):
    index = KnownIds(batches[0] if batches else [])
    for batch in batches[1:]:
        index.add(batch)
    known = {i for batch in batches for i in batch}
    prefixes = {i[:8] for i in known}
    queries = sorted(known) + others
    assert index.maybe_known(queries) == [q in known or q[:8] in prefixes for q in queries]
    assert len(index) == len(prefixes)


def test_an_id_sharing_a_known_prefix_is_maybe_known_and_one_that_does_not_is_not():
    index = KnownIds([b"\x01" * 16])
    assert index.maybe_known([b"\x01" * 8 + b"\x02" * 8, b"\x02" * 16, b"\x01" * 16]) == [True, False, True]
    assert KnownIds().maybe_known([b"\x01" * 16]) == [False]


def test_ids_added_one_at_a_time_stay_in_few_runs_and_all_known():
    """A trickle of small batches (a live worker's) must not pile up runs a lookup searches."""
    ids = [i.to_bytes(8, "big") * 2 for i in range(3_000, 0, -1)]  # descending: every add lands first
    index = KnownIds(ids[:1_000])
    for i in range(1_000, len(ids)):
        index.add([ids[i]])
        assert index.runs <= (len(index)).bit_length()  # at most log2(n) + 1
    assert index.maybe_known(ids) == [True] * len(ids)
    assert index.maybe_known([(i.to_bytes(8, "big") * 2) for i in range(3_001, 3_100)]) == [False] * 99
    assert len(index) == len(ids)
