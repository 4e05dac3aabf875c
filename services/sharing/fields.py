"""The fields a sharing rule can name, per event type, read from the enriched event's schema.

A view is a flat map from dotted field names (`subject.given_name`, `payload.summary`,
`context.looked_after`) to scalar values, so a rule names exactly what it shares and a property
test can check a view key by key. Every field of a special category event is special category:
even a name, beside a health record, tells of the attendance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import orjson

from mash.schema_catalogue import default_catalogue

ENRICHED_SCHEMA = "uk.mash.hub.EnrichedEvent"
# event type -> (agency, the payload record it carries)
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "police.public_protection_notification": ("POLICE", "uk.mash.police.PpnDetails"),
    "health.emergency_attendance": ("HEALTH", "uk.mash.health.AttendanceDetails"),
    "education.concern": ("EDUCATION", "uk.mash.education.ConcernDetails"),
    "social_care.case_event": ("SOCIAL_CARE", "uk.mash.social_care.CaseEventDetails"),
}
# A partner agency's answer to a MASH information request is decided like an event of its agency:
# "<agency>.information_return", with the answer in payload and what it holds per prompt in answers.
RETURN_EVENT_TYPES: dict[str, tuple[str, str]] = {
    "police.information_return": ("POLICE", ""),
    "health.information_return": ("HEALTH", ""),
    "education.information_return": ("EDUCATION", ""),
    "social_care.information_return": ("SOCIAL_CARE", ""),
}
RETURN_PAYLOAD = ("answer", "summary", "declined_reason", "searched_on", "systems_searched")
EVENT_TYPES.update(RETURN_EVENT_TYPES)
SOURCE_FIELDS = ("source_system", "source_record_id")
LINK_FIELDS = ("link_method", "match_score", "match_model_version", "possible_match_person_id",
               "merged_person_ids")
Scalar = str | int | float | bool | None


@lru_cache(maxsize=1)
def catalogue() -> dict[str, frozenset[str]]:
    """Every event type's field names."""
    schema = default_catalogue().latest(ENRICHED_SCHEMA).expanded
    top = {f["name"]: f["type"] for f in schema["fields"]}
    envelope = {f["name"]: f["type"] for f in top["envelope"]["fields"]}
    common = {f"subject.{f['name']}" for f in envelope["subject"]["fields"]}
    common |= {f"source.{name}" for name in SOURCE_FIELDS}
    common |= {f"context.{f['name']}" for f in top["context"]["fields"]}
    common |= {f"link.{name}" for name in LINK_FIELDS}
    payloads = {f"{branch['namespace']}.{branch['name']}" if "." not in branch["name"] else branch["name"]:
                branch for branch in top["payload"]}
    events = {event_type: frozenset(common | {f"payload.{f['name']}" for f in payloads[record]["fields"]})
              for event_type, (_, record) in EVENT_TYPES.items() if event_type not in RETURN_EVENT_TYPES}
    return {**events, **{event_type: return_fields() for event_type in RETURN_EVENT_TYPES}}


def return_fields() -> frozenset[str]:
    """An information return's fields: the answer, and what is held under each prompt the enquiry
    catalogue can ask (answers.<prompt id>)."""
    from services.enquiry.catalogue import load_catalogue

    prompts = {p.id for agency in load_catalogue().agencies.values() for p in agency.prompts}
    return frozenset({f"payload.{name}" for name in RETURN_PAYLOAD} | {f"answers.{p}" for p in prompts})


def all_fields() -> frozenset[str]:
    return frozenset().union(*catalogue().values())


Plan = tuple[tuple[str, tuple[str, ...]], ...]  # (section, keys) to copy: see `plan_of`


def plan_of(names: Iterable[str]) -> Plan:
    """Field names grouped by section, for `EventFields.nested`."""
    sections: dict[str, list[str]] = {}
    for name in sorted(names):
        section, _, key = name.partition(".")
        sections.setdefault(section, []).append(key)
    return tuple((section, tuple(keys)) for section, keys in sections.items())


class EventFields(Mapping[str, Scalar]):
    """An event's fields by name, read from the decoded event when asked: a decision looks at a
    few of them and a view copies only the shared ones, so most are never converted."""

    def __init__(self, enriched: Mapping[str, Any]) -> None:
        self._event = enriched
        known = catalogue().get(enriched["envelope"]["event_type"])
        self._names = known if known is not None else frozenset(flatten(enriched))

    @property
    def names(self) -> frozenset[str]:
        return self._names

    def __getitem__(self, name: str) -> Scalar:
        if name not in self._names:
            raise KeyError(name)
        return _scalar(self._raw(name))

    def nested(self, plan: Plan) -> dict[str, dict[str, Any]]:
        """The planned fields the event has, nested by section (`values["payload"]["summary"]`)."""
        event = self._event
        envelope = event["envelope"]
        sources = {"subject": envelope["subject"], "source": envelope, "link": event}
        out: dict[str, dict[str, Any]] = {}
        for section, keys in plan:
            found = sources.get(section)
            if found is None:
                found = event.get(section) or {}
            out[section] = {key: found[key] for key in keys if key in found}
        return out

    def _raw(self, name: str) -> Any:
        part, _, key = name.partition(".")
        event = self._event
        if part == "subject":
            return event["envelope"]["subject"][key]
        if part == "source":
            return event["envelope"][key]
        if part == "link":
            return event.get(key)
        return event[part][key]  # payload, context

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def flatten(enriched: Mapping[str, Any]) -> dict[str, Scalar]:
    """The event's fields by name; lists and records become JSON text, dates ISO text."""
    envelope = enriched["envelope"]
    fields: dict[str, Scalar] = {f"subject.{k}": _scalar(v) for k, v in envelope["subject"].items()}
    fields.update({f"source.{k}": _scalar(envelope[k]) for k in SOURCE_FIELDS})
    fields.update({f"payload.{k}": _scalar(v) for k, v in enriched["payload"].items()})
    fields.update({f"context.{k}": _scalar(v) for k, v in enriched["context"].items()})
    fields.update({f"link.{k}": _scalar(enriched.get(k)) for k in LINK_FIELDS})
    return fields


def _scalar(value: Any) -> Scalar:
    kind = type(value)
    if value is None or kind in _PLAIN:
        return value  # type: ignore[no-any-return]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str | bool | int | float):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


_PLAIN = frozenset({str, bool, int, float})
