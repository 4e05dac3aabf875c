"""The MASH enquiry and the partner portal in a real headless browser (Debian's Chromium, driven by
Playwright): a worker opens an enquiry, a police portal user answers it, a health portal user sees
none of it, the worker records the threshold decision."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from services.enquiry.catalogue import load_catalogue
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage_app.accounts import create_user
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from tests.integration.test_triage_browser import SHOTS, browser  # noqa: F401 - the module's browser fixture
from tests.support.browser import send_enquiry
from tests.support.serving import serving
from tests.support.triage_data import NOW, PASSWORD


@pytest.fixture
def base_url(sessions: sessionmaker[Session], data: Any) -> Iterator[str]:
    agencies = tuple(load_catalogue().agencies)
    with sessions.begin() as session:
        create_user(session, "pc", "PC Jones", "agency_user", None, PASSWORD, NOW, "police", agencies)
        create_user(session, "nurse", "Nurse Patel", "agency_user", None, PASSWORD, NOW, "health", agencies)
    app = create_app(AppConfig(sessions, load_scoring(), "browser-secret-" * 3, clock=lambda: NOW,
                               profile=load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")))
    with serving(app) as url:
        yield url


def log_in(browser: Browser, base_url: str, username: str, home: str) -> Page:  # noqa: F811
    page = browser.new_context(base_url=base_url).new_page()
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("#login").click()
    expect(page.locator("h1")).to_contain_text(home)
    return page


def test_an_enquiry_is_opened_answered_in_the_portal_and_closed_with_the_threshold_decision(
        browser: Browser, base_url: str, data: Any) -> None:  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    ruby = data["ruby"]["alert_id"]
    worker = log_in(browser, base_url, "alice", "Triage queue")
    send_enquiry(worker, ruby, "sought, and given", ("Police", "Health"))
    expect(worker.locator("#requests tbody tr")).to_have_count(2)
    enquiry_url = worker.url
    worker.screenshot(path=str(SHOTS / "enquiry.png"), full_page=True)

    police = log_in(browser, base_url, "pc", "Police: information requests from the MASH")
    expect(police.locator("#portal-requests tbody tr")).to_have_count(1)  # health's request is not listed
    police.locator("#portal-requests a").click()
    expect(police.locator(".subject")).to_contain_text("Ruby")
    assert "DOMESTIC_ABUSE" not in police.content() and "CONFIDENTIAL-CLINICAL-DETAIL" not in police.content()
    police.locator("#acknowledge").click()
    police.get_by_label("nil return: searched, nothing held").check()
    police.get_by_label("Systems searched (one a line)").fill("Niche RMS\nPNC")
    police.screenshot(path=str(SHOTS / "portal-request.png"), full_page=True)
    police.locator("#send-answer").click()
    expect(police.locator("#portal-requests td.state")).to_have_text("nil return: searched, nothing held")
    assert police.request.get(f"/alerts/{ruby}").status == 403
    assert police.request.get("/api/alerts").status == 403

    nurse = log_in(browser, base_url, "nurse", "Health: information requests from the MASH")
    expect(nurse.locator("#portal-requests tbody tr")).to_have_count(1)
    assert "Niche RMS" not in nurse.content()

    worker.goto(enquiry_url)
    expect(worker.locator("tr[data-agency=police] td.state")).to_have_text("nil return: searched, nothing held")
    worker.get_by_label("4: Specialist (acute needs, child protection or statutory intervention)").check()
    worker.get_by_label("Strategy discussion (Children Act 1989 s47)").check()
    worker.get_by_label("3B Domestic abuse - concerns about the parent or carer").check()
    worker.get_by_label("Rationale: what was weighed, from whom").fill("Police DA history; injury pattern")
    worker.locator("#close-enquiry").click()
    expect(worker.locator("#enquiry-status")).to_have_text("closed")
    expect(worker.locator("#decision")).to_contain_text("3B Domestic abuse")
