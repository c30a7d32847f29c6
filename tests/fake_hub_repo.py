"""The fake Hub of :mod:`fake_hub`, plus dataset repos (and Spaces, the same routes under
``spaces``) that ``HfApi`` can create, read and commit to.

Served on top of the model listing, with the routes and payloads of the real Hub as
huggingface_hub's client sends and parses them:

* ``POST /api/repos/create`` (409 when the repo exists; a Space needs its ``sdk``), ``POST /api/datasets/{id}/branch/{b}``;
* ``GET /api/datasets/{id}[/revision/{rev}]`` (``sha`` and ``siblings`` with blob ids and LFS
  info) and ``GET /api/datasets/{id}/tree/{rev}[/{path}]``;
* ``POST /api/datasets/{id}/preupload/{rev}``: upload mode (LFS for binary data) and the oid of
  the file already there;
* the LFS batch API ``POST /datasets/{id}.git/info/lfs/objects/batch``, the upload URLs
  (``PUT /lfs-upload/{oid}``, sha256 checked) and ``POST /lfs-verify``;
* ``POST /api/validate-yaml`` (the card header must parse as a YAML mapping);
* ``POST /api/datasets/{id}/commit/{rev}``: the NDJSON commit; a ``parentCommit`` that is not the
  branch head answers 412 "A commit has happened since", an ``lfsFile`` whose bytes were never
  uploaded answers 422;
* ``GET /datasets/{id}/resolve/{rev}/{path}`` for downloads.

Writes need the hub's ``token`` when it is set (401 otherwise, as the Hub does). The client's Xet
transfer is not faked: tests set ``HF_HUB_DISABLE_XET`` and the client uses the LFS protocol.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from fake_hub import FakeHub, Request, _make_handler, serve

_API = re.compile(r"^/api/(?P<kind>datasets|spaces)/(?P<repo>[^/]+/[^/]+?)"
                  r"(?:/(?P<action>revision|tree|preupload|commit|branch)/(?P<rest>.+))?$")
_BATCH = re.compile(r"^/(?P<kind>datasets|spaces)/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/"
                    r"batch$")
_DOWNLOAD = re.compile(r"^/(?P<kind>datasets|spaces)/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/"
                       r"(?P<path>.+)$")
_LFS_SUFFIXES = (".parquet", ".png", ".arrow", ".bin")
_STALE = "A commit has happened since. Please refresh and try again."
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs " \
                b"merge=lfs -text\n"


@dataclass(frozen=True)
class Blob:
    """A file in a commit: its bytes and whether it is stored in LFS."""

    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                f"size {len(self.content)}\n").encode()

    @property
    def blob_id(self) -> str:
        """The git blob id: of the content, or of the LFS pointer file."""
        data = self.pointer if self.lfs else self.content
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def sibling(self, path: str) -> dict[str, Any]:
        entry = {"rfilename": path, "size": len(self.content), "blobId": self.blob_id}
        if self.lfs:
            entry["lfs"] = {"size": len(self.content), "sha256": self.sha256,
                            "pointerSize": len(self.pointer)}
        return entry

    def tree_entry(self, path: str) -> dict[str, Any]:
        entry = {"type": "file", "oid": self.blob_id, "size": len(self.content), "path": path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": len(self.content),
                            "pointerSize": len(self.pointer)}
        return entry


@dataclass(frozen=True)
class Commit:
    """One commit: its id, parent, title and the whole tree."""

    oid: str
    parent: str | None
    title: str
    files: dict[str, Blob]


@dataclass
class FakeRepo:
    """A dataset repo: branches pointing at commits."""

    id: str
    private: bool = False
    kind: str = "datasets"
    """``datasets`` or ``spaces``."""
    sdk: str | None = None
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def head(self, branch: str = "main") -> Commit:
        return self.commits[self.branches[branch]]

    def history(self, branch: str = "main") -> list[Commit]:
        """Commits of ``branch``, newest first."""
        out, oid = [], self.branches[branch]
        while oid is not None:
            out.append(self.commits[oid])
            oid = self.commits[oid].parent
        return out


def key(kind: str, repo_id: str) -> str:
    """Where a repo is kept: a dataset by its id, a Space as ``spaces/<id>``."""
    return repo_id if kind == "datasets" else f"{kind}/{repo_id}"


class FakeDatasetHub(FakeHub):
    """The fake Hub with dataset repos (and Spaces). Use the ``dataset_hub`` fixture."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.lfs: dict[str, bytes] = {}
        self.race: tuple[str, str, bytes] | None = None
        self.commit_headers: list[dict[str, Any]] = []  # the header line of every commit request
        self._ids = itertools.count(1)
        super().__init__()

    def _handler_class(self):
        return _make_repo_handler(self)

    # -- what tests look at -------------------------------------------------------------------

    def repo(self, repo_id: str, kind: str = "datasets") -> FakeRepo:
        return self.repos[key(kind, repo_id)]

    def files(self, repo_id: str, branch: str = "main", kind: str = "datasets"
              ) -> dict[str, bytes]:
        return {p: b.content for p, b in self.repo(repo_id, kind).head(branch).files.items()}

    def commit_requests(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and "/commit/" in r.path]

    def uploads(self) -> list[Request]:
        return [r for r in self.requests if r.method == "PUT"]

    def commit_concurrently(self, repo_id: str, path: str, content: bytes) -> None:
        """Make someone else's commit land on main just before the next preupload request."""
        self.race = (repo_id, path, content)

    # -- state changes ------------------------------------------------------------------------

    def create(self, repo_id: str, private: bool = False, kind: str = "datasets",
               sdk: str | None = None) -> FakeRepo:
        repo = FakeRepo(repo_id, private, kind, sdk)
        self.repos[key(kind, repo_id)] = repo
        self.apply(repo, "main", "initial commit", {".gitattributes": Blob(GITATTRIBUTES, False)})
        return repo

    def apply(self, repo: FakeRepo, branch: str, title: str, added: dict[str, Blob],
              deleted: tuple[str, ...] = ()) -> Commit:
        parent = repo.branches.get(branch)
        files = dict(repo.commits[parent].files) if parent else {}
        for path in deleted:
            files = {p: b for p, b in files.items() if p != path and not p.startswith(path + "/")}
        files.update(added)
        oid = hashlib.sha1(f"{parent}\n{title}\n{next(self._ids)}".encode()).hexdigest()
        commit = Commit(oid, parent, title, files)
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit

    def _run_race(self, repo_id: str) -> None:
        with self._lock:
            race, self.race = self.race, None
        if race and race[0] == repo_id and repo_id in self.repos:
            self.apply(self.repos[repo_id], "main", "concurrent edit",
                       {race[1]: Blob(race[2], False)})


