"""The triage app's log-in rules without I/O: the back-off, session timeouts, the secret key check,
password hashing, secure cookies by default and `mash triage serve` refusing a weak key."""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from mash.settings import PROJECT_ROOT, Settings
from services.triage_app.login_backoff import ANY_USER, PER_ADDRESS, PER_USER_AND_ADDRESS, rule_for
from services.triage_app.passwords import hash_password, needs_rehash, verify_password
from services.triage_app.runtime import ConfigError, build, secure_cookies
from services.triage_app.secret_key import weakness
from services.triage_app.session_store import Timeouts, expired
from tests.support.triage_data import NOW

MINUTE = timedelta(minutes=1)


def test_a_username_from_one_address_gets_five_tries_then_doubling_waits_up_to_fifteen_minutes() -> None:
    waits = [PER_USER_AND_ADDRESS.wait_after(n) for n in range(1, 12)]
    assert waits == [timedelta(0)] * 4 + [MINUTE, 2 * MINUTE, 4 * MINUTE, 8 * MINUTE] + [15 * MINUTE] * 3
    assert PER_USER_AND_ADDRESS.wait_after(10_000) == 15 * MINUTE


def test_an_address_trying_many_usernames_waits_after_twenty_failures_up_to_an_hour() -> None:
    assert rule_for(ANY_USER) is PER_ADDRESS and rule_for("alice") is PER_USER_AND_ADDRESS
    assert PER_ADDRESS.wait_after(19) == timedelta(0) and PER_ADDRESS.wait_after(20) == MINUTE
    assert PER_ADDRESS.wait_after(40) == timedelta(hours=1)


def test_a_session_ends_when_idle_or_too_old() -> None:
    timeouts = Timeouts(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
    assert not expired(NOW, NOW + timedelta(minutes=29), NOW + timedelta(minutes=58), timeouts)
    assert expired(NOW, NOW, NOW + timedelta(minutes=30), timeouts)
    assert expired(NOW, NOW + timedelta(hours=11, minutes=59), NOW + timedelta(hours=12), timeouts)
    assert Timeouts() == timeouts  # the defaults: half an hour idle, twelve hours in all


@pytest.mark.parametrize("key", ["changeme", "test-secret-" * 4, "a" * 64, "0123456789abcdef" * 2,
                                 "aaaabbbbaaaabbbbaaaabbbbaaaabbbbc", "abababababababababababababababcd"])
def test_a_weak_secret_key_is_refused_saying_how_to_make_one(key: str) -> None:
    problem = weakness(key)
    assert problem is not None and "secrets.token_urlsafe(32)" in problem


def test_a_generated_secret_key_is_accepted() -> None:
    for _ in range(200):
        assert weakness(secrets.token_urlsafe(32)) is None
        assert weakness(secrets.token_hex(16)) is None


def test_the_app_will_not_start_with_a_weak_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"too weak.*token_urlsafe"):
        build(Settings(triage_secret_key=SecretStr("test-secret-" * 4), state_dir=tmp_path))
    env = {"PATH": "/usr/bin:/bin", "MASH_STATE_DIR": str(tmp_path), "MASH_TRIAGE_SECRET_KEY": "changeme-please"}
    served = subprocess.run([sys.executable, "-m", "mash.cli", "triage", "serve"], env=env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert served.returncode == 2 and "MASH_TRIAGE_SECRET_KEY is too weak" in served.stderr
    assert "changeme-please" not in served.stderr + served.stdout


def test_cookies_are_secure_unless_the_app_listens_on_loopback_only() -> None:
    assert secure_cookies(Settings(triage_host="0.0.0.0")) is True
    assert secure_cookies(Settings(triage_host="triage.internal")) is True
    assert secure_cookies(Settings(triage_host="127.0.0.1")) is False
    assert secure_cookies(Settings(triage_host="::1")) is False
    assert secure_cookies(Settings(triage_host="0.0.0.0", triage_secure_cookies=False)) is False
    assert secure_cookies(Settings(triage_host="127.0.0.1", triage_secure_cookies=True)) is True


def test_passwords_are_hashed_with_argon2id_at_rfc_9106_cost() -> None:
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password("correct horse battery staple", stored)
    assert not verify_password("correct horse battery stable", stored)
    assert not needs_rehash(stored)


def test_an_old_scrypt_hash_still_verifies_and_asks_to_be_replaced() -> None:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(b"correct horse battery staple", salt=salt, n=2**14, r=8, p=1)
    old = f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_password("correct horse battery staple", old)
    assert not verify_password("wrong horse battery staple", old)
    assert needs_rehash(old)
    assert not verify_password("anything at all", "not a hash") and needs_rehash("not a hash")
