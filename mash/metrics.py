"""The metrics every process exports, declared once, and the small HTTP server that serves them.

One catalogue, as for topics: the dashboard and the alert rules are checked against these names.
Names follow Prometheus conventions (base units, `_total` counters, `_seconds` histograms) and
labels are low-cardinality by construction: agency, event type, stage, outcome, rating, error
class, topic, partition. Never a person, an event id, or any text from an event: the values a
label may take come from closed lists in code, and a test scrapes a running pipeline for leaks.

Each process serves `/metrics`, `/healthz` (alive) and `/readyz` (its Kafka and database answer)
on MASH_METRICS_HOST:MASH_METRICS_PORT (port 0: any free port), and writes a Prometheus
file-based service discovery entry under `<state_dir>/metrics-targets/`, removed at exit, so a
Prometheus on the same machine finds every process of the embedded stack by itself.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
END_TO_END_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)

# -- connectors ----------------------------------------------------------------------------------
CONNECTOR_RECORDS = Counter(
    "mash_connector_records_total", "Source records a connector finished with, by outcome (published, "
    "dead_lettered; each dead letter's reason is in its headers).", ["agency", "outcome"])
CONNECTOR_DEAD_LETTERS = Counter(
    "mash_connector_dead_letters_total", "Source records a connector dead-lettered, by reason (the error class, "
    "from a closed list; the full reason travels in each dead letter's headers).", ["agency", "reason"])
CONNECTOR_RETRIES = Counter(
    "mash_connector_send_retries_total", "Batches a connector resent after a broker error.", ["agency"])
CONNECTOR_LAST_PUBLISHED = Gauge(
    "mash_connector_last_published_timestamp_seconds", "When the connector last had a record confirmed by the "
    "broker (Unix time).", ["agency"])

# -- hub stages ----------------------------------------------------------------------------------
STAGE_MESSAGES_IN = Counter(
    "mash_stage_messages_in_total", "Messages a hub stage consumed, by input topic.", ["stage", "topic"])
STAGE_MESSAGES_OUT = Counter(
    "mash_stage_messages_out_total", "Messages a hub stage produced, by output topic.", ["stage", "topic"])
STAGE_BATCH_SECONDS = Histogram(
    "mash_stage_batch_seconds", "Time a hub stage took over one batch, from decoding to the broker's "
    "acknowledgement of its output.", ["stage"], buckets=LATENCY_BUCKETS)
STAGE_STALLED = Gauge(
    "mash_stage_stalled", "1 while a hub stage holds work (messages past its last commit) but has committed "
    "nothing for MASH_STAGE_STALL_AFTER_S; 0 otherwise.", ["stage"])
STAGE_PENDING = Gauge(
    "mash_stage_pending_messages", "Messages on a hub stage's assigned partitions past its last commit, as "
    "this worker sees them.", ["stage"])
STAGE_LAST_PROGRESS = Gauge(
    "mash_stage_last_progress_timestamp_seconds", "When a hub stage last committed a batch or had nothing to do.",
    ["stage"])
STAGE_FAILURES = Counter(
    "mash_stage_failures_total", "Failed attempts at a whole batch (database or broker trouble), each "
    "retried; the error class is in the log line.", ["stage"])
DEAD_LETTERS = Counter(
    "mash_dead_letters_total", "Messages a hub stage sent to the dead-letter topic, by reason (the error class, "
    "from a closed list; the full reason travels in each dead letter's headers).", ["stage", "reason"])
EVENT_OUTCOMES = Counter(
    "mash_event_outcomes_total", "Inbound events' recorded outcomes (ALERT_RAISED, ATTACHED_TO_ALERT, "
    "NO_ALERT).", ["agency", "outcome"])
END_TO_END_SECONDS = Histogram(
    "mash_event_to_alert_seconds", "From an event's arrival at the hub's edge (received_at) to its outcome "
    "joining it to an alert, by agency.", ["agency"], buckets=END_TO_END_BUCKETS)
OCCURRED_TO_ALERT_SECONDS = Histogram(
    "mash_occurred_to_alert_seconds", "From when the event happened (occurred_at) to its outcome joining it to "
    "an alert, by agency: includes each agency's own reporting delay.", ["agency"], buckets=END_TO_END_BUCKETS)
LAST_EVENT = Gauge(
    "mash_last_event_timestamp_seconds", "When the hub last read an event from an agency's inbound topic "
    "(Unix time); time() minus this is how long the feed has been silent.", ["agency"])
LINK_DECISIONS = Counter(
    "mash_link_decisions_total", "Person index decisions by method (NHS_NUMBER, UPN, LOCAL_ID, NEW_PERSON, "
    "PROBABILISTIC) and whether a possible match was held for review.", ["method", "held_for_review"])
PERSONS = Gauge("mash_person_index_persons", "Persons in the person index (not merged into another).")
SHARING_DECISIONS = Counter(
    "mash_sharing_decisions_total", "Per-role sharing decisions by outcome (SHARE, SHARE_FIELDS, WITHHOLD).",
    ["role", "outcome"])
ALERT_REVISIONS = Counter(
    "mash_alert_revisions_total", "Alert revisions the hub sent, by rating and change (opened, updated, "
    "closed).", ["rag", "change"])
CONSUMER_LAG = Gauge(
    "mash_consumer_lag_messages", "Messages on a partition not yet committed by the hub's consumer group.",
    ["group", "topic", "partition"])

# -- triage store and app ------------------------------------------------------------------------
OPEN_ALERTS = Gauge(
    "mash_open_alerts", "Open, undecided alerts on the triage queue by rating and clock (on_time, at_risk, "
    "breached).", ["rag", "clock"])
TRIAGE_DECISIONS = Counter(
    "mash_triage_decisions_total", "Decisions recorded in the triage app, by outcome.", ["outcome"])
OUTBOX_UNSENDABLE = Counter(
    "mash_outbox_unsendable_total", "Rows the triage app's outbox could never encode (recorded on the row as "
    "send_error, skipped so the others go on), by kind.", ["kind"])
AUDIT_UNTRUSTED = Counter(
    "mash_audit_untrusted_total", "Audit entries found that no holder of an audit key signed (appended by "
    "someone who may write to the trail but is not a writer): never taken as a decision; the event is decided afresh.")
HTTP_REQUESTS = Histogram(
    "mash_http_request_seconds", "Triage app requests by route template, method and status class.",
    ["route", "method", "status"], buckets=LATENCY_BUCKETS)
INFORMATION_REQUESTS_OPEN = Gauge(
    "mash_information_requests_open", "MASH enquiry information requests not yet answered, by agency and state "
    "(sent, acknowledged, at_risk, overdue).", ["agency", "state"])
INFORMATION_RETURNS = Counter(
    "mash_information_returns_total", "Answers to information requests, by agency, answer (held, nil, declined) "
    "and timeliness (on_time, late).", ["agency", "answer", "timeliness"])
INFORMATION_RETURN_SECONDS = Histogram(
    "mash_information_return_seconds", "Time from an information request being sent to its answer, by agency.",
    ["agency"], buckets=(900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 48 * 3600, 72 * 3600,
                         7 * 24 * 3600))
REQUEST_CHASES = Counter(
    "mash_information_request_chases_total", "Reminders sent to agencies (at risk) and escalations to the manager "
    "(overdue), by agency and kind.", ["agency", "kind"])
REFERRER_FEEDBACK = Counter(
    "mash_referrer_feedback_total", "Enquiry outcomes fed back to the referring agency, by agency and timeliness "
    "against the feedback clock.", ["agency", "timeliness"])
LOGIN_FAILURES = Counter("mash_login_failures_total", "Failed log-ins to the triage app (wrong password, "
                         "unknown or deactivated user, or a username or address backing off).")


AGENCY_NAMES = ("POLICE", "HEALTH", "EDUCATION", "SOCIAL_CARE")
OUTCOME_NAMES = ("ALERT_RAISED", "ATTACHED_TO_ALERT", "NO_ALERT")
RAGS = ("RED", "AMBER", "GREEN")
ALERT_CHANGES = ("opened", "updated", "closed")
LINK_METHODS = ("NHS_NUMBER", "UPN", "LOCAL_ID", "NEW_PERSON", "PROBABILISTIC")
SHARING_OUTCOMES = ("SHARE", "SHARE_FIELDS", "WITHHOLD")
HUB_STAGES = ("enrichment", "sharing", "triage")
# Why a message is dead-lettered, as the error classes the bus raises for bad input; any other is `other`.
DEAD_LETTER_REASONS = ("CodecError", "SchemaError", "MappingError", "ParseError", "NotAnInboundEvent",
                       "NotForSharing", "NotForTriage", "ValueError", "KeyError", "TypeError", "UnicodeDecodeError",
                       "other")


def initialise_hub(stages: tuple[str, ...], roles: tuple[str, ...]) -> None:
    """Every series the hub can produce starts at zero, so a query (or an alert's rate) sees a flat
    line rather than nothing before the first event of its kind."""
    _zero(STAGE_FAILURES, stages)
    _zero(STAGE_STALLED, stages)
    _zero(STAGE_PENDING, stages)
    _zero(DEAD_LETTERS, [f"hub:{s.replace('-', '_')}" for s in stages], DEAD_LETTER_REASONS)
    _zero(END_TO_END_SECONDS, AGENCY_NAMES)
    _zero(OCCURRED_TO_ALERT_SECONDS, AGENCY_NAMES)
    _zero(EVENT_OUTCOMES, AGENCY_NAMES, OUTCOME_NAMES)
    _zero(ALERT_REVISIONS, RAGS, ALERT_CHANGES)
    _zero(LINK_DECISIONS, LINK_METHODS, ("true", "false"))
    _zero(SHARING_DECISIONS, roles, SHARING_OUTCOMES)


def initialise_connector(agency: str) -> None:
    _zero(CONNECTOR_RECORDS, (agency,), ("published", "dead_lettered"))
    _zero(CONNECTOR_DEAD_LETTERS, (agency,), DEAD_LETTER_REASONS)
    _zero(CONNECTOR_RETRIES, (agency,))


def initialise_triage_app(outcomes: tuple[str, ...], agencies: tuple[str, ...] = ()) -> None:
    """Every series the app exports, at zero before its first event (so a dashboard's query and a
    rate() see it from the start); `agencies`: the enquiry catalogue's."""
    _zero(TRIAGE_DECISIONS, outcomes)
    _zero(OPEN_ALERTS, RAGS, ("on_time", "at_risk", "breached"))
    _zero(INFORMATION_REQUESTS_OPEN, agencies, ("sent", "acknowledged", "at_risk", "overdue"))
    _zero(INFORMATION_RETURNS, agencies, ("held", "nil", "declined"), ("on_time", "late"))
    _zero(INFORMATION_RETURN_SECONDS, agencies)
    _zero(REQUEST_CHASES, agencies, ("remind", "escalate"))
    _zero(REFERRER_FEEDBACK, agencies, ("on_time", "late"))


def _zero(metric: Counter | Gauge | Histogram, *values: Sequence[str]) -> None:
    for labels in itertools.product(*values):
        metric.labels(*labels)


def reason_of(error_class: str | None) -> str:
    return labelled(error_class, DEAD_LETTER_REASONS)


def labelled(value: str | None, allowed: frozenset[str] | tuple[str, ...], other: str = "other") -> str:
    """A label value from a closed list: anything else becomes `other`, so no text can leak in."""
    return value if value is not None and value in allowed else other


class MetricsServer:
    """`/metrics`, `/healthz` and `/readyz` for one process, in a daemon thread."""

    def __init__(self, name: str, host: str, port: int, ready: Callable[[], dict[str, bool]],
                 targets_dir: Path | None = None) -> None:
        self.name = name
        self._ready = ready
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self.address = f"{host}:{self._server.server_address[1]}"
        self._target: Path | None = None
        if targets_dir is not None:
            self._target = self._register(targets_dir)
        threading.Thread(target=self._server.serve_forever, name=f"metrics-{name}", daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._target is not None:
            self._target.unlink(missing_ok=True)
            self._target = None

    def _register(self, targets_dir: Path) -> Path:
        return register_target(targets_dir, self.name, self.address)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ready = self._ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
                elif self.path == "/healthz":
                    self._send(200, "application/json", b'{"status": "alive"}')
                elif self.path == "/readyz":
                    checks = _checked(ready)
                    status = 200 if all(checks.values()) else 503
                    body = {"status": "ready" if status == 200 else "not ready", **checks}
                    self._send(status, "application/json", json.dumps(body).encode())
                else:
                    self._send(404, "text/plain", b"not found: /metrics, /healthz, /readyz")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # a scrape every few seconds is not news

        return Handler


def register_target(targets_dir: Path, name: str, address: str) -> Path:
    """A Prometheus file_sd entry for this process, removed at exit. The job is the process's kind
    (`mash-hub`, `mash-connector`, `mash-triage`), as in the compose stack's scrape config."""
    targets_dir.mkdir(parents=True, exist_ok=True)
    path = targets_dir / f"{name}-{os.getpid()}.json"
    kind = "triage-app" if name.startswith("triage") else name.split("-")[0]
    entry = [{"targets": [address], "labels": {"job": f"mash-{kind}", "process": name}}]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)  # Prometheus never reads half a file
    atexit.register(path.unlink, missing_ok=True)
    return path


def _checked(ready: Callable[[], dict[str, bool]]) -> dict[str, bool]:
    try:
        return ready()
    except Exception:  # noqa: BLE001 - a failing check is "not ready", never a crashed endpoint
        return {"checks": False}
