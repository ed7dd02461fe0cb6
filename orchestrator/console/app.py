"""The console's HTTP routes (Starlette): pages, live updates, `/metrics`, approve and reject.

Shell code around the pure pages. With ``auth`` on, every request needs HTTP Basic credentials
of a NATS user of the instance (checked by logging in to the server with them, remembered for a
minute), and only ``admin`` may approve or reject; the console appends nothing itself: a
judgement goes through the write side (`Orchestrator.approve`/`reject`), which checks it like the
CLI's. Ids travel as query parameters, so any id reaches its page.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from orchestrator.console import pages, prom
from orchestrator.console.html import esc, frame, not_found
from orchestrator.console.state import ConsoleState
from orchestrator.console.taskpage import task_page
from orchestrator.decision.decide import DeciderConfig
from orchestrator.decision.why import why
from orchestrator.errors import OrchestratorError
from orchestrator.reports.queries import build_status
from orchestrator.reports.snapshot import task_row

ADMIN = "admin"
LOGIN_TTL_S = 60.0
JUDGED_WAIT_S = 5.0  # how long a judgement's redirect waits for the views to show it


@dataclass(frozen=True)
class ConsoleSettings:
    """Where the console reaches NATS, where it listens, and whether requests need credentials."""

    nats_url: str
    host: str = "127.0.0.1"
    port: int = 8480
    auth: bool = False


class Logins:
    """HTTP Basic credentials checked against the NATS server (a login with them), cached briefly."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self._ok: dict[str, float] = {}

    async def user_of(self, request: Request) -> str | None:
        """The NATS user the request proves it is, or None."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        key = hashlib.sha256(header.encode()).hexdigest()
        if self._ok.get(key, 0.0) > time.monotonic():
            return user
        if await self._login(user, password):
            self._ok[key] = time.monotonic() + LOGIN_TTL_S
            return user
        return None

    async def _login(self, user: str, password: str) -> bool:
        import nats.errors

        from orchestrator.runtime.connection import connect

        async def refused(_: Exception) -> None:  # a wrong login is an answer here, not an error to log
            return None

        try:
            nc = await connect(self.nats_url, user=user, password=password, error_cb=refused,
                               allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0)  # fmt: skip
        except (nats.errors.Error, OSError, TimeoutError):
            return False
        await nc.close()
        return True


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status)


async def _form(request: Request) -> dict[str, str]:
    """An url-encoded form's fields (the console's forms are plain posts; no multipart needed)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


Judge = Callable[[str, str, str, str, str], Awaitable[int]]
Handler = Callable[[Request, str | None], Awaitable[Response]]


def build_app(settings: ConsoleSettings, state: ConsoleState, judge: Judge) -> Starlette:
    """The routes over a started `ConsoleState`; ``judge(verb, graph, task, by, reason)`` appends
    through the write side."""
    h = Handlers(settings, state, judge)
    get = {"/": h.runs, "/graph": h.graph, "/task": h.task, "/nodes": h.nodes, "/trust": h.trust,
           "/metrics": h.metrics, "/live": h.live}  # fmt: skip
    routes = [Route(path, h.guarded(f)) for path, f in get.items()]
    routes += [Route(f"/{verb}", h.guarded(h.judgement(verb)), methods=["POST"]) for verb in ("approve", "reject")]
    return Starlette(routes=routes)


def _fragment(request: Request) -> bool:
    return request.headers.get("x-niyantra-fragment") == "1"


