"""An in-process fake of the Hugging Face Hub HTTP API, for huggingface_hub's real client.

It serves, on 127.0.0.1 at a random port:

* ``GET /api/models``: the listing, filtered by ``filter`` (library or tag), ``pipeline_tag`` and
  ``search``, paged by ``limit`` (capped at :attr:`FakeHub.page_size`) with an offset ``cursor``
  and a ``Link: <...>; rel="next"`` header, as the real Hub does;
* ``HEAD`` and ``GET /{repo_id}/resolve/{revision}/config.json``: what ``hf_hub_download`` needs
  (``X-Repo-Commit``, ``ETag``, ``Content-Length``), or the real error codes (``X-Error-Code``:
  ``GatedRepo`` 401, ``RepoNotFound`` 404, ``RevisionNotFound`` 404, ``EntryNotFound`` 404).

Faults (e.g. a 429 with ``Retry-After``, a 500) can be set per listing page, and every request
is recorded, so a test can assert which pages were listed and which files were downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


@dataclass
class FakeModel:
    """A model repo on the fake Hub.

    ``config`` is served as config.json: a dict (as JSON), a str (raw, e.g. malformed JSON), or
    None (the repo has no config.json). ``gated`` repos refuse downloads; ``missing`` repos are
    listed but their files answer RepoNotFound (deleted after the listing).
    """

    id: str
    sha: str = "0" * 40
    config: dict[str, Any] | str | None = field(default_factory=dict)
    pipeline_tag: str | None = "image-classification"
    library_name: str | None = "transformers"
    tags: list[str] = field(default_factory=list)
    downloads: int = 0
    gated: bool = False
    missing: bool = False

    def listing(self) -> dict[str, Any]:
        """The model as the listing API returns it."""
        return {"_id": hashlib.md5(self.id.encode()).hexdigest()[:24], "id": self.id,
                "sha": self.sha, "pipeline_tag": self.pipeline_tag,
                "library_name": self.library_name, "tags": self.tags, "downloads": self.downloads,
                "likes": 0, "gated": "manual" if self.gated else False,
                "lastModified": "2025-01-01T00:00:00.000Z"}

    def config_bytes(self) -> bytes | None:
        if self.config is None:
            return None
        text = self.config if isinstance(self.config, str) else json.dumps(self.config)
        return text.encode()


@dataclass
class Request:
    """One request the fake Hub served."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    page: int | None = None
    authorized: bool = False


