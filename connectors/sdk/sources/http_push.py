"""An HTTP push endpoint: an agency system POSTs records; the answer says whether they are safe.

`POST /v1/records` with `Authorization: Bearer <token>` and a JSON object or array of objects.
The endpoint answers only after the SDK has the broker's confirmation:

- 202: every record is on the agency's inbound topic;
- 422: the body parsed, but some records failed mapping or validation: they are on the
  dead-letter topic, the rest are on the inbound topic; the answer lists each failure;
- 400: the body is not JSON records (it is dead-lettered whole); 401: bad or missing token
  (nothing is produced); 413: body too large; 503: busy, or not confirmed in time: send again
  (event ids are stable, so a resend is recognised as a duplicate).

The HTTP server runs in a thread of its own and hands each request's records to the SDK's run
loop as one stream, so pushing shares the same mapping, producing and dead-letter path as every
other source.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import Any

from aiohttp import web
from pydantic import Field

from connectors.sdk.config import ConfigError, ConnectorConfig
from connectors.sdk.formats import RAW_KEPT_BYTES, ParseError, parse_json
from connectors.sdk.sources.base import IDLE, Item, Source, SourceRecord, StreamEnd

CONFIRM_TIMEOUT_S = 60.0
MAX_QUEUED_RECORDS = 20_000  # beyond this, ask the agency system to retry later rather than buffer more


class HttpPushConfig(ConnectorConfig):
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8088, ge=0, le=65535, description="Port to listen on.")
    path: str = Field("/v1/records", description="Where records are POSTed.")
    token_env: str = Field(description="Environment variable holding the agency's bearer token.")
    max_body_bytes: int = Field(5_000_000, ge=1, description="Largest request body accepted.")
    max_records: int = Field(1000, ge=1, le=MAX_QUEUED_RECORDS,
                             description="Most records one request may carry (more: 413, send smaller requests).")
    batch_size: int = Field(1, ge=1, description="Confirm each request as soon as it is read.")


class HttpPushSource(Source):
    keeps_checkpoints = False  # the agency system resends until it gets a 202

    def __init__(self, config: HttpPushConfig, token: str | None = None) -> None:
        self.config = config
        token = token or os.environ.get(config.token_env, "")
        if not token:
            raise ConfigError(f"set {config.token_env} to the bearer token the agency system sends")
        self._token = token.encode()
        self._inbox: queue.Queue[Item] = queue.Queue()
        self._waiting: dict[str, Future[Sequence[tuple[str, str]]]] = {}
        self._ids = itertools.count(1)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = config.port

    # --- the SDK's side ----------------------------------------------------------------------

    def items(self, checkpoints: dict[str, dict[str, Any]]) -> Iterator[Item]:
        server = threading.Thread(target=self._serve, name="http-push", daemon=True)
        server.start()
        self._ready.wait(timeout=30)
        try:
            while self.running:
                try:
                    yield self._inbox.get(timeout=0.2)
                except queue.Empty:
                    yield IDLE
        finally:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
            server.join(timeout=10)

    def acknowledge(self, end: StreamEnd, dead_lettered: Sequence[tuple[str, str]] = ()) -> None:
        waiter = self._waiting.pop(end.stream, None)
        if waiter is not None:
            waiter.set_result(list(dead_lettered))

    # --- the HTTP side ------------------------------------------------------------------------

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app.router.add_post(self.config.path, self._handle)
        app.router.add_get("/healthz", _healthz)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self.config.host, self.config.port)
        self._loop.run_until_complete(site.start())
        self.port = int(runner.addresses[0][1])  # the bound port, when port 0 asked for a free one
        print(f"listening on http://{self.config.host}:{self.port}{self.config.path}", flush=True)
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        if not self._authorised(request.headers.get("Authorization", "")):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="mash"'})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"body over {self.config.max_body_bytes} bytes"}, status=413)
        if self._inbox.qsize() > MAX_QUEUED_RECORDS:
            return web.json_response({"error": "busy; send again shortly"}, status=503, headers={"Retry-After": "5"})
        request_id = f"push-{next(self._ids)}"
        try:
            records = _records(request_id, body, self.config.max_records)
        except TooManyRecords as exc:  # refused whole, before a record is built: nothing produced
            return web.json_response({"error": f"{exc.count} records in one request; the limit is "
                                               f"{self.config.max_records}: send them in smaller requests"},
                                     status=413)
        waiter: Future[Sequence[tuple[str, str]]] = Future()
        self._waiting[request_id] = waiter
        for record in records:
            self._inbox.put(record)
        self._inbox.put(StreamEnd(request_id, {"n": len(records)}))
        try:
            failures = await asyncio.wait_for(asyncio.wrap_future(waiter), CONFIRM_TIMEOUT_S)
        except TimeoutError:
            return web.json_response({"error": "not confirmed in time; send again"}, status=503)
        if len(records) == 1 and records[0].error is not None:
            return web.json_response({"error": str(records[0].error), "dead_lettered": True}, status=400)
        if failures:
            return web.json_response({"accepted": len(records) - len(failures),
                                      "dead_lettered": [{"record": label, "error": reason}
                                                        for label, reason in failures]}, status=422)
        return web.json_response({"accepted": len(records)}, status=202)

    def _authorised(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


class TooManyRecords(ValueError):
    def __init__(self, count: int) -> None:
        super().__init__(f"{count} records")
        self.count = count


def _records(request_id: str, body: bytes, limit: int = MAX_QUEUED_RECORDS) -> list[SourceRecord]:
    """The request's records; a body that is not JSON records is one record with its error."""
    try:
        parsed = parse_json(body)
    except ParseError as exc:
        return [SourceRecord(request_id, {"n": 0}, f"{request_id}#body", body[:RAW_KEPT_BYTES], None,
                             ParseError(f"the body is not JSON records: {exc}"))]
    items = parsed if isinstance(parsed, list) else [parsed]
    if len(items) > limit:
        raise TooManyRecords(len(items))
    records = []
    for n, item in enumerate(items, start=1):
        raw = json.dumps(item).encode()  # escaped: a lone surrogate in a record cannot break this
        if isinstance(item, dict):
            records.append(SourceRecord(request_id, {"n": n}, f"{request_id}#{n}", raw, item))
        else:
            error = ParseError(f"a JSON object was expected, got {type(item).__name__}")
            records.append(SourceRecord(request_id, {"n": n}, f"{request_id}#{n}", raw, None, error))
    return records or [SourceRecord(request_id, {"n": 0}, f"{request_id}#body", body, None,
                                    ParseError("the body holds no records"))]
