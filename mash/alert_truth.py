"""How the alerts compare with a synthetic feed's ground truth: precision and recall of "children
who should be alerted", whether any child has more than one open alert, or any alert two children,
and how the ratings given compare with the ratings the truth expects.

The truth (written by `mash synth`) says which child each event is about, which children should
raise an alert and at what rating (docs/rag-ground-truth.md); the store says which events each
alert holds and its rating. An alert counts for every child whose events it holds; a child's
rating given is the highest of their alerts'.

Rating accuracy is taken over the children the truth rates (a child it expects alerted but who was
not counts as wrong); children alerted whom the truth does not rate are what precision counts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select

from mash.models import AlertRecord, LinkDecisionRecord


@dataclass(frozen=True)
class AlertTruth:
    should: int  # children the truth says should be alerted
    alerted: int  # children with an alert
    found: int  # both
    alerts: int
    mixed: int  # alerts holding events of two children (a wrong link)
    children_with_two_open: int  # one open alert per child, broken
    ratings: RatingTruth = field(default_factory=lambda: rating_truth({}, {}))
    # children with a concern no agency's record told of (e.g. an attendance the clinician did not
    # flag), by the rating that concern alone would have had: no manager could rate it, so the
    # figures leave it out; shown so that leaving it out is seen
    unreported: Mapping[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.found / self.alerted if self.alerted else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.should if self.should else 1.0

    def __str__(self) -> str:
        return (f"{self.should} children should be alerted, {self.alerted} were ({self.alerts} alerts): "
                f"precision {self.precision:.3f}, recall {self.recall:.3f}; {self.mixed} alerts joined two "
                f"children; {self.children_with_two_open} "
                f"{'child' if self.children_with_two_open == 1 else 'children'} had two open alerts"
                + (f"; not counted, concerns no agency told of (children, by the rating they would have had): "
                   f"{_counts(self.unreported)}"
                   if self.unreported else ""))


def _counts(by_level: Mapping[str, int]) -> str:
    return ", ".join(f"{by_level[level]} {level}" for level in LEVELS[:3] if by_level.get(level))


def unreported_of(children: Iterable[Mapping[str, object]]) -> dict[str, int]:
    """How many children of the truth (`children.jsonl` rows) had a concern no agency told of, by the
    rating it would have had."""
    return dict(Counter(str(c["unreported_rag"]) for c in children if c.get("unreported_rag")))


LEVELS = ("RED", "AMBER", "GREEN", "none")  # most urgent first; "none": no alert


@dataclass(frozen=True)
class RatingTruth:
    """The ratings given against the ratings expected, child by child."""

    matrix: Mapping[tuple[str, str], int]  # (expected, given) -> children; "none" on either side

    def count(self, expected: str, given: str) -> int:
        return self.matrix.get((expected, given), 0)

    def expected(self, level: str) -> int:
        return sum(self.count(level, given) for given in LEVELS)

    @property
    def rated(self) -> int:
        """Children the truth gives a rating."""
        return sum(self.expected(level) for level in LEVELS[:3])

    @property
    def accuracy(self) -> float:
        """The share of the children the truth rates that were given exactly that rating."""
        return sum(self.count(level, level) for level in LEVELS[:3]) / self.rated if self.rated else 1.0

    @property
    def red_recall(self) -> float:
        """The share of RED children rated RED: none may be rated lower."""
        return self.count("RED", "RED") / self.expected("RED") if self.expected("RED") else 1.0

    @property
    def under_rated(self) -> int:
        return sum(self.count(e, g) for e in LEVELS[:3] for g in LEVELS if LEVELS.index(g) > LEVELS.index(e))

    @property
    def over_rated(self) -> int:
        return sum(self.count(e, g) for e in LEVELS for g in LEVELS[:3] if LEVELS.index(g) < LEVELS.index(e))

    def table(self) -> str:
        """The confusion matrix: a row per rating expected, a column per rating given."""
        lines = [f"{'expected / given':>17}" + "".join(f"{g:>7}" for g in LEVELS) + f"{'total':>7}"]
        for e in LEVELS:
            row = [self.count(e, g) for g in LEVELS]
            lines.append(f"{e:>17}" + "".join(f"{n:>7}" for n in row) + f"{sum(row):>7}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return (f"rating accuracy {self.accuracy:.3f} over {self.rated} children the truth rates; RED recall "
                f"{self.red_recall:.3f} ({self.count('RED', 'RED')} of {self.expected('RED')}); "
                f"{self.under_rated} rated lower than expected, {self.over_rated} higher")


def rating_truth(expected: Mapping[int, str | None], given: Mapping[int, str],
                 children: Iterable[int] = ()) -> RatingTruth:
    """Compare each child's expected rating (None: no alert) with the rating given (absent: no alert)."""
    matrix: Counter[tuple[str, str]] = Counter()
    for child in set(expected) | set(given) | set(children):
        matrix[(expected.get(child) or "none", given.get(child) or "none")] += 1
    return RatingTruth(dict(matrix))


def highest(ratings: Iterable[str]) -> str | None:
    found = [r for r in ratings if r in LEVELS[:3]]
    return min(found, key=LEVELS.index) if found else None


def alert_truth(synth_dir: Path, engine: Engine) -> AlertTruth:
    child_of_record: dict[str, int] = {}
    for line in (synth_dir / "truth" / "events.jsonl").read_text().splitlines():
        row = json.loads(line)
        child_of_record[row["record_id"]] = row["person"]
    children = [json.loads(line) for line in (synth_dir / "truth" / "children.jsonl").read_text().splitlines()]
    should = {c["person"] for c in children if c["should_alert"]}
    expected = {c["person"]: c.get("rag") or ("GREEN" if c["should_alert"] else None) for c in children}
    with engine.connect() as db:
        alerts = db.execute(select(AlertRecord.event_ids, AlertRecord.status, AlertRecord.rag)).all()
        records = db.execute(select(LinkDecisionRecord.event_id, LinkDecisionRecord.record_id)).all()
    # the truth knows records; an alert names events, each a revision of one record
    person_of = {event: child_of_record[record] for event, record in records if record in child_of_record}
    alerted: set[int] = set()
    open_per_child: Counter[int] = Counter()
    given_all: dict[int, list[str]] = {}
    mixed = 0
    for event_ids, status, rag in alerts:
        held = {person_of[e] for e in event_ids if e in person_of}
        alerted |= held
        mixed += len(held) > 1
        for child in held:
            given_all.setdefault(child, []).append(rag)
        if status == "OPEN":
            open_per_child.update(held)
    given = {child: top for child, rags in given_all.items() if (top := highest(rags)) is not None}
    return AlertTruth(len(should), len(alerted), len(should & alerted), len(alerts), mixed,
                      sum(1 for n in open_per_child.values() if n > 1), rating_truth(expected, given),
                      unreported_of(children))
