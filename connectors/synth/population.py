"""Children and households: who they truly are, which the feeds then describe imperfectly."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from connectors.synth.names import GIVEN_FEMALE, GIVEN_MALE, SURNAMES, address, one_name
from mash.identifiers import upn_check_letter


@dataclass
class Child:
    person: int
    household: int
    given: str
    family: str
    dob: date
    sex: str  # F | M
    nhs: str
    upn: str | None  # school age children only
    addresses: list[tuple[date, str, str]] = field(default_factory=list)  # (from, line, postcode)
    at_risk: bool = False

    def address_on(self, day: date) -> tuple[str, str]:
        current = self.addresses[0]
        for moved in self.addresses[1:]:
            if moved[0] <= day:
                current = moved
        return current[1], current[2]


def unique(draw: Callable[[], str], used: set[str]) -> str:
    """A fresh draw: two children never share an NHS number or a UPN (real ones are issued once)."""
    while True:
        value = draw()
        if value not in used:
            used.add(value)
            return value


def nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.choice((4, 6, 9))] + [rng.randint(0, 9) for _ in range(8)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def upn(rng: random.Random, school: int, year: int) -> str:
    body = f"820{school:04d}{year % 100:02d}{rng.randint(0, 999):03d}"
    return upn_check_letter(body) + body


def population(rng: random.Random, children: int, period_start: date, period_days: int,
               risk_share: float = 0.08, twins: float = 0.0) -> list[Child]:
    """Households of one to four children, some of whom move house during the period. Brothers and
    sisters never share a given name; with `twins`, that share of second and later children is a
    twin of the child before (same date of birth; the same sex two times in three, as in births)."""
    people: list[Child] = []
    used: set[str] = set()
    household = 0
    while len(people) < children:
        household += 1
        family = rng.choice(SURNAMES)
        home = address(rng)
        moves = [(period_start + timedelta(days=rng.randrange(period_days)), *address(rng))] \
            if rng.random() < 0.15 else []
        school = rng.randint(2000, 2099)
        at_risk = rng.random() < risk_share * 1.6  # risk runs in households
        names: list[str] = []
        for n in range(min(rng.choice((1, 1, 2, 2, 2, 3, 3, 4)), children - len(people))):
            sex = rng.choice("FM")
            dob = period_start - timedelta(days=rng.randint(90, 17 * 365))
            if twins and n and rng.random() < twins:
                dob = people[-1].dob
                sex = people[-1].sex if rng.random() < 2 / 3 else ("M" if people[-1].sex == "F" else "F")
            age = (period_start - dob).days // 365
            given = rng.choice(GIVEN_FEMALE if sex == "F" else GIVEN_MALE)
            while any(one_name(given, other) for other in names):
                given = rng.choice(GIVEN_FEMALE if sex == "F" else GIVEN_MALE)
            names.append(given)
            people.append(Child(
                person=len(people) + 1, household=household,
                given=given, family=family, dob=dob, sex=sex,
                nhs=unique(lambda: nhs_number(rng), used),
                upn=unique(lambda: upn(rng, school, dob.year + 5), used) if 4 <= age <= 17 else None,  # noqa: B023
                addresses=[(date.min, *home), *moves], at_risk=at_risk and rng.random() < 0.7,
            ))
    return people
