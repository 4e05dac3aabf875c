"""An information request and an enquiry's threshold decision as the outbox sends them, against their
sealed audit entries: a row edited in the database (a field added to what a request shares, an
outcome changed) is never sent as if it were what was recorded. Pure but for the entry's lookup."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mash.models import EnquiryRecord, InformationRequestRecord
from services.sharing.audit_signing import AuditKeys
from services.triage_app.sealed_decisions import sealed_record


def request_differences(row: InformationRequestRecord, enquiry: EnquiryRecord, sealed: dict[str, Any] | None,
                        opened: dict[str, Any] | None) -> list[str]:
    """What of the request as it would be sent differs from what was sealed: the request's own entry
    (agency, role, whom it names, what it asks), and its enquiry's (purpose, basis, consent)."""
    if sealed is None or opened is None:
        return ["it or its enquiry has no sealed audit entry signed by an audit key"]
    found = [f"{name} is {getattr(row, name)!r}, sealed as {sealed.get(name)!r}"
             for name in ("enquiry_id", "agency", "sharing_role", "shared", "prompts", "rag")
             if getattr(row, name) != sealed.get(name)]
    found += [f"the enquiry's {name} is {getattr(enquiry, name)!r}, sealed as {opened.get(name)!r}"
              for name in ("purpose", "lawful_basis", "consent") if getattr(enquiry, name) != opened.get(name)]
    if sealed.get("kind") != "information_request" or sealed.get("id") != row.request_id:
        found.append("its audit entry is not this request's")
    if opened.get("kind") != "enquiry_opened" or opened.get("id") != row.enquiry_id:
        found.append("its enquiry's audit entry is not this enquiry's")
    return found


def decision_differences(row: EnquiryRecord, decision_id: str, sealed: dict[str, Any] | None,
                         opened: dict[str, Any] | None) -> list[str]:
    """What of the decision, the child it is about or the agency to be told differs from what was sealed."""
    if sealed is None or opened is None:
        return ["it or its enquiry has no sealed audit entry signed by an audit key"]
    found = [f"{name} is {getattr(row, name)!r}, sealed as {sealed.get(name)!r}"
             for name in ("enquiry_id", "level", "outcome", "factors", "rationale", "person_id", "alert_id")
             if getattr(row, name) != sealed.get(name)]
    if row.referrer_agency != opened.get("referrer_agency"):
        found.append(f"referrer_agency is {row.referrer_agency!r}, sealed as {opened.get('referrer_agency')!r}")
    if row.decided_by != sealed.get("by"):
        found.append(f"decided_by is {row.decided_by!r}, sealed as {sealed.get('by')!r}")
    if sealed.get("kind") != "enquiry_decision" or sealed.get("id") != decision_id:
        found.append("its audit entry is not this decision's")
    return found


def check_request(session: Session, row: InformationRequestRecord, enquiry: EnquiryRecord, keys: AuditKeys) -> None:
    problems = request_differences(row, enquiry, sealed_record(session, row.request_id, keys)[0],
                                   sealed_record(session, row.enquiry_id, keys)[0])
    if problems:
        raise ValueError(f"request {row.request_id} is not as sealed in the audit trail: {'; '.join(problems)}")


def check_decision(session: Session, row: EnquiryRecord, decision_id: str, keys: AuditKeys) -> None:
    problems = decision_differences(row, decision_id, sealed_record(session, decision_id, keys)[0],
                                    sealed_record(session, row.enquiry_id, keys)[0])
    if problems:
        raise ValueError(f"enquiry {row.enquiry_id}'s decision is not as sealed in the audit trail: "
                         f"{'; '.join(problems)}")
