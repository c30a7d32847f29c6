"""Publish a staged release folder to a Hub dataset repo in one atomic commit.

::

    from narbuild.cards import push_release
    summary = push_release("release", "my-org/nar-graphs", token=None)  # HF_TOKEN or saved login

The steps: check the repo id (before any request); read the branch head and its files in one
request; create the repo (or branch) when missing; compare every local file with the remote one
(sha256 of LFS files, git blob id of the others); upload the changed data files with
``preupload_lfs_files`` (invisible until committed); then one ``create_commit`` holding the new
card, the changed files and the removal of the previous release's files, with ``parent_commit``
set to the head read at the start. A reader therefore never sees half a release, a concurrent
change makes the push fail instead of being overwritten, and an unchanged release makes no
commit at all. The token is only handed to huggingface_hub: never printed, logged or written.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from narbuild.cards.release import RELEASE_ENTRIES
from narbuild.crawler.hf_hub import httpx, resolve_endpoint  # httpx: the Hub client's own
from narbuild.errors import NarbuildError, SourceUnavailableError, redact

DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class RepoKind:
    """What a push publishes: the dataset release, or the search app as a Space."""

    repo_type: str
    """huggingface_hub's ``repo_type``."""
    entries: frozenset[str]
    """Top-level paths the push owns: files under these that are not in the new folder are
    removed. Anything else in the repo (``.gitattributes``, a hand-written file) is left alone."""
    space_sdk: str | None = None

    @property
    def url_part(self) -> str:
        return f"{self.repo_type}s"


DATASET = RepoKind("dataset", RELEASE_ENTRIES)
SPACE = RepoKind("space", frozenset({"README.md", "app.py", "requirements.txt"}), "gradio")


@dataclass
class FileOp:
    """One planned change: ``add`` (new or changed file) or ``delete``."""

    op: str
    path: str
    size: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "path": self.path, "size": self.size}


@dataclass
class PushSummary:
    """What :func:`push_release` did (or, with ``dry_run``, would do)."""

    repo_id: str
    branch: str
    url: str
    dry_run: bool = False
    kind: RepoKind = DATASET
    created_repo: bool = False
    created_branch: bool = False
    parent_commit: str | None = None
    commit: str | None = None
    operations: list[FileOp] = field(default_factory=list)
    unchanged: int = 0
    seconds: float = 0.0

    @property
    def up_to_date(self) -> bool:
        return not self.operations

    def as_dict(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "repo_type": self.kind.repo_type,
                "branch": self.branch, "url": self.url,
                "dry_run": self.dry_run, "created_repo": self.created_repo,
                "created_branch": self.created_branch, "parent_commit": self.parent_commit,
                "commit": self.commit, "up_to_date": self.up_to_date,
                "operations": [o.as_dict() for o in self.operations],
                "unchanged": self.unchanged, "seconds": round(self.seconds, 2)}


