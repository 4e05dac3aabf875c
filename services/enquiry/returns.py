"""An agency's answer to an information request, checked before it is recorded. Pure.

Three answers, kept distinct because they mean different things to the MASH: information held
(something to read), a nil return (searched, nothing held: not the same as not searched), and
declined (with the agency's reason). Held and nil say when and where the agency searched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from services.enquiry.catalogue import Prompt
from services.enquiry.request_clock import ANSWERS, DECLINED, HELD, NIL

TEXT_CHARS = 8000
SYSTEMS = 20
SYSTEM_CHARS = 80


class ReturnRefused(ValueError):
    """An answer that cannot be recorded as given: the message says what to change."""


@dataclass(frozen=True)
class Return:
    answer: str
    answers: dict[str, str]  # prompt id -> what the agency holds
    summary: str
    declined_reason: str
    searched_on: date | None
    systems_searched: tuple[str, ...]


def checked_return(answer: str, prompts: Sequence[Prompt], answers: Mapping[str, str], summary: str,
                   declined_reason: str, searched_on: date | None, systems_searched: Sequence[str],
                   sent_on: date, today: date) -> Return:
    """`sent_on` and `today` are local dates (the MASH's time zone), as the agency reads them."""
    if answer not in ANSWERS:
        raise ReturnRefused(f"answer one of {', '.join(ANSWERS)}")
    asked = {p.id for p in prompts}
    unknown = sorted(set(answers) - asked)
    if unknown:
        raise ReturnRefused(f"not asked in this request: {', '.join(unknown)}")
    kept = {k: _text(v, f"the answer to {k!r}") for k, v in answers.items() if v.strip()}
    summary, declined_reason = _text(summary, "the summary"), _text(declined_reason, "the reason")
    systems = _systems(systems_searched)
    if searched_on is not None and not sent_on <= searched_on <= today:
        raise ReturnRefused(f"the search date must be between the request's date ({sent_on}) and today")
    if answer == DECLINED:
        if not declined_reason:
            raise ReturnRefused("say why the request is declined: the MASH records it and may escalate")
        return Return(DECLINED, {}, summary, declined_reason, searched_on, systems)
    if searched_on is None or not systems:
        raise ReturnRefused("say when the search was made and which systems were searched: a nil return is "
                            "only a nil return if the records were searched")
    if answer == HELD and not (kept or summary):
        raise ReturnRefused("information held: write what is held against the prompts, or answer nil return")
    if answer == NIL and kept:
        raise ReturnRefused("a nil return holds nothing: clear the answers or answer information held")
    return Return(answer, kept if answer == HELD else {}, summary, "", searched_on, systems)


def _systems(given: Sequence[str]) -> tuple[str, ...]:
    systems = tuple(dict.fromkeys(s.strip() for s in given if s.strip()))
    if any("\x00" in s for s in systems):
        raise ReturnRefused("a system searched holds a NUL character")
    if len(systems) > SYSTEMS or any(len(s) > SYSTEM_CHARS for s in systems):
        raise ReturnRefused(f"name at most {SYSTEMS} systems searched, each under {SYSTEM_CHARS} characters")
    return systems


def _text(value: str, what: str) -> str:
    value = value.strip()
    if len(value) > TEXT_CHARS:
        raise ReturnRefused(f"{what} is over {TEXT_CHARS} characters")
    if "\x00" in value:
        raise ReturnRefused(f"{what} holds a NUL character")
    return value