class Handlers:
    """One method per page: each reads the console's state and renders a pure page."""

    def __init__(self, settings: ConsoleSettings, state: ConsoleState, judge: Judge) -> None:
        self.settings, self.state, self.judge = settings, state, judge
        self.logins = Logins(settings.nats_url)
        self.config = DeciderConfig()

    def guarded(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the credentials check when auth is on."""

        async def route(request: Request) -> Response:
            user = await self.logins.user_of(request) if self.settings.auth else None
            if self.settings.auth and user is None:
                return Response("credentials required", 401, {"WWW-Authenticate": 'Basic realm="niyantra"'})
            return await handler(request, user)

        return route

    async def runs(self, request: Request, user: str | None) -> Response:
        report = build_status(self.state.mirrors[0].values, self.state.mirrors[0].seq)
        return _html(pages.runs_page(report.graphs, _fragment(request)))

    async def graph(self, request: Request, user: str | None) -> Response:
        gid = request.query_params.get("id", "")
        report = build_status(self.state.mirrors[0].values, self.state.mirrors[0].seq, graph=gid)
        if not report.graphs:
            return _html(not_found(f"no graph {gid!r}"), 404)
        events = self.state.graph_events(gid)
        return _html(pages.graph_page(report.graphs[0], report.tasks, events, _fragment(request)))

    async def task(self, request: Request, user: str | None) -> Response:
        gid, tid = request.query_params.get("graph", ""), request.query_params.get("task", "")
        views = self.state.views()
        t = views.tasks.get((gid, tid))
        if t is None:
            return _html(not_found(f"no task {tid!r} in graph {gid!r}"), 404)
        now = datetime.now(UTC)
        row = task_row(t, views, now, self.config, {})
        log_text = await self.state.log_text(gid, tid)
        the_why = why(t, views, now, self.config)
        return _html(task_page(gid, tid, row, the_why, self.state.task_events(gid, tid), log_text, _fragment(request)))

    async def nodes(self, request: Request, user: str | None) -> Response:
        from orchestrator.decision.flags import flagged_patterns

        views = self.state.views()
        flagged = flagged_patterns(views.nodes, views.patterns, datetime.now(UTC), self.config.scoring)
        kinds = ("NodeScaleUpProposed", "NodeScaleDownProposed")
        proposals = [(at, e) for _, at, e in self.state.rows if type(e).__name__ in kinds][-20:]
        since = views.health.scale_up if views.health is not None else None
        return _html(pages.nodes_page(views.nodes, flagged, _fragment(request), proposals, since))

    async def trust(self, request: Request, user: str | None) -> Response:
        views = self.state.views()
        summary = self.state.mirrors[2].values.get("summary")
        history = [(at, e) for _, at, e in self.state.rows if type(e).__name__ == "AutonomyChanged"]
        waiting = sorted((t for t in views.tasks.values() if t.awaiting_approval and t.state == "pending"),
                         key=lambda t: (t.graph_id, t.task_id))  # fmt: skip
        can = (not self.settings.auth) or user == ADMIN
        return _html(pages.trust_page(summary, history, waiting, can_judge=can, fragment=_fragment(request)))

    def judgement(self, verb: str) -> Handler:
        """The POST handler of ``verb`` (approve or reject): admin only with auth, through the write side."""

        async def post(request: Request, user: str | None) -> Response:
            if self.settings.auth and user != ADMIN:
                return _html(frame("refused", f"<p>only {ADMIN} may {verb}</p>", live=False), 403)
            form = await _form(request)
            g, t = form.get("graph", ""), form.get("task", "")
            by, reason = form.get("by", "").strip(), form.get("reason", "")
            if not by:
                return _html(frame("refused", "<p>say who you are (by)</p>", live=False), 400)
            try:
                seq = await self.judge(verb, g, t, by, reason)
            except OrchestratorError as e:  # the write side's refusal, shown to the person
                return _html(frame("refused", f"<p>{type(e).__name__}: {esc(str(e))}</p>", live=False), 409)
            await self.state.wait_view(seq, JUDGED_WAIT_S)  # show the panel with the judgement applied, if soon
            return RedirectResponse("/trust", status_code=303)

        return post

    async def metrics(self, request: Request, user: str | None) -> Response:
        views, st = self.state.views(), self.state
        fams = prom.families(tasks=views.tasks.values(), nodes=views.nodes, summary=st.mirrors[2].values.get("summary"),
                             rows=st.rows, malformed=st.malformed, head=st.head, view_seqs=st.view_seqs())  # fmt: skip
        return Response(prom.exposition(fams), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def live(self, request: Request, user: str | None) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            seen = -1
            while not await request.is_disconnected():
                seen = await self.state.wait_change(seen, timeout=15.0)
                yield f"data: {seen}\n\n".encode()
                await asyncio.sleep(0.5)  # at most two refreshes a second, however fast the log moves

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def event_id(verb: str) -> str:
    """A new event id for a person's judgement (the shell makes ids; the core never does)."""
    return f"{verb}:{uuid.uuid4().hex}"