def _is_lfs(path: str, sample: bytes, size: int) -> bool:
    return path.endswith(_LFS_SUFFIXES) or b"\0" in sample or size > 10 * 1024 * 1024


def _make_repo_handler(hub: FakeDatasetHub):
    base = _make_handler(hub)

    class Handler(base):
        def do_POST(self) -> None:
            self._write_route()

        def do_PUT(self) -> None:
            self._write_route()

        def _route(self, head: bool) -> None:
            path = urlsplit(self.path).path
            if path.startswith(("/api/datasets/", "/datasets/", "/api/spaces/", "/spaces/")) \
                    and not head:
                self._read_route(path)
            else:
                super()._route(head)

        # -- plumbing --------------------------------------------------------------------------

        def _request(self) -> Request:
            parts = urlsplit(self.path)
            return Request(self.command, unquote(parts.path), parse_qs(parts.query), 0,
                           authorized="authorization" in {k.lower() for k in self.headers})

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while (size := int(self.rfile.readline().split(b";")[0].strip(), 16)):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _json(self, request: Request, status: int, payload: Any,
                  headers: dict[str, str] | None = None) -> None:
            self._send(request, status, json.dumps(payload).encode(), headers or {}, False)

        def _fail(self, request: Request, status: int, message: str,
                  code: str | None = None) -> None:
            headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
            self._json(request, status, {"error": message}, headers)

        def _token_ok(self, request: Request, write: bool) -> bool:
            """Refuse a wrong token (always) or a missing one (writes); True when allowed."""
            auth = self.headers.get("Authorization", "")
            if hub.token and auth and auth != f"Bearer {hub.token}":
                self._fail(request, 401, "Invalid credentials in Authorization header")
                return False
            if hub.token and write and not auth:
                self._fail(request, 401, "Invalid username or password.")
                return False
            return True

        def _repo(self, request: Request, repo_id: str, kind: str = "datasets"
                  ) -> FakeRepo | None:
            repo = hub.repos.get(key(kind, repo_id))
            visible = repo is not None and (not repo.private or self.headers.get(
                "Authorization") == f"Bearer {hub.token}")
            if not visible:
                self._fail(request, 404, "Repository not found", "RepoNotFound")
                return None
            return repo

        def _branch(self, request: Request, repo: FakeRepo, rev: str | None) -> Commit | None:
            rev = unquote(rev or "main")
            if rev in repo.branches:
                return repo.head(rev)
            if rev in repo.commits:
                return repo.commits[rev]
            self._fail(request, 404, "Invalid rev id: " + rev, "RevisionNotFound")
            return None

        # -- reads -------------------------------------------------------------------------------

        def _read_route(self, path: str) -> None:
            request = self._request()
            if not self._token_ok(request, write=False):
                return
            download, api = _DOWNLOAD.match(path), _API.match(path)
            if download:
                if repo := self._repo(request, unquote(download["repo"]), download["kind"]):
                    self._download(request, repo, download["rev"], unquote(download["path"]))
            elif api and api["action"] == "tree":
                if repo := self._repo(request, unquote(api["repo"]), api["kind"]):
                    self._tree(request, repo, api["rest"])
            elif api and api["action"] in (None, "revision"):
                if repo := self._repo(request, unquote(api["repo"]), api["kind"]):
                    self._info(request, repo, api["rest"])
            else:
                self._fail(request, 404, "not found")

        def _info(self, request: Request, repo: FakeRepo, rev: str | None) -> None:
            if commit := self._branch(request, repo, rev):
                self._json(request, 200, {
                    "id": repo.id, "_id": repo.id, "sha": commit.oid, "private": repo.private,
                    "siblings": [b.sibling(p) for p, b in sorted(commit.files.items())]})

        def _tree(self, request: Request, repo: FakeRepo, rest: str) -> None:
            rev, _, prefix = rest.partition("/")
            if commit := self._branch(request, repo, rev):
                prefix = unquote(prefix)
                self._json(request, 200, [b.tree_entry(p) for p, b in sorted(commit.files.items())
                                          if not prefix or p.startswith(prefix.rstrip("/") + "/")])

        def _download(self, request: Request, repo: FakeRepo, rev: str, path: str) -> None:
            commit = self._branch(request, repo, rev)
            if commit is None:
                return
            if path not in commit.files:
                self._fail(request, 404, "Entry not found", "EntryNotFound")
                return
            blob = commit.files[path]
            headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.blob_id}"',
                       "Content-Type": "application/octet-stream"}
            self._send(request, 200, blob.content, headers, False)

        # -- writes ------------------------------------------------------------------------------

        def _write_route(self) -> None:
            request = self._request()
            path = urlsplit(self.path).path
            body = self._body()
            if path.startswith("/lfs-upload/"):
                self._lfs_upload(request, path.rsplit("/", 1)[1], body)
            elif path == "/api/validate-yaml":
                self._validate_yaml(request, json.loads(body))
            elif not self._token_ok(request, write=True):
                return
            elif path == "/api/repos/create":
                self._create(request, json.loads(body))
            elif path == "/lfs-verify":
                oid = json.loads(body)["oid"]
                self._json(request, 200 if oid in hub.lfs else 404, {"oid": oid})
            elif m := _BATCH.match(path):
                self._batch(request, key(m["kind"], unquote(m["repo"])), json.loads(body))
            elif (m := _API.match(path)) and m["action"] in ("preupload", "commit", "branch"):
                handler = {"preupload": self._preupload, "commit": self._commit,
                           "branch": self._create_branch}[m["action"]]
                if repo := self._repo(request, unquote(m["repo"]), m["kind"]):
                    handler(request, repo, unquote(m["rest"]), body)
            else:
                self._fail(request, 404, "not found")

        def _create(self, request: Request, payload: dict[str, Any]) -> None:
            repo_id = f"{payload['organization']}/{payload['name']}"
            kind = f"{payload.get('type')}s"
            url = f"{hub.url}/{kind}/{repo_id}"
            if kind not in ("datasets", "spaces"):
                self._fail(request, 400, "this fake Hub only has dataset and Space repos")
            elif kind == "spaces" and not payload.get("sdk"):
                self._fail(request, 400, "a Space needs an sdk (gradio, docker, static)")
            elif key(kind, repo_id) in hub.repos:
                self._json(request, 409, {"error": f"You already created this {kind[:-1]} repo",
                                          "url": url})
            else:
                hub.create(repo_id, private=payload.get("visibility") == "private", kind=kind,
                           sdk=payload.get("sdk"))
                self._json(request, 200, {"url": url, "name": repo_id, "id": repo_id})

        def _create_branch(self, request: Request, repo: FakeRepo, branch: str,
                           body: bytes) -> None:
            start = (json.loads(body or b"{}") or {}).get("startingPoint") or "main"
            if branch in repo.branches:
                self._fail(request, 409, "Reference already exists")
            elif commit := self._branch(request, repo, start):
                repo.branches[branch] = commit.oid
                self._json(request, 200, {})

        def _preupload(self, request: Request, repo: FakeRepo, rev: str, body: bytes) -> None:
            hub._run_race(repo.id)
            commit = self._branch(request, repo, rev)
            if commit is None:
                return
            files = []
            for f in json.loads(body)["files"]:
                lfs = _is_lfs(f["path"], base64.b64decode(f["sample"]), f["size"])
                there = commit.files.get(f["path"])
                oid = None if there is None else (there.sha256 if there.lfs else there.blob_id)
                files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                              "shouldIgnore": False, "oid": oid})
            self._json(request, 200, {"files": files, "commitOid": commit.oid})

        def _batch(self, request: Request, repo_id: str, payload: dict[str, Any]) -> None:
            if repo_id not in hub.repos:
                self._fail(request, 404, "Repository not found", "RepoNotFound")
                return
            objects = []
            for obj in payload["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.lfs:
                    entry["actions"] = {
                        "upload": {"href": f"{hub.url}/lfs-upload/{obj['oid']}"},
                        "verify": {"href": f"{hub.url}/lfs-verify", "header": {}}}
                objects.append(entry)
            self._json(request, 200, {"transfer": "basic", "objects": objects},
                       {"Content-Type": "application/vnd.git-lfs+json"})

        def _lfs_upload(self, request: Request, oid: str, body: bytes) -> None:
            if hashlib.sha256(body).hexdigest() != oid:
                self._fail(request, 400, "content does not match the oid")
                return
            hub.lfs[oid] = body
            self._send(request, 200, b"", {}, False)

        def _validate_yaml(self, request: Request, payload: dict[str, Any]) -> None:
            content = payload.get("content", "")
            match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
            try:
                meta = yaml.safe_load(match[1]) if match else None
            except yaml.YAMLError as exc:
                meta = exc
            if match and not isinstance(meta, dict):
                self._json(request, 400, {"errors": [{"message": "metadata is not a mapping"}]})
            else:
                self._json(request, 200, {"errors": [], "warnings": []})

        def _commit(self, request: Request, repo: FakeRepo, rev: str, body: bytes) -> None:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(x["value"] for x in lines if x["key"] == "header")
            hub.commit_headers.append(header)
            head = self._branch(request, repo, rev)
            if head is None:
                return
            if header.get("parentCommit") and header["parentCommit"] != head.oid:
                self._fail(request, 412, _STALE)
                return
            added, deleted = {}, []
            for item in lines:
                key, value = item["key"], item["value"]
                if key == "file":
                    added[value["path"]] = Blob(base64.b64decode(value["content"]), False)
                elif key == "lfsFile":
                    if value["oid"] not in hub.lfs:
                        self._fail(request, 422, f"LFS object {value['oid']} was not uploaded")
                        return
                    added[value["path"]] = Blob(hub.lfs[value["oid"]], True)
                elif key in ("deletedFile", "deletedFolder"):
                    if key == "deletedFile" and value["path"] not in head.files:
                        self._fail(request, 404, "A file with this name doesn't exist",
                                   "EntryNotFound")
                        return
                    deleted.append(value["path"])
            commit = hub.apply(repo, unquote(rev), header["summary"], added, tuple(deleted))
            self._json(request, 200, {"success": True, "commitOid": commit.oid,
                                      "commitUrl": f"{hub.url}/{repo.kind}/{repo.id}/commit/"
                                                   f"{commit.oid}", "hookOutput": ""})

    return Handler


@pytest.fixture(name="dataset_hub")
def dataset_hub_fixture(tmp_path, monkeypatch) -> Iterator[FakeDatasetHub]:
    """A running fake Hub with dataset repos; huggingface_hub points at it, Xet off."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    yield from serve(FakeDatasetHub(), tmp_path, monkeypatch)
