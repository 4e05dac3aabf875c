"""Who in the MASH may read an agency's answer to an information request: the sharing policy decides
it, role by role, as it decides an event of the agency's kind (`<kind>.information_return`), under
the consent the enquiry recorded. Pure.

A health answer is special category data: only rules naming an Article 9 condition share any of it.
What a role may not see of an answer is not shown to it, and the decision is sealed with the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.enquiry.catalogue import Agency
from services.enquiry.returns import Return
from services.sharing.decide import EventFacts, RoleDecision, decide_all
from services.sharing.fields import Scalar
from services.sharing.policy import Policy


@dataclass(frozen=True)
class ReturnViews:
    policy_version: str
    views: dict[str, list[str]]  # role -> the answer's fields it may read
    decisions: list[RoleDecision]


def return_fields(answer: Return) -> dict[str, Scalar]:
    """The answer as the policy sees it: payload.* for how it was answered, answers.<prompt> for what is held."""
    fields: dict[str, Scalar] = {"payload.answer": answer.answer, "payload.summary": answer.summary or None,
                                 "payload.declined_reason": answer.declined_reason or None,
                                 "payload.searched_on": answer.searched_on.isoformat() if answer.searched_on else None,
                                 "payload.systems_searched": ", ".join(answer.systems_searched) or None}
    fields.update({f"answers.{prompt}": text for prompt, text in answer.answers.items()})
    return {name: value for name, value in fields.items() if value is not None}


def return_views(policy: Policy, agency: Agency, consent: str, answer: Return) -> ReturnViews:
    kind = agency.return_event_type
    source = kind.split(".", 1)[0].upper()
    facts = EventFacts(kind, source, "SPECIAL_CATEGORY" if source == "HEALTH" else "STANDARD", consent)
    decisions = decide_all(policy, facts, return_fields(answer))
    return ReturnViews(policy.version, {d.role: list(d.shared) for d in decisions}, decisions)
