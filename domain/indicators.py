"""The indicator catalogue (DESIGN §7): ids, Chinese labels, and the rounding rules."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from domain.events import RANKS
from domain.labels import METHOD_LABELS, RANK_LABELS, TALK_LABELS


@dataclass(frozen=True)
class Indicator:
    id: str
    label: str
    additive: bool = True  # a subtree's value is own + sum of children's


def _catalogue() -> list[Indicator]:
    items = [
        Indicator("petitions.received", "受理信访举报"),
        Indicator("petitions.accusation", "检举控告类"),
        Indicator("clues.registered", "受理问题线索"),
        Indicator("clues.disposed", "处置问题线索"),
        *[Indicator(f"clues.disposed.{m}", f"处置线索·{label}") for m, label in METHOD_LABELS.items()],
        Indicator("cases.filed", "立案"),
        Indicator("cases.closed", "结案"),
        *[Indicator(f"cases.filed.{r}", f"立案·{RANK_LABELS[r]}") for r in RANKS],
        Indicator("sanctions.persons", "处分人数", additive=False),
        Indicator("sanctions.party", "党纪处分人数", additive=False),
        Indicator("sanctions.government", "政务处分人数", additive=False),
        *[Indicator(f"sanctions.{r}", f"处分·{RANK_LABELS[r]}", additive=False) for r in RANKS],
        Indicator("four_forms.total", "四种形态人次"),
        *[Indicator(f"four_forms.form{n}", f"第{c}种形态") for n, c in zip(range(1, 5), "一二三四", strict=True)],
        *[Indicator(f"four_forms.form{n}.share", f"第{c}种形态占比(%)", additive=False)
          for n, c in zip(range(1, 5), "一二三四", strict=True)],
        Indicator("transfers.procuratorate", "移送检察机关"),
        Indicator("suggestions.issued", "制发监察建议"),
        Indicator("suggestions.due", "到期建议"),
        Indicator("suggestions.closed_on_time", "按期办结"),
        Indicator("suggestions.on_time_rate", "按期办结率(%)", additive=False),
        Indicator("rectification.opened", "整改事项"),
        Indicator("rectification.closed", "完成整改"),
        Indicator("rectification.overdue", "逾期未整改"),
        Indicator("rectification.completion_rate", "整改完成率(%)", additive=False),
        Indicator("tasks.assigned", "监督任务"),
        Indicator("tasks.completed", "完成任务"),
        Indicator("tasks.overdue", "逾期任务"),
        Indicator("tasks.completion_rate", "任务完成率(%)", additive=False),
        Indicator("tasks.avg_progress", "平均进度(%)", additive=False),
        Indicator("talks.total", "谈话人次"),
        *[Indicator(f"talks.{k}", label) for k, label in TALK_LABELS.items()],
        Indicator("integrity_files.persons", "廉政档案人数", additive=False),
    ]
    return items


CATALOGUE: tuple[Indicator, ...] = tuple(_catalogue())
BY_ID: dict[str, Indicator] = {i.id: i for i in CATALOGUE}
ADDITIVE_IDS: tuple[str, ...] = tuple(i.id for i in CATALOGUE if i.additive)


def percent(numerator: int, denominator: int) -> float | None:
    """Return numerator/denominator as a percent with one decimal, half up; None if undefined."""
    if denominator <= 0:
        return None
    value = Decimal(numerator * 100) / Decimal(denominator)
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def largest_remainder_shares(counts: list[int]) -> list[float]:
    """Shares in percent to one decimal that sum to exactly 100.0 (largest-remainder method).

    Ties in the remainder go to the earlier item, so the result is deterministic.
    """
    total = sum(counts)
    if total <= 0:
        return [0.0 for _ in counts]
    tenths = [c * 1000 for c in counts]  # each share in units of 0.1 %, times total
    floors = [t // total for t in tenths]
    remainders = [t % total for t in tenths]
    missing = 1000 - sum(floors)
    order = sorted(range(len(counts)), key=lambda i: (-remainders[i], i))
    for i in order[:missing]:
        floors[i] += 1
    return [f / 10 for f in floors]
