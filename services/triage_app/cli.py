"""`mash triage serve` (the web app) and `mash user add` (its accounts)."""

from __future__ import annotations

import argparse
import sys

from services.triage_app.accounts import APP_ROLES, SHARING_ROLES


def register_serve(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = actions.add_parser("serve", help="run the triage web app (MASH_TRIAGE_HOST/PORT; loopback by default)")
    serve.set_defaults(handler=_serve)


def register_users(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    user = commands.add_parser("user", help="triage app accounts")
    actions = user.add_subparsers(title="actions", required=True)
    add = actions.add_parser("add", help="create an account; prints a generated password unless --password-stdin")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=sorted(APP_ROLES))
    add.add_argument("--sharing-role", choices=SHARING_ROLES,
                     help="whose view of each event the user sees (not for auditors)")
    add.add_argument("--agency", help="a partner agency user's agency (policies/enquiry/agencies.yaml), for "
                     "--role agency_user")
    add.add_argument("--name", help="display name (default: the username)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(handler=_add_user)
    password = actions.add_parser("password", help="set a new password and end every session the user has open; "
                                  "prints a generated one unless --password-stdin")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    password.set_defaults(handler=_set_password)


def _add_user(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from mash.db import engine_for, session_factory
    from mash.settings import get_settings
    from services.enquiry.catalogue import load_catalogue
    from services.triage_app.accounts import AccountError, create_user
    from services.triage_app.passwords import WeakPassword, one_time_password

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else one_time_password()
    try:
        with session_factory(engine_for(get_settings())).begin() as session:
            user = create_user(session, args.username, args.name or args.username, args.role, args.sharing_role,
                               password, datetime.now(UTC), args.agency, tuple(load_catalogue().agencies))
    except (AccountError, WeakPassword) as exc:
        print(f"mash user add: {exc}", file=sys.stderr)
        return 1
    print(f"created {user.username} ({APP_ROLES[user.role]}"
          + (f", sees as {user.sharing_role})" if user.sharing_role else f", {user.agency})" if user.agency else ")"))
    if not args.password_stdin:
        print(f"password: {password}")
    return 0


def _set_password(args: argparse.Namespace) -> int:
    from mash.db import engine_for, session_factory
    from mash.settings import get_settings
    from services.triage_app.accounts import AccountError, set_password
    from services.triage_app.passwords import WeakPassword, one_time_password

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else one_time_password()
    try:
        with session_factory(engine_for(get_settings())).begin() as session:
            set_password(session, args.username, password)
    except (AccountError, WeakPassword) as exc:
        print(f"mash user password: {exc}", file=sys.stderr)
        return 1
    print(f"new password for {args.username}; every session they had open has ended")
    if not args.password_stdin:
        print(f"password: {password}")
    return 0


def _serve(_: argparse.Namespace) -> int:
    import uvicorn

    from mash import logs
    from mash.metrics import register_target
    from mash.settings import get_settings
    from services.triage_app.runtime import ConfigError, behind_proxies, build, returns_inbox, send_in_background

    settings = get_settings()
    logs.configure("triage-app", settings.log_format)
    try:
        app, outbox = build(settings)
    except ConfigError as exc:
        print(f"mash triage serve: {exc}", file=sys.stderr)
        return 2
    from datetime import UTC, datetime

    from services.triage_app.enquiries import chase

    config = app.state.config
    inbox = returns_inbox(settings, config)

    def chase_requests() -> None:
        chase(config.sessions, config.requests_clock(), datetime.now(UTC))

    def read_returns() -> None:
        inbox.poll_once(timeout_ms=500)

    stop = send_in_background(outbox, chase_requests, read_returns)
    print(f"triage app on http://{settings.triage_host}:{settings.triage_port}/ (API: /api/docs)", flush=True)
    host = "127.0.0.1" if settings.triage_host in ("0.0.0.0", "") else settings.triage_host
    register_target(settings.state_dir / "metrics-targets", "triage-app", f"{host}:{settings.triage_port}")
    try:
        # proxy headers are believed from MASH_TRIAGE_TRUSTED_PROXIES only (behind_proxies), never by default
        uvicorn.run(behind_proxies(app, settings), host=settings.triage_host, port=settings.triage_port,
                    log_level="warning", proxy_headers=False, log_config=None)
    finally:
        stop.set()
        outbox.close()
        inbox.close()
    return 0
