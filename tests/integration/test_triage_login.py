"""The triage app's log-in and sessions over a real database (SQLite and PostgreSQL, as the processes'
runtime role), through HTTP: back-off per username and address and per address, counted atomically
and answered in the same time; server-side sessions that idle out, expire, and end at log-out and
at a password change; what the app believes of a TLS proxy; secure cookies and HSTS; /api/docs."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mash.models import LoginThrottleRecord, UserRecord, WebSessionRecord
from mash.settings import PROJECT_ROOT, Settings
from services.triage.scoring_file import load_scoring
from services.triage_app import accounts
from services.triage_app.accounts import set_password
from services.triage_app.runtime import behind_proxies
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from tests.integration.conftest import env_for
from tests.support.triage_data import NOW, PASSWORD, Clock

ATTACKER, DESK, OFFICE = "203.0.113.9", "10.20.0.5", "10.20.0.6"
WRONG = "not-the-password-at-all"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_for(sessions: sessionmaker[Session], data: Any, clock: Clock) -> Callable[..., Any]:
    def make(**options: Any) -> Any:
        return create_app(AppConfig(sessions, load_scoring(), secrets.token_urlsafe(32), clock=clock, **options))
    return make


@pytest.fixture
def client_at(app_for: Callable[..., Any]) -> Iterator[Callable[..., TestClient]]:
    """A client from a given address (the app's own, unless `app` is given)."""
    app = app_for()
    clients: list[TestClient] = []

    def make(address: str = DESK, app_: Any = None, **options: Any) -> TestClient:
        client = TestClient(app_ or app, client=(address, 50000), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def log_in(client: TestClient, username: str, password: str = PASSWORD) -> int:
    response = client.post("/api/login", json={"username": username, "password": password})
    if response.status_code == 200:
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return response.status_code


# --- finding: lock-out per user name, lost-update count, faster answer when locked, no address throttle

def test_failures_from_an_attackers_address_never_lock_the_user_out_from_their_own(
        client_at: Callable[..., TestClient]) -> None:
    attacker = client_at(ATTACKER)
    for _ in range(12):
        assert log_in(attacker, "mo", WRONG) == 401
    assert log_in(attacker, "mo") == 401  # that address now waits, even with the right password
    assert log_in(client_at(DESK), "mo") == 200  # the manager at their desk is not locked out


def test_one_address_trying_many_usernames_is_slowed_for_all_of_them(
        client_at: Callable[..., TestClient], clock: Clock) -> None:
    sprayer = client_at(ATTACKER)
    for n in range(25):  # one guess per account: no username reaches its own limit
        assert log_in(sprayer, f"guess{n}" if n % 2 else "pat", WRONG) == 401
    assert log_in(sprayer, "alice") == 401  # the address waits, whichever account it tries
    assert log_in(client_at(OFFICE), "alice") == 200  # everyone else is not held up
    clock.now = NOW + timedelta(hours=2)
    assert log_in(sprayer, "alice") == 200  # and the wait ends


def test_concurrent_failures_are_all_counted(client_at: Callable[..., TestClient],
                                             sessions: sessionmaker[Session]) -> None:
    """Four wrong passwords at once: four failures, none lost to a read-modify-write."""
    clients = [client_at(ATTACKER) for _ in range(4)]
    start = threading.Barrier(len(clients))
    codes: list[int] = []

    def guess(client: TestClient) -> None:
        start.wait()
        codes.append(log_in(client, "pat", WRONG))

    threads = [threading.Thread(target=guess, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert codes == [401] * 4
    with sessions() as session:
        assert session.scalar(select(UserRecord.failed_logins).where(UserRecord.username == "pat")) == 4
        assert session.scalar(select(LoginThrottleRecord.failures).where(
            LoginThrottleRecord.username == "pat", LoginThrottleRecord.address == ATTACKER)) == 4


def test_every_failed_log_in_costs_one_password_hash_and_reads_the_same(
        client_at: Callable[..., TestClient], sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown name, a deactivated account, an account held back and a wrong password all run the
    hash once and answer alike: neither the time nor the text says whether the account exists."""
    for _ in range(6):
        log_in(client_at(ATTACKER), "pat", WRONG)  # pat is now held back from that address
    with sessions.begin() as session:
        session.execute(update(UserRecord).where(UserRecord.username == "hana").values(active=False))
    hashed: list[str] = []
    real = accounts.verify_password
    monkeypatch.setattr(accounts, "verify_password", lambda password, stored: hashed.append(stored) or real(
        password, stored))
    answers = {}
    for case, (username, password) in {"unknown": ("nobody", PASSWORD), "deactivated": ("hana", PASSWORD),
                                       "held back, right password": ("pat", PASSWORD),
                                       "wrong password": ("alice", WRONG)}.items():
        before = len(hashed)
        response = client_at(ATTACKER).post("/api/login", json={"username": username, "password": password})
        answers[case] = (response.status_code, response.text)
        assert len(hashed) == before + 1, f"{case}: the password was hashed {len(hashed) - before} times"
    assert len(set(answers.values())) == 1, answers


def test_the_form_says_the_same_for_every_failure(client_at: Callable[..., TestClient]) -> None:
    texts = set()
    for username, password in (("nobody", PASSWORD), ("alice", WRONG)):
        client = client_at(ATTACKER)
        token = _form_token(client.get("/login").text)
        response = client.post("/login", data={"username": username, "password": password, "csrf": token})
        assert response.status_code == 401
        texts.add(re.sub(r'name="csrf" value="[^"]+"', "", response.text))
    assert len(texts) == 1


# --- finding: signed cookies re-signed on every response never expire and cannot be revoked

def test_a_session_idles_out(client_at: Callable[..., TestClient], clock: Clock) -> None:
    client = client_at()
    assert log_in(client, "alice") == 200
    clock.now = NOW + timedelta(minutes=20)
    assert client.get("/api/alerts").status_code == 200  # used: the idle clock starts again
    clock.now = NOW + timedelta(minutes=45)
    assert client.get("/api/alerts").status_code == 200
    clock.now = NOW + timedelta(minutes=76)
    assert client.get("/api/alerts").status_code == 401


def test_a_session_ends_after_its_absolute_limit_however_busy(client_at: Callable[..., TestClient],
                                                              clock: Clock) -> None:
    client = client_at()
    assert log_in(client, "alice") == 200
    for minutes in range(20, 12 * 60, 20):
        clock.now = NOW + timedelta(minutes=minutes)
        assert client.get("/api/alerts").status_code == 200, minutes
    clock.now = NOW + timedelta(hours=12)
    assert client.get("/api/alerts").status_code == 401


def test_the_queues_own_refresh_does_not_keep_an_unattended_session_alive(
        client_at: Callable[..., TestClient], clock: Clock) -> None:
    client = client_at()
    assert log_in(client, "alice") == 200
    for minutes in range(5, 30, 5):
        clock.now = NOW + timedelta(minutes=minutes)
        assert client.get("/queue/rows").status_code == 200
    clock.now = NOW + timedelta(minutes=31)
    assert client.get("/queue/rows").status_code == 401


def test_log_out_ends_the_session_for_a_copied_cookie_too(client_at: Callable[..., TestClient]) -> None:
    browser = client_at()
    assert log_in(browser, "alice") == 200
    thief = client_at(ATTACKER, cookies=dict(browser.cookies), headers=dict(browser.headers))
    assert thief.get("/api/alerts").status_code == 200
    queue = browser.get("/")
    browser.post("/logout", data={"csrf": _form_token(queue.text)})
    assert browser.get("/").status_code == 401
    assert thief.get("/api/alerts").status_code == 401


def test_a_password_change_ends_every_session_of_that_user(client_at: Callable[..., TestClient],
                                                           sessions: sessionmaker[Session]) -> None:
    laptop, phone, other = client_at(), client_at(OFFICE), client_at()
    assert log_in(laptop, "alice") == log_in(phone, "alice") == log_in(other, "pat") == 200
    with sessions.begin() as session:
        set_password(session, "alice", "a brand new password")
    assert laptop.get("/api/alerts").status_code == phone.get("/api/alerts").status_code == 401
    assert other.get("/api/alerts").status_code == 200  # someone else's session stays
    assert log_in(laptop, "alice", "a brand new password") == 200


def test_mash_user_password_ends_the_users_sessions(client_at: Callable[..., TestClient], settings: Settings) -> None:
    client = client_at()
    assert log_in(client, "alice") == 200
    changed = subprocess.run([sys.executable, "-m", "mash.cli", "user", "password", "alice", "--password-stdin"],
                             input="another long password\n", env=env_for(settings), cwd=PROJECT_ROOT,
                             capture_output=True, text=True, timeout=120)
    assert changed.returncode == 0, changed.stderr
    assert client.get("/api/alerts").status_code == 401
    assert log_in(client, "alice", "another long password") == 200


def test_the_cookie_holds_a_random_id_and_the_database_only_its_hash(
        client_at: Callable[..., TestClient], sessions: sessionmaker[Session]) -> None:
    client = client_at()
    assert log_in(client, "alice") == 200
    token = client.cookies["mash_session"]
    assert len(token) == 43 and "alice" not in base64.urlsafe_b64decode(token + "=").decode("latin-1")
    with sessions() as session:
        stored = session.scalars(select(WebSessionRecord.id_hash)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


def test_the_csrf_token_belongs_to_its_session(client_at: Callable[..., TestClient], data: Any) -> None:
    mine, theirs = client_at(), client_at()
    assert log_in(mine, "alice") == log_in(theirs, "pat") == 200
    mine.headers["X-CSRF-Token"] = theirs.headers["X-CSRF-Token"]
    assert mine.post(f"/api/alerts/{data['ruby']['alert_id']}/claim").status_code == 403


# --- finding: secure cookies, HSTS, redirects behind a TLS proxy, /api/docs under the CSP, argon2id

def test_secure_cookies_and_hsts_when_served_over_tls(client_at: Callable[..., TestClient],
                                                      app_for: Callable[..., Any]) -> None:
    client = client_at(app_=app_for(secure_cookies=True), base_url="https://triage.example")
    page = client.get("/login")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "secure" in page.headers["set-cookie"].lower()
    login = client.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert login.status_code == 200 and "secure" in login.headers["set-cookie"].lower()
    assert "Strict-Transport-Security" not in client_at().get("/login").headers  # plain HTTP on loopback


def test_behind_a_trusted_tls_proxy_redirects_stay_on_https_and_back_off_counts_the_client(
        app_for: Callable[..., Any], client_at: Callable[..., TestClient], data: Any) -> None:
    proxied = behind_proxies(app_for(), Settings(triage_trusted_proxies="10.0.0.1, 10.0.0.2"))
    proxy = client_at("10.0.0.1", app_=proxied, base_url="http://triage.example",
                      headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": ATTACKER})
    for _ in range(8):
        assert log_in(proxy, "alice", WRONG) == 401
    proxy.headers["X-Forwarded-For"] = DESK  # the same proxy, another client behind it
    assert log_in(proxy, "alice") == 200
    ruby = data["ruby"]["alert_id"]
    claimed = proxy.post(f"/alerts/{ruby}/claim", data={"csrf": proxy.headers["X-CSRF-Token"]},
                         follow_redirects=False)
    assert claimed.status_code == 303 and claimed.headers["location"].startswith("https://triage.example/")
    forged = client_at("10.9.9.9", app_=proxied, base_url="http://triage.example",
                       headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": DESK})
    assert log_in(forged, "mo") == 200
    unclaimed = forged.post(f"/alerts/{ruby}/unclaim", data={"csrf": forged.headers["X-CSRF-Token"]},
                            follow_redirects=False)
    assert unclaimed.headers["location"].startswith("http://")  # not a proxy of ours: its headers are ignored


def test_api_docs_are_served_by_the_app_itself_with_no_inline_script(client_at: Callable[..., TestClient],
                                                                       app_for: Callable[..., Any]) -> None:
    client = client_at()
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "<script>" not in docs.text and "http" not in docs.text  # nothing inline, nothing from elsewhere
    for asset in re.findall(r'(?:src|href)="([^"]+)"', docs.text):
        assert client.get(asset).status_code == 200, asset
    assert "script-src 'self'" in docs.headers["Content-Security-Policy"]
    assert client_at(app_=app_for(api_docs=False)).get("/api/docs").status_code == 404


def test_an_old_scrypt_hash_still_logs_in_and_is_replaced_by_argon2id(
        client_at: Callable[..., TestClient], sessions: sessionmaker[Session]) -> None:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1)
    old = f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    with sessions.begin() as session:
        session.execute(update(UserRecord).where(UserRecord.username == "alice").values(password_hash=old))
    assert log_in(client_at(), "alice") == 200
    with sessions() as session:
        stored = session.scalar(select(UserRecord.password_hash).where(UserRecord.username == "alice"))
    assert stored is not None and stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert log_in(client_at(), "alice") == 200
    assert log_in(client_at(OFFICE), "alice", WRONG) == 401


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)
