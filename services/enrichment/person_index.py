"""The person index in SQL: persons, their identifiers, profiles, addresses, events and decisions.

One transaction per batch of events: the batch's lookups are made up front, in a few queries,
and kept current in memory as the batch links, so a later event sees the persons an earlier one
created. The identifier primary key makes a second person for the same identifier impossible;
a worker that loses a race rolls back, retries the batch and then finds the winner's person.
A redelivered event (the batch committed, the offset did not) gets back the decision already
recorded for it, following any merge since.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mash.models import (
    LinkDecisionRecord,
    MatchModelRecord,
    MatchReview,
    Person,
    PersonAddress,
    PersonBlockKey,
    PersonEvent,
    PersonIdentifier,
    PersonMerge,
    PersonProfile,
    RecordIdentifier,
    RecordLink,
)
from services.enrichment.blocking import lookup_keys, stored_keys
from services.enrichment.comparisons import Profile
from services.enrichment.context import DAY_MS, Status, person_context
from services.enrichment.linking import (
    NEW_PERSON,
    SCHEME_PRIORITY,
    Identifier,
    LinkDecision,
    decide_link,
    released_by_revision,
)
from services.enrichment.match_model import DEFAULT_MODEL, Candidate, MatchModel

MAX_ATTEMPTS = 5
CHUNK = 500  # rows per IN list
MAX_CANDIDATES = 50  # a blocking key shared by more persons than this is too common to compare on
SHORTLIST = 8  # persons scored per event at most, unless more share two or more of its keys


@dataclass(frozen=True)
class EventToLink:
    event_id: str
    agency: str
    identifiers: list[Identifier]
    profile: Profile
    occurred_ms: int
    status_change: dict[str, bool] = field(default_factory=dict)
    address_key: str = ""
    record_id: str | None = None  # the agency record this event is a revision of
    revised_ms: int = 0  # the revision's order among the record's revisions
    withdrawn: bool = False  # the agency retracted the record (entered in error): it asserts nothing

    @property
    def asserted(self) -> list[Identifier]:
        """The identifiers this revision vouches for: none once the record is withdrawn."""
        return [] if self.withdrawn else self.identifiers


@dataclass(frozen=True)
class _RecordState:
    """An agency record's latest revision as the index holds it."""

    event_id: str
    revised_ms: int
    person_id: str
    method: str
    identifiers: frozenset[Identifier]


@dataclass(frozen=True)
class Enrichment:
    decision: LinkDecision
    context: dict[str, Any]
    model_version: str | None
    redelivered: bool = False


