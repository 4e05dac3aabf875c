"""The log-in back-off rule, pure: how long a key (a username from one address, or one address for
every username) waits after its failures.

A key gets a few free failures (typing mistakes), then waits, doubling with each further failure up
to a cap; failures older than the window are forgotten. Keys are never a username alone: failures
from an attacker's address slow that address, never the user at their own desk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Rule:
    free_failures: int  # failures before the first wait
    first_wait: timedelta
    longest_wait: timedelta
    window: timedelta  # a key whose last failure is older than this starts again from none

    def wait_after(self, failures: int) -> timedelta:
        """How long the key waits after its `failures`-th failure in a row."""
        if failures < self.free_failures:
            return timedelta(0)
        doublings = min(failures - self.free_failures, 30)  # 2**30 minutes is past any cap
        return min(self.first_wait * (1 << doublings), self.longest_wait)


# One username from one address: five tries, then 1, 2, 4, 8, 15, 15... minutes.
PER_USER_AND_ADDRESS = Rule(5, timedelta(minutes=1), timedelta(minutes=15), timedelta(hours=1))
# One address, whatever username it tries: room for an office behind one NAT address to mistype,
# not for guessing many accounts' passwords from one machine.
PER_ADDRESS = Rule(20, timedelta(minutes=1), timedelta(hours=1), timedelta(hours=1))
ANY_USER = "*"  # the username of an address's own key (never a valid username)


def rule_for(username: str) -> Rule:
    return PER_ADDRESS if username == ANY_USER else PER_USER_AND_ADDRESS


def blocked(blocked_until: datetime | None, now: datetime) -> bool:
    return blocked_until is not None and blocked_until > now
