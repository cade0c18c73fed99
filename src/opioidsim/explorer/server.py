"""The explorer's web server: a static page and a small JSON API (standard library only).

Endpoints (all JSON; POST bodies must be ``application/json``):

- ``GET /``, ``GET /static/app.js``, ``GET /static/app.css``: the page.
- ``GET /api/pages``: the registered pages (controls, defaults, panels), the limits, the built-in
  scenarios and the research notice.
- ``POST /api/check`` ``{page, params}`` or ``{page, toml, subjects?, seed?}``: validate; returns
  ``{toml, name}`` (the scenario a download saves) or a 400 error.
- ``POST /api/run``: the same body; queues a run and returns ``{job, toml, name}`` (202).
- ``GET /api/jobs/ID``: ``{status, progress, result | error}``; ``POST /api/jobs/ID/cancel``.
- ``POST /api/load`` ``{toml, filename}`` or ``{builtin}``: read a scenario file into the explorer:
  ``{page, params}`` when the page's controls can rebuild it exactly, else ``{page, params: null,
  toml}`` (it then runs as written).

An error is ``{"error": {"message", "field", "control"}}``: the message is the scenario schema's
(field, value, what is allowed); ``control`` names the page control it came from, if any.
Bound to 127.0.0.1 by default; then requests must name the host as localhost or 127.0.0.1
(a page on another site cannot reach the API through DNS rebinding), and because POST bodies must
be JSON, another site's form cannot start runs either.
"""
from __future__ import annotations

import ipaddress
import json
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Optional

from opioidsim.errors import ScenarioError
from opioidsim.explorer import pages as P
from opioidsim.explorer.jobs import Busy, JobManager

__all__ = ["ExplorerServer", "make_server", "RESEARCH_NOTICE"]

RESEARCH_NOTICE = ("Research and teaching only. opioidsim is a simplified model with assumed and fitted "
                   "parameters: it is not medical advice and never a dosing guide. A simulated dose and its "
                   "outcome say nothing about what is safe for any person. If you or someone near you uses "
                   "opioids, seek local harm-reduction and medical services.")

MAX_BODY = 256 * 1024
_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_JOB_PATH = re.compile(r"^/api/jobs/([0-9a-f]{16})(/cancel)?$")


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: Optional[str] = None, control: Optional[str] = None):
        super().__init__(message)
        self.status, self.message, self.field, self.control = status, message, field, control

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "field": self.field, "control": self.control}}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ExplorerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, jobs: Optional[JobManager] = None, quiet: bool = True):
        super().__init__(address, Handler)
        self.jobs = jobs or JobManager()
        self.quiet = quiet
        self.loopback = _is_loopback(address[0])

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"

    def server_close(self) -> None:
        jobs = getattr(self, "jobs", None)  # absent when binding the address failed
        if jobs is not None:
            jobs.shutdown()
        super().server_close()

    # -- warm-up -------------------------------------------------------------------------------
    def warm_up(self) -> list[str]:
        """Queue low-priority runs that compile the engine for the shapes the pages use first (the
        default of each page; then the bigger acute cohorts). Returns the job ids."""
        from opioidsim.scenarios import Dose

        ids = []
        plans: list[tuple[P.Page, Any]] = []
        for page in P.pages():
            if page.study is not None:  # a study runs for minutes and a started job is not preempted:
                continue                # warming it here would hold up the first runs of the other pages
            scenario = page.build(page.defaults()).scenario
            if page.auto_run:
                plans.append((page, scenario))
            else:  # a slow page: compile its shape on a short run with the same number of doses
                events = len(scenario.dose_schedule())
                short = scenario.model_copy(update={
                    "duration": f"{events + 30}min", "record_every": "15min",
                    "doses": [Dose(scenario.doses[0].drug, "0.01 mg", route=scenario.doses[0].route, at="0min",
                                   every="1min", until=f"{events}min")]})
                plans.append((page, short))
        for page in P.pages():
            if page.auto_run:
                base = page.build(page.defaults()).scenario
                for bucket in page.cohort_buckets[1:]:
                    cohort = base.cohort.model_copy(update={"subjects": bucket})
                    plans.append((page, base.model_copy(update={"cohort": cohort})))
        for page, scenario in plans:
            job = self.jobs.submit(_runner(page, scenario, summarise=False), label="warm-up", warmup=True)
            ids.append(job.id)
        for page in P.pages():
            if page.warmup is not None:
                ids.append(self.jobs.submit(page.warmup, label="warm-up", warmup=True).id)
        return ids


def make_server(host: str = "127.0.0.1", port: int = 8765, *, warmup: bool = True,
                jobs: Optional[JobManager] = None, quiet: bool = True) -> ExplorerServer:
    """A ready explorer server (not yet serving: call ``serve_forever()``)."""
    server = ExplorerServer((host, port), jobs=jobs, quiet=quiet)
    if warmup:
        threading.Thread(target=server.warm_up, name="opioidsim-explorer-warmup", daemon=True).start()
    return server


