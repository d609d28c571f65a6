"""An auditor's copy: `jiandu export` writes the chains as JSON Lines, `jiandu verify --file`
recomputes them with no platform and no store, and the fingerprint ties copy and ledger."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess

import pytest

from tests.harness import ROOT, Up, event, jiandu_cmd

FINGERPRINT = re.compile(r"fingerprint: ([0-9a-f]{64})")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(jiandu_cmd(*args), capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={"PATH": "/usr/bin:/bin"})


def _fingerprint(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return FINGERPRINT.search(result.stdout).group(1)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """A stopped data dir: the small province, 12 petitions in k1, 3 in k2."""
    data = tmp_path_factory.mktemp("export") / "data"
    up = Up(data).wait_ready()
    up.register_small_province()
    assert up.post([event("petition_received", unit, f"{unit}-p{i}", {"channel": "letter", "category": "appeal"})
                    for unit, n in (("k1", 12), ("k2", 3)) for i in range(n)]).status_code == 202
    up.wait_for("p", "petitions.received", 15)
    assert up.stop() == 0
    return data


@pytest.fixture(scope="module")
def exported(ledger, tmp_path_factory):
    path = tmp_path_factory.mktemp("copy") / "ledger.jsonl"
    result = _run("export", str(path), "--data-dir", str(ledger))
    assert "已导出 exported 21 条记录" in result.stdout
    return path, _fingerprint(result)


def test_an_export_verifies_offline_with_the_ledgers_own_fingerprint(ledger, exported):
    path, fingerprint = exported
    offline = _run("verify", "--file", str(path))
    assert "完整 OK: 5 个单位 units, 21 条记录 rows" in offline.stdout  # p, c1, c2, k1, k2 record
    assert _fingerprint(offline) == fingerprint == _fingerprint(_run("verify", "--data-dir", str(ledger)))
    lines = path.read_text(encoding="utf-8").splitlines()
    keys = [(json.loads(line)["unit_id"], json.loads(line)["seq"]) for line in lines]
    assert len(keys) == 21 and keys == sorted(keys)  # in (unit, seq) order, every chain whole


def test_a_units_rows_in_another_order_are_the_same_chain_but_units_interleaved_are_refused(exported, tmp_path):
    path, fingerprint = exported
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    k1 = [i for i, line in enumerate(lines) if json.loads(line)["unit_id"] == "k1"]
    shuffled = lines[:k1[0]] + random.Random(7).sample(lines[k1[0]:k1[-1] + 1], len(k1)) + lines[k1[-1] + 1:]
    copy = tmp_path / "shuffled.jsonl"
    copy.write_text("".join(shuffled), encoding="utf-8")
    assert shuffled != lines and _fingerprint(_run("verify", "--file", str(copy))) == fingerprint

    moved = lines[:k1[0]] + lines[k1[0] + 1:] + [lines[k1[0]]]  # k1's first row after every other unit's
    copy.write_text("".join(moved), encoding="utf-8")
    result = _run("verify", "--file", str(copy))
    assert result.returncode == 2 and "line 21: the rows of unit k1 are not together" in result.stderr


def _tampered(path, tmp_path, change) -> subprocess.CompletedProcess:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows = change(rows)
    copy = tmp_path / "tampered.jsonl"
    copy.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return _run("verify", "--file", str(copy))


def _k1(rows, seq):
    return next(i for i, r in enumerate(rows) if r["unit_id"] == "k1" and r["seq"] == seq)


@pytest.mark.parametrize(("kind", "change", "seq"), [
    ("a payload changed", lambda rows: [*rows[:(i := _k1(rows, 3))],
                                        {**rows[i], "payload": {"channel": "visit", "category": "appeal"}},
                                        *rows[i + 1:]], 3),
    ("a row removed", lambda rows: [r for r in rows if (r["unit_id"], r["seq"]) != ("k1", 4)], 4),
    ("the last row removed", lambda rows: [r for r in rows if (r["unit_id"], r["seq"]) != ("k1", 12)], None),
])
def test_a_tampered_export_names_the_unit_and_seq_or_changes_the_fingerprint(exported, tmp_path, kind, change, seq):
    path, fingerprint = exported
    result = _tampered(path, tmp_path, change)
    if seq is None:  # a shorter chain is still a chain: only the fingerprint tells
        assert result.returncode == 0 and _fingerprint(result) != fingerprint, kind
    else:
        assert result.returncode == 1, kind
        assert f"unit=k1 seq={seq}" in result.stdout, result.stdout
        assert "fingerprint" not in result.stdout


def test_a_unit_exports_its_subtree_and_matches_its_subtree_verify(ledger, tmp_path):
    path = tmp_path / "c1.jsonl"
    result = _run("export", str(path), "--unit", "c1", "--data-dir", str(ledger))
    units = {json.loads(line)["unit_id"] for line in path.read_text(encoding="utf-8").splitlines()}
    assert units == {"c1", "k1"}
    assert _fingerprint(result) == _fingerprint(_run("verify", "--unit", "c1", "--data-dir", str(ledger)))


def test_an_export_through_a_running_platform_is_the_same_copy(ledger, exported, tmp_path):
    path, fingerprint = exported
    copy = tmp_path / "running"
    shutil.copytree(ledger, copy, symlinks=True)
    up = Up(copy).wait_ready()
    try:
        remote = tmp_path / "remote.jsonl"
        result = _run("export", str(remote), "--data-dir", str(copy))  # through the API in runtime.json
        assert _fingerprint(result) == fingerprint
        assert remote.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")

        # The platform records more; the copy's fingerprint is still the ledger's as of the copy.
        taken = re.search(r"recorded up to (\S+)\)", result.stdout).group(1)
        assert up.post([event("petition_received", "k1", "later", {"channel": "visit", "category": "appeal"})]
                       ).status_code == 202
        up.wait_for("k1", "petitions.received", 13)
        assert _fingerprint(_run("verify", "--data-dir", str(copy))) != fingerprint
        assert _fingerprint(_run("verify", "--as-of", taken, "--data-dir", str(copy))) == fingerprint
    finally:
        assert up.stop() == 0


@pytest.mark.parametrize(("content", "says"), [
    ("not json\n", "第 1 行不是导出的事件"),
    ('{"unit_id": "k1"}\n', "missing fields"),
])
def test_a_file_that_is_not_an_export_is_one_plain_error(tmp_path, content, says):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    result = _run("verify", "--file", str(path))
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr
