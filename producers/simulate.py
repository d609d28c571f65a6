"""Realistic synthetic workload: a province's units and a stream of consistent events.

Everything is drawn from seeded `random.Random` streams, so a seed always yields the
same units and the same events (event ids included). `Workload.fresh` is for what a user
runs (`jiandu simulate`, `jiandu up --demo`): each run adds events no earlier run sent.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import uuid
from bisect import bisect
from collections import defaultdict
from functools import partial
from typing import Any

CST = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
START = dt.datetime(2025, 1, 1, 9, tzinfo=CST)
EFFECTIVE_FROM = "2020-01-01"
PROVINCES = {"gd": "广东省"}
CITIES = ("广州市", "深圳市", "珠海市", "汕头市", "佛山市", "韶关市", "湛江市", "肇庆市", "江门市",
          "茂名市", "惠州市")
PLACE_CHARS = "安平新丰和兴宁阳江山南北东西清龙华德怀源连英博罗台开恩信化州高"
DIGITS = "零一二三四五六七八九"
SECTIONS = ("个人有关事项报告", "家庭成员情况", "廉政谈话记录", "问题线索处置情况")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁"


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _cn(n: int) -> str:
    """Write 1–99 in Chinese numerals (十二, 二十五)."""
    tens, ones = divmod(n, 10)
    return (f"{DIGITS[tens] if tens > 1 else ''}十" if tens else "") + (DIGITS[ones] if ones else "")


def build_province(seed: int = 7, root_id: str = "gd") -> list[dict[str, Any]]:
    """Return raw `unit_registered` events for a whole province, parents before children."""
    rng = random.Random(f"province:{root_id}:{seed}")  # distinct from the workload's stream
    province = PROVINCES.get(root_id, "示范省")
    events: list[dict[str, Any]] = []
    clock = dt.datetime(2020, 1, 1, 9, tzinfo=CST)

    def register(unit: str, name: str, level: str, parent: str | None) -> None:
        payload = {"name": name, "level": level, "effective_from": EFFECTIVE_FROM}
        if parent is not None:
            payload["parent_id"] = parent
        occurred = clock + dt.timedelta(seconds=len(events))
        events.append({"event_id": _uid(rng), "type": "unit_registered", "unit_id": parent or unit,
                       "subject_id": unit, "occurred_at": occurred.isoformat(), "payload": payload})

    def groups(parent: str, prefix: str, count: int) -> None:
        for g in range(1, count + 1):
            register(f"{parent}.g{g:02d}", f"{prefix}纪委监委派驻第{_cn(g)}纪检监察组",
                     "stationed_group", parent)

    register(root_id, f"{province}纪委监委", "province", None)
    cities = [f"{root_id}.c{c:02d}" for c in range(1, len(CITIES) + 1)]
    for city, name in zip(cities, CITIES, strict=True):
        register(city, f"{name}纪委监委", "city", root_id)
    groups(root_id, province, 40)
    counties = [1] * len(cities)
    for _ in range(90 - len(cities)):  # spread the rest of ~90 counties unevenly
        counties[rng.randrange(len(cities))] += 1
    for city, name, count in zip(cities, CITIES, counties, strict=True):
        groups(city, name, rng.randint(22, 28))
        for k in range(1, count + 1):
            county, county_name = f"{city}.k{k:02d}", "".join(rng.sample(PLACE_CHARS, 2)) + "县"
            register(county, f"{county_name}纪委监委", "county", city)
            groups(county, county_name, rng.randint(6, 15))
            for t in range(1, rng.randint(2, 4) + 1):
                town = "".join(rng.sample(PLACE_CHARS, 2)) + "镇"
                register(f"{county}.t{t:02d}", f"{county_name}{town}纪委", "township", county)
    return events


def _table(*options: tuple[Any, float]) -> tuple[list[Any], list[float]]:
    """Return (values, cumulative weights) for fast weighted choices."""
    total, cum = 0.0, []
    for _, weight in options:
        total += weight
        cum.append(total)
    return [value for value, _ in options], cum


CORRECTION_RATE = 1 / 2000
LEVEL_WEIGHT = {"city": 30, "county": 20, "township": 2, "stationed_group": 1}
RANK = _table(("general", 40), ("township", 30), ("village", 12), ("county", 12), ("bureau", 3),
              ("other", 3))
CHANNEL = _table(("letter", 30), ("visit", 15), ("phone", 10), ("online", 40), ("other", 5))
CATEGORY = _table(("accusation", 60), ("criticism", 10), ("appeal", 15), ("out_of_scope", 10),
                  ("no_substance", 5))
TALK = _table(("reminder", 50), ("admonition", 15), ("supervision", 15), ("integrity", 20))
CLUE_SOURCE = _table(("petition", 50), ("supervision", 15), ("inspection", 15), ("audit", 8),
                     ("transfer", 7), ("assigned", 5))
FIRST_STEP = _table(("talk_inquiry", 60), ("preliminary_verification", 40))
DISPOSAL = _table(("talk_inquiry", 40), ("preliminary_verification", 25), ("shelved", 15),
                  ("concluded", 20))
SANCTION = _table(("party", 70), ("government", 30))
FORM = _table((1, 66), (2, 27), (3, 4), (4, 3))  # 四种形态: the first form dominates
SUGGESTION = _table(("discipline", 40), ("supervision", 40), ("combined", 20))
RECT_SOURCE = _table(("inspection", 40), ("audit", 20), ("suggestion", 20), ("self_check", 15),
                     ("other", 5))
MEASURES = {1: ("谈话提醒", "批评教育", "责令检查", "诫勉"), 2: ("党内警告", "党内严重警告", "政务记过"),
            3: ("撤销党内职务", "留党察看", "降职"), 4: ("开除党籍", "移送审查起诉")}
AGENCIES = ("住房城乡建设局", "财政局", "自然资源局", "教育局", "卫生健康局", "交通运输局", "市场监管局")
TASKS = ("落实中央八项规定精神专项检查", "整治群众身边不正之风和腐败问题", "巡察整改情况督查",
         "违规吃喝问题专项整治", "基层“微腐败”排查")


class Workload:
    """Generate events with consistent lifecycles that carry over between `next_batch` calls."""

    def __init__(self, units: list[dict[str, Any]], seed: int | str = 7, start: dt.datetime = START,
                 rng: random.Random | None = None, run: str = ""):
        # A plain Random(seed) would replay build_province's stream and repeat its event ids.
        self.rng = rng or random.Random(f"workload:{seed}")
        self.run = run  # in every subject id: two runs' lifecycles never share a case or a clue
        self.now = start if start.tzinfo else start.replace(tzinfo=CST)  # naive means +08:00
        self.children: dict[str, list[str]] = defaultdict(list)
        recorders: list[tuple[str, float]] = []
        for raw in units:
            parent = raw["payload"].get("parent_id") if raw.get("type") == "unit_registered" else None
            if parent is not None:  # the root records nothing but task assignments
                self.children[parent].append(raw["subject_id"])
                recorders.append((raw["subject_id"], LEVEL_WEIGHT.get(raw["payload"]["level"], 1)))
        if not recorders:
            raise ValueError("no non-root units to simulate (build_province output expected)")
        self.recorders = _table(*recorders)
        self.assigners = sorted(self.children)
        close = self._close
        self.actions = _table(
            (self._petition, 30), (self._talk, 12), (self._integrity, 8), (self._clue, 10),
            (self._dispose, 12), (self._file_case, 4), (partial(close, "case", "case_closed"), 3.6),
            (self._sanction, 3), (self._four_forms, 10), (self._transfer, 0.3),
            (self._suggest, 2), (self._reply, 1.2),
            (partial(close, "suggestion", "suggestion_closed"), 1.8), (self._rectify, 2),
            (partial(close, "rectification", "rectification_closed"), 1.7), (self._assign, 1),
            (self._progress, 2.5), (partial(close, "task", "task_completed"), 0.8))
        self.open: dict[str, list[list[Any]]] = defaultdict(list)
        self.petitions: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.serial = 0

    @classmethod
    def fresh(cls, units: list[dict[str, Any]], start: dt.datetime = START) -> Workload:
        """A workload of its own: with the default seed, a second `jiandu simulate` (or a
        restarted demo) sent the first one's events again, every one a duplicate, and the
        figures stood still until it had sent more than all earlier runs together."""
        run = secrets.token_hex(4)
        return cls(units, seed=run, start=start, run=f"{run}-")

    def next_batch(self, n: int) -> list[dict[str, Any]]:
        """Return the next `n` raw events, each later than the one before."""
        return [self._next() for _ in range(n)]

    def _next(self) -> dict[str, Any]:
        self.now += dt.timedelta(seconds=self.rng.randint(1, 60))
        if self.rng.random() < CORRECTION_RATE and (event := self._correct()) is not None:
            return event
        return self._pick(self.actions)() or self._petition()  # nothing open to close: fall back

    # -- helpers ---------------------------------------------------------------
    def _pick(self, table: tuple[list[Any], list[float]]) -> Any:
        values, cum = table  # what random.choices does, minus its per-call overhead
        return values[bisect(cum, self.rng.random() * cum[-1], 0, len(cum) - 1)]

    def _id(self, unit: str, kind: str) -> str:
        self.serial += 1
        return f"{unit}:{kind}:{self.run}{self.serial}"

    def _due(self, low: int, high: int) -> str:
        return (self.now.date() + dt.timedelta(days=self.rng.randint(low, high))).isoformat()

    def _event(self, kind: str, unit: str, subject: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": _uid(self.rng), "type": kind, "unit_id": unit, "subject_id": subject,
                "occurred_at": self.now.isoformat(), "payload": payload}

    def _open(self, pool: str, kind: str, payload: dict[str, Any], *state: Any) -> dict[str, Any]:
        unit = self._pick(self.recorders)
        subject = self._id(unit, pool)
        self.open[pool].append([unit, subject, *state])
        return self._event(kind, unit, subject, payload)

    def _take(self, pool: str) -> list[Any] | None:
        items = self.open[pool]
        if not items:
            return None
        i = self.rng.randrange(len(items))
        items[i], items[-1] = items[-1], items[i]  # O(1) removal at random
        return items.pop()

    def _close(self, pool: str, kind: str) -> dict[str, Any] | None:
        item = self._take(pool)
        return None if item is None else self._event(kind, item[0], item[1], {})

    def _about_person(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        unit = self._pick(self.recorders)
        person = f"p-{unit}-{self.rng.randint(1, 400)}"
        return self._event(kind, unit, person, {"person_id": person, **payload})

    # -- actions ---------------------------------------------------------------
    def _petition(self) -> dict[str, Any]:
        unit = self._pick(self.recorders)
        event = self._event("petition_received", unit, self._id(unit, "petition"),
                            {"channel": self._pick(CHANNEL), "category": self._pick(CATEGORY)})
        recent = self.petitions[unit]
        recent.append((event["event_id"], event["subject_id"]))
        del recent[:-20]  # only recent petitions get corrected; keeps memory flat
        return event

    def _correct(self) -> dict[str, Any] | None:
        unit = self._pick(self.recorders)
        recent = self.petitions[unit]
        if not recent:
            return None
        target, subject = recent.pop(self.rng.randrange(len(recent)))  # corrected at most once
        replacement = {"channel": self._pick(CHANNEL), "category": self._pick(CATEGORY)}
        return self._event("event_corrected", unit, subject,
                           {"corrects": target, "payload": replacement})

    def _talk(self) -> dict[str, Any]:
        return self._about_person("talk_conducted", {"kind": self._pick(TALK)})

    def _integrity(self) -> dict[str, Any]:
        return self._about_person("integrity_file_updated", {"section": self.rng.choice(SECTIONS)})

    def _sanction(self) -> dict[str, Any]:
        return self._about_person("sanction_imposed",
                                  {"kind": self._pick(SANCTION), "rank": self._pick(RANK)})

    def _four_forms(self) -> dict[str, Any]:
        form = self._pick(FORM)
        extra = {"measure": self.rng.choice(MEASURES[form])} if self.rng.random() < 0.9 else {}
        return self._about_person("four_forms_applied", {"form": form, **extra})

    def _transfer(self) -> dict[str, Any]:
        return self._about_person("transferred_to_procuratorate", {})

    def _clue(self) -> dict[str, Any]:
        payload = {"source": self._pick(CLUE_SOURCE), "subject_rank": self._pick(RANK)}
        return self._open("clue", "clue_registered", payload, 1 if self.rng.random() < 0.8 else 2)

    def _dispose(self) -> dict[str, Any] | None:
        if (clue := self._take("clue")) is None:
            return None
        if clue[2] > 1:  # a first step (talk or verification) before the final disposal
            self.open["clue"].append([clue[0], clue[1], clue[2] - 1])
        method = self._pick(FIRST_STEP if clue[2] > 1 else DISPOSAL)
        return self._event("clue_disposed", clue[0], clue[1], {"method": method})

    def _file_case(self) -> dict[str, Any]:
        return self._open("case", "case_filed", {"subject_rank": self._pick(RANK)})

    def _suggest(self) -> dict[str, Any]:
        return self._open("suggestion", "suggestion_issued", {
            "kind": self._pick(SUGGESTION), "target_unit": self.rng.choice(AGENCIES),
            "due_date": self._due(15, 90)}, False)

    def _reply(self) -> dict[str, Any] | None:
        if (item := self._take("suggestion")) is None:
            return None
        if item[2]:  # already replied: the next step is closing it
            return self._event("suggestion_closed", item[0], item[1], {})
        self.open["suggestion"].append([item[0], item[1], True])
        return self._event("suggestion_replied", item[0], item[1], {})

    def _rectify(self) -> dict[str, Any]:
        return self._open("rectification", "rectification_opened", {
            "source": self._pick(RECT_SOURCE), "responsible": f"{self.rng.choice(AGENCIES)}党组",
            "due_date": self._due(30, 180)})

    def _assign(self) -> dict[str, Any]:
        assigner = self.rng.choice(self.assigners)  # root, cities and counties hand work down
        assignee = self.rng.choice(self.children[assigner])
        subject = self._id(assigner, "task")
        self.open["task"].append([assignee, subject, 0.0])  # the assignee reports progress
        return self._event("task_assigned", assigner, subject, {
            "title": self.rng.choice(TASKS), "responsible_leader": f"{self.rng.choice(SURNAMES)}书记",
            "assignee_unit": assignee, "due_date": self._due(30, 120),
            "standard": "按期报送工作报告并通过验收"})

    def _progress(self) -> dict[str, Any] | None:
        if (task := self._take("task")) is None:
            return None
        if task[2] >= 100:
            return self._event("task_completed", task[0], task[1], {})
        task[2] = min(100.0, round(task[2] + self.rng.uniform(5, 35), 1))
        self.open["task"].append(task)
        return self._event("task_progress_reported", task[0], task[1],
                           {"percent": task[2], "note": f"已完成 {task[2]:g}%"})
