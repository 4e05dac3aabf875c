"""The audit keys of this process, from its settings: the key it signs with (from the environment,
else one made once in the state directory for the embedded stack) and the others it accepts."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from mash.settings import Settings
from services.sharing.audit_signing import WRITERS, AuditKeys

KEY_FILE = "audit-signing.key"


def audit_keys(settings: Settings) -> AuditKeys:
    configured = settings.audit_signing_key.get_secret_value().strip()
    signing = configured.encode() if configured else _embedded_key(settings.state_dir / KEY_FILE)
    return AuditKeys.of(signing, [_named(item.strip()) for item in
                                  settings.audit_verify_keys.get_secret_value().split(",") if item.strip()])


def _named(item: str) -> bytes | tuple[str, bytes]:
    """`<writer>:<key>` for one writer's chains (hub, triage-app); a bare key for any."""
    writer, _, key = item.partition(":")
    return (writer, key.encode()) if key and writer in WRITERS else item.encode()


def _embedded_key(path: Path) -> bytes:
    """The embedded stack's key: made on first use, readable by its owner only, the same for every
    process sharing the state directory (hub, triage app, `mash audit verify`). Written aside and
    linked into place, so a process starting at the same moment reads a whole key or makes none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_urlsafe(48).encode() + b"\n")
        try:
            os.link(draft, path)  # fails if another process linked its key first: theirs is kept
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    if path.is_symlink() or not path.is_file():
        raise RuntimeError(f"{path} is not a regular file: remove it, or set MASH_AUDIT_SIGNING_KEY")
    held = path.stat()
    if held.st_mode & 0o077 or held.st_uid != os.getuid():
        raise RuntimeError(f"{path} may be read by others (mode {held.st_mode & 0o777:o}, owner {held.st_uid}): "
                           f"run `chmod 600 {path}` as its owner, or set MASH_AUDIT_SIGNING_KEY")
    return path.read_bytes().strip()
