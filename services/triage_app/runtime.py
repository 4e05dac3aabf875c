"""The triage app as a process: its configuration from settings, and the outbox sender in the background."""

from __future__ import annotations

import secrets
import threading

from fastapi import FastAPI

from mash.codec import Codec
from mash.db import engine_for, session_factory
from mash.local_kafka import resolve_bootstrap
from mash.settings import Settings
from mash.topics import DECISIONS, MATCH_ANSWERS, topic_name
from services.triage.profiles import load_profile
from services.triage.scoring_file import load_scoring
from services.triage_app.outbox import Outbox
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig

OUTBOX_EVERY_S = 5.0


def build(settings: Settings) -> tuple[FastAPI, Outbox]:
    sessions = session_factory(engine_for(settings))
    outbox = Outbox(sessions, resolve_bootstrap(settings), topic_name(DECISIONS, settings),
                    topic_name(MATCH_ANSWERS, settings), Codec())
    key = settings.triage_secret_key.get_secret_value() or secrets.token_urlsafe(32)
    app = create_app(AppConfig(sessions, load_scoring(settings.triage_scoring), key, outbox,
                               profile=load_profile(settings.triage_profile),
                               secure_cookies=settings.triage_secure_cookies))
    return app, outbox


def send_in_background(outbox: Outbox) -> threading.Event:
    """Decisions recorded while the broker was away go out when it is back; set the event to stop."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(OUTBOX_EVERY_S):
            outbox.flush()

    threading.Thread(target=loop, name="decision-outbox", daemon=True).start()
    return stop
