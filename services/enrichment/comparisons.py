"""Field comparisons for probabilistic linkage: how alike two records' names, dates and places are.

Pure. Each comparison returns a level ("exact", "fuzzy", ...) rather than a number: the match
model turns levels into weights, so the levels stay readable evidence in every link decision.
"MISSING" means one side did not say, which is no evidence either way.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

import jellyfish

from mash.limits import SUBJECT_CHARS
from services.enrichment.nicknames import same_given_name

MISSING = "MISSING"
_NOT_LETTER = re.compile(r"[^A-Z]")
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
FIELDS = ("given", "family", "dob", "sex", "postcode", "address")
ADDRESS_CHARS = 160  # person_profiles.address: the envelope's address_line limit


@dataclass(frozen=True)
class Profile:
    """What matching knows of a child from one record: normalised, blank when unknown."""

    given: str = ""
    family: str = ""
    dob: date | None = None
    sex: str = ""  # F | M, blank when unknown or other
    postcode: str = ""  # upper case, no space
    nhs: str = ""  # valid numbers only
    upn: str = ""  # valid numbers only
    address: str = ""  # the first line as words (`normalise_address`)


def normalise_name(raw: str | None) -> str:
    """Upper-case letters only: accents folded, hyphens, apostrophes and spaces dropped (a placeholder
    such as "Twin 1" keeps its number: it is what tells two newborns apart)."""
    if not raw:
        return ""
    folded = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().upper()
    # NFKD can lengthen a name (a ligature becomes two letters): never past what the index holds
    kept = _NOT_LETTER.sub("", folded)
    if _placeholder(kept) or _placeholder(re.sub(r"[^A-Z0-9]", "", folded)):  # "Twin 1" keeps its number
        kept = re.sub(r"[^A-Z0-9]", "", folded)
    return kept[:SUBJECT_CHARS["given_name"]]


def normalise_postcode(raw: str | None) -> str:
    """A UK postcode without its space, or blank if it is not shaped like one."""
    if not raw:
        return ""
    compact = re.sub(r"\s", "", raw.upper())
    return compact if _POSTCODE.match(compact) else ""


_ADDRESS_WORDS = {"ST": "STREET", "RD": "ROAD", "AVE": "AVENUE", "AV": "AVENUE", "LN": "LANE", "DR": "DRIVE",
                  "CT": "COURT", "CRES": "CRESCENT", "CL": "CLOSE", "PL": "PLACE", "SQ": "SQUARE", "TCE": "TERRACE",
                  "GDNS": "GARDENS", "GRV": "GROVE", "PK": "PARK", "HSE": "HOUSE", "APT": "FLAT", "APARTMENT": "FLAT"}
# What agencies write when there is no address to give: no evidence of a home, shared by the children
# (in refuges, in care, with no fixed abode) a MASH most needs to keep apart.
_NO_ADDRESS = re.compile(r"^(NFA|NO FIXED (ABODE|ADDRESS)|UNKNOWN|NOT KNOWN|NK|N K|NONE|"
                         r"(ADDRESS )?WITHHELD|CONFIDENTIAL( ADDRESS)?|ADDRESS CONFIDENTIAL|C O .*|CARE OF .*)$")
_FLOORS = frozenset({"BASEMENT", "GROUND", "FIRST", "SECOND", "THIRD", "FOURTH", "UPPER", "LOWER", "MIDDLE", "TOP"})


def normalise_address(raw: str | None) -> str:
    """The first line of an address as words: upper case, accents folded, digits of any script read,
    punctuation dropped, the usual abbreviations written out (ST for STREET, RD for ROAD), a house
    number's letter kept with it (10 A and 10-A are 10A), leading zeros dropped (Flat 01 is Flat 1);
    blank for a line that gives no address (No fixed abode, withheld, c/o Children's Services)."""
    if not raw:
        return ""
    digits = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in raw)
    folded = unicodedata.normalize("NFKD", digits).encode("ascii", "ignore").decode().upper()
    words: list[str] = []
    for word in re.findall(r"[A-Z0-9]+", folded):
        word = _ADDRESS_WORDS.get(word, word)
        if word[0].isdigit():
            word = word.lstrip("0") or "0"
        if len(word) == 1 and word.isalpha() and words and words[-1].isdigit():
            words[-1] += word  # 10 A -> 10A
        else:
            words.append(word)
    line = " ".join(words)[:ADDRESS_CHARS]
    return "" if _NO_ADDRESS.match(line) else line


