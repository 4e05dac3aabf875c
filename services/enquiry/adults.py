"""Adults an enquiry asks about: the person index holds children, so the worker names the adults of
the household (a parent, a carer, another member, a person posing a risk) as the MASH knows them.
Checked here, then shared in every request of the enquiry as the MASH's own information, under the
enquiry's lawful basis (sealed with each request). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

RELATIONS = {"parent": "parent", "carer": "carer", "household_adult": "other household member",
             "risk": "person posing a risk"}
MAX_ADULTS = 6
NAME_CHARS, ADDRESS_CHARS = 80, 200


class AdultRefused(ValueError):
    """An adult's details that cannot be sent as given; the message says what to change."""


@dataclass(frozen=True)
class Adult:
    relation: str
    given_name: str = ""
    family_name: str = ""
    date_of_birth: str = ""
    address_line: str = ""
    postcode: str = ""

    def identity(self) -> dict[str, str]:
        fields = {"subject.given_name": self.given_name, "subject.family_name": self.family_name,
                  "subject.date_of_birth": self.date_of_birth, "subject.address_line": self.address_line,
                  "subject.postcode": self.postcode}
        return {name: value for name, value in fields.items() if value}


def checked_adults(given: list[dict[str, str]], today: date) -> list[Adult]:
    """The adults named on the form (rows left blank are dropped)."""
    rows = [{k: (v or "").strip() for k, v in row.items()} for row in given]
    rows = [row for row in rows if any(v for k, v in row.items() if k != "relation")]
    if len(rows) > MAX_ADULTS:
        raise AdultRefused(f"name at most {MAX_ADULTS} adults in one enquiry")
    return [_adult(row, today) for row in rows]


def _adult(row: dict[str, str], today: date) -> Adult:
    relation = row.get("relation", "")
    if relation not in RELATIONS:
        raise AdultRefused(f"say who each adult is: {', '.join(RELATIONS.values())}")
    if not (row.get("given_name") or row.get("family_name")):
        raise AdultRefused("an adult needs a name for the agencies to search on")
    for name, limit in (("given_name", NAME_CHARS), ("family_name", NAME_CHARS), ("address_line", ADDRESS_CHARS),
                        ("postcode", 10), ("date_of_birth", 10)):
        value = row.get(name, "")
        if len(value) > limit or "\x00" in value or "<" in value:
            raise AdultRefused(f"an adult's {name.replace('_', ' ')} is too long or holds characters it cannot")
    born = row.get("date_of_birth", "")
    if born:
        try:
            when = date.fromisoformat(born)
        except ValueError:
            raise AdultRefused(f"an adult's date of birth is not a date (YYYY-MM-DD): {born[:10]!r}") from None
        if when > today or when.year < 1900:
            raise AdultRefused("an adult's date of birth is in the future or before 1900")
    return Adult(relation, row.get("given_name", ""), row.get("family_name", ""), born, row.get("address_line", ""),
                 row.get("postcode", "").upper())
