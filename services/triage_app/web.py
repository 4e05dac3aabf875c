"""The triage web app (FastAPI): server-rendered pages for staff and a JSON API for the same actions.

Security is part of correctness here: every page and call needs a logged-in user (401 without),
each action checks the user's role (403), every form and API write carries the session's CSRF
token, pages are escaped by Jinja2's autoescape and served with a strict Content Security Policy
(no inline script), and a user sees of each event only their sharing role's view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.middleware.sessions import SessionMiddleware

from services.triage_app import api, pages
from services.triage_app.web_session import AppConfig

SESSION_HOURS = 9  # a shift
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def create_app(config: AppConfig) -> FastAPI:
    app = FastAPI(title="MASH triage", version="1", docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="The MASH triage queue: alerts, a child's timeline as your role may see it, claims "
                              "and decisions. Log in with POST /api/login; send the returned csrf_token as "
                              "X-CSRF-Token on every POST.")
    app.state.config = config
    app.add_middleware(SessionMiddleware, secret_key=config.secret_key, session_cookie="mash_session",
                       max_age=SESSION_HOURS * 3600, same_site="strict", https_only=config.secure_cookies)
    app.middleware("http")(_security_headers)
    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    app.add_api_route("/healthz", _healthz, include_in_schema=False)
    app.add_api_route("/readyz", _readyz, include_in_schema=False)
    return app


async def _security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    response.headers.update(HEADERS)
    return response


def _healthz() -> dict[str, str]:
    return {"status": "alive"}


def _readyz(request: Request) -> JSONResponse:
    try:
        with request.app.state.config.sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - not ready, and say why
        return JSONResponse({"status": "not ready", "database": type(exc).__name__}, 503)
    return JSONResponse({"status": "ready"})
