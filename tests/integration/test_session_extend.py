"""Staying logged in from the idle warning (WCAG 2.2.1): POST /session/extend records a use now,
says how long the session has, needs the session's CSRF token (another site cannot keep a session
alive), and cannot bring back a session that has ended."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from tests.integration.test_triage_login import app_for, client_at, clock, log_in  # noqa: F401 - fixtures
from tests.support.triage_data import NOW, Clock


def test_staying_logged_in_restarts_the_idle_clock_and_says_how_long_is_left(
        client_at: Callable[..., TestClient], clock: Clock) -> None:  # noqa: F811
    client = client_at()
    assert log_in(client, "alice") == 200
    token = client.headers["X-CSRF-Token"]
    clock.now = NOW + timedelta(minutes=29, seconds=30)  # 30 s left: the page is warning
    answer = client.post("/session/extend", data={"csrf": token})
    assert answer.status_code == 200 and answer.json() == {"seconds_left": 30 * 60}
    clock.now = NOW + timedelta(minutes=45)  # it would have ended at 30 minutes
    assert client.get("/api/alerts").status_code == 200


def test_staying_logged_in_needs_the_sessions_csrf_token_and_records_nothing_without_it(
        client_at: Callable[..., TestClient], clock: Clock) -> None:  # noqa: F811
    client = client_at()
    assert log_in(client, "alice") == 200
    clock.now = NOW + timedelta(minutes=29, seconds=30)
    assert client.post("/session/extend", data={"csrf": "forged"}).status_code == 403
    assert client.post("/session/extend").status_code == 422
    clock.now = NOW + timedelta(minutes=31)
    assert client.get("/api/alerts").status_code == 401


def test_a_session_that_has_ended_cannot_be_extended(
        client_at: Callable[..., TestClient], clock: Clock) -> None:  # noqa: F811
    client = client_at()
    assert log_in(client, "alice") == 200
    token = client.headers["X-CSRF-Token"]
    clock.now = NOW + timedelta(minutes=31)
    answer = client.post("/session/extend", data={"csrf": token})
    assert answer.status_code == 401 and "log in again" in answer.json()["detail"]
    assert client.get("/api/alerts").status_code == 401


def test_a_page_tells_its_script_how_long_the_session_has(
        client_at: Callable[..., TestClient], clock: Clock) -> None:  # noqa: F811
    client = client_at()
    assert log_in(client, "alice") == 200
    clock.now = NOW + timedelta(seconds=50)  # within a minute of the last use: no use recorded
    page = client.get("/", headers={"Accept": "text/html"})
    assert 'data-seconds-left="1750"' in page.text and 'src="/static/session.js"' in page.text
    assert "session-warning" not in client_at().get("/login").text  # nobody logged in: no warning
