"""Agency events about the synthetic children, with the mess of real feeds, and the ground truth.

Every child has a low background rate of contact with each agency (universal services: an
attendance at the emergency department for an illness, a dip in attendance, an incident police
attended); children at risk also have episodes of concern (`episodes`), each with its facts, that
one or more agencies report within days. Each event is then written as its
agency would: identifiers missing at realistic rates, nicknames and typos, a day and month
swapped in a date of birth, an old address after a move, a record sent twice, and arrival out of
order (each agency's delay differs). Records also live: police and social care send some again
changed (a PPN re-graded, consent withdrawn, an NHS number added) or retract them (entered in error).
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from connectors.synth.episodes import draw_facts, police_grading, reporting_agencies
from connectors.synth.population import Child
from connectors.synth.rag_rules import Facts, Rating, rate_child

AGENCIES = ("police", "health", "education", "social_care")
RATE_PER_YEAR = {"police": 0.12, "health": 0.7, "education": 0.45, "social_care": 0.05}
DELAY_HOURS = {"police": (1, 48), "health": (0, 2), "education": (2, 120), "social_care": (0, 24)}
DUPLICATE_SHARE = 0.015
REVISION_SHARE = 0.08  # of police and social care records: sent again changed, or retracted
CHANGES = {"police": ("REGRADED", "CONSENT_WITHDRAWN", "WITHDRAWN"),
           "social_care": ("CONSENT_WITHDRAWN", "CORRECTED", "WITHDRAWN")}


@dataclass(frozen=True)
class Event:
    agency: str
    person: int
    occurred: datetime
    received: datetime
    record_no: int  # the agency's own record number: a resubmission repeats it
    facts: Facts | None = None  # the episode of concern it reports (None: a universal service contact)
    episode: int = 0  # which of the child's episodes (1, 2, ...; 0: none)
    resubmission: bool = False
    change: str | None = None  # a revision of the record: REGRADED | CONSENT_WITHDRAWN | CORRECTED | WITHDRAWN
    revised: datetime | None = None  # when the record last changed: a resubmission keeps its first's

    @property
    def concerning(self) -> bool:
        return self.facts is not None


def events(rng: random.Random, children: list[Child], target: int, start: date, days: int) -> list[Event]:
    """About `target` events over `days` from `start`, ordered by when the hub receives them. To
    come down to `target`, universal contacts are left out first: an episode is reported whole."""
    origin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    numbers = dict.fromkeys(AGENCIES, 0)
    background: list[Event] = []
    concerns: list[Event] = []

    def add(into: list[Event], agency: str, child: Child, occurred: datetime, facts: Facts | None = None,
            episode: int = 0) -> None:
        numbers[agency] += 1
        low, high = DELAY_HOURS[agency]
        received = occurred + timedelta(hours=rng.uniform(low, high))
        first = Event(agency, child.person, occurred, received, numbers[agency], facts, episode, revised=received)
        into.extend((first, *_sent_again(rng, first)))

    for child in children:
        for agency in AGENCIES:
            for _ in range(_poisson(rng, RATE_PER_YEAR[agency] * days / 365)):
                add(background, agency, child, origin + timedelta(seconds=rng.randrange(days * 86_400)))
        if child.at_risk:
            for episode in range(1, rng.choice((1, 1, 2)) + 1):
                first = origin + timedelta(seconds=rng.randrange(max(1, (days - 7) * 86_400)))
                _, facts = draw_facts(rng, _months(child.dob, first.date()))
                for agency in reporting_agencies(rng, facts):
                    add(concerns, agency, child, first + timedelta(hours=rng.uniform(0, 6 * 24)), facts, episode)
    made = concerns + background
    if len(made) > target:
        made = concerns + rng.sample(background, target - len(concerns)) if len(concerns) <= target \
            else rng.sample(concerns, target)
    made.sort(key=lambda e: (e.received, e.agency, e.record_no))
    return made


def _months(born: date, on: date) -> int:
    return max(0, (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day))


def _sent_again(rng: random.Random, first: Event) -> list[Event]:
    """The record again: unchanged (a resubmission), or changed or retracted (a revision)."""
    again = []
    if rng.random() < DUPLICATE_SHARE:
        later = first.received + timedelta(hours=rng.uniform(1, 48))
        again.append(replace(first, received=later, resubmission=True))
    if first.agency in CHANGES and rng.random() < REVISION_SHARE:
        later = first.received + timedelta(hours=rng.uniform(1, 72))
        # a re-grading upward (to HIGH) is police correcting their first view of a high-risk incident;
        # any record may be corrected or retracted
        high = first.facts is not None and police_grading(first.facts) == "HIGH"
        changes = [c for c in CHANGES[first.agency] if high or c != "REGRADED"]
        again.append(replace(first, received=later, change=rng.choice(changes), revised=later))
    return again


def rating(events_of_child: list[Event], silent: Collection[tuple[str, int]] = ()) -> Rating:
    """The truth the hub is measured against: the rating a MASH manager would give the child from
    the facts of their episodes (`rag_rules`). An episode counts when some record of it stands and
    tells of a concern: one its agencies all retracted (entered in error), or recorded only as an
    ordinary contact (`silent`: the clinician did not flag the attendance), never reaches the MASH,
    and a manager rates only what reaches them. What it would have been is `unreported`."""
    return rate_child(list(_standing_episodes(events_of_child, silent).values()))


def unreported(events_of_child: list[Event], silent: Collection[tuple[str, int]] = ()) -> Rating:
    """The rating the child's episodes that never reached the MASH would have had on their own (None
    when every episode of concern reached it): concerns no agency told of, shown beside the figures."""
    standing = _standing_episodes(events_of_child, ())
    told = _standing_episodes(events_of_child, silent)
    return rate_child([began for episode, began in standing.items() if episode not in told])


def _standing_episodes(events_of_child: list[Event],
                       silent: Collection[tuple[str, int]]) -> dict[int, tuple[datetime, Facts]]:
    """Each episode some standing record (not retracted, not `silent`) tells of: when it began, its facts."""
    untold = {(e.agency, e.record_no) for e in events_of_child if e.change == "WITHDRAWN"} | set(silent)
    began: dict[int, tuple[datetime, Facts]] = {}
    for e in events_of_child:
        if e.facts is not None and (e.agency, e.record_no) not in untold:
            when = min(e.occurred, began[e.episode][0]) if e.episode in began else e.occurred
            began[e.episode] = (when, e.facts)
    return began


def should_alert(events_of_child: list[Event], silent: Collection[tuple[str, int]] = ()) -> bool:
    """A child should be alerted when the truth gives them a rating (GREEN or above)."""
    return rating(events_of_child, silent).rag is not None


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, pow(2.718281828459045, -mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
