"""WCAG 2.2 AA in the triage app, in a real headless browser (Debian's Chromium, driven by
Playwright): every page, for every role that can see it, with no axe-core violation of a WCAG 2.0,
2.1 or 2.2 A or AA rule; a worker's whole task done by keyboard alone; a visible focus ring with
contrast; and the RAG rating always said in words, never by colour alone.

The pages are checked with something on them: a held possible match, an enquiry answered and
closed, another open with its requests waiting, a decided alert, a form refused with its error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from mash.models import InformationRequestRecord
from services.enquiry.catalogue import load_catalogue
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage_app import session_store
from services.triage_app.accounts import create_user
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from services.triage_store.store import TriageStore
from tests.integration.test_enquiry_browser import log_in
from tests.integration.test_triage_app import _held_match
from tests.integration.test_triage_browser import browser  # noqa: F401 - the module's browser fixture
from tests.support.browser import (
    Api,
    axe_violations,
    contrast,
    described,
    focus_ring,
    focused,
    send_enquiry,
    tab_to,
)
from tests.support.serving import serving
from tests.support.triage_data import NOW, PASSWORD, alert, shared

HOMES = {"alice": "Triage queue", "pat": "Triage queue", "hana": "Triage queue", "mo": "Triage queue",
         "aud": "Audit", "pc": "Police: information requests", "nurse": "Health: information requests"}
RATINGS = ("RED", "AMBER", "GREEN")


def _app(sessions: sessionmaker[Session]) -> Any:
    return create_app(AppConfig(sessions, load_scoring(), "browser-secret-" * 3, clock=lambda: NOW,
                                refresh_seconds=1, profile=load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")))


@pytest.fixture
def base_url(sessions: sessionmaker[Session], data: Any) -> Iterator[str]:
    """The app with every kind of user: the triage staff of `data`, and a police and a health
    partner-agency user. The queue refreshes every second, as a keyboard user tabs through it."""
    agencies = tuple(load_catalogue().agencies)
    with sessions.begin() as session:
        create_user(session, "pc", "PC Jones", "agency_user", None, PASSWORD, NOW, "police", agencies)
        create_user(session, "nurse", "Nurse Patel", "agency_user", None, PASSWORD, NOW, "health", agencies)
    with serving(_app(sessions)) as url:
        yield url


@pytest.fixture
def scene(browser: Browser, base_url: str, data: Any, sessions: sessionmaker[Session]) -> dict[str, str]:  # noqa: F811
    """Something on every page. Ruby (RED): her enquiry answered by police (nil return) and closed
    by the manager, the alert unclaimed again. Sam (AMBER): an enquiry open, its police and health
    requests waiting, the alert assigned to alice. Tia (GREEN): decided by alice. A possible match
    held for review. (A worker sees only alerts unclaimed or claimed by them.)"""
    ruby, sam, tia = (data[child]["alert_id"] for child in ("ruby", "sam", "tia"))
    catalogue = load_catalogue()
    strategy = next(k for k, v in catalogue.outcomes.items() if v.startswith("Strategy discussion"))
    alice, mo, pc = (Api(browser, base_url, name) for name in ("alice", "mo", "pc"))
    alice.post(f"/api/alerts/{ruby}/claim")
    first = alice.post(f"/api/alerts/{ruby}/enquiry", {
        "purpose": "Is Ruby safe at home?", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": "GIVEN",
        "agencies": ["police", "health"],
        "adults": [{"relation": "parent", "given_name": "Grace", "family_name": "Okafor",
                    "date_of_birth": "1988-04-01", "postcode": "LS6 1AB"}]})["enquiry_id"]
    mo.post(f"/api/alerts/{sam}/claim")
    second = mo.post(f"/api/alerts/{sam}/enquiry", {
        "purpose": "Missing education and a referral: what is known?", "lawful_basis": "CHILDREN_ACT_1989_S17",
        "consent": "GIVEN", "agencies": ["police", "health"]})["enquiry_id"]
    mo.post(f"/api/alerts/{sam}/assign", {"to": "alice"})
    with sessions() as session:
        sent = {(r.enquiry_id, r.agency): r.request_id for r in session.scalars(select(InformationRequestRecord))}
    pc.post(f"/api/portal/requests/{sent[first, 'police']}/acknowledge")
    pc.post(f"/api/portal/requests/{sent[first, 'police']}/answer", {
        "answer": "NIL", "searched_on": NOW.date().isoformat(), "systems_searched": ["Niche RMS", "PNC"]})
    mo.post(f"/api/enquiries/{first}/decision", {"level": 4, "outcome": strategy, "factors": ["3B"],
                                                "rationale": "Police DA history; injury pattern"})
    alice.post(f"/api/alerts/{ruby}/unclaim")
    alice.post(f"/api/alerts/{tia}/claim")
    alice.post(f"/api/alerts/{tia}/decision", {"outcome": "EARLY_HELP", "rationale": "School is engaged.",
                                              "alert_revision": 1})
    for api in (alice, mo, pc):
        api.close()
    return {"ruby": ruby, "sam": sam, "tia": tia, "first": first, "second": second, "match": _held_match(sessions),
            "police_event": data["ruby"]["police"]["event_id"],
            **{f"{agency}_{n}": sent[enquiry, agency] for agency in ("police", "health")
               for n, enquiry in (("first", first), ("second", second))}}


def pages_of(username: str, s: dict[str, str]) -> list[tuple[str, str]]:
    """The pages each user can see, in the states the scene put them in: (path, something the page
    shows in that state)."""
    worker = [("/", "tr.alert"), (f"/alerts/{s['ruby']}", "#claim"), (f"/enquiries/{s['first']}", "#decision"),
              ("/matches", "h1")]
    theirs = [(f"/alerts/{s['sam']}", "#decide"), (f"/alerts/{s['tia']}", ".decision-record"),
              (f"/enquiries/{s['second']}", "#close-enquiry"), (f"/alerts/{s['sam']}/enquiry", "#send-requests")]
    audit = [("/audit", "table.audit td"), (f"/audit/events/{s['police_event']}", "pre.explain")]
    return {
        "alice": [*worker, *theirs, ("/matches", "section.match")],
        "pat": [*worker, (f"/alerts/{s['ruby']}", "#timeline li.withheld")],  # the health event is withheld
        "hana": worker,
        "mo": [*worker, *theirs, ("/matches", "section.match"), ("/enquiries", "section.board-agency"), *audit,
               (f"/alerts/{s['ruby']}", "#assign")],
        "aud": audit,
        "pc": [("/portal", "#portal-requests"), (f"/portal/requests/{s['police_first']}", "#answered"),
               (f"/portal/requests/{s['police_second']}", "#acknowledge")],
        "nurse": [("/portal", "#portal-requests"), (f"/portal/requests/{s['health_first']}", "#closed"),
                  (f"/portal/requests/{s['health_second']}", "#send-answer")],
    }[username]


def check(page: Page, where: str, found: list[str]) -> None:
    violations = axe_violations(page)
    if violations:
        found.append(described(where, violations))


def assert_none(found: list[str]) -> None:
    assert not found, "WCAG 2.2 A/AA violations (axe-core):\n" + "\n".join(found)


# -- 1 and 4: no axe violation (labels among them) on any page, for any role ------------------------------

@pytest.mark.parametrize("username", list(HOMES))
def test_every_page_a_role_sees_has_no_wcag_violation(browser: Browser, base_url: str,  # noqa: F811
                                                      scene: dict[str, str], username: str) -> None:
    page = log_in(browser, base_url, username, HOMES[username])
    found: list[str] = []
    for path, shows in pages_of(username, scene):
        response = page.goto(path)
        assert response is not None and response.status == 200, f"{username} {path}: {response and response.status}"
        expect(page.locator(shows).first).to_be_attached()
        check(page, f"{username} {path}", found)
    assert_none(found)


def test_the_checker_finds_and_describes_a_violation(browser: Browser, base_url: str) -> None:  # noqa: F811
    """The check is live under the app's Content Security Policy: an unlabelled field and grey text
    put in the login page are reported with each rule's id, impact and help, and the nodes' targets."""
    page = browser.new_context(base_url=base_url).new_page()
    page.goto("/")
    page.evaluate("""() => {
      const form = document.querySelector("form");
      form.insertAdjacentHTML("beforeend", '<input id="unlabelled"><p id="faint">faint</p>');
      document.getElementById("faint").style.color = "#bbb";  // the CSP refuses a style attribute
    }""")
    violations = axe_violations(page)
    report = described("login, spoiled", violations)
    assert {v["id"] for v in violations} == {"label", "color-contrast"}, report
    assert "label (critical): Form elements must have labels" in report and "#unlabelled" in report, report
    assert "color-contrast (serious)" in report and "#faint" in report, report


def test_the_login_page_and_its_refusal_have_no_wcag_violation(browser: Browser, base_url: str) -> None:  # noqa: F811
    page = browser.new_context(base_url=base_url).new_page()
    found: list[str] = []
    page.goto("/")
    check(page, "login", found)
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("not the password")
    page.locator("#login").click()
    expect(page.locator(".error")).to_contain_text("Wrong username or password")
    check(page, "login refused", found)
    assert_none(found)


def test_the_database_unavailable_page_has_no_wcag_violation(browser: Browser, tmp_path: Any) -> None:  # noqa: F811
    away = sessionmaker(create_engine(f"sqlite:///{tmp_path / 'no-such-directory' / 'mash.db'}"))
    with serving(_app(away)) as url:
        context = browser.new_context(base_url=url)  # a session cookie: the app looks it up in the database
        context.add_cookies([{"name": session_store.COOKIE, "value": "A" * 43, "url": url}])
        page = context.new_page()
        response = page.goto("/")
        assert response is not None and response.status == 503
        expect(page.locator("h1")).to_have_text("Unavailable just now")
        found: list[str] = []
        check(page, "unavailable", found)
    assert_none(found)


def test_refused_forms_and_a_changed_alert_have_no_wcag_violation(
        browser: Browser, base_url: str, data: Any, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    """An enquiry form refused (422, its error and what was typed shown again), and a decision on
    an alert the hub revised meanwhile (409, the new event marked)."""
    ruby = {k: v for k, v in data["ruby"].items() if k not in ("police", "health")}  # the alert alone
    page = log_in(browser, base_url, "alice", "Triage queue")
    found: list[str] = []
    send_enquiry(page, ruby["alert_id"], "not sought: seeking it would place the child at risk", ("Police",))
    expect(page.locator("#error")).to_contain_text("manager")
    check(page, "enquiry refused (422)", found)

    page.goto(f"/alerts/{ruby['alert_id']}")
    late = shared(ruby["person_id"], "police.public_protection_notification", "POLICE", NOW - timedelta(minutes=2),
                  {"payload": {"risk_grading": "HIGH"}}, {"mash_social_worker": ["payload.risk_grading"]})
    TriageStore(sessions).apply([{**ruby, "revision": 2, "event_ids": [*ruby["event_ids"], late["event_id"]],
                                  "joined": [1] * len(ruby["event_ids"]) + [2]}], [], [late])
    page.get_by_label("no further action").check()
    page.locator("#rationale").fill("Attendance only.")
    page.locator("#decide").click()
    expect(page.locator(".notice")).to_contain_text("it is now revision 2")
    check(page, "decision refused (409)", found)
    assert_none(found)


# -- 2: the worker's task by keyboard alone ------------------------------------------------------------------

def test_a_worker_logs_in_opens_the_top_alert_claims_it_and_decides_by_keyboard_alone(
        browser: Browser, base_url: str, data: Any) -> None:  # noqa: F811
    """Tab, Shift+Tab, Enter, Space and typing only: no click, no fill, no element focused by the test.
    The queue refreshes every second meanwhile: the focus must stay on the row it was on."""
    page = browser.new_context(base_url=base_url).new_page()
    page.goto("/")
    path = tab_to(page, "input[name=username]")
    page.keyboard.type("alice")
    path += tab_to(page, "input[name=password]")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Triage queue")

    top = page.locator("tr.alert").first
    expect(top).to_contain_text("RED")
    expect(top).to_contain_text("Ruby Okafor")
    link = f'tr[data-alert-id="{top.get_attribute("data-alert-id")}"] a'
    path += tab_to(page, link)
    page.wait_for_timeout(2500)  # two refreshes of the rows: the focus is kept on the link
    assert page.evaluate("s => document.activeElement.matches(s)", link), \
        f"the queue's refresh took the focus from the row: it is on {focused(page)!r}"
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Ruby Okafor")

    path += tab_to(page, "#claim")
    page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_have_text("claimed")
    expect(page.locator("#claimed-by")).to_have_text("alice")
    path += tab_to(page, "#decide")  # past the form, then back: Shift+Tab works as well
    path += tab_to(page, "#rationale", key="Shift+Tab")
    path += tab_to(page, "input[name=outcome]", key="Shift+Tab")
    page.keyboard.press("Space")
    assert page.evaluate("() => document.activeElement.checked && document.activeElement.value") \
        == "STRATEGY_DISCUSSION_S47"
    path += tab_to(page, "#rationale")
    page.keyboard.type("Police DA history and an injury pattern: strategy discussion today.")
    path += tab_to(page, "#decide")
    page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_contain_text("decision recorded")
    expect(page.locator(".decision-record")).to_contain_text("strategy discussion")
    assert "" not in path, f"the focus fell to the page's body on the way: {path}"


def test_the_queues_live_updates_can_be_paused_and_resumed_by_keyboard(
        browser: Browser, base_url: str, data: Any, sessions: sessionmaker[Session]) -> None:  # noqa: F811
    """WCAG 2.2.2 (pause, stop, hide): the queue updates itself, and a button stops and restarts it."""
    page = log_in(browser, base_url, "mo", "Triage queue")
    expect(page.locator("tr.alert")).to_have_count(3)
    tab_to(page, "#queue-pause")
    page.keyboard.press("Space")
    expect(page.locator("#queue-pause")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#queue-live")).to_contain_text("paused")
    add_late_red_alert(sessions, "00000000-0000-4000-8000-00000000cafe")
    page.wait_for_timeout(2500)  # two ticks of the refresh, paused
    expect(page.locator("tr.alert")).to_have_count(3)
    page.keyboard.press("Enter")
    expect(page.locator("#queue-pause")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("tr.alert")).to_have_count(4)


def test_a_skip_link_is_the_first_stop_and_takes_the_keyboard_to_the_main_content(
        browser: Browser, base_url: str, data: Any) -> None:  # noqa: F811
    page = log_in(browser, base_url, "alice", "Triage queue")
    page.goto(f"/alerts/{data['ruby']['alert_id']}")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    box = skip.bounding_box()
    assert box is not None and box["width"] > 20 and box["height"] > 10, f"the focused skip link is hidden: {box}"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("() => !!document.activeElement.closest('main')"), \
        f"after the skip link, Tab went to {focused(page)!r}, not into the main content"


# -- 3: a visible focus ring, with contrast -----------------------------------------------------------------

@pytest.mark.parametrize("username,where", [(None, "/login"), ("alice", "/"), ("alice", "alert"),
                                            ("nurse", "portal request"), ("mo", "/enquiries")])
def test_every_control_shows_a_visible_focus_ring_with_contrast(
        browser: Browser, base_url: str, scene: dict[str, str], username: str | None,  # noqa: F811
        where: str) -> None:
    """Tab through the page (the dark header bar, then the main content): each stop shows an
    outline of at least 2px whose colour has 3:1 contrast with what is around it (WCAG 2.4.7, 1.4.11)."""
    if username is None:
        page = browser.new_context(base_url=base_url).new_page()
    else:
        page = log_in(browser, base_url, username, HOMES[username])
    response = page.goto({"alert": f"/alerts/{scene['sam']}",  # claimed by alice: every action's control
                          "portal request": f"/portal/requests/{scene['health_second']}"}.get(where, where))
    assert response is not None and response.ok
    seen: set[str] = set()
    weak: list[str] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        stop = focused(page)
        if not stop or stop in seen:  # past the last control, or round to the first again
            break
        seen.add(stop)
        ring = focus_ring(page)
        ratio = contrast(ring["color"], ring["around"])
        if not ring["focusVisible"] or ring["style"] == "none" or ring["width"] < 2 or ratio < 3:
            weak.append(f"{stop}: outline {ring['style']} {ring['width']}px {ring['color']} on {ring['around']} "
                        f"({ratio:.1f}:1), :focus-visible {ring['focusVisible']}")
    assert len(seen) >= 4, f"few controls reached by Tab: {seen}"
    assert not weak, "focus not visible enough:\n" + "\n".join(weak)


# -- 5: the rating in words, not by colour alone ------------------------------------------------------------

RATED = """() => [...document.querySelectorAll('[class*="rag-"]')].map(e => ({
  classes: e.className, text: e.innerText, visible: e.offsetParent !== null || e.tagName === "TR"}))"""


def ratings_shown(page: Page) -> list[str]:
    """Each element coloured by a rating (a rag-red, rag-amber or rag-green class), checked to say
    the same rating in its text; the ratings found."""
    said = []
    for e in page.evaluate(RATED):
        coloured = [r for r in RATINGS if f"rag-{r.lower()}" in e["classes"].split()]
        assert len(coloured) == 1, e
        assert e["visible"], f"a rating shown by colour is hidden from view: {e}"
        words = [r for r in RATINGS if r in e["text"].split()]
        assert words == coloured, f"{page.url}: an element coloured {coloured[0]} says {e['text']!r}"
        said.append(coloured[0])
    return said


def test_the_rating_is_said_in_words_wherever_it_is_shown(browser: Browser, base_url: str,  # noqa: F811
                                                          scene: dict[str, str]) -> None:
    """The queue, an alert, the enquiry, the board and the portal: every element coloured by a
    rating says RED, AMBER or GREEN; and the clock's state is said too, not only coloured."""
    mo = log_in(browser, base_url, "mo", "Triage queue")
    assert sorted(ratings_shown(mo)) == ["AMBER", "AMBER", "RED", "RED"]  # Ruby and Sam, cell and row
    expect(mo.locator("tr.clock-at_risk td.clock")).to_have_text("at risk")
    expect(mo.locator("tr.clock-breached td.clock")).to_have_text("breached")
    for path, expected in ((f"/alerts/{scene['ruby']}", {"RED"}), (f"/alerts/{scene['sam']}", {"AMBER"}),
                           (f"/alerts/{scene['tia']}", {"GREEN"}), (f"/enquiries/{scene['first']}", {"RED"}),
                           (f"/alerts/{scene['sam']}/enquiry", {"AMBER"}), ("/enquiries", {"AMBER"})):
        mo.goto(path)
        assert set(ratings_shown(mo)) == expected, path
    mo.goto(f"/alerts/{scene['ruby']}")
    expect(mo.locator("dd.clock-at_risk")).to_contain_text("at risk")
    pc = log_in(browser, base_url, "pc", HOMES["pc"])
    assert sorted(ratings_shown(pc)) == ["AMBER", "RED"]
    for request, rating in ((scene["police_first"], "RED"), (scene["police_second"], "AMBER")):
        pc.goto(f"/portal/requests/{request}")
        assert ratings_shown(pc) == [rating]


def add_late_red_alert(sessions: sessionmaker[Session], child: str) -> None:
    """A RED alert arriving while the queue is open (Zed Late, seen by the manager by name)."""
    event = shared(child, "police.public_protection_notification", "POLICE", NOW - timedelta(minutes=5),
                   {"subject": {"given_name": "Zed", "family_name": "Late"}},
                   {"triage_manager": ["subject.given_name"]})
    TriageStore(sessions).apply([alert(child, "RED", [event], NOW, NOW + timedelta(minutes=5), NOW - timedelta(1),
                                       80, ["police-high-risk"], ["police graded the incident high risk (+80)"])],
                                [], [event])
