"""The triage app's JSON API fuzzed from its own OpenAPI (schemathesis) against `mash triage serve`,
a process of its own on a free loopback port, over SQLite and PostgreSQL.

Every operation the schema describes is driven with generated requests, valid and invalid, and
every answer must be neither a server error nor outside what the schema declares (status code and
body). Every write is refused without a session (401) and, with a session, without its own CSRF
token (403: none, a wrong one, or another session's), and nothing is recorded by a refused write.
Logged in, a worker's reads and a manager's writes are fuzzed the same way. Kafka is not running:
what the app sends waits in its outbox, as in a broker outage (its own tests cover sending).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from pydantic import SecretStr
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mash.kafka_security import OPERATOR, TRIAGE_APP, credentials_dir, write_passwords
from mash.local_kafka import free_port
from mash.models import AlertActionRecord, MatchReview, TriageDecisionRecord
from mash.settings import PROJECT_ROOT, Settings
from tests.integration.conftest import env_for, owner_of, stop_process, wait_for
from tests.support.triage_data import PASSWORD

pytestmark = pytest.mark.timeout(300)

EXAMPLES = 20  # generated requests per operation and generation mode in each pass
FEW = 4  # generated requests per operation and fixed variant (a hostile path id, a wrong CSRF token)
LOGINS = 8  # log-in hashes each password (argon2id, 64 MiB): fewer, so the run stays short
DEADLINE = timedelta(seconds=5)  # one request, answered; far above what any takes on a loaded machine
REQUEST_TIMEOUT_S = 15
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
LOGIN = "/api/login"
LOGOUT = "/api/logout"
# what the generator may take long to try: NUL (PostgreSQL refuses it in text), too long, not ASCII, a path
HOSTILE = ["a\x00b", "\x00", "x" * 5000, "\u00e9\u00ff", "\U0001f4a5", "../../etc/passwd", " ", "%00"]
# a valid body of each operation that takes one, in which each string is replaced by each hostile value
BODIES = {
    "/api/login": {"username": "mo", "password": "not the password"},
    "/api/alerts/{alert_id}/assign": {"to": "alice"},
    "/api/alerts/{alert_id}/rating": {"rag": "AMBER", "rationale": "the hostile strings test"},
    "/api/alerts/{alert_id}/decision": {"outcome": "OTHER", "rationale": "the hostile strings test",
                                        "alert_revision": 1},
    "/api/matches/{event_id}/answer": {"answer": "REJECTED"},
    "/api/alerts/{alert_id}/enquiry": {"purpose": "the hostile strings test", "lawful_basis": "CHILDREN_ACT_1989_S47",
                                       "consent": "GIVEN", "consent_reason": "", "agencies": ["police"]},
    "/api/enquiries/{enquiry_id}/decision": {"level": 3, "outcome": "EARLY_HELP", "factors": ["3B"],
                                             "rationale": "the hostile strings test"},
    "/api/portal/requests/{request_id}/answer": {"answer": "NIL", "summary": "", "declined_reason": "",
                                                 "searched_on": "2026-11-25", "systems_searched": ["Niche"]},
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The test's database and state; Kafka is a loopback port nothing listens on (the outbox waits),
    reached as a deployment's app would, secured, with its principal's password where it looks for it."""
    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_port()}", state_dir=tmp_path,
                        kafka_security_protocol="SASL_SSL", database_url=SecretStr(database_url),
                        database_owner_url=SecretStr(owner_of(database_url)))
    write_passwords(credentials_dir(settings), (TRIAGE_APP, OPERATOR))
    return settings