def compare_address(a: str, b: str) -> str:
    """Exact; alike as written, with the same numbers (a slip in a word: Jaro-Winkler >= 0.92);
    the same house number, the flat of one within the other's (a flat left out) and at least half
    the words shared (a locality added, words in another order); else not. Another house number,
    flat number or letter, or floor, is a neighbour's home, however alike the rest."""
    if not a or not b:
        return MISSING
    if a == b:
        return "EXACT"
    houses_a, houses_b = _numbers(a), _numbers(b)
    if houses_a and houses_b and houses_a[-1] != houses_b[-1]:  # the house number comes last
        return "DISAGREE"
    marks_a, marks_b = _marks(a), _marks(b)
    if not (marks_a <= marks_b or marks_b <= marks_a):
        return "DISAGREE"
    if marks_a == marks_b and jellyfish.jaro_winkler_similarity(a, b) >= 0.92:
        return "FUZZY"
    words_a, words_b = set(a.split()), set(b.split())
    if len(words_a & words_b) * 2 >= min(len(words_a), len(words_b)) + 1:
        return "TOKENS"
    return "DISAGREE"


def _numbers(address: str) -> list[str]:
    return [w for w in address.split() if w[0].isdigit()]


def _marks(address: str) -> set[str]:
    """What tells one home in a building or street from the next: numbers, lone letters, floors."""
    return {w for w in address.split() if w[0].isdigit() or len(w) == 1 or w in _FLOORS}


def outward_code(postcode: str) -> str:
    match = _POSTCODE.match(postcode)
    return match.group(1) if match else ""


def profile_of(subject: dict[str, Any], nhs: str = "", upn: str = "") -> Profile:
    """The profile of an envelope's subject; pass only identifiers that passed their check."""
    dob = subject.get("date_of_birth")
    return Profile(
        given=normalise_name(subject.get("given_name")),
        family=normalise_name(subject.get("family_name")),
        dob=dob if isinstance(dob, date) else None,
        sex={"FEMALE": "F", "MALE": "M"}.get(subject.get("sex") or "", ""),
        postcode=normalise_postcode(subject.get("postcode")),
        nhs=nhs,
        upn=upn,
        address=normalise_address(subject.get("address_line")),
    )


def compare_given(a: str, b: str) -> str:
    if not a or not b:
        return MISSING
    if _placeholder(a) or _placeholder(b):  # "Baby A", "Twin 2", "Unknown": no evidence of who
        return "DISAGREE"
    if a == b:
        return "EXACT"
    if same_given_name(a, b):
        return "NICKNAME"
    if jellyfish.jaro_winkler_similarity(a, b) >= 0.9 or jellyfish.damerau_levenshtein_distance(a, b) <= 1:
        return "FUZZY"
    if min(len(a), len(b)) == 1 and a[0] == b[0]:  # one agency recorded the initial only
        return "INITIAL"
    return "DISAGREE"  # two names (sharing an initial or not): OLIVER and OSCAR are two boys


_PLACEHOLDER = re.compile(r"^(BABY|TWIN|INFANT|UNBORN|UNKNOWN|NOTKNOWN|NK)[A-Z0-9]?$")


def _placeholder(name: str) -> bool:
    """A name given before a child is named (maternity's "Baby A", "Twin 1") or when it is not known:
    newborn twins share everything else, so it must never count as the same name."""
    return bool(_PLACEHOLDER.match(name))


