"""What the app takes from a request, limited at the edge (pages and API alike, and so described in
the OpenAPI): ids no longer than their columns, and no NUL character anywhere a value reaches the
database (PostgreSQL refuses one in text: a lookup or a write with it would fail as a server error)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

ID_LENGTH = 36  # alert and event ids (UUIDs), as their columns hold them
NO_NUL = r"^[^\x00]*$"
# a rationale says something: some character that is neither white space nor NUL, and no NUL at all
SAYS_SOMETHING = r"^[^\x00]*[^\s\x00][^\x00]*$"

AlertId = Annotated[str, Path(max_length=ID_LENGTH, pattern=NO_NUL, description="the alert's id")]
EventId = Annotated[str, Path(max_length=ID_LENGTH, pattern=NO_NUL, description="the event's id")]
