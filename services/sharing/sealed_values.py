"""What the timeline shows of an event, bound to the sharing entry that let it out. Pure.

The sharing stage's entry names, per shared field, a keyed digest of the value it released
(`values_mac`, keyed by the hub's audit key so the trail reveals nothing of the values), and its
decision set names the fields each role may see. The triage store keeps the values and views the
pages read in rows the processes may update (a later revision narrows an earlier one's views), so
`mash audit verify` checks each row against its entry: no value changed or added, no role shown a
field its decision did not share, and the standing revision shown whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services.sharing.audit_chain import canonical

OCCURRED = "@occurred_at"  # the event's date, shown on the timeline, sealed beside its values


def leaves(values: Mapping[str, Any], names: set[str], prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """The nested values as their dotted field names (as the sharing plan nests them), and the names
    of any values held under no such name."""
    found: dict[str, Any] = {}
    stray: list[str] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if name in names:
            found[name] = value
        elif isinstance(value, Mapping):  # a section (empty when the event had none of its fields)
            inner, lost = leaves(value, names, f"{name}.")
            found.update(inner)
            stray.extend(lost)
        else:
            stray.append(name)
    return found, stray


MAC_CHARS = 16  # 64 bits a value: guessing one needs the key, and a wrong guess shows
ABSENT = "-" * MAC_CHARS  # a field released to some role that the event did not have


def sealed_values(macs: Callable[[Sequence[str], Iterable[tuple[str, str]]], list[str]], event_id: str,
                  values: Mapping[str, Any], names: set[str], occurred_at: datetime | int) -> str:
    """The keyed digest of every value the event releases (`AuditKeys.macs`), packed in the order of
    `order(names)`: over each value's canonical JSON, which is the same for the value as released
    and as the timeline later holds it (parsed back); `differences` checks each with
    `mac("value", event_id, name, text)`. Packed, because the sharing stage seals one per field of
    every event: the entry stays small."""
    found, _ = leaves(values, names)
    items = [(name, canonical(found[name])) for name in sorted(names) if name in found]
    items.append((OCCURRED, str(_ms(occurred_at))))
    made = dict(zip((name for name, _ in items), macs(("value", event_id), items), strict=True))
    return "".join(made[name][:MAC_CHARS] if name in made else ABSENT for name in order(names))


def order(names: Iterable[str]) -> list[str]:
    return [*sorted(set(names)), OCCURRED]


def unpacked(packed: str, names: Iterable[str]) -> dict[str, str] | None:
    """Each released field's digest by name (absent ones left out); None if it does not fit the names."""
    fields = order(names)
    if len(packed) != MAC_CHARS * len(fields):
        return None
    cut = {name: packed[n * MAC_CHARS:(n + 1) * MAC_CHARS] for n, name in enumerate(fields)}
    return {name: mac for name, mac in cut.items() if mac != ABSENT}


@dataclass(frozen=True)
class ShownEvent:
    """A timeline row as the pages read it."""

    event_id: str
    event_type: str
    source_agency: str
    occurred_at: datetime
    values: str
    views: Any  # role -> the field names it may see, as stored (checked here, not trusted)
    standing: bool  # the record's latest revision, not withdrawn: shown whole, as sealed
    withdrawn_fields: Any = None  # role -> field -> the date it stopped being shared, as stored


def differences(row: ShownEvent, body: Mapping[str, Any], decisions: list[dict[str, Any]],
                mac: Callable[..., str]) -> list[str] | None:
    """What of the row differs from what its entry sealed; None when the entry predates sealed values."""
    packed = body.get("values_mac")
    if not isinstance(packed, str):
        return None
    shared = {d["recipient_role"]: sorted(d["fields_shared"]) for d in decisions}
    macs = unpacked(packed, {name for fields in shared.values() for name in fields})
    if macs is None:
        return ["its sealed values do not fit the fields its decision set released"]
    found = [f"{column} is {getattr(row, column)!r}, sealed as {body.get(column)!r}"
             for column in ("event_type", "source_agency") if getattr(row, column) != body.get(column)]
    if _mac(mac, row.event_id, OCCURRED, str(_ms(row.occurred_at))) != macs.get(OCCURRED):
        found.append("occurred_at differs from the date sealed")
    views = _names_by_role(row.views)
    if views is None:
        return [*found, "its views are unreadable: not a list of field names per role"]
    return found + _view_problems(row, views, shared) + _value_problems(row, macs, mac)


def _view_problems(row: ShownEvent, views: dict[str, list[str]], shared: dict[str, list[str]]) -> list[str]:
    found = []
    for role, fields in sorted(views.items()):
        beyond = sorted(set(fields) - set(shared.get(role, ())))
        if beyond:
            found.append(f"role {role} is shown {', '.join(beyond)}, which its decision did not share")
    if row.standing and {r: sorted(f) for r, f in views.items() if f} != {r: f for r, f in shared.items() if f}:
        found.append("the roles' views are not the ones its decision set names")
    return found + _withdrawn_problems(row.withdrawn_fields, views, shared)


def _value_problems(row: ShownEvent, macs: dict[str, str], mac: Callable[..., str]) -> list[str]:
    try:
        parsed = orjson.loads(row.values or "{}")
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        return ["its values are unreadable: not the JSON object the sharing stage released"]
    values, stray = leaves(parsed, set(macs) - {OCCURRED})
    found = [f"it holds {name}, which was not released" for name in stray]
    found += [f"the value of {name} is not the one released" for name, value in sorted(values.items())
              if _mac(mac, row.event_id, name, canonical(value)) != macs[name]]
    missing = sorted(set(macs) - {OCCURRED} - set(values))
    if row.standing and missing:
        found.append(f"{', '.join(missing)} released but no longer held")
    return found


def _names_by_role(views: Any) -> dict[str, list[str]] | None:
    if not isinstance(views, Mapping) or not all(
            isinstance(f, list) and all(isinstance(n, str) for n in f) for f in views.values()):
        return None
    return {str(role): list(fields) for role, fields in views.items()}


def _withdrawn_problems(withdrawn: Any, views: Mapping[str, list[str]], shared: Mapping[str, list[str]]) -> list[str]:
    """"Withdrawn on <date>" stands in a field's place only where the role was shared it and no longer is."""
    if withdrawn is None:
        return []
    if not isinstance(withdrawn, Mapping) or not all(isinstance(f, Mapping) for f in withdrawn.values()):
        return ["its withdrawn fields are unreadable"]
    found = []
    for role, fields in sorted(withdrawn.items()):
        for name in sorted(fields):
            if name not in shared.get(role, ()):
                found.append(f"role {role} is shown {name} as withdrawn, which its decision never shared")
            elif name in views.get(role, ()):
                found.append(f"role {role} is shown {name} as withdrawn, which its view still holds")
    return found


def _mac(mac: Callable[..., str], event_id: str, name: str, text: str) -> str:
    return mac("value", event_id, name, text)[:MAC_CHARS]


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return int(value)