@dataclass
class Fuzz:
    """The running app, its schema as it serves it, and the requests sent to it."""

    url: str
    log: Path
    schema: Any
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)

    def operations(self, methods: set[str] | None = None, skip: tuple[str, ...] = ()) -> list[APIOperation]:
        found = [result.ok() for result in self.schema.get_all_operations()]
        return [op for op in found if (methods is None or op.method.upper() in methods) and op.path not in skip]

    def call(self, case: Case, session: requests.Session, headers: dict[str, str] | None = None,
             expect: set[int] | None = None) -> Any:
        """Send the case, check the answer against the schema; `expect`: the only statuses allowed."""
        self.sent[f"{case.method.upper()} {case.operation.path}"] += 1
        response = case.call_and_validate(base_url=self.url, session=session, headers=headers, checks=CHECKS,
                                          timeout=REQUEST_TIMEOUT_S)
        self.statuses[response.status_code] += 1
        if expect is not None and not unparsed(response):
            assert response.status_code in expect, (
                f"{case.method.upper()} {case.formatted_path} answered {response.status_code}, not "
                f"{sorted(expect)}: {response.text[:300]}")
        return response

    def fuzz(self, operation: APIOperation, session: requests.Session, headers: dict[str, str] | None = None,
             expect: Callable[[Case], set[int] | None] = lambda _: None, modes: list[GenerationMode] = MODES,
             examples: int = EXAMPLES, **fixed: Any) -> None:
        """Generated requests to one operation, in each generation mode; `fixed` as_strategy's fixed parts.
        Invalid requests only where the operation takes more than ids in its path: only those have
        something the generator can make invalid there (the hostile pass sends invalid ids)."""
        for mode in modes if len(operation.body) or len(operation.query) else [GenerationMode.POSITIVE]:
            @hypothesis.settings(max_examples=examples, deadline=DEADLINE, database=None,
                                 phases=[Phase.explicit, Phase.generate, Phase.shrink],
                                 suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode, **fixed))
            def one(case: Case) -> None:
                self.call(case, session, headers, expect(case))

            one()

    def report(self, what: str) -> None:
        print(f"\nschemathesis, {what}: {sum(self.sent.values())} requests to {len(self.sent)} operations, "
              f"answered {dict(sorted(self.statuses.items()))}")
        for operation, n in sorted(self.sent.items()):
            print(f"  {n:4d}  {operation}")

    def hostile(self, operation: APIOperation, session: requests.Session, headers: dict[str, str] | None = None,
                expect: set[int] | None = None, **fixed: Any) -> None:
        """Each hostile value as each path parameter (the rest generated), and in each string of a
        valid body (`BODIES`)."""
        for name in (p.name for p in operation.path_parameters):
            for value in [v for v in HOSTILE if "/" not in v]:  # a "/" would address another route
                self.fuzz(operation, session, headers, lambda _: expect, [GenerationMode.POSITIVE],
                          FEW, path_parameters={**fixed.get("path_parameters", {}), name: value})
        template = BODIES.get(operation.path)
        assert (template is None) == (len(operation.body) == 0), f"BODIES needs a body for {operation.path}"
        path = {p.name: fixed.get("path_parameters", {}).get(p.name, "x") for p in operation.path_parameters}
        for field_name in [k for k, v in (template or {}).items() if isinstance(v, str)]:
            for value in HOSTILE:
                self.call(operation.Case(path_parameters=path, body={**(template or {}), field_name: value},
                                         media_type="application/json"), session, headers, expect)

    def server_errors(self) -> list[str]:
        """What the app logged as an error (its log is JSON lines; uvicorn's own lines are text)."""
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if '"level": "error"' in line or "Traceback" in line]