def check_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` as the Hub accepts it, or a :class:`NarbuildError` (no request is made)."""
    hint = "pass --repo-id ORG/NAME, e.g. my-org/nar-graphs"
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise NarbuildError(f"invalid repo id {repo_id!r}: expected ORG/NAME", hint)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        reason = str(exc).splitlines()[0].rstrip(".")
        raise NarbuildError(f"invalid repo id {repo_id!r}: {reason}", hint) from exc
    return repo_id


def push_release(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    branch: str | None = None,
    dry_run: bool = False,
    endpoint: str | None = None,
    commit_message: str | None = None,
    kind: RepoKind = DATASET,
) -> PushSummary:
    """Publish the release ``folder`` to the dataset repo ``repo_id`` in one commit (with
    ``kind=SPACE``: a staged Space folder to a Space repo, the same way).

    Args:
        folder: a folder written by :func:`narbuild.cards.stage_release`.
        repo_id: ``ORG/NAME``; the dataset repo is created when missing.
        token: a Hub token with write access; None uses ``HF_TOKEN`` or the saved login.
        private: create the repo private (an existing repo keeps its visibility).
        branch: the branch to commit to (created from the default branch when missing).
        dry_run: plan only: list the operations, create and upload nothing.
        endpoint: the Hub; defaults to ``$HF_ENDPOINT``, else huggingface.co.
        commit_message: the commit's title.

    Raises:
        NarbuildError: one line for a bad repo id or folder, a rejected token, a repo that
            changed during the push, or an unreachable Hub.
    """
    start = time.perf_counter()
    check_repo_id(repo_id)
    local = _local_files(Path(folder), kind)
    branch = branch or DEFAULT_BRANCH
    endpoint = resolve_endpoint(endpoint)
    api = HfApi(endpoint=endpoint, token=token)
    summary = PushSummary(repo_id, branch, f"{endpoint}/{kind.url_part}/{repo_id}",
                          dry_run=dry_run, kind=kind)
    with _hub_errors(endpoint, repo_id, branch, token or get_token(), kind):
        remote = _remote_state(api, summary, private)
        summary.parent_commit = remote.head
        adds, deletes = plan(local, remote, kind.entries)
        summary.operations = [FileOp("add", p, local[p].size) for p in adds] + \
            [FileOp("delete", p) for p in deletes]
        summary.unchanged = len(local) - len(adds)
        if summary.operations and not dry_run:
            summary.commit = _commit(api, summary, local, adds, deletes, commit_message)
    summary.seconds = time.perf_counter() - start
    return summary


# --------------------------------------------------------------------------- local and remote


@dataclass(frozen=True)
class LocalFile:
    """A release file: its path, size, sha256 (the LFS oid) and git blob id."""

    path: Path
    size: int
    sha256: str
    git_sha1: str


def _local_files(folder: Path, kind: RepoKind = DATASET) -> dict[str, LocalFile]:
    if not (folder / "README.md").is_file():
        raise NarbuildError(f"{folder} is not a staged release (no README.md)",
                            "stage one first with `narbuild push --local-dir DIR`")
    files = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel.split("/", 1)[0] in kind.entries:
            files[rel] = _hash_file(path)
    return files


def _hash_file(path: Path) -> LocalFile:
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    git = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha256.update(chunk)
            git.update(chunk)
    return LocalFile(path, size, sha256.hexdigest(), git.hexdigest())


@dataclass
class RemoteState:
    """The branch head and its files: path -> (sha256 for LFS files, git blob id otherwise)."""

    head: str | None
    files: dict[str, tuple[str | None, str | None]]


def _remote_state(api: HfApi, summary: PushSummary, private: bool) -> RemoteState:
    """Read (creating unless dry-run) the repo and branch; head and files in one request."""
    try:
        return _read_branch(api, summary)
    except RepositoryNotFoundError:
        if summary.dry_run:
            summary.created_repo = True  # would be
            return RemoteState(None, {})
        api.create_repo(summary.repo_id, repo_type=summary.kind.repo_type, private=private,
                        exist_ok=True, space_sdk=summary.kind.space_sdk)
        summary.created_repo = True
    except RevisionNotFoundError:
        pass
    try:
        return _read_branch(api, summary)
    except RevisionNotFoundError:
        summary.created_branch = True
        if summary.dry_run:
            return _read_branch(api, summary, default=True)
        api.create_branch(summary.repo_id, branch=summary.branch,
                          repo_type=summary.kind.repo_type, exist_ok=True)
        return _read_branch(api, summary)


def _read_branch(api: HfApi, summary: PushSummary, default: bool = False) -> RemoteState:
    info = api.repo_info(summary.repo_id, repo_type=summary.kind.repo_type,
                         revision=None if default else summary.branch, files_metadata=True)
    files = {s.rfilename: (s.lfs.sha256 if s.lfs else None, s.blob_id)
             for s in info.siblings or []}
    return RemoteState(info.sha, files)


def plan(local: dict[str, LocalFile], remote: RemoteState,
         entries: frozenset[str] = RELEASE_ENTRIES) -> tuple[list[str], list[str]]:
    """(paths to upload, paths to delete): changed or new files, and the push-owned remote
    files (under ``entries``) that the new folder no longer has."""
    adds = [p for p, f in local.items() if not _same(f, remote.files.get(p))]
    deletes = sorted(p for p in remote.files
                     if p not in local and p.split("/", 1)[0] in entries)
    return adds, deletes


def _same(local: LocalFile, remote: tuple[str | None, str | None] | None) -> bool:
    if remote is None:
        return False
    sha256, blob = remote
    return local.sha256 == sha256 if sha256 else local.git_sha1 == blob


def _commit(api: HfApi, summary: PushSummary, local: dict[str, LocalFile], adds: list[str],
            deletes: list[str], message: str | None) -> str:
    """Upload the data first, then one commit with everything, on top of the head read."""
    additions = [CommitOperationAdd(p, str(local[p].path)) for p in adds]
    data = [a for a in additions if a.path_in_repo != "README.md"]
    if data:
        api.preupload_lfs_files(summary.repo_id, additions=data,
                                repo_type=summary.kind.repo_type, revision=summary.branch)
    operations = [*additions, *(CommitOperationDelete(p) for p in deletes)]
    info = api.create_commit(
        summary.repo_id, operations=operations, repo_type=summary.kind.repo_type,
        revision=summary.branch,
        commit_message=message or "narbuild release",
        commit_description=_description(summary), parent_commit=summary.parent_commit)
    return info.oid


def _description(summary: PushSummary) -> str:
    added = sum(o.op == "add" for o in summary.operations)
    deleted = len(summary.operations) - added
    return (f"Published by `narbuild push`: {added} files added or changed, {deleted} removed, "
            f"{summary.unchanged} unchanged.")


# --------------------------------------------------------------------------- errors


@contextmanager
def _hub_errors(endpoint: str, repo_id: str, branch: str, token: str | None,
                kind: RepoKind = DATASET) -> Iterator[None]:
    """Every Hub failure as one :class:`NarbuildError` line, with the token scrubbed."""
    try:
        yield
    except NarbuildError:
        raise
    except (httpx.ConnectError, httpx.ConnectTimeout, OfflineModeIsEnabled) as exc:
        raise SourceUnavailableError(
            f"the Hugging Face Hub at {endpoint} cannot be reached ({type(exc).__name__})",
            "check the network, or set HF_ENDPOINT to a reachable Hub; nothing was published"
        ) from None
    except httpx.TransportError as exc:
        raise SourceUnavailableError(
            f"the Hugging Face Hub at {endpoint} stopped answering ({type(exc).__name__})",
            "re-run `narbuild push`; nothing was published") from None
    except HfHubHTTPError as exc:
        raise _http_error(exc, repo_id, branch, token, kind) from None
    except ValueError as exc:  # e.g. the Hub's YAML check of README.md
        raise NarbuildError(f"the Hub refused the release: {_scrub(_first(exc), token)}",
                            "fix the card and re-run; nothing was published") from None


def _http_error(exc: HfHubHTTPError, repo_id: str, branch: str, token: str | None,
                kind: RepoKind = DATASET) -> NarbuildError:
    status = exc.response.status_code if exc.response is not None else None
    server = _scrub(exc.server_message or _first(exc), token)
    where = f"{kind.url_part}/{repo_id}"
    if status == 401 and not token:
        return NarbuildError(f"the Hub needs a write token to publish {where} "
                             "(401 Unauthorized, no token given)",
                             "pass --token, set HF_TOKEN, or log in with `hf auth login`")
    if status == 401:
        return NarbuildError(f"the Hub rejected the token for {where} (401 Unauthorized)",
                             "pass a valid write token with --token or HF_TOKEN, "
                             "or log in with `hf auth login`")
    if status == 403:
        return NarbuildError(f"the token may not write to {where} (403 Forbidden: {server})",
                             "use a token with write access to that namespace")
    if status in (409, 412):
        return NarbuildError(f"{where} changed during the push (branch {branch} moved past "
                             f"the commit this push started from)",
                             "re-run `narbuild push`; nothing of this release was published")
    if isinstance(exc, RepositoryNotFoundError):
        return NarbuildError(f"{where} was not found or is not accessible with this token",
                             "check --repo-id and the token's permissions")
    return NarbuildError(f"the Hub refused the push to {where} (HTTP {status}: {server})",
                         "re-run `narbuild push`; nothing was published")


def _first(exc: BaseException) -> str:
    lines = [x for x in str(exc).strip().splitlines() if x.strip()]
    return lines[0][:200] if lines else type(exc).__name__


def _scrub(text: str, token: str | None) -> str:
    """``text`` with the token (and every other known one) masked, and on one line."""
    return redact(text, token)
