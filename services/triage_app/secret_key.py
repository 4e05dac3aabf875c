"""Is MASH_TRIAGE_SECRET_KEY strong enough to key the app's tokens: pure, checked at start.

A key a person typed ("changeme", a word repeated to length) can be guessed offline from one token
it made; a key made by a random generator cannot. Entropy is estimated from the key's own
characters (length times the Shannon entropy of their distribution): a generous estimate for a
random key, a low one for a short alphabet or a repeated pattern, which is refused outright.
"""

from __future__ import annotations

import math
from collections import Counter

MIN_LENGTH = 32
MIN_BITS = 90  # a 32-character hex key (128 random bits) estimates at 115, seldom under 100
MIN_BITS_PER_CHARACTER = 2.5  # hex is at most 4; a few letters over and over are under 2.5
HOW = ("make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))' and keep it in your "
       "secret store")


def weakness(key: str) -> str | None:
    """What is wrong with the key, saying how to make a good one; None for a strong key."""
    problem = _problem(key)
    return f"MASH_TRIAGE_SECRET_KEY is too weak: {problem}; {HOW}" if problem else None


def _problem(key: str) -> str | None:
    if len(key) < MIN_LENGTH:
        return f"{len(key)} characters, at least {MIN_LENGTH} are needed"
    if key in (key + key)[1:-1]:
        return "it is one shorter string repeated"
    per_character = _shannon(key)
    if per_character < MIN_BITS_PER_CHARACTER or per_character * len(key) < MIN_BITS:
        return (f"about {per_character * len(key):.0f} bits of entropy from too few different characters "
                f"({len(set(key))}), at least {MIN_BITS} bits are needed")
    return None


def _shannon(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
