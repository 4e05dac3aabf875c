"""`mash demo`'s MASH enquiry, end to end over the triage app's API and the bus: a worker opens an
enquiry on an alert with requests to four agencies; the education connector answers from its school
database (`mash connector answer`), a police user answers in the partner portal (information held),
a health user sends a nil return, adults' social care lets its request go overdue (the app escalates
it); the worker records the threshold decision, and the referring agency is told the outcome.

Driven like a user would, through HTTP and the `mash` command, so the kernel imports neither side.
"""

from __future__ import annotations

import http.cookiejar
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AGENCY_USERS = {"police": "police-portal", "health": "health-portal", "education": "school-portal",
                "adults_social_care": "adults-portal", "childrens_social_care": "childrens-portal"}
ASKED = ["police", "health", "education", "adults_social_care"]
OVERDUE_WAIT_S = 90


class Api:
    """One logged-in user of the app's JSON API."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.token = self.call("POST", "/api/login", {"username": username, "password": password})["csrf_token"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if getattr(self, "token", None):
            headers["X-CSRF-Token"] = self.token
        request = urllib.request.Request(self.url + path, method=method, headers=headers,
                                         data=json.dumps(body).encode() if body is not None else None)
        try:
            with self.opener.open(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise DemoRefused(exc.code, exc.read().decode("utf-8", "replace")[:300]) from None


class DemoRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


def add_agency_users(env: dict[str, str]) -> dict[str, str]:
    """One portal account per agency the demo asks, with a password made for this run."""
    passwords = {}
    for agency, username in AGENCY_USERS.items():
        password = secrets.token_urlsafe(12)
        subprocess.run([sys.executable, "-m", "mash.cli", "user", "add", username, "--role", "agency_user",
                        "--agency", agency, "--password-stdin", "--name", f"Demo {agency} MASH lead"],
                       env=env, input=password + "\n", text=True, check=True, capture_output=True, timeout=60)
        passwords[agency] = password
    return passwords


def run_enquiry(url: str, users: dict[str, str], agency_passwords: dict[str, str], env: dict[str, str],
                log_dir: Path) -> bool:
    """The enquiry, step by step, each printed; True if every step did what it should."""
    print("\nMASH enquiry (requests to partner agencies, their returns, the decision, the referrer told):")
    worker = Api(url, "worker", users["worker"])
    manager = Api(url, "manager", users["manager"])
    opened = _open_on_some_alert(worker, manager)
    if opened is None:
        return _line(False, "no alert's child could be identified to all four agencies by the sharing policy")
    alert_id, enquiry = opened
    ok = _line(True, f"enquiry {enquiry['enquiry_id'][:8]} opened on alert {alert_id[:8]}: requests sent to "
                     f"{', '.join(ASKED)} (mash.requests.<agency>.v1)")
    answered = subprocess.run([sys.executable, "-m", "mash.cli", "connector", "answer", "education", "--until-idle"],
                              env=env, capture_output=True, text=True, timeout=180)
    (log_dir / "answer-education.log").write_text(answered.stdout + answered.stderr)
    police = Api(url, AGENCY_USERS["police"], agency_passwords["police"])
    health = Api(url, AGENCY_USERS["health"], agency_passwords["health"])
    today = datetime.now(UTC).date().isoformat()
    for portal, answer in ((police, {"answer": "HELD", "answers": {"domestic_abuse": "Two domestic incidents at the "
                                                                   "address this year (demo text)"},
                                     "searched_on": today, "systems_searched": ["Niche RMS", "PNC"]}),
                           (health, {"answer": "NIL", "searched_on": today, "systems_searched": ["SystmOne"]})):
        for request in portal.call("GET", "/api/portal/requests")["requests"]:
            if request["state"] not in ("HELD", "NIL", "DECLINED", "ENQUIRY_CLOSED"):
                portal.call("POST", f"/api/portal/requests/{request['request_id']}/acknowledge", {})
                portal.call("POST", f"/api/portal/requests/{request['request_id']}/answer", answer)
    states = _wait_for_states(worker, enquiry["enquiry_id"])
    ok = _line(states.get("education") in ("HELD", "NIL"),
               f"education answered by its connector from the school database: {states.get('education')}") and ok
    ok = _line(states.get("police") == "HELD", f"police answered in the partner portal: {states.get('police')}") and ok
    ok = _line(states.get("health") == "NIL", f"health sent a nil return: {states.get('health')}") and ok
    ok = _line(states.get("adults_social_care") == "OVERDUE, ESCALATED",
               f"adults' social care did not answer: {states.get('adults_social_care')} (reminded when at risk; the "
               "managers told, on the requests board and by MashInformationRequestsOverdue)") and ok
    worker.call("POST", f"/api/enquiries/{enquiry['enquiry_id']}/decision", {
        "level": 3, "outcome": "S17_ASSESSMENT", "factors": ["3B"],
        "rationale": "Demo: police hold two domestic incidents; health nil return; school as returned."})
    ok = _line(True, "decision recorded: level 3, child and family assessment (s17), factor 3B "
                     "(on mash.decisions.v1, sealed in the audit trail)") and ok
    return _referrer_told(url, worker, enquiry["enquiry_id"], agency_passwords) and ok


def _open_on_some_alert(worker: Api, manager: Api) -> tuple[str, dict[str, Any]] | None:
    for alert in worker.call("GET", "/api/alerts?limit=100")["alerts"]:
        alert_id = alert["alert_id"]
        try:
            worker.call("POST", f"/api/alerts/{alert_id}/claim", {})
            return alert_id, worker.call("POST", f"/api/alerts/{alert_id}/enquiry", {
                "purpose": "Demo: what does each agency hold about the child and household?",
                "lawful_basis": "CHILDREN_ACT_2004_S11", "consent": "GIVEN", "agencies": ASKED})
        except DemoRefused as exc:
            if exc.status != 422:
                raise
            manager.call("POST", f"/api/alerts/{alert_id}/unclaim", {})
    return None


def _wait_for_states(worker: Api, enquiry_id: str) -> dict[str, str]:
    """Until education's connector answer is read and adults' social care's request falls overdue."""
    deadline = time.monotonic() + OVERDUE_WAIT_S
    while True:
        requests = {r["agency"]: r for r in worker.call("GET", f"/api/enquiries/{enquiry_id}")["requests"]}
        states = {agency: r["state"] for agency, r in requests.items()}
        if states.get("adults_social_care") == "OVERDUE" and requests["adults_social_care"]["escalated_at"]:
            states["adults_social_care"] = "OVERDUE, ESCALATED"
        settled = states.get("education") in ("HELD", "NIL", "DECLINED") and states.get("adults_social_care") == \
            "OVERDUE, ESCALATED"
        if settled or time.monotonic() > deadline:
            return states
        time.sleep(2)


def _referrer_told(url: str, worker: Api, enquiry_id: str, agency_passwords: dict[str, str]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for agency, username in AGENCY_USERS.items():
            portal = Api(url, username, agency_passwords[agency])
            told = [o for o in portal.call("GET", "/api/portal/outcomes")["outcomes"] if o["enquiry_id"] == enquiry_id]
            if told:
                return _line(True, f"{agency} (whose event opened the alert) told the outcome: "
                                   f"{told[0]['outcome_text']}, level {told[0]['level']}; not the rationale")
        time.sleep(2)
    return _line(False, "no agency was told the outcome")


def _line(ok: bool, text: str) -> bool:
    print(f"  [{'ok' if ok else 'FAILED'}] {text}", flush=True)
    return ok
