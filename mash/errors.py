"""Errors every command reports the same way: what is wrong and what to do, never a traceback."""

from __future__ import annotations


class UnusableFile(ValueError):
    """A file the operator named (a match model, a cases file) cannot be used; the message says
    which file and what to do. `mash` prints it and exits 2."""