def sibling_evidence(vector: tuple[str, ...]) -> bool:
    """Two different given names under one family name: a brother or sister, a twin if the date of
    birth agrees too, not the same child keyed differently. (A slip of a name, or a known short
    form, is not a different name: FUZZY and NICKNAME.) The independence of the fields that the
    model assumes fails exactly here: in a household, family, address and date of birth agree
    together, so their weights would outvote the one field that tells the children apart."""
    given, family, sex = (vector[FIELDS.index(f)] for f in ("given", "family", "sex"))
    if family not in ("EXACT", "FUZZY", "PHONETIC"):
        return False
    # a brother and a sister: Louis and Louise are alike as names, not as children
    return given == "DISAGREE" or (sex == "DISAGREE" and given != "EXACT")


def compare_family(a: str, b: str) -> str:
    if not a or not b:
        return MISSING
    if a == b:
        return "EXACT"
    if jellyfish.damerau_levenshtein_distance(a, b) <= 1 or jellyfish.jaro_winkler_similarity(a, b) >= 0.92:
        return "FUZZY"
    if jellyfish.soundex(a) == jellyfish.soundex(b):
        return "PHONETIC"
    return "DISAGREE"


def compare_dob(a: date | None, b: date | None) -> str:
    """The slips people make keying a date, each a level of its own: day and month the wrong way
    round; one digit wrong or two neighbouring digits swapped (2014-05-19 for 2014-05-09); the year
    off by one or ten with the day and month right. Any other pair agreeing in two of its three
    parts is ONE_PART."""
    if a is None or b is None:
        return MISSING
    if a == b:
        return "EXACT"
    if a.year == b.year and a.day == b.month and a.month == b.day:
        return "SWAPPED"
    if _digit_slip(f"{a.year:04d}{a.month:02d}{a.day:02d}", f"{b.year:04d}{b.month:02d}{b.day:02d}"):
        return "TYPO"
    if (a.month, a.day) == (b.month, b.day) and abs(a.year - b.year) in (1, 10):
        return "YEAR"
    if (a.year == b.year) + (a.month == b.month) + (a.day == b.day) == 2:
        return "ONE_PART"
    return "DISAGREE"


def _digit_slip(a: str, b: str) -> bool:
    """One digit different, or two neighbouring digits transposed."""
    differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    if len(differ) == 1:
        return True
    return len(differ) == 2 and differ[1] == differ[0] + 1 and a[differ[0]] == b[differ[1]] \
        and a[differ[1]] == b[differ[0]]


def compare_sex(a: str, b: str) -> str:
    if not a or not b:
        return MISSING
    return "AGREE" if a == b else "DISAGREE"


def compare_postcode(a: str, b: str) -> str:
    """Exact; the same sector (district and the inward digit: a few hundred addresses); one character
    keyed wrong or two swapped (LS6 1AB for LS6 1BA, LS61AB for LS71AB); the same district; else not."""
    if not a or not b:
        return MISSING
    if a == b:
        return "EXACT"
    if outward_code(a) == outward_code(b) and a[-3] == b[-3]:
        return "SECTOR"
    if jellyfish.damerau_levenshtein_distance(a, b) <= 1:
        return "TYPO"
    if outward_code(a) == outward_code(b):
        return "DISTRICT"
    return "DISAGREE"


NAME_AGREES = ("EXACT", "NICKNAME", "FUZZY")


def compare(a: Profile, b: Profile) -> tuple[str, str, str, str, str, str]:
    """The comparison vector, in FIELDS order. Given and family names keyed into each other's boxes
    are compared crossed over when that is how they agree (both of them, so a sibling never gains)."""
    given, family = compare_given(a.given, b.given), compare_family(a.family, b.family)
    if given not in NAME_AGREES and family not in NAME_AGREES and a.given != a.family:
        crossed = compare_given(a.given, b.family), compare_family(a.family, b.given)
        if crossed[0] in NAME_AGREES and crossed[1] in NAME_AGREES:
            given, family = crossed
    return (given, family, compare_dob(a.dob, b.dob), compare_sex(a.sex, b.sex),
            compare_postcode(a.postcode, b.postcode), compare_address(a.address, b.address))


def identifiers_conflict(a: Profile, b: Profile) -> bool:
    """Two different valid NHS numbers (or UPNs) are two different children, however alike."""
    return bool((a.nhs and b.nhs and a.nhs != b.nhs) or (a.upn and b.upn and a.upn != b.upn))