class FakeHub:
    """The fake Hub server. Use :meth:`start` / :meth:`stop`, or the ``hub`` fixture."""

    def __init__(self, page_size: int = 100) -> None:
        self.models: list[FakeModel] = []
        self.requests: list[Request] = []
        self.page_size = page_size
        self.token: str | None = None  # when set, any other bearer token gets a 401
        self.next_base: str | None = None  # where Link: rel="next" points (default: here)
        self.echo_auth = False  # a 400 on the listing whose message repeats the credentials
        self._faults: dict[int, list[Any]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        """The request handler; a subclass serving more routes overrides this."""
        return _make_handler(self)

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, *models: FakeModel) -> None:
        self.models.extend(models)

    def model(self, repo_id: str) -> FakeModel:
        return next(m for m in self.models if m.id == repo_id)

    def fault(self, page: int, status: int, times: int = 1,
              retry_after: int | None = None) -> None:
        """Answer the next ``times`` requests for listing ``page`` with ``status``."""
        self._faults[page] = [status, times, retry_after]

    def heal(self) -> None:
        self._faults.clear()

    # -- what was served ------------------------------------------------------------------

    def pages(self) -> list[int]:
        """Listing pages served successfully, in order."""
        return [r.page for r in self.requests
                if r.path == "/api/models" and r.status == 200 and r.page is not None]

    def listing_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/api/models"]

    def downloads(self) -> list[str]:
        """Repo ids whose config.json was downloaded (GET answered 200)."""
        return [_RESOLVE.match(r.path)["repo"] for r in self.requests
                if r.method == "GET" and r.status == 200 and _RESOLVE.match(r.path)]

    def file_requests(self) -> list[Request]:
        """Every HEAD or GET on a resolve URL."""
        return [r for r in self.requests if _RESOLVE.match(r.path)]

    def clear(self) -> None:
        self.requests.clear()

    # -- request handling -----------------------------------------------------------------

    def _take_fault(self, page: int) -> list[Any] | None:
        with self._lock:
            fault = self._faults.get(page)
            if not fault or fault[1] <= 0:
                return None
            fault[1] -= 1
            return fault

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _listed(self, query: dict[str, list[str]]) -> list[FakeModel]:
        models = self.models
        for wanted in query.get("filter", []):
            models = [m for m in models if wanted in (m.library_name, *m.tags)]
        if "pipeline_tag" in query:
            models = [m for m in models if m.pipeline_tag == query["pipeline_tag"][0]]
        if "search" in query:
            models = [m for m in models if query["search"][0].lower() in m.id.lower()]
        return models


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._route(head=False)

        def do_HEAD(self) -> None:
            self._route(head=True)

        def _route(self, head: bool) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            request = Request(self.command, unquote(parts.path), query, 0,
                              authorized="authorization" in {k.lower() for k in self.headers})
            auth = self.headers.get("Authorization", "")
            if hub.token and auth and auth != f"Bearer {hub.token}":
                self._send(request, 401, b'{"error":"Invalid credentials in Authorization header"}',
                           {"X-Error-Message": "Invalid credentials in Authorization header"},
                           head)
            elif parts.path == "/api/models" and not head and hub.echo_auth:
                self._send(request, 400, b'{"error":"bad request"}',
                           {"X-Error-Message": f"bad request with credentials {auth}"}, head)
            elif parts.path == "/api/models" and not head:
                self._listing(request, query)
            elif match := _RESOLVE.match(request.path):
                self._resolve(request, match, head)
            else:
                self._send(request, 404, b'{"error":"not found"}', {}, head)

        def _listing(self, request: Request, query: dict[str, list[str]]) -> None:
            size = min(int(query.get("limit", [hub.page_size])[0]), hub.page_size)
            offset = int(query.get("cursor", ["0"])[0])
            request.page = offset // size + 1
            fault = hub._take_fault(request.page)
            if fault:
                status, _, retry_after = fault
                headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
                self._send(request, status, b'{"error":"injected fault"}', headers, False)
                return
            models = hub._listed(query)
            body = json.dumps([m.listing() for m in models[offset:offset + size]]).encode()
            headers = {}
            if offset + size < len(models):
                nxt = {k: v for k, v in query.items() if k != "cursor"}
                nxt["cursor"] = [str(offset + size)]
                nxt["limit"] = [str(size)]
                base = hub.next_base or hub.url
                headers["Link"] = f'<{base}/api/models?{urlencode(nxt, doseq=True)}>; rel="next"'
            self._send(request, 200, body, headers, False)

        def _resolve(self, request: Request, match: re.Match, head: bool) -> None:
            model = next((m for m in hub.models if m.id == match["repo"]), None)
            rev = match["rev"]
            if model is None or model.missing:
                self._error(request, 404, "RepoNotFound", "Repository not found", head)
            elif model.gated:
                self._error(request, 401, "GatedRepo", "Access to this model is restricted", head)
            elif rev not in (model.sha, "main"):
                self._error(request, 404, "RevisionNotFound", "Invalid rev id", head)
            elif match["file"] != "config.json" or model.config_bytes() is None:
                self._error(request, 404, "EntryNotFound", "Entry not found", head,
                            {"X-Repo-Commit": model.sha})
            else:
                body = model.config_bytes()
                etag = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
                self._send(request, 200, body, {"X-Repo-Commit": model.sha, "ETag": f'"{etag}"',
                                                "Content-Type": "application/json"}, head)

        def _error(self, request: Request, status: int, code: str, message: str, head: bool,
                   extra: dict[str, str] | None = None) -> None:
            headers = {"X-Error-Code": code, "X-Error-Message": message, **(extra or {})}
            body = json.dumps({"error": message}).encode()
            self._send(request, status, body, headers, head)

        def _send(self, request: Request, status: int, body: bytes, headers: dict[str, str],
                  head: bool) -> None:
            request.status = status
            hub._record(request)
            self.send_response(status)
            if "Content-Type" not in headers:
                self.send_header("Content-Type", "application/json")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler


@pytest.fixture(name="hub")
def fake_hub_fixture(tmp_path, monkeypatch) -> Iterator[FakeHub]:
    """A running fake Hub; huggingface_hub points at it and caches under ``tmp_path``."""
    yield from serve(FakeHub(), tmp_path, monkeypatch)


def serve(hub: FakeHub, tmp_path, monkeypatch) -> Iterator[FakeHub]:
    """Start ``hub``, point huggingface_hub at it (cache under ``tmp_path``, online, no token),
    yield it, then stop it."""
    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    hub.start()
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    close_session()  # the shared client reads proxy settings when it is created
    yield hub
    hub.stop()
    close_session()
