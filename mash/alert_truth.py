"""How the alerts compare with a synthetic feed's ground truth: precision and recall of "children
who should be alerted", and whether any child has more than one open alert, or any alert two children.

The truth (written by `mash synth`) says which child each event is about and which children should
raise an alert; the store says which events each alert holds. An alert counts for every child
whose events it holds.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
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
                f"{'child' if self.children_with_two_open == 1 else 'children'} had two open alerts")


def alert_truth(synth_dir: Path, engine: Engine) -> AlertTruth:
    child_of_record: dict[str, int] = {}
    for line in (synth_dir / "truth" / "events.jsonl").read_text().splitlines():
        row = json.loads(line)
        child_of_record[row["record_id"]] = row["person"]
    should = {c["person"] for c in map(json.loads, (synth_dir / "truth" / "children.jsonl").read_text().splitlines())
              if c["should_alert"]}
    with engine.connect() as db:
        alerts = db.execute(select(AlertRecord.event_ids, AlertRecord.status)).all()
        records = db.execute(select(LinkDecisionRecord.event_id, LinkDecisionRecord.record_id)).all()
    # the truth knows records; an alert names events, each a revision of one record
    person_of = {event: child_of_record[record] for event, record in records if record in child_of_record}
    alerted: set[int] = set()
    open_per_child: Counter[int] = Counter()
    mixed = 0
    for event_ids, status in alerts:
        children = {person_of[e] for e in event_ids if e in person_of}
        alerted |= children
        mixed += len(children) > 1
        if status == "OPEN":
            open_per_child.update(children)
    return AlertTruth(len(should), len(alerted), len(should & alerted), len(alerts), mixed,
                      sum(1 for n in open_per_child.values() if n > 1))
