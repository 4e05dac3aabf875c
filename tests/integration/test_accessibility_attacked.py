"""Attacks on the triage app's WCAG 2.2 AA claim: the pages and states test_accessibility.py does
not visit (refusals a browser is given, every state of the forms, nothing to show), the page at
320 CSS pixels wide, hostile and very long text, the queue's live updates, and the session's time
limit. In the same headless Chromium, with the same axe-core rules."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, ViewportSize, expect
from sqlalchemy.orm import Session, sessionmaker

from services.enquiry.catalogue import load_catalogue
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage_app.accounts import create_user
from services.triage_app.session_store import Timeouts
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from services.triage_store.store import TriageStore
from tests.integration.test_accessibility import (  # noqa: F401 - the fixtures, by name
    HOMES,
    _app,
    add_late_red_alert,
    assert_none,
    base_url,
    check,
    scene,
)
from tests.integration.test_enquiry_browser import log_in
from tests.integration.test_triage_browser import browser  # noqa: F401 - the module's browser fixture
from tests.support.browser import Api, axe_violations
from tests.support.serving import serving
from tests.support.triage_data import NOW, PASSWORD, add_users, alert, shared

NARROW: ViewportSize = {"width": 320, "height": 256}  # 1280 by 1024 at 400% zoom (WCAG 1.4.10)

# Every element outside a data table (exempt from 1.4.10: it needs two dimensions) whose box
# reaches past the right edge of the viewport, or whose own content spills out of its box (text too
# long to wrap): either makes the page scroll sideways. Scroll containers (a textarea) are left alone.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  return [...document.querySelectorAll("body *")]
    .filter(e => !e.closest("table") && !e.querySelector("table") && e.getClientRects().length)
    .filter(e => !e.matches(".skip-link:not(:focus)"))  // off-screen until focused, by design
    .filter(e => {
      const r = e.getBoundingClientRect();
      const spills = e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1
        && getComputedStyle(e).overflowX === "visible";
      return r.right > width + 1 || r.left < -1 || spills;
    })
    .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "")
              + " right=" + Math.round(e.getBoundingClientRect().right) + " scrollWidth=" + e.scrollWidth)
    .slice(0, 8);
}"""


def overflowing(page: Page) -> list[str]:
    found: list[str] = page.evaluate(OVERFLOWING)
    return found


# -- refusals a browser is given: pages, not JSON ---------------------------------------------------------

def _refusal_page(page: Page, where: str, status: int, found: list[str]) -> None:
    """The page a refusal put in the browser: an HTML page in English with a title, a heading, the
    reason, a way back, and no axe violation."""
    assert page.evaluate("document.contentType") == "text/html", f"{where}: {page.evaluate('document.contentType')}"
    assert page.evaluate("document.documentElement.lang") == "en-GB", where
    assert page.title().endswith("· MASH triage") and len(page.title()) > len("· MASH triage"), where
    expect(page.locator("main h1")).to_be_visible()
    expect(page.locator("main #error")).not_to_be_empty()
    expect(page.locator("main a[href='/']")).to_be_visible()
    check(page, f"{where} ({status})", found)


def test_a_refused_or_missing_page_is_a_page_with_a_title_a_language_and_a_way_back(
        browser: Browser, base_url: str, scene: dict[str, str]) -> None:  # noqa: F811
    """WCAG 2.4.2 and 3.1.1: a worker following a link to the audit trail (403), an alert or
    enquiry not on their queue (404), a mistyped address (404), and a partner-agency user
    at a child's alert (403) were shown FastAPI's bare JSON: no <title>, no lang, no way back."""
    found: list[str] = []
    alice = log_in(browser, base_url, "alice", HOMES["alice"])
    for path, status in (("/audit", 403), (f"/alerts/{uuid.uuid4()}", 404), (f"/enquiries/{uuid.uuid4()}", 404),
                         ("/alerts/not-an-alert", 404), ("/no-such-page", 404), ("/portal", 403)):
        response = alice.goto(path)
        assert response is not None and response.status == status, f"{path}: {response and response.status}"
        _refusal_page(alice, f"alice {path}", status, found)
    pc = log_in(browser, base_url, "pc", HOMES["pc"])
    response = pc.goto(f"/alerts/{scene['ruby']}")
    assert response is not None and response.status == 403
    _refusal_page(pc, "pc at an alert", 403, found)
    expect(pc.locator("main #error")).to_contain_text("sees no alert")  # the reason, in words
    assert_none(found)
    # the API, and anything not asking for a page, is answered in JSON as before
    api = Api(browser, base_url, "alice")
    answer = api.request.get(f"/api/alerts/{uuid.uuid4()}")
    assert answer.status == 404 and answer.headers["content-type"] == "application/json", answer.headers
    assert api.request.get("/audit").headers["content-type"] == "application/json"  # Accept: */*
    api.close()


