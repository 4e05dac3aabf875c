"""The triage app in a real headless browser (Debian's Chromium, driven by Playwright).

Screenshots of the queue and the alert page are saved under MASH_SCREENSHOTS_DIR (default
test-artifacts/screenshots).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy.orm import Session, sessionmaker

from mash.settings import PROJECT_ROOT
from services.triage.scoring_file import load_scoring
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from services.triage_store.store import TriageStore
from tests.support.serving import serving
from tests.support.triage_data import HOSTILE, NOW, PASSWORD, alert, shared

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(os.environ.get("MASH_SCREENSHOTS_DIR", PROJECT_ROOT / "test-artifacts" / "screenshots"))


@pytest.fixture
def base_url(sessions: sessionmaker[Session], data: Any) -> Iterator[str]:
    app = create_app(AppConfig(sessions, load_scoring(), "browser-secret-" * 3, clock=lambda: NOW,
                               refresh_seconds=1))
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def logged_in(browser: Browser, base_url: str, username: str) -> Page:
    page = browser.new_context(base_url=base_url).new_page()
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("#login").click()
    expect(page.locator("h1")).to_have_text("Audit" if username == "aud" else "Triage queue")  # an auditor's home
    return page


def test_a_worker_sees_the_red_alert_first_opens_it_claims_it_and_records_a_decision(
        browser: Browser, base_url: str, data: Any, request: pytest.FixtureRequest) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    suffix = request.node.callspec.id
    page = logged_in(browser, base_url, "alice")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    first = page.locator("tr.alert").first
    expect(first).to_have_class("alert rag-red clock-at_risk")
    expect(first).to_contain_text("Ruby Okafor")
    expect(page.locator("tr.clock-breached")).to_contain_text("Sam Reid")
    page.screenshot(path=str(SHOTS / f"queue-{suffix}.png"), full_page=True)

    first.get_by_role("link").click()
    expect(page.locator("#timeline li")).to_have_count(2)
    expect(page.locator("#timeline")).to_contain_text(HOSTILE)  # shown as text, not run
    page.locator("#claim").click()
    expect(page.locator(".notice")).to_have_text("claimed")
    expect(page.locator("#claimed-by")).to_have_text("alice")
    page.get_by_label("strategy discussion / section 47 enquiry").check()
    page.locator("#rationale").fill("High-risk domestic abuse and an injury pattern: strategy discussion today.")
    page.locator("#decide").click()
    expect(page.locator(".notice")).to_contain_text("decision recorded (triage-app:2)")
    expect(page.locator(".decision-record")).to_contain_text("strategy discussion")
    page.screenshot(path=str(SHOTS / f"alert-{suffix}.png"), full_page=True)
    assert dialogs == []

    page.goto("/")
    expect(page.locator("tr.alert").first).to_contain_text("Sam Reid")  # Ruby's decided alert has left the queue


def test_another_role_does_not_get_withheld_fields_in_the_page(browser: Browser, base_url: str, data: Any) -> None:
    ruby = data["ruby"]["alert_id"]
    police = logged_in(browser, base_url, "pat")
    police.goto(f"/alerts/{ruby}")
    html = police.content()
    assert "CONFIDENTIAL-CLINICAL-DETAIL" not in html and "presenting_complaint" not in html
    assert "injury_pattern_concern" not in html
    expect(police.locator("#timeline li.withheld")).to_contain_text("Withheld from your role")
    health = logged_in(browser, base_url, "hana")
    health.goto(f"/alerts/{ruby}")
    assert "CONFIDENTIAL-CLINICAL-DETAIL" in health.content()


def test_unauthenticated_and_cross_role_requests_are_refused(browser: Browser, base_url: str, data: Any) -> None:
    ruby = data["ruby"]["alert_id"]
    anonymous = browser.new_context(base_url=base_url)
    assert anonymous.request.get("/api/alerts").status == 401
    assert anonymous.request.get(f"/alerts/{ruby}").status == 401
    auditor = logged_in(browser, base_url, "aud")
    assert auditor.request.post(f"/api/alerts/{ruby}/claim").status == 403  # no CSRF token, and read-only
    assert auditor.goto("/audit").status == 200  # type: ignore[union-attr]
    worker = logged_in(browser, base_url, "alice")
    assert worker.goto("/audit").status == 403  # type: ignore[union-attr]


def test_the_queue_updates_live(browser: Browser, base_url: str, data: Any, sessions: sessionmaker[Session]) -> None:
    page = logged_in(browser, base_url, "mo")
    expect(page.locator("tr.alert")).to_have_count(3)
    child = "00000000-0000-4000-8000-00000000beef"
    event = shared(child, "police.public_protection_notification", "POLICE", NOW - timedelta(minutes=5),
                   {"subject": {"given_name": "Zed", "family_name": "Late"}, "payload": {"risk_grading": "HIGH"}},
                   {"triage_manager": ["subject.given_name", "subject.family_name", "payload.risk_grading"]})
    TriageStore(sessions).apply([alert(child, "RED", [event], NOW, NOW + timedelta(minutes=5), NOW - timedelta(1),
                                       80, ["police-high-risk"], ["police graded the incident high risk (+80)"])],
                                [], [event])
    expect(page.locator("tr.alert")).to_have_count(4)  # no reload: the page fetched it
    expect(page.locator("tr.alert").first).to_contain_text("Zed Late")


def test_a_decision_on_an_alert_that_changed_while_open_is_refused_showing_what_is_new(
        browser: Browser, base_url: str, data: Any, sessions: sessionmaker[Session],
        request: pytest.FixtureRequest) -> None:
    """The manager opens Sam's alert (revision 1); the hub attaches a police report (revision 2)
    before the decision is sent: the app answers 409, records nothing, and marks the new event."""
    page = logged_in(browser, base_url, "mo")
    sam = data["sam"]
    page.goto(f"/alerts/{sam['alert_id']}")
    expect(page.locator("#revision")).to_have_text("1")
    late = shared(sam["person_id"], "police.public_protection_notification", "POLICE", NOW - timedelta(minutes=2),
                  {"payload": {"risk_grading": "HIGH"}}, {"triage_manager": ["payload.risk_grading"]})
    revised = {**sam, "revision": 2, "rag": "RED", "event_ids": [*sam["event_ids"], late["event_id"]],
               "joined": [1] * len(sam["event_ids"]) + [2], "agencies": sorted({*sam["agencies"], "POLICE"}),
               "score": 160}
    TriageStore(sessions).apply([revised], [], [late])
    page.get_by_label("no further action").check()
    page.locator("#rationale").fill("Attendance only; the school is managing it.")
    with page.expect_response(lambda r: r.request.method == "POST") as answered:
        page.locator("#decide").click()
    assert answered.value.status == 409
    expect(page.locator(".notice")).to_contain_text("you saw revision 1, it is now revision 2")
    expect(page.locator("#revision")).to_have_text("2")
    new = page.locator(f'#timeline li[data-event-id="{late["event_id"]}"]')
    expect(new).to_have_class("event in-alert new-since")
    expect(new).to_contain_text("new since you looked")
    expect(page.locator("#timeline li.new-since")).to_have_count(1)
    expect(page.locator(".decision-record")).to_have_count(0)  # nothing was recorded
    page.screenshot(path=str(SHOTS / f"alert-409-{request.node.callspec.id}.png"), full_page=True)


def test_the_api_docs_render_under_the_apps_content_security_policy(browser: Browser, base_url: str) -> None:
    """Swagger UI from the app itself, started by a script file: nothing from a CDN, nothing inline,
    and no request the CSP refuses (the browser would report each in the console)."""
    page = browser.new_context(base_url=base_url).new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith(base_url) else None)
    assert page.goto("/api/docs").status == 200  # type: ignore[union-attr]
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    expect(page.locator('.opblock-summary-path[data-path="/api/login"]')).to_have_count(1)
    assert refused == [] and elsewhere == []
