"""The consent / parental-knowledge decision an enquiry records before any agency is asked. Pure.

Working Together: seek the family's agreement to share unless seeking it would place the child at
risk of significant harm. Not seeking it is a manager's decision, with the reason recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

# In the sharing policy's own consent vocabulary (services/sharing/vocabulary.py), so a request and
# its returns are decided under the consent the enquiry recorded.
GIVEN, REFUSED, NOT_SOUGHT_RISK = "GIVEN", "REFUSED", "NOT_SAFE_TO_SEEK"
CHOICES = {
    GIVEN: "sought, and given",
    REFUSED: "sought, and refused (sharing proceeds only where the law allows without consent)",
    NOT_SOUGHT_RISK: "not sought: seeking it would place the child at risk (a manager authorises)",
}
REASON_CHARS = 4000


class ConsentRefused(ValueError):
    """The consent decision cannot be recorded as given: the message says what is missing."""


@dataclass(frozen=True)
class ConsentDecision:
    choice: str
    reason: str
    authorised_by: str | None  # the manager who authorised not seeking it


def consent_decision(choice: str, reason: str, decided_by: str, decider_is_manager: bool) -> ConsentDecision:
    """The decision to record, or why it cannot be. Refused consent needs why sharing goes ahead
    without it; not seeking it needs a manager and why."""
    reason = reason.strip()
    if choice not in CHOICES:
        raise ConsentRefused(f"consent: choose one of {', '.join(CHOICES)}")
    if len(reason) > REASON_CHARS:
        raise ConsentRefused(f"the consent reason is over {REASON_CHARS} characters")
    if choice == NOT_SOUGHT_RISK:
        if not decider_is_manager:
            raise ConsentRefused("not seeking consent needs a triage manager's authorisation: ask a manager to "
                                 "open the enquiry, or seek consent")
        if not reason:
            raise ConsentRefused("say why seeking consent would place the child at risk")
        return ConsentDecision(choice, reason, decided_by)
    if choice == REFUSED and not reason:
        raise ConsentRefused("consent was refused: say why sharing still goes ahead")
    return ConsentDecision(choice, reason, None)
