"""Agency events about the synthetic children, with the mess of real feeds, and the ground truth.

Every child has a low background rate of contact with each agency; children at risk also have
episodes where several agencies report them within days. Each event is then written as its
agency would: identifiers missing at realistic rates, nicknames and typos, a day and month
swapped in a date of birth, an old address after a move, a record sent twice, and arrival out of
order (each agency's delay differs). Records also live: police and social care send some again
changed (a PPN re-graded, consent withdrawn, an NHS number added) or retract them (entered in error).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from connectors.synth.population import Child

AGENCIES = ("police", "health", "education", "social_care")
RATE_PER_YEAR = {"police": 0.12, "health": 0.7, "education": 0.45, "social_care": 0.05}
DELAY_HOURS = {"police": (1, 48), "health": (0, 2), "education": (2, 120), "social_care": (0, 24)}
DUPLICATE_SHARE = 0.015
REVISION_SHARE = 0.08  # of police and social care records: sent again changed, or retracted
CHANGES = {"police": ("REGRADED", "CONSENT_WITHDRAWN", "WITHDRAWN"),
           "social_care": ("CONSENT_WITHDRAWN", "CORRECTED", "WITHDRAWN")}
ALERT_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Event:
    agency: str
    person: int
    occurred: datetime
    received: datetime
    record_no: int  # the agency's own record number: a resubmission repeats it
    concerning: bool
    resubmission: bool = False
    change: str | None = None  # a revision of the record: REGRADED | CONSENT_WITHDRAWN | CORRECTED | WITHDRAWN
    revised: datetime | None = None  # when the record last changed: a resubmission keeps its first's


def events(rng: random.Random, children: list[Child], target: int, start: date, days: int) -> list[Event]:
    """About `target` events over `days` from `start`, ordered by when the hub receives them."""
    origin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    numbers = dict.fromkeys(AGENCIES, 0)
    made: list[Event] = []

    def add(agency: str, child: Child, occurred: datetime, concerning: bool) -> None:
        numbers[agency] += 1
        low, high = DELAY_HOURS[agency]
        received = occurred + timedelta(hours=rng.uniform(low, high))
        first = Event(agency, child.person, occurred, received, numbers[agency], concerning, revised=received)
        made.extend((first, *_sent_again(rng, first)))

    for child in children:
        for agency in AGENCIES:
            for _ in range(_poisson(rng, RATE_PER_YEAR[agency] * days / 365)):
                add(agency, child, origin + timedelta(seconds=rng.randrange(days * 86_400)), False)
        if child.at_risk:
            for _ in range(rng.choice((1, 1, 2))):
                first = origin + timedelta(seconds=rng.randrange(max(1, (days - 7) * 86_400)))
                for agency in rng.sample(AGENCIES, rng.choice((2, 2, 3, 4))):
                    add(agency, child, first + timedelta(hours=rng.uniform(0, 6 * 24)), True)
    if len(made) > target:
        made = rng.sample(made, target)
    made.sort(key=lambda e: (e.received, e.agency, e.record_no))
    return made


def _sent_again(rng: random.Random, first: Event) -> list[Event]:
    """The record again: unchanged (a resubmission), or changed or retracted (a revision)."""
    again = []
    if rng.random() < DUPLICATE_SHARE:
        later = first.received + timedelta(hours=rng.uniform(1, 48))
        again.append(replace(first, received=later, resubmission=True))
    if first.agency in CHANGES and rng.random() < REVISION_SHARE:
        later = first.received + timedelta(hours=rng.uniform(1, 72))
        # a re-grading upward is a real concern taking shape; any record may be corrected or retracted
        changes = [c for c in CHANGES[first.agency] if first.concerning or c != "REGRADED"]
        again.append(replace(first, received=later, change=rng.choice(changes), revised=later))
    return again


def should_alert(events_of_child: list[Event]) -> bool:
    """The truth the hub is measured against: two or more agencies within the window (a record its
    agency retracted does not count)."""
    retracted = {(e.agency, e.record_no) for e in events_of_child if e.change == "WITHDRAWN"}
    ordered = sorted({(e.occurred, e.agency) for e in events_of_child if (e.agency, e.record_no) not in retracted})
    for i, (when, agency) in enumerate(ordered):
        for later, other in ordered[i + 1:]:
            if later - when > ALERT_WINDOW:
                break
            if other != agency:
                return True
    return False


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, pow(2.718281828459045, -mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