@pytest.fixture
def fuzz(settings: Settings, data: Any, tmp_path: Path) -> Iterator[Fuzz]:
    """`mash triage serve` as its operators run it, over the seeded store (users of each kind)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "triage-app.log"
    env = {**env_for(settings), "MASH_TRIAGE_HOST": "127.0.0.1", "MASH_TRIAGE_PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mash.cli", "triage", "serve"], env=env, cwd=PROJECT_ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or _answers(f"{url}/healthz"), 60, "the triage app to start")
        assert proc.poll() is None, f"the triage app exited: {log.read_text()}"
        schema = schemathesis.openapi.from_url(f"{url}/api/openapi.json", config=schemathesis.Config(),
                                               timeout=REQUEST_TIMEOUT_S)
        found = Fuzz(url, log, schema)
        yield found
        assert found.server_errors() == [], f"the app logged tracebacks: {log.read_text()[-4000:]}"
    finally:
        stop_process(proc)


def unparsed(response: Any) -> bool:
    """A body that is not JSON: refused before the session is looked at (FastAPI reads the body
    first), 400 if it is not even text, else 422 `json_invalid`; either way nothing is done."""
    try:
        json.loads(response.request.body or b"")
        return False
    except ValueError:  # UnicodeDecodeError included
        pass
    if response.status_code == 400:
        return True
    errors = response.json().get("detail") if response.status_code == 422 else None
    return isinstance(errors, list) and [e.get("type") for e in errors] == ["json_invalid"]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def logged_in(url: str, username: str) -> tuple[requests.Session, str]:
    """A client holding the user's session cookie, and that session's CSRF token."""
    client = requests.Session()
    client.trust_env = False
    response = client.post(f"{url}{LOGIN}", json={"username": username, "password": PASSWORD},
                           timeout=REQUEST_TIMEOUT_S)
    assert response.status_code == 200, response.text
    return client, str(response.json()["csrf_token"])


def anonymous() -> requests.Session:
    client = requests.Session()
    client.trust_env = False
    return client


def recorded(sessions: sessionmaker[Session]) -> dict[str, int]:
    """What writes leave behind: actions on alerts, decisions, answered possible matches."""
    with sessions() as db:
        return {"actions": db.scalar(select(func.count()).select_from(AlertActionRecord)) or 0,
                "decisions": db.scalar(select(func.count()).select_from(TriageDecisionRecord)) or 0,
                "answers": db.scalar(select(func.count()).select_from(MatchReview)
                                     .where(MatchReview.status != "OPEN")) or 0}


def test_without_a_session_every_operation_is_refused_and_answers_as_its_schema_says(
        fuzz: Fuzz, sessions: sessionmaker[Session]) -> None:
    """Every read and write but log-in answers 401 to any request without a session; log-in itself,
    fuzzed last (its failures back off this address), never lets a generated credential in."""
    before = recorded(sessions)
    client = anonymous()
    for operation in fuzz.operations(skip=(LOGIN,)):
        fuzz.fuzz(operation, client, expect=lambda _: {401})
        fuzz.hostile(operation, client, expect={401})
    (login,) = fuzz.operations(skip=tuple(op.path for op in fuzz.operations() if op.path != LOGIN))
    fuzz.fuzz(login, client, expect=lambda _: {401, 422}, examples=LOGINS)
    fuzz.hostile(login, client, expect={401, 422})
    assert client.cookies.get_dict() == {}, "a refused request was given a session"
    assert recorded(sessions) == before
    fuzz.report("no session")


def test_with_a_session_but_without_its_csrf_token_every_write_is_refused(
        fuzz: Fuzz, sessions: sessionmaker[Session], data: Any) -> None:
    """Writes carrying a live session's cookie are refused 403 with no X-CSRF-Token, a wrong one,
    or another live session's own token; nothing is recorded and the session still works after."""
    before = recorded(sessions)
    manager, manager_token = logged_in(fuzz.url, "mo")
    _, worker_token = logged_in(fuzz.url, "alice")
    real = {"path_parameters": {"alert_id": data["ruby"]["alert_id"]}}
    for operation in fuzz.operations(WRITES, skip=(LOGIN,)):
        fixed = real if "{alert_id}" in operation.path else {}
        fuzz.fuzz(operation, manager, expect=lambda _: {403}, **fixed)  # the header absent, or generated
        for headers in ({"X-CSRF-Token": "not-" + manager_token}, {"X-CSRF-Token": worker_token},
                        {"X-CSRF-Token": ""}):
            fuzz.fuzz(operation, manager, headers, lambda _: {403}, [GenerationMode.POSITIVE], FEW, **fixed)
        fuzz.hostile(operation, manager, expect={403}, **fixed)
    assert recorded(sessions) == before
    still = manager.get(f"{fuzz.url}/api/alerts", headers={"X-CSRF-Token": manager_token}, timeout=REQUEST_TIMEOUT_S)
    assert still.status_code == 200, "a refused write ended the session"
    fuzz.report("a session without its CSRF token")


def test_a_worker_reading_and_a_manager_writing_never_get_a_server_error_or_an_undeclared_answer(
        fuzz: Fuzz, data: Any) -> None:
    """Logged in with the CSRF token: a worker's reads, then a manager's writes (log-out last), fuzzed;
    the seeded alerts' own ids are sent too, so the answers with a child's record are checked."""
    worker, worker_token = logged_in(fuzz.url, "alice")
    alert_ids = [data[name]["alert_id"] for name in ("ruby", "sam", "tia")]
    for operation in fuzz.operations({"GET"}):
        fuzz.fuzz(operation, worker, {"X-CSRF-Token": worker_token})
        fuzz.hostile(operation, worker, {"X-CSRF-Token": worker_token})
        if "{alert_id}" in operation.path:
            for alert_id in alert_ids:
                fuzz.fuzz(operation, worker, {"X-CSRF-Token": worker_token},
                          expect=lambda _: {200}, path_parameters={"alert_id": alert_id})
    manager, manager_token = logged_in(fuzz.url, "mo")
    for operation in fuzz.operations(WRITES, skip=(LOGIN, LOGOUT)):
        fuzz.fuzz(operation, manager, {"X-CSRF-Token": manager_token})
        if "{alert_id}" in operation.path:
            fuzz.fuzz(operation, manager, {"X-CSRF-Token": manager_token},
                      path_parameters={"alert_id": alert_ids[0]})
        fuzz.hostile(operation, manager, {"X-CSRF-Token": manager_token},
                     path_parameters={"alert_id": alert_ids[1]})
    (logout,) = fuzz.operations(skip=tuple(op.path for op in fuzz.operations() if op.path != LOGOUT))
    fuzz.call(logout.Case(), manager, {"X-CSRF-Token": manager_token}, expect={200})
    assert manager.get(f"{fuzz.url}/api/alerts", timeout=REQUEST_TIMEOUT_S).status_code == 401
    fuzz.report("logged in, with the CSRF token")
