"""The policy in force, reloaded at clean points: between batches, never inside one.

A change to the file takes effect at the next batch, so every event is decided by exactly one
policy and its decisions carry that policy's hash. A file that fails to load is reported and
the last good policy stays in force: a typo must not stop the hub or open the gates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from services.sharing.policy import Policy, PolicyError, load_policy

log = logging.getLogger(__name__)


class PolicySource:
    def __init__(self, path: Path, on_rejected: Callable[[PolicyError], None] | None = None) -> None:
        self.path = path
        self._policy = load_policy(path)  # at start a bad policy is fatal: there is no last good one
        self._stamp = self._stat()
        self._on_rejected = on_rejected
        self.rejected: PolicyError | None = None

    def current(self) -> Policy:
        """The policy for the next batch: the file's, if it changed and loads; else the last good one."""
        stamp = self._stat()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                policy = load_policy(self.path)
            except PolicyError as exc:
                self.rejected = exc
                log.error("sharing policy change rejected, keeping version %s: %s", self._policy.version[:12], exc)
                if self._on_rejected:
                    self._on_rejected(exc)
            else:
                if policy.version != self._policy.version:
                    log.warning("sharing policy %s now in force (was %s)", policy.version[:12],
                                self._policy.version[:12])
                self._policy, self.rejected = policy, None
        return self._policy

    def _stat(self) -> tuple[int, int]:
        try:
            st = self.path.stat()
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)
