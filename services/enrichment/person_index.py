"""The person index in SQL: which person each identifier belongs to.

One transaction per batch of events. The (scheme, value) primary key makes a second person for
the same identifier impossible; a worker that loses a race retries the batch and then finds the
winner's person.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mash.models import Person, PersonIdentifier
from services.enrichment.linking import Identifier, LinkDecision, decide_link

MAX_ATTEMPTS = 5


class PersonIndex:
    def __init__(self, sessions: sessionmaker[Session], new_id: Callable[[], str] | None = None) -> None:
        self._sessions = sessions
        self._new_id = new_id or (lambda: str(uuid.uuid4()))

    def link_batch(self, batch: Sequence[tuple[str, list[Identifier]]]) -> list[LinkDecision]:
        """Link each (event_id, identifiers) in order; later events see earlier ones' persons."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._sessions.begin() as session:
                    return self._link_all(session, batch)
            except IntegrityError:
                if attempt == MAX_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _link_all(self, session: Session, batch: Sequence[tuple[str, list[Identifier]]]) -> list[LinkDecision]:
        owners = self._owners(session, {i for _, ids in batch for i in ids})
        now = datetime.now(UTC)
        decisions = []
        for event_id, identifiers in batch:
            decision = decide_link(identifiers, owners, self._new_id())
            if decision.method == "NEW_PERSON":
                session.add(Person(person_id=decision.person_id, created_at=now))
            for identifier in decision.attach:
                session.add(PersonIdentifier(scheme=identifier.scheme, value=identifier.value,
                                             person_id=decision.person_id, first_seen_event_id=event_id))
                owners[identifier] = decision.person_id
            session.flush()
            decisions.append(decision)
        return decisions

    @staticmethod
    def _owners(session: Session, identifiers: set[Identifier]) -> dict[Identifier, str]:
        if not identifiers:
            return {}
        keys = [(i.scheme, i.value) for i in identifiers]
        owners: dict[Identifier, str] = {}
        for start in range(0, len(keys), 500):  # keep each IN list a sensible size
            rows = session.execute(
                select(PersonIdentifier.scheme, PersonIdentifier.value, PersonIdentifier.person_id)
                .where(tuple_(PersonIdentifier.scheme, PersonIdentifier.value).in_(keys[start:start + 500]))
            )
            owners.update({Identifier(s, v): p for s, v, p in rows})
        return owners