def test_a_claim_another_worker_made_first_is_refused_on_a_page(
        browser: Browser, base_url: str, scene: dict[str, str]) -> None:  # noqa: F811
    """A form posted from a page the app has since overtaken (another worker claimed the alert, so
    it left alice's queue: 404): the browser is given a page saying why, not JSON."""
    alice = log_in(browser, base_url, "alice", HOMES["alice"])
    alice.goto(f"/alerts/{scene['ruby']}")
    hana = Api(browser, base_url, "hana")
    hana.post(f"/api/alerts/{scene['ruby']}/claim")
    hana.close()
    with alice.expect_response(lambda r: r.url.endswith("/claim")) as answered:
        alice.locator("#claim").click()
    assert answered.value.status == 404
    found: list[str] = []
    _refusal_page(alice, "claim overtaken", 404, found)
    expect(alice.locator("main #error")).to_contain_text("no such alert on your queue")
    assert_none(found)


def test_a_refused_answer_in_the_portal_and_a_refused_threshold_decision_have_no_wcag_violation(
        browser: Browser, base_url: str, scene: dict[str, str]) -> None:  # noqa: F811
    """The portal's answer form and the enquiry's decision form, refused by the server (422) with
    their error (the browser's own checks switched off, as an older or assistive browser may not
    make them)."""
    found: list[str] = []
    nurse = log_in(browser, base_url, "nurse", HOMES["nurse"])
    nurse.goto(f"/portal/requests/{scene['health_second']}")
    nurse.evaluate("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)")
    nurse.locator("#systems_searched").fill("")
    nurse.locator("#send-answer").click()
    expect(nurse.locator("#error")).to_be_visible()
    assert nurse.url.endswith(f"/portal/requests/{scene['health_second']}/answer"), nurse.url
    check(nurse, "portal answer refused (422)", found)

    mo = log_in(browser, base_url, "mo", HOMES["mo"])
    mo.goto(f"/enquiries/{scene['second']}")
    mo.evaluate("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)")
    mo.locator("#enquiry-rationale").fill("Nothing chosen.")
    mo.locator("#close-enquiry").click()
    expect(mo.locator("#error")).to_be_visible()
    check(mo, "threshold decision refused (422)", found)
    assert_none(found)


# -- nothing to show ----------------------------------------------------------------------------------------

@pytest.fixture
def empty_url(sessions: sessionmaker[Session]) -> Iterator[str]:
    """The app with its users and nothing else: no alert, match, enquiry, request or decision."""
    add_users(sessions)
    agencies = tuple(load_catalogue().agencies)
    with sessions.begin() as session:
        create_user(session, "pc", "PC Jones", "agency_user", None, PASSWORD, NOW, "police", agencies)
    with serving(_app(sessions)) as url:
        yield url


def test_every_page_with_nothing_to_show_has_no_wcag_violation(browser: Browser, empty_url: str) -> None:  # noqa: F811
    found: list[str] = []
    for username, paths, says in (("alice", ("/", "/matches"), ("No open alerts", "No possible matches")),
                                  ("mo", ("/enquiries", "/audit"), ("No request is waiting", "No decisions yet")),
                                  ("pc", ("/portal",), ("No request for your agency",))):
        page = log_in(browser, empty_url, username, HOMES[username])
        for path, text in zip(paths, says, strict=True):
            page.goto(path)
            expect(page.locator("main")).to_contain_text(text)
            check(page, f"{username} {path}, empty", found)
    assert_none(found)


def test_the_log_in_fields_say_what_they_hold_for_autofill(browser: Browser, empty_url: str) -> None:  # noqa: F811
    """WCAG 1.3.5 (and 3.3.7's password managers): the user's own username and password are marked."""
    page = browser.new_context(base_url=empty_url).new_page()
    page.goto("/login")
    expect(page.get_by_label("Username")).to_have_attribute("autocomplete", "username")
    expect(page.get_by_label("Password")).to_have_attribute("autocomplete", "current-password")
    expect(page.get_by_label("Password")).to_have_attribute("type", "password")


# -- reflow: 320 CSS pixels wide (WCAG 1.4.10) ---------------------------------------------------------

