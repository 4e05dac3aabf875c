"""Names and places for the synthetic population, with the variants real records carry."""

from __future__ import annotations

import random

GIVEN_FEMALE = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia", "Grace", "Freya",
    "Willow", "Florence", "Emily", "Ella", "Poppy", "Evie", "Elsie", "Charlotte", "Evelyn", "Sienna", "Sofia",
    "Daisy", "Phoebe", "Sophie", "Alice", "Harper", "Matilda", "Ruby", "Emilia", "Maya", "Millie", "Isabelle",
    "Eva", "Luna", "Jessica", "Aria", "Zara", "Aisha", "Hannah", "Imogen", "Layla", "Maryam", "Eliza", "Chloe",
)
GIVEN_MALE = (
    "Noah", "Muhammad", "George", "Oliver", "Leo", "Arthur", "Oscar", "Theodore", "Theo", "Freddie", "Henry",
    "Archie", "Alfie", "Charlie", "Finley", "Jack", "Harry", "Thomas", "Lucas", "Isaac", "Tommy", "Jacob",
    "Edward", "William", "Albie", "Reggie", "Teddy", "Max", "James", "Joshua", "Mason", "Ethan", "Adam",
    "Samuel", "Ibrahim", "Daniel", "Joseph", "Sebastian", "Rory", "Benjamin", "Jude", "Logan", "Zayn",
)
SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Thomas", "Clarke", "Jackson",
    "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper", "Hill", "Ward", "Hughes", "Moore", "Clark",
    "King", "Harrison", "Lewis", "Baker", "Lee", "Allen", "Morris", "Khan", "Ahmed", "Ali", "Hussain", "Begum",
    "Kaur", "Singh", "Novak", "Kowalski", "Okafor", "Mensah", "Nguyen", "O'Brien", "McDonald", "Scott",
    "Bennett", "Walsh", "Murphy", "Kelly", "Price", "Bailey", "Mitchell", "Carter", "Phillips", "Shaw",
)
NICKNAMES = {
    "Oliver": "Ollie", "Thomas": "Tom", "William": "Will", "James": "Jim", "Joshua": "Josh", "Samuel": "Sam",
    "Benjamin": "Ben", "Daniel": "Dan", "Joseph": "Joe", "Edward": "Eddie", "Theodore": "Theo", "Alfie": "Alf",
    "Isabella": "Bella", "Charlotte": "Lottie", "Elizabeth": "Beth", "Florence": "Flo", "Matilda": "Tilly",
    "Jessica": "Jess", "Sophia": "Sophie", "Emily": "Em", "Isabelle": "Izzy", "Alexander": "Alex",
}
ALSO_ONE_NAME = {frozenset(("Henry", "Harry")), frozenset(("Charlie", "Charlotte")), frozenset(("Sophia", "Sophie")),
                 frozenset(("Theo", "Teddy")), frozenset(("Theodore", "Teddy"))}


def one_name(a: str, b: str) -> bool:
    """The same name, or one a usual short form of the other: never given to two brothers or sisters."""
    short, full = sorted((a, b), key=len)
    return (a == b or NICKNAMES.get(a) == b or NICKNAMES.get(b) == a or full.startswith(short)
            or frozenset((a, b)) in ALSO_ONE_NAME)


STREETS = ("Road", "Street", "Avenue", "Lane", "Grove", "Close", "Terrace", "Crescent", "Way", "Gardens")
STREET_NAMES = ("Victoria", "Church", "Park", "Station", "Mill", "School", "Manor", "Green", "Chapel", "Oak",
                "Beech", "Kirkstall", "Headingley", "Harehills", "Chapeltown", "Armley", "Burley", "Holbeck")
DISTRICTS = ("LS1", "LS2", "LS4", "LS6", "LS7", "LS8", "LS9", "LS10", "LS11", "LS12", "LS13", "LS14", "LS15",
             "LS16", "LS17", "LS27", "LS28")


def variant(name: str, rng: random.Random) -> str:
    """A name as another agency might have keyed it: a nickname, or a one-letter slip."""
    if name in NICKNAMES and rng.random() < 0.6:
        return NICKNAMES[name]
    return typo(name, rng)


def typo(name: str, rng: random.Random) -> str:
    if len(name) < 3:
        return name
    i = rng.randrange(1, len(name) - 1)
    kind = rng.randrange(3)
    if kind == 0:  # two letters swapped
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    if kind == 1:  # a letter dropped
        return name[:i] + name[i + 1:]
    return name[:i] + name[i] + name[i:]  # a letter doubled


def address(rng: random.Random) -> tuple[str, str]:
    line = f"{rng.randint(1, 240)} {rng.choice(STREET_NAMES)} {rng.choice(STREETS)}"
    letters = "ABDEFGHJLNPQRSTUWXYZ"  # the letters inward codes use
    postcode = f"{rng.choice(DISTRICTS)} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    return line, postcode
