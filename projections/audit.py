"""Audit reads: verify the per-unit hash chains, and page through history with its links."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from domain.chain import CHAINED_FIELDS, GENESIS, link_hash
from projections.store import API_QUERY_SETTINGS, ClickHouseStore

VERIFY_COLUMNS = (*CHAINED_FIELDS, "prev_hash", "hash")
UNITS_PER_SLICE = 500


@dataclass(frozen=True)
class Break:
    unit_id: str
    seq: int
    problem: str  # what is wrong, in plain words


@dataclass
class VerifyReport:
    units: int = 0
    rows: int = 0
    breaks: list[Break] = field(default_factory=list)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # unit: (last seq, its hash)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def add(self, unit_id: str, chain: list[dict]) -> None:
        """Verify one unit's rows, in seq order, into the report."""
        self.units += 1
        self.rows += len(chain)
        if found := first_break(unit_id, chain):
            self.breaks.append(found)
        elif chain:
            self.heads[unit_id] = (int(chain[-1]["seq"]), chain[-1]["hash"])

    def fingerprint(self) -> str | None:
        """One hash over every chain's head: equal for two copies of the same chains (a live
        ledger and an export of it, say), different once anything was added, changed or
        removed. None while a chain is broken."""
        if not self.ok:
            return None
        lines = "".join(f"{unit}\t{seq}\t{head}\n" for unit, (seq, head) in sorted(self.heads.items()))
        return hashlib.sha256(lines.encode("utf-8")).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "units": self.units, "rows": self.rows,
                "breaks": [asdict(b) for b in self.breaks], "fingerprint": self.fingerprint()}


def verify_chains(store: ClickHouseStore, units: list[str] | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  as_of: dt.datetime | None = None) -> VerifyReport:
    """Recompute the chains of `units` (every unit's when None), as recorded up to `as_of`
    (a prefix of each chain: its fingerprint is an earlier copy's, `jiandu export --as-of`);
    report the first break of each unit (changed, removed, moved, forged)."""
    cutoff, params = "", {}
    if as_of is not None:
        cutoff = " AND recorded_at <= {as_of:DateTime64(6, 'UTC')}"
        params["as_of"] = as_of.astimezone(dt.UTC).replace(tzinfo=None)
    if units is None:
        units = [r[0] for r in store.rows(f"SELECT DISTINCT unit_id FROM ledger WHERE 1{cutoff} ORDER BY unit_id",
                                          params)]
    report = VerifyReport()
    cols = ", ".join(VERIFY_COLUMNS)
    for i in range(0, len(units), UNITS_PER_SLICE):
        chunk = units[i:i + UNITS_PER_SLICE]
        rows = store.dicts(f"SELECT {cols} FROM ledger WHERE unit_id IN {{u:Array(String)}}{cutoff} "
                           "ORDER BY unit_id, seq", {"u": chunk, **params})
        by_unit: dict[str, list[dict]] = {}
        for row in rows:
            by_unit.setdefault(row["unit_id"], []).append(row)
        for unit_id in chunk:
            report.add(unit_id, by_unit.get(unit_id, []))
        if progress:
            progress(min(i + UNITS_PER_SLICE, len(units)), len(units))
    return report


def first_break(unit_id: str, chain: list[dict]) -> Break | None:
    """Walk one unit's rows in seq order; return the first place the chain does not hold."""
    prev_hash, expected = GENESIS, 1
    for row in chain:
        seq = int(row["seq"])
        if seq != expected:
            what = "重复的序号，疑似插入伪造记录 (duplicate seq: a row was inserted)" if seq < expected \
                else f"序号缺失 {expected}…{seq - 1}，疑似删除记录 (seq gap: rows removed)"
            return Break(unit_id, expected if seq > expected else seq, what)
        if row["prev_hash"] != prev_hash:
            return Break(unit_id, seq, "前序哈希不符，记录被删除、插入或调换 (prev_hash does not match the "
                                       "previous row: removed, inserted or reordered)")
        if link_hash(prev_hash, row) != row["hash"]:
            return Break(unit_id, seq, "内容与哈希不符，记录被修改 (content does not match its hash: "
                                       "a chained field was changed)")
        prev_hash, expected = row["hash"], expected + 1
    return None


HISTORY_COLUMNS = ("unit_id", "seq", "event_id", "type", "schema_version", "subject_id", "occurred_at",
                   "recorded_at", "submitted_by", "payload", "prev_hash", "hash", "target_id")


def _event_out(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in HISTORY_COLUMNS if k != "target_id"}
    out["payload"] = json.loads(row["payload"])
    out["event_id"] = str(row["event_id"])
    for name in ("occurred_at", "recorded_at"):
        out[name] = row[name].replace(tzinfo=dt.UTC).isoformat()
    if str(row["target_id"]) != out["event_id"]:
        out["target_id"] = str(row["target_id"])
    return out


def history(store: ClickHouseStore, units: list[str] | None, subject: str | None = None,
            event_type: str | None = None, lo: dt.datetime | None = None, hi: dt.datetime | None = None,
            as_of: dt.datetime | None = None, after: tuple[str, int] | None = None,
            limit: int = 100) -> tuple[list[dict], tuple[str, int] | None]:
    """Ledger rows matching the filters in (unit, seq) order, and the cursor of the next page."""
    where, params = ["1"], {}
    if units is not None:
        where.append("unit_id IN {units:Array(String)}")
        params["units"] = units
    for name, value, clause in (("subject", subject, "subject_id = {subject:String}"),
                                ("type", event_type, "type = {type:String}"),
                                ("lo", lo, "occurred_at >= {lo:DateTime64(3, 'UTC')}"),
                                ("hi", hi, "occurred_at < {hi:DateTime64(3, 'UTC')}"),
                                ("as_of", as_of, "recorded_at <= {as_of:DateTime64(6, 'UTC')}")):
        if value is not None:
            where.append(clause)
            params[name] = value.astimezone(dt.UTC).replace(tzinfo=None) if isinstance(value, dt.datetime) else value
    if after is not None:
        where.append("(unit_id, seq) > ({au:String}, {aseq:UInt64})")
        params.update(au=after[0], aseq=after[1])
    rows = store.dicts(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM ledger WHERE {' AND '.join(where)} "
                       f"ORDER BY unit_id, seq LIMIT {int(limit) + 1}", params, settings=API_QUERY_SETTINGS)
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = (rows[-1]["unit_id"], int(rows[-1]["seq"])) if more and rows else None
    return [_event_out(r) for r in rows], cursor


def subject_history(store: ClickHouseStore, subject: str, as_of: dt.datetime | None = None) -> list[dict]:
    """Every event about a subject, and every correction or retraction of those events."""
    params: dict[str, Any] = {"s": subject}
    cutoff = ""
    if as_of is not None:
        cutoff = " AND recorded_at <= {as_of:DateTime64(6, 'UTC')}"
        params["as_of"] = as_of.astimezone(dt.UTC).replace(tzinfo=None)
    rows = store.dicts(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM ledger WHERE (subject_id = {{s:String}} OR target_id IN "
        f"(SELECT event_id FROM ledger WHERE subject_id = {{s:String}})){cutoff} ORDER BY recorded_at, unit_id, seq",
        params, settings=API_QUERY_SETTINGS)
    events = [_event_out(r) for r in rows]
    by_id = {e["event_id"]: e for e in events}
    for e in events:
        target = e.get("target_id")
        if target in by_id:
            link = "corrected_by" if e["type"] == "event_corrected" else "retracted_by"
            by_id[target].setdefault(link, []).append(e["event_id"])
    return events