def test_every_page_reflows_at_320_css_pixels_without_scrolling_sideways(
        browser: Browser, base_url: str, scene: dict[str, str]) -> None:  # noqa: F811
    """Outside the data tables, nothing is wider than a 320 px viewport: before, the chronology's
    facts (a max-content label column beside an unbreakable value) and the enquiry form's lawful
    basis select (its longest option, 948 px) pushed the page sideways."""
    wide: list[str] = []
    for username in ("mo", "nurse"):
        page = log_in(browser, base_url, username, HOMES[username])
        page.set_viewport_size(NARROW)
        paths = ([f"/alerts/{scene['sam']}", f"/alerts/{scene['tia']}", f"/alerts/{scene['ruby']}",
                  f"/enquiries/{scene['first']}", f"/enquiries/{scene['second']}", f"/alerts/{scene['sam']}/enquiry",
                  "/", "/matches", "/enquiries", "/audit", f"/audit/events/{scene['police_event']}"]
                 if username == "mo" else
                 ["/portal", f"/portal/requests/{scene['health_first']}", f"/portal/requests/{scene['health_second']}"])
        for path in paths:
            response = page.goto(path)
            assert response is not None and response.ok, path
            if found := overflowing(page):
                wide.append(f"{username} {path}: {found}")
    assert not wide, "wider than 320 CSS px, outside a data table:\n" + "\n".join(wide)


def test_the_overflow_check_sees_a_page_pushed_sideways(browser: Browser, base_url: str) -> None:  # noqa: F811
    page = browser.new_context(base_url=base_url, viewport=NARROW).new_page()
    page.goto("/login")
    assert overflowing(page) == []
    page.evaluate("""() => {
      const h1 = document.querySelector("h1");
      h1.textContent = "W".repeat(40);
      h1.style.overflowWrap = "normal";  // through the CSSOM: the CSP refuses a style attribute or tag
    }""")
    assert [e for e in overflowing(page) if e.startswith("h1")], overflowing(page)


# -- hostile and very long text ------------------------------------------------------------------------------

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 1">'
LONG_WORD = "Ж" * 3_900  # a rationale of one unbroken word, to the form's limit
RTL = "رُبى أوكافور"
RATIONALE = HOSTILE + " " + LONG_WORD


