"""Blocking keys: the few persons worth comparing an event with, out of a million.

Pure. Each profile the index sees is stored under a handful of keys; an event is compared only
with persons sharing one of its keys. The keys are chosen so that each kind of slip the
comparisons tolerate still shares at least one key with the truth: a surname typo keeps the
date-of-birth, initial and sex key, a mistyped date keeps the postcode-and-birth-year key, and a day
and month swapped is looked up both ways round.
"""

from __future__ import annotations

from datetime import date

import jellyfish

from services.enrichment.comparisons import Profile


def stored_keys(profile: Profile) -> set[str]:
    """The keys a profile is filed under in the index."""
    keys = set()
    if profile.dob:
        day = profile.dob.isoformat()
        if profile.family:
            keys.add(f"DF:{day}:{jellyfish.soundex(profile.family)}")
        if profile.given:
            keys.add(f"DG:{day}:{profile.given[0]}{profile.sex or 'U'}")
    if profile.postcode and profile.dob:
        keys.add(f"PY:{profile.postcode}:{profile.dob.year}")
    if profile.postcode and profile.family and profile.given:
        keys.add(f"PN:{profile.postcode}:{jellyfish.soundex(profile.family)}:{profile.given[0]}")
    return keys


def lookup_keys(profile: Profile) -> set[str]:
    """The keys to look an event up under: its own, and its date of birth the other way round."""
    keys = stored_keys(profile)
    swapped = _swapped(profile.dob)
    if swapped:
        keys |= stored_keys(Profile(given=profile.given, family=profile.family, dob=swapped, sex=profile.sex,
                                    postcode=profile.postcode))
    return keys


def _swapped(dob: date | None) -> date | None:
    if dob is None or dob.day > 12 or dob.day == dob.month:
        return None
    return date(dob.year, dob.day, dob.month)
