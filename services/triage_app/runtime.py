"""The triage app as a process: its configuration from settings (refusing a weak secret key), what
it believes of a TLS proxy in front of it, and the outbox sender in the background."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mash.codec import Codec
from mash.db import engine_for, session_factory
from mash.kafka_security import TRIAGE_APP, kafka_python_options
from mash.local_kafka import resolve_bootstrap
from mash.settings import Settings
from mash.topics import (
    AUDIT,
    DEADLETTER,
    DECISIONS,
    MATCH_ANSWERS,
    RETURNS,
    provision,
    request_topic_spec,
    requests_topic,
    topic_name,
)
from services.enquiry.catalogue import Catalogue, load_catalogue
from services.sharing.audit_keys import audit_keys
from services.sharing.audit_signing import AuditKeys
from services.sharing.policy_source import PolicySource
from services.triage.profiles import load_profiles
from services.triage.scoring_file import load_scoring
from services.triage_app import actions
from services.triage_app.outbox import Outbox
from services.triage_app.returns_inbox import ReturnsInbox
from services.triage_app.secret_key import weakness
from services.triage_app.session_store import Timeouts
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig

OUTBOX_EVERY_S = 5.0
log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting the app will not start with; the message says what to do."""


def returns_inbox(settings: Settings, config: AppConfig) -> ReturnsInbox:
    """Agencies' connectors' answers, read in the app's own consumer group."""
    return ReturnsInbox(config.sessions, resolve_bootstrap(settings), topic_name(RETURNS, settings),
                        topic_name(DEADLETTER, settings), f"{settings.app_id}.triage-app.returns", Codec(),
                        config.catalogue, config.policy, client=kafka_python_options(settings, TRIAGE_APP))


def app_outbox(sessions: sessionmaker[Session], settings: Settings, bootstrap: str, catalogue: Catalogue,
               keys: AuditKeys | None = None) -> Outbox:
    """The app's outbox on the deployment's topics, agencies' requests topics made when first used."""
    return Outbox(sessions, bootstrap, topic_name(DECISIONS, settings), topic_name(MATCH_ANSWERS, settings),
                  Codec(), topic_name(AUDIT, settings), keys,
                  requests_topic=lambda agency: topic_name(requests_topic(agency), settings),
                  provision=lambda agencies: provision(bootstrap, settings, specs=tuple(
                      request_topic_spec(a) for a in agencies), service=TRIAGE_APP), catalogue=catalogue,
                  client=kafka_python_options(settings, TRIAGE_APP))


def build(settings: Settings) -> tuple[FastAPI, Outbox]:
    key = settings.triage_secret_key.get_secret_value()
    if key and (problem := weakness(key)):
        raise ConfigError(problem)
    sessions = session_factory(engine_for(settings))
    keys = audit_keys(settings)
    actions.sign_with(keys)
    bootstrap = resolve_bootstrap(settings)
    catalogue = load_catalogue()
    outbox = app_outbox(sessions, settings, bootstrap, catalogue, keys)
    profile, request_profile = load_profiles(settings.triage_profile, settings.triage_request_profile)
    app = create_app(AppConfig(sessions, load_scoring(settings.triage_scoring), key or secrets.token_urlsafe(32),
                               outbox, profile=profile, catalogue=catalogue,
                               policy=PolicySource(settings.sharing_policy).current,
                               request_profile=request_profile,
                               secure_cookies=secure_cookies(settings),
                               timeouts=Timeouts(timedelta(minutes=settings.triage_session_idle_minutes),
                                                 timedelta(hours=settings.triage_session_max_hours)),
                               api_docs=settings.triage_api_docs))
    return app, outbox


def secure_cookies(settings: Settings) -> bool:
    """As set; unset, on unless the app listens on loopback only (nothing but this machine reaches it)."""
    if settings.triage_secure_cookies is not None:
        return settings.triage_secure_cookies
    return not _loopback(settings.triage_host)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name (or 0.0.0.0, every interface): reachable from elsewhere


def behind_proxies(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The app as the server runs it: X-Forwarded-Proto and -For believed only from the configured
    proxies (the scheme for redirects, the client's address for log-in back-off); else never."""
    trusted = [address.strip() for address in settings.triage_trusted_proxies.split(",") if address.strip()]
    return cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=trusted)) if trusted else app


def send_in_background(outbox: Outbox, *tasks: Callable[[], object]) -> threading.Event:
    """Decisions recorded while the broker was away go out when it is back; the other tasks (chasing
    requests on their clocks, reading agencies' returns) run each time too; set the event to stop."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(OUTBOX_EVERY_S):
            for task in tasks:
                try:
                    task()
                except Exception as exc:  # noqa: BLE001 - the database or broker may be away: next time
                    log.warning("%s not done this time (%s)", getattr(task, "__name__", "a task"),
                                type(exc).__name__)
            outbox.flush()

    threading.Thread(target=loop, name="decision-outbox", daemon=True).start()
    return stop