def test_hostile_long_and_right_to_left_text_is_shown_as_text_and_wraps_at_320_pixels(
        browser: Browser, base_url: str, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    """A child named with markup, 5,000 characters long and in Arabic script, and a decision whose
    rationale is one 3,900-character word: shown as the text it is (nothing runs), and the page
    still reflows at 320 px (the name in the heading, the rationale, the chronology wrap)."""
    child = "00000000-0000-4000-8000-0000000b0a57"
    name = HOSTILE + " " + "N" * 5_000
    event = shared(child, "police.public_protection_notification", "POLICE", NOW - timedelta(minutes=5),
                   {"subject": {"given_name": name, "family_name": RTL}, "summary": HOSTILE + " " + "S" * 2_000},
                   {"mash_social_worker": ["subject.given_name", "subject.family_name", "summary"],
                    "triage_manager": ["subject.given_name", "subject.family_name", "summary"]})
    rated = alert(child, "RED", [event], NOW, NOW + timedelta(hours=2), NOW + timedelta(hours=1), 80,
                  ["police-high-risk"], [HOSTILE + " " + "R" * 3_000])
    TriageStore(sessions).apply([rated], [], [event])
    alice = Api(browser, base_url, "alice")
    alice.post(f"/api/alerts/{rated['alert_id']}/claim")
    alice.post(f"/api/alerts/{rated['alert_id']}/decision", {"outcome": "EARLY_HELP", "rationale": RATIONALE,
                                                             "alert_revision": 1})
    alice.close()

    page = log_in(browser, base_url, "mo", HOMES["mo"])
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    page.set_viewport_size(NARROW)
    wide: list[str] = []
    for path in (f"/alerts/{rated['alert_id']}", "/audit"):
        page.goto(path)
        expect(page.locator("main")).to_contain_text("<script>window.pwned = 1</script>")
        assert page.evaluate("() => window.pwned === undefined && !document.querySelector('main script, main img')"), \
            f"{path}: the hostile text ran"
        if found := overflowing(page):
            wide.append(f"{path}: {found}")
    page.goto(f"/alerts/{rated['alert_id']}")
    expect(page.locator("main h1")).to_contain_text(RTL)
    expect(page.locator(".decision-record .rationale")).to_have_text(RATIONALE)
    assert not dialogs and not wide, f"dialogs {dialogs}; wider than 320 px:\n" + "\n".join(wide)
    check(page, "hostile alert", found := [])
    assert_none(found)


# -- the queue's live updates: a status message (WCAG 4.1.3) --------------------------------------------------

def test_a_new_alert_arriving_in_the_live_queue_is_announced_as_a_status_message(
        browser: Browser, base_url: str, data: Any, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    """The rows refresh themselves, but a screen-reader user heard nothing when a RED alert arrived:
    the counts live in a table row that is replaced, not in a live region. The queue's role=status
    region now says the new counts when they change (and only then)."""
    page = log_in(browser, base_url, "mo", HOMES["mo"])
    expect(page.locator("tr.alert")).to_have_count(3)
    live = page.locator("[role=status], [aria-live=polite], [aria-live=assertive]")
    expect(live).to_have_count(1)
    before = live.inner_text()
    assert "open alerts" not in before, before
    add_late_red_alert(sessions, "00000000-0000-4000-8000-00000000beef")
    expect(page.locator("tr.alert")).to_have_count(4)
    expect(live).to_contain_text("4 open alerts")
    expect(live).to_contain_text(page.locator("#queue-summary").inner_text())


# -- the session's time limit (WCAG 2.2.1) -------------------------------------------------------------------

IDLE = timedelta(seconds=25)


@pytest.fixture
def short_session_url(sessions: sessionmaker[Session], data: Any) -> Iterator[str]:
    """The app with a 25-second idle limit (30 minutes in production), on a clock that runs."""
    started = datetime.now(NOW.tzinfo)
    config = AppConfig(sessions, load_scoring(), "browser-secret-" * 3, clock=lambda: NOW + (datetime.now(NOW.tzinfo)
                                                                                           - started),
                       refresh_seconds=1, timeouts=Timeouts(idle=IDLE),
                       profile=load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml"))
    with serving(create_app(config)) as url:
        yield url


def test_the_user_is_warned_before_the_session_idles_out_and_can_extend_it(
        browser: Browser, short_session_url: str, data: Any) -> None:  # noqa: F811
    page = _writing_a_rationale(browser, short_session_url, data, "A long rationale, written over more than the limit.")
    warning = page.locator("[role=alertdialog], [role=alert]").filter(has_text="logged out in")
    logged_in_at = time.monotonic()
    while time.monotonic() - logged_in_at < IDLE.total_seconds() + 3:  # past when it would have ended
        expect(warning).to_be_visible(timeout=IDLE.total_seconds() * 1000)
        seconds = int(re.search(r"logged out in (\d+) seconds", warning.inner_text())[1])  # type: ignore[index]
        assert seconds >= 15, "warned too late to act on it"
        expect(warning.get_by_role("button", name="Stay logged in")).to_be_focused()
        warning.get_by_role("button", name="Stay logged in").press("Enter")
        expect(warning).to_be_hidden()
        expect(page.locator("#rationale")).to_be_focused()  # focus goes back to where the user was
    assert page.locator("#rationale").input_value().startswith("A long rationale")
    page.reload()  # the server kept the session: the page, not the log-in form
    expect(page.locator("#claim, #rationale").first).to_be_visible()
    expect(page).not_to_have_title(re.compile("Log in", re.I))


def test_a_session_left_to_idle_out_says_so_and_keeps_what_was_typed(
        browser: Browser, short_session_url: str, data: Any) -> None:  # noqa: F811
    page = _writing_a_rationale(browser, short_session_url, data, "Written and never sent.")
    ended = page.get_by_role("alertdialog").filter(has_text="You have been logged out")
    expect(ended).to_be_visible(timeout=(IDLE.total_seconds() + 5) * 1000)
    expect(ended.get_by_role("link", name="Log in again")).to_be_visible()
    expect(ended.get_by_role("button")).to_be_hidden()
    assert page.locator("#rationale").input_value() == "Written and never sent."
    assert axe_violations(page) == []


def _writing_a_rationale(in_browser: Browser, url: str, data: Any, rationale: str) -> Page:
    """Alice, logged in, has claimed Ruby's alert and is writing her decision's rationale."""
    page = log_in(in_browser, url, "alice", HOMES["alice"])
    page.goto(f"/alerts/{data['ruby']['alert_id']}")
    page.locator("#claim").click()
    page.locator("#rationale").fill(rationale)
    return page