def _runner(page: P.Page, scenario: Any, design: Optional[dict[str, Any]] = None, *, summarise: bool = True):
    def run(progress):
        from opioidsim.engine.core import simulate

        if page.study is not None:
            result = page.study(scenario, design or {}, progress)
            return {**result, "toml": scenario.to_toml()} if summarise else None

        sim, n = page.sim_scenario(scenario)
        ds = simulate(sim, progress=progress)
        if not summarise:
            return None
        ds = ds.isel(subject=slice(0, n))
        return {**page.result(ds, scenario), "toml": scenario.to_toml()}

    return run


# ---------------------------------------------------------------------------------------------
# request handling
# ---------------------------------------------------------------------------------------------
def _scenario_from_body(body: dict[str, Any]) -> tuple[P.Page, Any, Optional[dict[str, str]], dict[str, Any]]:
    """(page, scenario, field → control, a study page's design) from a request body; raises ApiError."""
    from opioidsim.scenarios import Scenario

    try:
        page = P.get_page(body.get("page"))
        if "toml" in body and body.get("params") is None and page.study is not None and not page.course:
            raise ScenarioError("<file>", body.get("filename") or "scenario file",
                                f"the {page.title.lower()} page runs from its own controls, not from a scenario file")
        if "toml" in body and body.get("params") is None:  # a loaded file, run as written
            text = body["toml"]
            if not isinstance(text, str):
                raise ScenarioError("<file>", text, "the scenario must be TOML text")
            scenario = Scenario.from_toml_text(text, source=str(body.get("filename") or "scenario file"))
            changes = {k: P._int_or_raw(body[k]) for k in ("subjects", "seed") if body.get(k) not in (None, "")}
            if changes:
                data = scenario.to_toml_dict()
                data["cohort"] = {**data["cohort"], **changes}
                scenario = Scenario.from_toml_dict(data)
            if P.course_of(scenario) != page.course:  # e.g. a dose list sent to the animal lab
                raise ScenarioError("<file>", body.get("filename") or "scenario file",
                                    f"the page '{page.title}' shows "
                                    f"{P.COURSES.get(page.course, 'scenarios with a dose list')}: open this file "
                                    "with 'Load a scenario file' and it goes to its own page")
            P.check_limits(scenario)
            return page, scenario, {"cohort.subjects": "subjects", "cohort.seed": "seed"}, {}
        built = page.build(body.get("params"))
        return page, built.scenario, built.fields, built.design
    except ScenarioError as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, str(exc), exc.field, _control_of(body, exc.field)) from None


def _control_of(body: dict[str, Any], field: str) -> Optional[str]:
    """The page control a scenario field (or an explorer field) came from, if any."""
    try:
        page = P.get_page(body.get("page"))
    except ScenarioError:
        return None
    if field in page.defaults():  # an explorer field (control_error names its control)
        return field
    params = body.get("params")
    if not isinstance(params, dict):
        return {"cohort.subjects": "subjects", "cohort.seed": "seed"}.get(field)
    try:
        _, fields = page.build_data({**page.defaults(), **params})
    except Exception:  # the control error itself: fall back to the common fields
        _, fields = page.build_data(page.defaults())
    return fields.get(field)


def _pages_view() -> dict[str, Any]:
    from opioidsim import __version__
    from opioidsim.scenarios import builtin_scenarios

    return {"pages": [p.spec() for p in P.pages()], "limits": P.LIMITS, "notice": RESEARCH_NOTICE,
            "version": __version__, "builtins": _shown_builtins()}


def _shown_builtins() -> dict[str, str]:
    """Built-in scenarios a page can show (name → description)."""
    from opioidsim.scenarios import builtin_scenarios, load_scenario

    shown = {}
    for name, description in builtin_scenarios().items():
        try:
            P.check_supported(load_scenario(name))
        except ScenarioError:
            continue
        shown[name] = description
    return shown


def _load(body: dict[str, Any]) -> dict[str, Any]:
    from opioidsim.scenarios import Scenario, load_scenario

    try:
        if body.get("builtin") is not None:
            name = body["builtin"]
            from opioidsim.scenarios import builtin_scenarios

            if name not in builtin_scenarios():
                raise ScenarioError("<name>", name, f"not a built-in scenario; built-in: "
                                    f"{', '.join(builtin_scenarios())}")
            scenario = load_scenario(name)
        else:
            text = body.get("toml")
            if not isinstance(text, str):
                raise ScenarioError("<file>", text, "the scenario file must be TOML text")
            filename = str(body.get("filename") or "scenario file")
            stem = re.sub(r"\.toml$", "", filename.rsplit("/", 1)[-1])
            scenario = Scenario.from_toml_text(text, source=filename, default_name=stem)
        P.check_supported(scenario)
    except ScenarioError as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, str(exc), exc.field) from None
    page, params = P.page_for_scenario(scenario)
    return {"page": page.id, "params": params, "toml": scenario.to_toml(), "name": scenario.name,
            "subjects": scenario.cohort.subjects, "seed": scenario.cohort.seed,
            "doses": len(scenario.dose_schedule()), "duration": scenario.duration, "what": _what(scenario)}


