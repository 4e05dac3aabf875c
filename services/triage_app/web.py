"""The triage web app (FastAPI): server-rendered pages for staff and a JSON API for the same actions.

Security is part of correctness here: every page and call needs a logged-in user (401 without),
each action checks the user's role (403), every form and API write carries the session's CSRF
token, pages are escaped by Jinja2's autoescape and served with a strict Content Security Policy
(no inline script), and a user sees of each event only their sharing role's view. While the database
does not answer, every page and call says so with 503, and is served again once it is back.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from mash import metrics
from services.triage_app import api, enquiries, enquiry_api, enquiry_pages, pages
from services.triage_app.actions import OUTCOMES
from services.triage_app.queue import open_alert_counts
from services.triage_app.web_session import AppConfig, session_user

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Swagger UI's stylesheet draws its icons as data: images; nothing else differs for /api/docs
DOCS_CSP = CSP.replace("img-src 'self'", "img-src 'self' data:")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
HSTS = "max-age=31536000; includeSubDomains"  # a year: browsers then refuse plain HTTP to the app
DOCS = Path(__file__).resolve().parent / "static" / "api-docs.html"
DATABASE_DOWN = ("The triage database is unavailable just now, so nothing can be shown or recorded. "
                 "Try again in a minute.")
RETRY_AFTER_S = 30
log = logging.getLogger(__name__)


def create_app(config: AppConfig) -> FastAPI:
    app = FastAPI(title="MASH triage", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="The MASH triage queue: alerts, a child's timeline as your role may see it, claims "
                              "and decisions. Log in with POST /api/login; send the returned csrf_token as "
                              "X-CSRF-Token on every POST.")
    app.state.config = config
    metrics.initialise_triage_app(tuple(OUTCOMES), tuple(config.catalogue.agencies))
    app.middleware("http")(_security_headers)
    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    if config.api_docs:  # Swagger UI from the app itself: no CDN, and no inline script for the CSP to refuse
        app.mount("/api/docs/assets", StaticFiles(directory=swagger_ui_path), name="swagger-ui")
        app.add_api_route("/api/docs", _api_docs, include_in_schema=False, response_class=HTMLResponse)
    app.include_router(enquiry_pages.router)  # before pages: /alerts/{id}/enquiry is not an alert action
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(enquiry_api.router)
    app.add_api_route("/healthz", _healthz, include_in_schema=False)
    app.add_api_route("/readyz", _readyz, include_in_schema=False)
    app.add_api_route("/metrics", _metrics, include_in_schema=False)
    app.add_exception_handler(DBAPIError, _database_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _http_error)
    return app


ERROR_HEADINGS = {401: "Logged out", 403: "Not allowed", 404: "Not found", 409: "Changed meanwhile",
                  422: "Not accepted"}
NOT_UNDERSTOOD = "The address or the form sent is not one the app understands: go back and try again."


async def _http_error(request: Request, exc: Exception) -> Response:
    """A refusal (401, 403, 404, 409, 422...) as a page for a browser that asked for a page: titled,
    in English, with the app's header and a way back (WCAG 2.4.2, 3.1.1); as JSON for the API, the
    queue's script and any other client, as before."""
    wants_page = "text/html" in request.headers.get("accept", "") and not request.url.path.startswith(
        ("/api/", "/queue/rows", "/static/"))
    if not wants_page:
        if isinstance(exc, RequestValidationError):
            return await request_validation_exception_handler(request, exc)
        assert isinstance(exc, StarletteHTTPException)
        return await http_exception_handler(request, exc)
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 422
    message = str(exc.detail) if isinstance(exc, StarletteHTTPException) else NOT_UNDERSTOOD
    if status == 404 and message == "Not Found":  # no route: Starlette's own words
        message = "There is no page at this address."
    try:
        user = session_user(request, touch=False)
    except Exception:  # noqa: BLE001 - the page says what went wrong whoever is asking
        request.state.web_session, user = None, None
    response = pages.page(request, "error.html", status, user=user, message=message,
                          heading=ERROR_HEADINGS.get(status, "Something went wrong"))
    if isinstance(exc, StarletteHTTPException) and exc.headers:
        response.headers.update(exc.headers)
    return response


async def _security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    started = time.perf_counter()
    response = await call_next(request)
    response.headers.update(HEADERS)
    if request.url.path.startswith("/api/docs"):
        response.headers["Content-Security-Policy"] = DOCS_CSP
    if request.app.state.config.secure_cookies:  # served over TLS (directly or by a proxy)
        response.headers["Strict-Transport-Security"] = HSTS
    route = request.scope.get("route")  # the template (/alerts/{alert_id}), never the ids in the path
    metrics.HTTP_REQUESTS.labels(getattr(route, "path", "unmatched"), request.method,
                                 f"{response.status_code // 100}xx").observe(time.perf_counter() - started)
    return response


def _metrics(request: Request) -> Response:
    """Prometheus metrics, with the queue's state counted now (open alerts by rating and clock)."""
    config = request.app.state.config
    with config.sessions() as session:
        counts = open_alert_counts(session, config.clock())
    for (rag, clock), n in counts.items():
        metrics.OPEN_ALERTS.labels(rag, clock).set(n)
    if config.request_profile or config.profile:
        with config.sessions() as session:
            requests = enquiries.open_request_counts(session, config.requests_clock(), config.clock())
        for agency in config.catalogue.agencies:
            for state in ("sent", "acknowledged", "at_risk", "overdue"):
                metrics.INFORMATION_REQUESTS_OPEN.labels(agency, state).set(requests.get((agency, state), 0))
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _api_docs() -> HTMLResponse:
    return HTMLResponse(DOCS.read_text())


def _healthz() -> dict[str, str]:
    return {"status": "alive"}


def _readyz(request: Request) -> JSONResponse:
    config = request.app.state.config
    checks = {"database": True, "kafka": config.outbox.kafka_answers() if config.outbox else True}
    try:
        with config.sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - not ready, and say which
        checks["database"] = False
    ready = all(checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", **checks}, 200 if ready else 503)


def _database_unavailable(request: Request, exc: Exception) -> Response:
    """The database does not answer (stopped, restarting, unreachable): 503 and to try again, as JSON
    for the API and as a page for staff, never a stack trace. Nothing waits for it: the next request
    after it is back is served as usual (the pool reconnects, checking each connection first)."""
    if not (isinstance(exc, DBAPIError) and _unavailable(exc)):
        raise exc  # any other database error is a fault in the app: a 500, as before
    log.warning("database unavailable (%s): answered 503", type(exc).__name__)
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": DATABASE_DOWN}, 503, headers)
    request.state.web_session = None  # the page must not look the session up in the database that is away
    response = pages.page(request, "unavailable.html", 503, user=None, message=DATABASE_DOWN)
    response.headers.update(headers)
    return response


def _unavailable(exc: DBAPIError) -> bool:
    """The database is away or too busy to answer, rather than the app's SQL at fault: SQLite reports
    a query's own faults (no such table or column, a syntax error) as OperationalError too, with its
    generic SQLITE_ERROR code, and those will not pass by trying again."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is None or code & 0xFF != sqlite3.SQLITE_ERROR