class PersonIndex:
    def __init__(self, sessions: sessionmaker[Session], model: MatchModel | None = DEFAULT_MODEL,
                 new_id: Callable[[], str] | None = None) -> None:
        """`model=None` links on identifiers alone (the baseline the linkage benchmark compares with)."""
        self._sessions = sessions
        self.model = model
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self._model_recorded = False

    def link_batch(self, batch: Sequence[EventToLink]) -> list[Enrichment]:
        """Link each event in order and return its decision and context."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._sessions.begin() as session:
                    self._record_model(session)
                    return _BatchLinker(session, self.model, self._new_id).run(batch)
            except IntegrityError:
                self._model_recorded = False
                if attempt == MAX_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def answer(self, review_event_id: str, confirmed: bool, answered_by: str) -> tuple[str, str] | None:
        """A person's answer to a possible match. Confirmed: the person the event started is merged
        into the candidate (history kept, as in any merge); the (retired, survivor) pair to tell
        triage, also when the merge was made before (a redelivered answer re-sends it). Rejected:
        nothing is linked; the two stay apart."""
        with self._sessions.begin() as session:
            review = session.get(MatchReview, review_event_id)
            if review is None:
                raise LookupError(f"no possible match is held for event {review_event_id}")
            if not confirmed:
                return None
            linker = _BatchLinker(session, self.model, self._new_id)
            survivors = linker._survivors({review.person_id, review.candidate_person_id})
            retired = survivors.get(review.person_id, review.person_id)
            survivor = survivors.get(review.candidate_person_id, review.candidate_person_id)
            if retired == survivor:  # merged already: this answer again, or an event proved it since
                return review.person_id, survivor
            linker._ensure_loaded([retired, survivor])
            linker._merge(retired, survivor, review_event_id, f"possible match confirmed by {answered_by}"[:200])
            linker._flush()
            return retired, survivor

    def _record_model(self, session: Session) -> None:
        if self._model_recorded or self.model is None:
            return
        version = self.model.version
        if session.get(MatchModelRecord, version) is None:
            session.add(MatchModelRecord(version=version, parameters=self.model.to_json(),
                                         created_at=datetime.now(UTC)))
            session.flush()
        self._model_recorded = True


class _BatchLinker:
    """The working state of one batch: what the index holds for it, kept current as it links."""

    def __init__(self, session: Session, model: MatchModel | None, new_id: Callable[[], str]) -> None:
        self.s = session
        self.model = model
        self.new_id = new_id
        self.now = datetime.now(UTC)
        self.owners: dict[Identifier, str] = {}
        self.keys: dict[str, set[str]] = defaultdict(set)
        self.profiles: dict[str, set[Profile]] = defaultdict(set)
        self.status: dict[str, Status] = {}
        self.history: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.households: dict[str, set[str]] = defaultdict(set)
        self.retired: dict[str, str] = {}
        self.changed_status: set[str] = set()
        self.loaded: set[str] = set()  # persons whose status and recent events are in memory
        self.earliest = 0  # recent events: from a year before the batch's earliest event
        self.profile_events: dict[tuple[str, ...], dict[str, Any]] = {}  # how often each profile was seen
        self.pending: dict[tuple[type[Any], bool], list[dict[str, Any]]] = {}
        self.records: dict[str, _RecordState] = {}  # the batch's agency records, as they stand
        self.asserted_by: dict[Identifier, set[str]] = defaultdict(set)  # which records assert an identifier
        self.records_changed: set[str] = set()
        self.released: dict[str, list[Identifier]] = {}  # per event: identifiers its record took back
        self.first_seen: dict[Identifier, str] = {}  # the event that gave an identifier to its person
        self.record_events: dict[str, set[str]] = defaultdict(set)  # each revised record's revisions
        self.keyed: set[str] = set()  # events whose blocking keys are loaded

    def run(self, batch: Sequence[EventToLink]) -> list[Enrichment]:
        prior = self._prior_decisions([e.event_id for e in batch])
        survivors = self._survivors({person_id for person_id, _ in prior.values()})
        decided = {event_id: (survivors.get(person_id, person_id), method)
                   for event_id, (person_id, method) in prior.items()}
        to_link = [e for e in batch if e.event_id not in decided]
        self._load_records(to_link)
        self._load(to_link, {p for p, _ in decided.values()})
        results = []
        for event in batch:
            if event.event_id in decided:  # redelivered, or sent twice within the batch
                person_id, method = decided[event.event_id]
                results.append(self._redelivered(event, self._current(person_id), method))
            else:
                results.append(self._link(event))
                decided[event.event_id] = (results[-1].decision.person_id, results[-1].decision.method)
        self._flush()
        return results

    # -- loading what the batch needs, a few queries per batch -----------------------------------

    def _load(self, batch: Sequence[EventToLink], redelivered_to: set[str]) -> None:
        for scheme in SCHEME_PRIORITY:  # one query per scheme: (scheme, value) IN (...) is a table scan in SQLite
            self.owners.update(self._rows(
                select(PersonIdentifier.scheme, PersonIdentifier.value, PersonIdentifier.person_id)
                .where(PersonIdentifier.scheme == scheme), PersonIdentifier.value,
                [i.value for e in batch for i in e.identifiers if i.scheme == scheme],
                lambda r: (Identifier(r[0], r[1]), r[2])))
        unknown = [e for e in batch if self.model and not any(i in self.owners for i in e.identifiers)]
        linked = set(self.owners.values()) | redelivered_to
        self._load_profiles(linked)
        candidates = self._load_candidates(unknown, linked)
        self.earliest = min((e.occurred_ms for e in batch), default=0) - 365 * DAY_MS
        self._load_persons(linked | candidates)  # a candidate linked to needs its status and history too
        for key, person_id in self._rows(select(PersonAddress.address_key, PersonAddress.person_id),
                                         PersonAddress.address_key, [e.address_key for e in batch if e.address_key],
                                         tuple):
            self.households[key].add(person_id)

    def _load_candidates(self, events: Sequence[EventToLink], linked: set[str]) -> set[str]:
        """The persons filed under the events' blocking keys, with every description of them (a key
        holds one description of a person, and the child may since have been described at another
        home or another way under the same keys)."""
        for key, person_id in self._rows(select(PersonBlockKey.key, PersonBlockKey.person_id), PersonBlockKey.key,
                                         [k for e in events for k in lookup_keys(e.profile)], tuple):
            self.keys[key].add(person_id)
        self.keyed.update(e.event_id for e in events)
        candidates = {p for e in events for p in self._shortlist(e)} - linked
        self._load_profiles(candidates)
        return candidates

    def _load_records(self, batch: Sequence[EventToLink]) -> None:
        """Where the batch's records stand, and which records assert the identifiers involved."""
        record_ids = [e.record_id for e in batch if e.record_id]
        links = self._rows(select(RecordLink.record_id, RecordLink.event_id, RecordLink.revised_ms,
                                  RecordLink.person_id, RecordLink.method), RecordLink.record_id, record_ids, tuple)
        if links:
            asserted: dict[str, set[Identifier]] = defaultdict(set)
            for record_id, scheme, value in self._rows(
                    select(RecordIdentifier.record_id, RecordIdentifier.scheme, RecordIdentifier.value),
                    RecordIdentifier.record_id, [r[0] for r in links], tuple):
                asserted[record_id].add(Identifier(scheme, value))
            survivors = self._survivors({r[3] for r in links})
            self.records = {record_id: _RecordState(event_id, revised_ms, survivors.get(person_id, person_id),
                                                    method, frozenset(asserted[record_id]))
                            for record_id, event_id, revised_ms, person_id, method in links}
        for record_id, event_id in self._rows(select(LinkDecisionRecord.record_id, LinkDecisionRecord.event_id),
                                              LinkDecisionRecord.record_id, list(self.records), tuple):
            self.record_events[record_id].add(event_id)

    def _load_assertions(self, identifiers: Iterable[Identifier]) -> None:
        """Which records assert these identifiers and which event brought each to its person: read
        only when a revision drops an identifier (rare), after a flush, so the store holds the
        batch's own standings too."""
        self._flush()
        wanted = set(identifiers)
        for i in wanted:
            self.asserted_by[i] = set()
        for scheme in SCHEME_PRIORITY:
            values = [i.value for i in wanted if i.scheme == scheme]
            for record_id, value in self._rows(
                    select(RecordIdentifier.record_id, RecordIdentifier.value).where(RecordIdentifier.scheme == scheme),
                    RecordIdentifier.value, values, tuple):
                self.asserted_by[Identifier(scheme, value)].add(record_id)
            for value, event_id in self._rows(
                    select(PersonIdentifier.value, PersonIdentifier.first_seen_event_id)
                    .where(PersonIdentifier.scheme == scheme), PersonIdentifier.value, values, tuple):
                self.first_seen.setdefault(Identifier(scheme, value), event_id)

    def _shortlist(self, event: EventToLink) -> list[str]:
        """The persons worth scoring: those sharing two or more blocking keys with the event (the
        same child usually shares three or four), topped up from those sharing one."""
        shared: Counter[str] = Counter()
        for key in lookup_keys(event.profile):
            people = self.keys.get(key, ())
            if len(people) <= MAX_CANDIDATES:
                shared.update(self._current(p) for p in people)
        ranked = sorted(shared.items(), key=lambda item: (-item[1], item[0]))
        strong = [p for p, n in ranked if n >= 2]
        return strong + [p for p, n in ranked if n == 1][:max(0, SHORTLIST - len(strong))]

    def _ensure_loaded(self, person_ids: Iterable[str]) -> None:
        """Status and recent events of persons first met by a probabilistic link or a merge."""
        missing = [p for p in person_ids if p not in self.loaded]
        if missing:
            self._load_persons(missing)

    def _strong_identifiers(self, person_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        # No filter on scheme in SQL: with one, SQLite searches the (scheme, value) key, not person_id.
        strong = self._rows(select(PersonIdentifier.person_id, PersonIdentifier.scheme, PersonIdentifier.value),
                            PersonIdentifier.person_id, list(person_ids), tuple)
        ids: dict[str, dict[str, str]] = defaultdict(dict)
        for person_id, scheme, value in strong:
            if scheme in ("nhs", "upn"):
                ids[person_id][scheme] = value
        return ids

    def _load_profiles(self, person_ids: Iterable[str]) -> None:
        ids = self._strong_identifiers(person_ids)
        for r in self._rows(select(PersonProfile.person_id, PersonProfile.given, PersonProfile.family,
                                   PersonProfile.dob, PersonProfile.sex, PersonProfile.postcode,
                                   PersonProfile.address),
                            PersonProfile.person_id, list(person_ids), tuple):
            known = ids.get(r[0], {})
            self.profiles[r[0]].add(Profile(r[1], r[2], date.fromisoformat(r[3]) if r[3] else None, r[4], r[5],
                                            known.get("nhs", ""), known.get("upn", ""), r[6]))

    def _load_persons(self, person_ids: Iterable[str]) -> None:
        wanted = [p for p in person_ids if p not in self.loaded]
        self.loaded.update(wanted)
        for person_id, open_sc, cp, lac, merged_into in self._rows(
                select(Person.person_id, Person.open_social_care, Person.child_protection_plan, Person.looked_after,
                       Person.merged_into), Person.person_id, wanted, tuple):
            self.status[person_id] = Status(bool(open_sc), bool(cp), bool(lac))
            if merged_into:
                self.retired[person_id] = merged_into
        for person_id, agency, when in self._rows(
                select(PersonEvent.person_id, PersonEvent.agency, PersonEvent.occurred_ms)
                .where(PersonEvent.occurred_ms >= self.earliest), PersonEvent.person_id, wanted, tuple):
            self.history[person_id].append((agency, when))

    def _rows(self, query: Any, column: Any, values: list[Any], row: Callable[[Any], Any]) -> list[Any]:
        unique = list(dict.fromkeys(values))
        found: list[Any] = []
        for start in range(0, len(unique), CHUNK):
            found.extend(row(r) for r in self.s.execute(query.where(column.in_(unique[start:start + CHUNK]))))
        return found

    def _prior_decisions(self, event_ids: list[str]) -> dict[str, tuple[str, str]]:
        return {r[0]: (r[1], r[2]) for r in self._rows(
            select(LinkDecisionRecord.event_id, LinkDecisionRecord.person_id, LinkDecisionRecord.method),
            LinkDecisionRecord.event_id, event_ids, tuple)}

    # -- linking one event -----------------------------------------------------------------------

    def _link(self, event: EventToLink) -> Enrichment:
        record = self.records.get(event.record_id) if event.record_id else None
        if record is not None and (event.revised_ms, event.event_id) < (record.revised_ms, record.event_id):
            return self._stale(event, record)
        if record is not None:
            mine = self.record_events[event.record_id or ""]
            if set(record.identifiers) - set(event.asserted):  # it drops one: who else asserts what it held
                self._load_assertions(record.identifiers)
            self._release(event, released_by_revision(
                record.identifiers, event.asserted, lambda i: self.first_seen.get(i) in mine,
                lambda i: bool(self.asserted_by.get(i, set()) - {event.record_id})))
            if event.withdrawn:  # retracted: it stays where it stood, to be taken out of scoring there
                return self._stale(event, record, withdrawn=True)
        candidates = self._candidates(event)
        decision = decide_link(event.identifiers, self.owners, self.new_id, self.model, event.profile, candidates)
        if event.withdrawn:  # a record first met retracted proves nothing and brings nothing
            decision = replace(decision, attach=(), merge=())
        if record is not None and event.event_id in self.released and \
                self._current(record.person_id) not in (decision.person_id, *decision.merge):
            self._take_back(event.record_id or "", self._current(record.person_id))
        if decision.method == NEW_PERSON:
            self._write(Person, {"person_id": decision.person_id, "created_at": self.now, "open_social_care": False,
                                 "child_protection_plan": False, "looked_after": False, "merged_into": None})
            self.status[decision.person_id] = Status()
            self.loaded.add(decision.person_id)
        self._ensure_loaded([decision.person_id, *decision.merge])
        for retired in decision.merge:
            self._merge(retired, decision.person_id, event.event_id)
        self._record(event, decision)
        self._stand(event, decision)
        context = self._context(event, decision.person_id)
        return Enrichment(decision, context, self.model.version if self.model and decision.match else None)

    def _stale(self, event: EventToLink, record: _RecordState, withdrawn: bool = False) -> Enrichment:
        """A revision older than the one the index holds, or a withdrawal, follows the record to its
        person and brings nothing there: no identifier, profile or status of its own. A withdrawal
        becomes where the record stands (asserting nothing); a stale revision changes nothing."""
        person_id = self._current(record.person_id)
        self._ensure_loaded([person_id])
        decision = LinkDecision(person_id, record.method, ())
        row = self._decision_row(event, decision)
        row["evidence"] = {**row["evidence"], **({"withdrawn": True} if withdrawn else
                                                 {"stale_revision": True, "latest_revision": record.event_id})}
        self._write(LinkDecisionRecord, row)
        if withdrawn:
            self._stand(event, decision)
        return Enrichment(decision, self._context(event, person_id), None)

    def _release(self, event: EventToLink, released: set[Identifier]) -> None:
        """Take back the identifiers only this record gave (its revision corrected them): they are
        decided again with the revision, and a wrong one is no longer any child's."""
        if not released:
            return
        self._flush()
        for i in sorted(released):
            self.s.execute(delete(PersonIdentifier).where(PersonIdentifier.scheme == i.scheme,
                                                          PersonIdentifier.value == i.value))
            self.owners.pop(i, None)
        self.released[event.event_id] = sorted(released)

    def _take_back(self, record_id: str, person_id: str) -> None:
        """The record moved to another child: the descriptions only its revisions filed under the
        first child (profile and blocking keys) go too, or that child stays a candidate for every
        later record about the other."""
        self._flush()
        mine = self.record_events[record_id]
        profiles = self.s.execute(select(PersonProfile.given, PersonProfile.family, PersonProfile.dob,
                                         PersonProfile.sex, PersonProfile.postcode)
                                  .where(PersonProfile.person_id == person_id,
                                         PersonProfile.first_event_id.in_(sorted(mine)),
                                         PersonProfile.events <= len(mine))).all()
        for given, family, dob, sex, postcode in profiles:
            described = {"given": given, "family": family, "dob": dob, "sex": sex, "postcode": postcode}
            for model in (PersonProfile, PersonBlockKey):
                self.s.execute(delete(model).where(model.person_id == person_id,
                                                   *(getattr(model, k) == v for k, v in described.items())))
            gone = Profile(given, family, date.fromisoformat(dob) if dob else None, sex, postcode)
            self.profiles[person_id] = {p for p in self.profiles.get(person_id, set())
                                        if replace(p, nhs="", upn="", address="") != gone}
            for key in stored_keys(gone):
                self.keys.get(key, set()).discard(person_id)

    def _stand(self, event: EventToLink, decision: LinkDecision) -> None:
        """The revision just linked is where its record now stands."""
        if not event.record_id:
            return
        before = self.records.get(event.record_id)
        for i in before.identifiers if before else ():
            self.asserted_by[i].discard(event.record_id)
        for i in event.asserted:
            self.asserted_by[i].add(event.record_id)
        self.records[event.record_id] = _RecordState(event.event_id, event.revised_ms, decision.person_id,
                                                     decision.method, frozenset(event.asserted))
        self.record_events[event.record_id].add(event.event_id)
        self.records_changed.add(event.record_id)

    def _candidates(self, event: EventToLink) -> list[Candidate]:
        if self.model is None or any(i in self.owners for i in event.identifiers):
            return []
        if event.event_id not in self.keyed:  # its identifiers were known at loading, and released since
            self._load_candidates([event], set())
        people = self._shortlist(event)
        unloaded = [p for p in people if p not in self.profiles]
        if unloaded:  # filed under a key after the batch was loaded (a merge moved them)
            self._load_profiles(unloaded)
        return [Candidate(p, tuple(self.profiles[p])) for p in sorted(people) if self.profiles.get(p)]

    def _record(self, event: EventToLink, decision: LinkDecision) -> None:
        person_id = decision.person_id
        if decision.attach:
            for i in decision.attach:
                self._write(PersonIdentifier, {"scheme": i.scheme, "value": i.value, "person_id": person_id,
                                               "first_seen_event_id": event.event_id})
            self.owners.update(dict.fromkeys(decision.attach, person_id))
            self.first_seen.update(dict.fromkeys(decision.attach, event.event_id))
        profile = replace(event.profile, nhs=self._strong(person_id, "nhs", event),
                          upn=self._strong(person_id, "upn", event))
        row = {"person_id": person_id, "given": profile.given, "family": profile.family,
               "dob": profile.dob.isoformat() if profile.dob else "", "sex": profile.sex, "postcode": profile.postcode,
               "address": profile.address}
        seen = self.profile_events.setdefault(tuple(row.values()), {**row, "first_event_id": event.event_id,
                                                                     "first_seen_ms": event.occurred_ms, "events": 0})
        seen["events"] += 1
        if profile not in self.profiles[person_id]:
            self.profiles[person_id] = {replace(p, nhs=profile.nhs, upn=profile.upn)
                                        for p in self.profiles[person_id]} | {profile}
            new_keys = [k for k in stored_keys(profile) if person_id not in self.keys[k]]
            for k in new_keys:
                self._write(PersonBlockKey, {"key": k, **row}, ignore=True)
                self.keys[k].add(person_id)
        if event.address_key and person_id not in self.households[event.address_key]:
            self._write(PersonAddress, {"address_key": event.address_key, "person_id": person_id}, ignore=True)
            self.households[event.address_key].add(person_id)
        self._write(PersonEvent, {"event_id": event.event_id, "person_id": person_id, "agency": event.agency,
                                  "occurred_ms": event.occurred_ms}, ignore=True)
        if event.status_change:
            status = self.status.get(person_id, Status()).updated(event.status_change)
            self.status[person_id] = status
            self.changed_status.add(person_id)
        self._write(LinkDecisionRecord, self._decision_row(event, decision))
        if decision.review_candidate and decision.match and decision.match.score is not None:
            self._write(MatchReview, {
                "event_id": event.event_id, "person_id": person_id, "candidate_person_id": decision.review_candidate,
                "score": decision.match.score, "evidence": decision.match.evidence, "status": "OPEN",
                "created_at": self.now})

    def _decision_row(self, event: EventToLink, decision: LinkDecision) -> dict[str, Any]:
        match = decision.match
        evidence: dict[str, Any] = {
            "identifiers": sorted(f"{i.scheme}:{i.value}" for i in event.identifiers if i in self.owners),
            "merged": list(decision.merge),
        }
        if event.event_id in self.released:
            evidence["released"] = [f"{i.scheme}:{i.value}" for i in self.released[event.event_id]]
        if match:
            evidence.update(levels=match.evidence, best_candidate=match.person_id, runner_up=match.runner_up,
                            outcome=match.outcome)
        return {"event_id": event.event_id, "person_id": decision.person_id, "method": decision.method,
                "score": match.score if match else None,
                "model_version": self.model.version if self.model and match else None,
                "evidence": evidence, "decided_at": self.now, "record_id": event.record_id or event.event_id}

    def _strong(self, person_id: str, scheme: str, event: EventToLink) -> str:
        """The person's NHS number or UPN, as this event or an earlier profile gave it."""
        for i in event.identifiers:
            if i.scheme == scheme and self.owners.get(i) == person_id:
                return i.value
        return next((getattr(p, scheme) for p in self.profiles.get(person_id, ()) if getattr(p, scheme)), "")

    def _context(self, event: EventToLink, person_id: str) -> dict[str, Any]:
        history = self.history[person_id]
        context = person_context(self.status.get(person_id, Status()), history, event.occurred_ms,
                                 self.households.get(event.address_key, set()) - {person_id})
        history.append((event.agency, event.occurred_ms))
        return context

    # -- merges and redeliveries -----------------------------------------------------------------

    def _merge(self, retired: str, survivor: str, event_id: str,
               reason: str = "one event carried identifiers held by both persons") -> None:
        """Retire one person into another: identifiers, profiles, keys, events move; history stays."""
        self._flush()
        s = self.s
        s.execute(update(PersonIdentifier).where(PersonIdentifier.person_id == retired).values(person_id=survivor))
        for model in (PersonProfile, PersonBlockKey, PersonAddress):
            self._move_rows(model, retired, survivor)
        s.execute(update(PersonEvent).where(PersonEvent.person_id == retired).values(person_id=survivor))
        status = Status(*(a or b for a, b in zip(self.status.get(retired, Status()).__dict__.values(),
                                                  self.status.get(survivor, Status()).__dict__.values(), strict=True)))
        s.execute(update(Person).where(Person.person_id == survivor).values(**status.__dict__))
        s.execute(update(Person).where(Person.person_id == retired).values(merged_into=survivor))
        s.execute(update(Person).where(Person.merged_into == retired).values(merged_into=survivor))
        s.execute(insert(PersonMerge), [{"retired_person_id": retired, "surviving_person_id": survivor,
                                         "event_id": event_id, "merged_at": self.now,
                                         "reason": reason}])
        self.status[survivor] = status
        self.retired[retired] = survivor
        self.owners = {i: survivor if p == retired else p for i, p in self.owners.items()}
        self.profiles[survivor] |= self.profiles.pop(retired, set())
        self.history[survivor].extend(self.history.pop(retired, []))
        for people in (*self.keys.values(), *self.households.values()):
            if retired in people:
                people.discard(retired)
                people.add(survivor)

    def _move_rows(self, model: type[PersonProfile | PersonBlockKey | PersonAddress], retired: str,
                   survivor: str) -> None:
        table: Table = model.__table__  # type: ignore[assignment]
        rows = [dict(r._mapping) for r in self.s.execute(select(table).where(table.c.person_id == retired))]
        self.s.execute(delete(table).where(table.c.person_id == retired))
        self._insert(model, [{**r, "person_id": survivor} for r in rows], ignore=True)

    def _redelivered(self, event: EventToLink, person_id: str, method: str) -> Enrichment:
        """The decision already recorded for this event, at the person it now belongs to."""
        history = self.history[person_id]
        self.history[person_id] = [h for h in history if h != (event.agency, event.occurred_ms)]
        enrichment = Enrichment(LinkDecision(person_id, method, ()), self._context(event, person_id), None, True)
        self.history[person_id] = history
        return enrichment

    def _current(self, person_id: str) -> str:
        while person_id in self.retired:
            person_id = self.retired[person_id]
        return person_id

    def _survivors(self, person_ids: set[str]) -> dict[str, str]:
        """Follow merges recorded in the index, a hop per query for all persons at once: a
        redelivered event goes to the surviving person."""
        found: dict[str, str] = {}
        frontier = {p: p for p in person_ids}  # person -> where it has been followed to
        for _ in range(len(person_ids) + 1):
            hops = dict(self._rows(select(Person.person_id, Person.merged_into).where(Person.merged_into.is_not(None)),
                                   Person.person_id, sorted(set(frontier.values())), tuple))
            followed = {start: hops[at] for start, at in frontier.items() if at in hops and hops[at] != start}
            found.update({start: at for start, at in frontier.items() if start not in followed})
            if not followed:
                break
            frontier = followed
        found.update({start: at for start, at in frontier.items() if start not in found})  # a cycle: stop
        return {start: at for start, at in found.items() if at != start}

    # -- writing: rows gathered per table, written in one statement each ---------------------------

    def _write(self, model: type[Any], row: dict[str, Any], ignore: bool = False) -> None:
        self.pending.setdefault((model, ignore), []).append(row)

    def _flush(self) -> None:
        """Write the gathered rows in dependency order (persons before what refers to them)."""
        for model in (Person, PersonIdentifier, PersonProfile, PersonBlockKey, PersonAddress, PersonEvent,
                      LinkDecisionRecord, MatchReview):
            for ignore in (False, True):
                rows = self.pending.pop((model, ignore), None)
                if rows:
                    self._insert(model, rows, ignore)
            if model is PersonProfile and self.profile_events:
                self._count_profiles(list(self.profile_events.values()))
                self.profile_events.clear()
        if self.records_changed:
            self._write_records()
        if self.changed_status:
            table: Table = Person.__table__  # type: ignore[assignment]
            self.s.connection().execute(
                update(table).where(table.c.person_id == bindparam("pid")).values(
                    open_social_care=bindparam("osc"), child_protection_plan=bindparam("cp"),
                    looked_after=bindparam("lac")),
                [{"pid": p, "osc": st.open_social_care, "cp": st.child_protection_plan, "lac": st.looked_after}
                 for p in sorted(self.changed_status) if (st := self.status[p])])
            self.changed_status.clear()

    def _write_records(self) -> None:
        changed = sorted(self.records_changed)
        self.records_changed.clear()
        for start in range(0, len(changed), CHUNK):
            chunk = changed[start:start + CHUNK]
            self.s.execute(delete(RecordIdentifier).where(RecordIdentifier.record_id.in_(chunk)))
            self.s.execute(delete(RecordLink).where(RecordLink.record_id.in_(chunk)))
        standing = [(record_id, self.records[record_id]) for record_id in changed]
        self._insert(RecordLink, [{"record_id": record_id, "event_id": r.event_id, "revised_ms": r.revised_ms,
                                   "person_id": r.person_id, "method": r.method} for record_id, r in standing])
        self._insert(RecordIdentifier, [{"record_id": record_id, "scheme": i.scheme, "value": i.value}
                                        for record_id, r in standing for i in sorted(r.identifiers)])

    def _count_profiles(self, rows: list[dict[str, Any]]) -> None:
        """New profiles are inserted; a known one counts another event (what estimation weighs by)."""
        table: Table = PersonProfile.__table__  # type: ignore[assignment]
        dialect = postgresql if self.s.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table)
        self.s.connection().execute(statement.on_conflict_do_update(
            index_elements=[c.name for c in table.primary_key.columns],
            set_={"events": table.c.events + statement.excluded.events}), rows)

    def _insert(self, model: type[Any], rows: list[dict[str, Any]], ignore: bool = False) -> None:
        if not rows:
            return
        table: Table = model.__table__
        if not ignore:
            self.s.connection().execute(insert(table), rows)
            return
        dialect = postgresql if self.s.get_bind().dialect.name == "postgresql" else sqlite
        self.s.connection().execute(dialect.insert(table).on_conflict_do_nothing(), rows)