def _what(scenario: Any) -> str:
    """A course file in a few words (the browser says what it loaded); "" for a dose list."""
    if scenario.paradigm is not None:
        sessions = sum(ph.sessions for ph in scenario.paradigm.phases if ph.kind != "abstinence")
        return (f"an animal experiment: {len(scenario.paradigm.phases)} phases, {sessions} sessions over "
                f"{scenario.duration_min / 1440:.0f} days")
    if scenario.trial is not None:
        t = scenario.trial
        return f"a trial: {len(t.arms)} arms ({', '.join(a.name for a in t.arms)}), {t.follow_up_weeks} weeks"
    return ""


class Handler(BaseHTTPRequestHandler):
    server: ExplorerServer
    server_version = "opioidsim-explorer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if not self.server.quiet:
            super().log_message(format, *args)

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; "
                         "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, allow_nan=False).encode("utf-8"), "application/json")

    def _check_host(self) -> None:
        if not self.server.loopback:
            return
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        if name not in ("localhost", "127.0.0.1", "[::1]"):
            raise ApiError(HTTPStatus.FORBIDDEN, f"host {host!r} is not allowed: open the explorer at "
                                                 f"{self.server.url}")

    def _body(self) -> dict[str, Any]:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the request body as application/json")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if length > MAX_BODY:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"the request is {length:,} bytes; at most {MAX_BODY:,} (a scenario file is far smaller)")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
        return body

    def _handle(self, method: str) -> None:
        try:
            self._check_host()
            path = self.path.split("?", 1)[0]
            if method in ("GET", "HEAD"):
                self._get(path)
            else:
                self._post(path)
        except ApiError as exc:
            if method == "POST":
                self._drain()
            self._json(exc.status, exc.body())
        except Exception as exc:  # a bug: report it, keep serving
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                       {"error": {"message": f"internal error: {type(exc).__name__}: {exc}", "field": None,
                                  "control": None}})

    def _drain(self) -> None:
        """Read an unread request body so that the connection stays in step."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= MAX_BODY and not getattr(self, "_body_read", False):
            try:
                self.rfile.read(length)
            except OSError:
                pass
        elif length > MAX_BODY:
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    # -- routes --------------------------------------------------------------------------------
    def _get(self, path: str) -> None:
        static = resources.files("opioidsim.explorer").joinpath("static")
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, static.joinpath("index.html").read_bytes(), "text/html; charset=utf-8")
        elif path.startswith("/static/") and path[len("/static/"):] in _STATIC:
            name = path[len("/static/"):]
            self._send(HTTPStatus.OK, static.joinpath(name).read_bytes(), _STATIC[name])
        elif path == "/api/pages":
            self._json(HTTPStatus.OK, _pages_view())
        elif (m := _JOB_PATH.match(path)) and not m.group(2):
            job = self.server.jobs.get(m.group(1))
            if job is None or job.warmup:
                raise ApiError(HTTPStatus.NOT_FOUND, "no such run (finished runs are kept for 10 minutes)")
            self._json(HTTPStatus.OK, job.view())
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        else:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no page at {path!r}")

    def _post(self, path: str) -> None:
        if (m := _JOB_PATH.match(path)) and m.group(2):
            self._drain()
            self._body_read = True
            job = self.server.jobs.get(m.group(1))
            if job is None or job.warmup:
                raise ApiError(HTTPStatus.NOT_FOUND, "no such run")
            self.server.jobs.cancel(job.id)
            self._json(HTTPStatus.OK, job.view())
            return
        if path not in ("/api/check", "/api/run", "/api/load"):
            raise ApiError(HTTPStatus.NOT_FOUND, f"no endpoint at {path!r}")
        body = self._body()
        self._body_read = True
        if path == "/api/load":
            self._json(HTTPStatus.OK, _load(body))
            return
        page, scenario, _, design = _scenario_from_body(body)
        out = {"toml": scenario.to_toml(), "name": scenario.name}
        if path == "/api/check":
            self._json(HTTPStatus.OK, out)
            return
        try:
            job = self.server.jobs.submit(_runner(page, scenario, design), label=f"{page.id}: {scenario.name}")
        except Busy as exc:
            raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, str(exc)) from None
        self._json(HTTPStatus.ACCEPTED, {**out, "job": job.id})
