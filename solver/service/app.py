"""The HTTP service (shared/spec/SERVICE.md): an ASGI application on Starlette.

    app = create_app(Config(store="decisions.sqlite", workers=2, token="..."))

The endpoints are the rows of solver/service/operations.py.  The event loop
only reads requests, checks them (token, media type, size),
hands the body to a worker process (solver/service/work.py: one warm clingo
per process) and sends the answer back; a `$submit` answer is written to the
store (solver/service/store.py) before it leaves.  Errors are answers:
an OperationOutcome on FHIR paths, `{"error": ...}` elsewhere; never a 500
and never a traceback (an unexpected fault is logged on the server and
answered 503).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Optional

import anyio
from starlette.applications import Starlette
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from solver.service import work
from solver.service.operations import OPERATIONS
from solver.base.procs import guard
from solver.service.records import DamagedRecord, Record, StoreError
from solver.service.sqlstore import SqlStore
from solver.service.store import open_store

LOG = logging.getLogger("pa_solver.service")
MAX_BODY = 16 << 20
READ_TIMEOUT = 20.0
MEDIA = ("application/json", "application/fhir+json")


class Config:
    def __init__(self, store: str = "decisions.sqlite", workers: Optional[int] = None, token: Optional[str] = None,
                 logic_dir=None, plans: Optional[list[str]] = None, time_limit: float = 10.0,
                 max_body: int = MAX_BODY, store_sync: str = "normal", read_timeout: float = READ_TIMEOUT):
        self.store, self.token, self.logic_dir, self.plans = store, token, logic_dir, plans
        self.workers = workers or os.cpu_count() or 1
        self.time_limit, self.max_body, self.store_sync = time_limit, max_body, store_sync
        self.read_timeout = read_timeout


class Pool:
    """Worker processes, each with one warm solver and each in an executor of its own, so that a
    worker that dies fails only the requests it held (503) and it alone is replaced: one shared
    executor breaks whole when one of its processes dies, failing every request in flight (seen:
    16 answered 503 for one killed worker).  A request goes to the worker with the fewest in hand."""

    def __init__(self, config: Config):
        self.config = config
        self._lock = threading.Lock()
        self.executors = [self._new() for _ in range(self.config.workers)]
        self.held = [0] * self.config.workers     # requests each worker holds (touched on the event loop only)
        self.closed = False

    def _new(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
        pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=work.init,
                                   initargs=(self.config.logic_dir, self.config.plans, os.getpid()))
        guard(pool)         # a worker killed while sending its answer would otherwise leave it waiting for good
        return pool

    def warm(self) -> None:
        """Start every worker and build its solver before the first request."""
        futures = [ex.submit(work.ready) for ex in self.executors]
        for f in futures:
            f.result()

    async def run(self, *args) -> work.Answer:
        held = self.held
        i = held.index(min(held))
        executor = self.executors[i]
        held[i] += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, work.handle, *args)
        except BrokenProcessPool:
            with self._lock:
                if self.executors[i] is executor and not self.closed:     # the first to see it replaces it
                    fresh = self._new()
                    fresh.submit(work.ready)            # its solver is built before its next request comes
                    self.executors[i] = fresh
                    executor.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            held[i] -= 1

    def close(self, grace: float = 10.0) -> None:
        """Stop taking work, let each worker finish what it holds (at most `grace` seconds), then
        end any that has not: a stop never hangs on a stuck solve."""
        with self._lock:
            self.closed = True
            executors = list(self.executors)
        procs = [p for ex in executors for p in list((ex._processes or {}).values())]
        for ex in executors:
            ex.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                p.kill()


class _ResourceId(StringConvertor):
    """A resource id in a path: never an operation (`$name`), so that a GET on a POST-only operation
    such as /fhir/Questionnaire/$next-question is a wrong method (405), not a read of a resource
    called "$next-question" (404)."""
    regex = "[^/$][^/]*"


register_url_convertor("resource_id", _ResourceId())


def _fhir_path(path: str) -> bool:
    return path.startswith("/fhir/")


def _error(path: str, status: int, code: str, message: str, headers: Optional[dict] = None) -> Response:
    op = "fhir" if _fhir_path(path) else "json"
    a = work.error_body(op, status, code, message)
    return Response(a.body, status_code=status, media_type=a.media, headers=headers)


class Service:
    def __init__(self, config: Config):
        self.config = config
        self.pool: Optional[Pool] = None
        self.store: Optional[SqlStore] = None
        self.rules_version = ""
        self.draining = False

    # ------------------------------------------------------------ life
    async def startup(self) -> None:
        from solver.rules.files import rules_version

        self.rules_version = rules_version(self.config.logic_dir) if self.config.logic_dir else rules_version()
        self.store = open_store(self.config.store, self.config.store_sync)
        self.pool = Pool(self.config)
        await asyncio.get_running_loop().run_in_executor(None, self.pool.warm)
        # what the event loop itself answers (CDS Hooks discovery, the hook's checks, metadata, OpenAPI),
        # imported and built now: the first such request would otherwise hold every request for a second
        from solver.fhir import crd
        from solver.service import metadata, openapi
        from solver.rules.declared import of

        crd.services(of(self.config.logic_dir))
        metadata.capability_statement(self.rules_version)
        openapi.document(self.config.logic_dir)

    async def shutdown(self) -> None:
        self.draining = True
        if self.pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.pool.close)
        if self.store is not None:
            self.store.close()

    # ------------------------------------------------------------ checks
    def _authorized(self, request: Request) -> bool:
        if self.config.token is None:
            return True
        got = request.headers.get("authorization", "")
        scheme, _, value = got.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.config.token.encode())

    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_body
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise HTTPException(413 if declared.isdigit() else 400,
                                f"the body is over the limit of {limit} bytes" if declared.isdigit()
                                else "Content-Length is not a number")
        chunks, size = [], 0
        try:
            # the whole body within the deadline: a body that trickles or stops would hold its
            # connection (and its memory) for as long as the client likes
            with anyio.fail_after(self.config.read_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HTTPException(413, f"the body is over the limit of {limit} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            raise HTTPException(408, f"the body did not arrive within {self.config.read_timeout:g} s",
                                headers={"Connection": "close"}) from None
        return b"".join(chunks)

    def _require_token(self, request: Request) -> None:
        if not self._authorized(request):
            raise HTTPException(401, "a valid bearer token is required (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": 'Bearer realm="pa-solver"'})

    async def _checked(self, request: Request) -> bytes:
        self._require_token(request)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in MEDIA:
            raise HTTPException(415, f"the body must be JSON (Content-Type application/json or application/fhir+json), "
                                     f"not {media or 'none'!r}")
        return await self._body(request)

    # ------------------------------------------------------------ answering
    async def answer(self, request: Request, op: str, extra: Optional[dict] = None,
                     body: Optional[bytes] = None) -> Response:
        body = await self._checked(request) if body is None else body
        params = {**dict(request.query_params), "base_url": str(request.base_url), **(extra or {})}
        if self.draining:
            return _error(request.url.path, 503, "transient", "the server is shutting down; try again later")
        try:
            got = await self.pool.run(op, body, params, self.config.time_limit)
        except BrokenProcessPool:
            return _error(request.url.path, 503, "transient",
                          "the solver process answering this request was lost; try again")
        except RuntimeError:            # the pool no longer takes work: the server is stopping
            return _error(request.url.path, 503, "transient", "the server is shutting down; try again later")
        if got.record is not None and got.status == 200:
            rec = Record(kind=got.record["kind"], request=body, answer=got.body, media_type=got.media,
                         rules_version=got.record["rules_version"], decisions=got.record["decisions"],
                         submission=got.record.get("submission"))
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.store.record, rec)
            except StoreError as err:
                LOG.error("%s", err)
                return _error(request.url.path, 503, "transient",
                              "the decision could not be recorded, so it is not answered; try again")
        return Response(got.body, status_code=got.status, media_type=got.media)

    async def inquire(self, request: Request) -> Response:
        from solver.text.jsontext import NotJSON, loads

        body = await self._checked(request)
        try:
            obj = loads(body)
        except NotJSON as err:
            return _error(request.url.path, 400, "invalid", f"the body is {err}")
        claim = None
        if isinstance(obj, dict) and obj.get("resourceType") == "Bundle" and isinstance(obj.get("entry"), list):
            claim = next((e.get("resource") for e in obj["entry"] if isinstance(e, dict)
                          and isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == "Claim"),
                         None)
        elif isinstance(obj, dict) and obj.get("resourceType") == "Claim":
            claim = obj
        if claim is None:
            return _error(request.url.path, 422, "not-supported",
                          "$inquire takes a PAS inquiry Bundle holding the Claim whose identifier names a submission")
        try:
            key = work.claim_key(claim)
        except work.Refused as err:
            return _error(request.url.path, err.status, err.code, str(err))
        if key is None:
            return _error(request.url.path, 400, "required", "Claim.identifier: names the submission to inquire about")
        try:
            found = await asyncio.get_running_loop().run_in_executor(None, self.store.submission, key)
        except DamagedRecord as err:
            # said, never sent (SERVICE.md, "Nothing lost"); one line for the operator, who runs `audit`
            LOG.error("$inquire %s: %s", key, err)
            return _error(request.url.path, 503, "exception",
                          f"the record of submission {key.split('|', 1)[1]!r} (identifier system "
                          f"{key.split('|', 1)[0] or 'none'!r}) is damaged, so it is not sent: {err.reason}")
        except StoreError as err:
            LOG.error("$inquire %s: %s", key, err)
            return _error(request.url.path, 503, "transient", "the record could not be read; try again")
        if found is None:
            return _error(request.url.path, 404, "not-found", f"no submission {key.split('|', 1)[1]!r} "
                                                                f"(identifier system {key.split('|', 1)[0] or 'none'!r})")
        return Response(found[0], status_code=200, media_type=found[1])

    async def cds_discovery(self, request: Request) -> Response:
        from solver.text.jsontext import dump_text
        from solver.fhir.crd import services

        from solver.rules.declared import of

        return Response(dump_text(services(of(self.config.logic_dir))) + "\n", media_type="application/json")

    async def cds_hook(self, request: Request) -> Response:
        from solver.text.jsontext import NotJSON, loads
        from solver.fhir.crd import HOOKS

        sid = request.path_params["service_id"]
        if sid not in HOOKS.values():
            raise HTTPException(404)
        body = await self._checked(request)
        try:
            obj = loads(body)
        except NotJSON as err:
            return _error(request.url.path, 400, "invalid", f"the body is {err}")
        hook = obj.get("hook") if isinstance(obj, dict) else None
        if HOOKS.get(hook) != sid:
            return _error(request.url.path, 400, "invalid", f"hook: {hook!r} is not the hook of service {sid}")
        return await self.answer(request, "crd", {"hook_instance": str(obj.get("hookInstance"))}, body)

    async def fhir_questionnaire(self, request: Request) -> Response:
        """GET: no body to check, only the token; then answered as every operation is (a lost
        solver process, a stopping server: 503)."""
        self._require_token(request)
        return await self.answer(request, "fhir_questionnaire", {"id": request.path_params["id"]}, b"")

    async def health(self, request: Request) -> Response:
        from solver.text.jsontext import dump_text

        return Response(dump_text({"status": "draining" if self.draining else "ok",
                                   "rules_version": self.rules_version}), media_type="application/json",
                        status_code=503 if self.draining else 200)

    async def metadata(self, request: Request) -> Response:
        from solver.service.metadata import capability_statement

        return Response(capability_statement(self.rules_version), media_type=work.FHIR_JSON)

    async def openapi(self, request: Request) -> Response:
        from solver.service.openapi import document

        return Response(document(self.config.logic_dir), media_type="application/json")


def create_app(config: Config) -> Starlette:
    svc = Service(config)

    def op(name: str):
        async def endpoint(request: Request) -> Response:
            return await svc.answer(request, name)
        return endpoint

    routes = [Route(o.path, getattr(svc, o.endpoint) if o.endpoint else op(o.name), methods=list(o.methods))
              for o in OPERATIONS]

    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {401: "security", 404: "not-found", 405: "not-supported", 408: "timeout", 413: "too-long",
                415: "not-supported"}.get(exc.status_code, "invalid")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            detail = f"no endpoint {request.url.path!r} (see /openapi.json)"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return _error(request.url.path, exc.status_code, code, detail, headers=exc.headers)

    async def disconnected(request: Request, exc: Exception) -> Response:
        return _error(request.url.path, 400, "incomplete", "the client went away before the body was read")

    async def unexpected(request: Request, exc: Exception) -> Response:
        LOG.exception("unexpected fault answering %s %s", request.method, request.url.path)
        return _error(request.url.path, 503, "exception", "the server could not answer this request (logged); "
                                                          "try again")

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        await svc.startup()
        try:
            yield
        finally:
            await svc.shutdown()

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, ClientDisconnect: disconnected,
                                        Exception: unexpected})
    app.state.service = svc
    return app
