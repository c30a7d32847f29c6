"""hf-hub: models listed by the Hugging Face Hub API, with only their ``config.json`` read.

The listing pages through ``GET {endpoint}/api/models`` by its ``Link: <...>; rel="next"`` header.
After each page, once that page's rows are written (see :data:`narbuild.crawler.CHECKPOINT`), the
cursor is saved in the workspace's ``state/hf-hub.json``: an interrupted crawl of the same query
resumes at the page it stopped on, and a finished listing clears the cursor. A model whose commit
sha equals the one of its ``ok`` row in the manifest is not downloaded again. Nothing is built and
the token is never printed or stored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_backoff
from huggingface_hub.utils import tqdm as hf_tqdm

from narbuild.crawler.base import CHECKPOINT, manifest_row
from narbuild.errors import NarbuildError, SourceUnavailableError, redact
from narbuild.workspace import Workspace, load_state, save_state

try:  # huggingface_hub 2.x talks through httpx2, 1.x through httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    import httpx  # type: ignore[no-redef]

STATE = "hf-hub"
PAGE_SIZE = 100
_METADATA = ("gated", "downloads", "likes", "lastModified")
EXPAND = ("sha", "pipeline_tag", "library_name", "tags", *_METADATA)
_SORT = {"last_modified": "lastModified", "created_at": "createdAt",
         "trending_score": "trendingScore"}
# 429 and 5xx are retried (a 429's Retry-After is honoured); a refused or unresolvable
# connection is not, so an offline machine gets its answer at once.
_RETRY = {"max_retries": 3, "base_wait_time": 0.25, "max_wait_time": 4.0,
          "retry_on_exceptions": (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)}
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, OfflineModeIsEnabled)
_OFFLINE_HINT = ("use the offline sources (--source timm / torchvision / transformers), "
                 "or set HF_ENDPOINT to a reachable Hub mirror")


def iter_hf_hub(
    ws: Workspace,
    *,
    library: str | None = None,
    pipeline_tag: str | None = None,
    sort: str = "downloads",
    search: str | None = None,
    token: str | None = None,
    limit: int | None = None,
    endpoint: str | None = None,
    trust_remote_code: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield one manifest row per model the Hub lists, with its ``config.json``.

    Args:
        ws: the workspace; its manifest tells which shas are already crawled and its state
            folder holds the listing cursor.
        library / pipeline_tag / search: Hub listing filters (``filter=``, ``pipeline_tag=``,
            ``search=``).
        sort: listing order, e.g. ``downloads``, ``likes``, ``last_modified``.
        token: Hugging Face token for gated or private repos (never stored).
        limit: stop after this many listed models.
        endpoint: the Hub; defaults to ``$HF_ENDPOINT`` (read now), else huggingface_hub's.
        trust_remote_code: accepted for symmetry with torch-hub; crawling never runs repo code,
            it only flags rows with ``needs_remote_code``.

    Raises:
        SourceUnavailableError: the Hub cannot be reached or keeps failing (one line).
        NarbuildError: the token is rejected or the listing query is refused.
    """
    del trust_remote_code  # reading config.json never runs code
    endpoint = resolve_endpoint(endpoint)
    if _offline_mode():
        raise SourceUnavailableError(
            f"HF_HUB_OFFLINE is set, so the Hugging Face Hub at {endpoint} is not contacted",
            f"unset HF_HUB_OFFLINE, or {_OFFLINE_HINT}")
    query = {"library": library, "pipeline_tag": pipeline_tag, "sort": sort, "search": search}
    return _crawl(ws, endpoint, query, token, limit)


def resolve_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else ``$HF_ENDPOINT`` as set now, else huggingface_hub's default."""
    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _offline_mode() -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return constants.is_offline_mode() or flag in {"1", "ON", "YES", "TRUE"}


def _crawl(
    ws: Workspace, endpoint: str, query: dict[str, Any], token: str | None, limit: int | None
) -> Iterator[dict[str, Any]]:
    """The listing loop: a page of rows, a checkpoint, then the saved cursor."""
    state_path = ws.state_path(STATE)
    signature = {"endpoint": endpoint, **query}
    url, params, listed, page = _start(load_state(state_path), signature, limit)
    if limit is not None and listed >= limit:
        state_path.unlink(missing_ok=True)
        return
    known = _known_rows(ws)
    headers = build_hf_headers(token=token)
    while url is not None:
        response = _get_page(url, params, headers, endpoint, token)
        models = _page_models(response, endpoint)
        if limit is not None:
            models = models[: max(limit - listed, 0)]
        for info in models:
            yield _model_row(info, endpoint, token, known)
        listed += len(models)
        try:
            url, params, page = _next_page(response, endpoint), None, page + 1
        except SourceUnavailableError:
            yield CHECKPOINT  # keep this page's rows; the cursor stays where it was
            raise
        if limit is not None and listed >= limit:
            url = None
        yield CHECKPOINT  # the consumer writes this page's rows before we move the cursor
        if url is None:
            state_path.unlink(missing_ok=True)
        else:
            save_state(state_path, {"signature": signature, "next": url, "listed": listed,
                                    "page": page})


def _start(
    cursor: dict[str, Any], signature: dict[str, Any], limit: int | None
) -> tuple[str, dict[str, Any] | None, int, int]:
    """Where the listing starts: (url, params, listed so far, page number).

    The saved cursor of the same query (endpoint and filters) wins; else page 1.
    """
    if cursor.get("signature") == signature and same_host(cursor.get("next"),
                                                          signature["endpoint"]):
        return cursor["next"], None, int(cursor.get("listed", 0)), int(cursor.get("page", 1))
    first = f"{signature['endpoint']}/api/models"
    return first, _params(signature, limit), 0, 1


def _params(query: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """Query parameters of the first listing page (later pages come from the Link header)."""
    params: dict[str, Any] = {"limit": min(PAGE_SIZE, limit or PAGE_SIZE),
                              "expand": list(EXPAND)}
    if query["sort"]:
        params["sort"] = _SORT.get(query["sort"], query["sort"])
    if query["library"]:
        params["filter"] = query["library"]
    for key in ("pipeline_tag", "search"):
        if query[key]:
            params[key] = query[key]
    return params


def same_host(url: Any, endpoint: str) -> bool:
    """Whether ``url`` is on the endpoint's scheme, host and port (where a token may go)."""
    if not isinstance(url, str) or not url:
        return False
    a, b = urlsplit(url), urlsplit(endpoint)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _get_page(url: str, params: dict | None, headers: dict, endpoint: str,
              token: str | None = None) -> httpx.Response:
    """GET one listing page, retrying 429/5xx; every failure becomes one user-facing line."""
    try:
        response = http_backoff("GET", url, params=params, headers=headers, timeout=_TIMEOUT,
                                **_RETRY)
        hf_raise_for_status(response)
    except _UNREACHABLE as exc:
        raise unreachable(endpoint, exc) from exc
    except httpx.TransportError as exc:
        raise SourceUnavailableError(
            f"the Hugging Face Hub at {endpoint} stopped answering while listing models "
            f"({type(exc).__name__})", "re-run the crawl: it resumes from the saved page") from exc
    except HfHubHTTPError as exc:
        raise _listing_error(exc, endpoint, token) from exc
    return response


def unreachable(endpoint: str, exc: BaseException) -> SourceUnavailableError:
    """The one-line error for a Hub that cannot be reached at all."""
    return SourceUnavailableError(
        f"the Hugging Face Hub at {endpoint} cannot be reached ({_reason(exc)})",
        _OFFLINE_HINT)


def _listing_error(exc: HfHubHTTPError, endpoint: str, token: str | None) -> NarbuildError:
    status = exc.response.status_code if exc.response is not None else None
    if status == 401:
        return NarbuildError(f"the Hugging Face Hub at {endpoint} rejected the token "
                             "(401 Unauthorized)",
                             "check --token / HF_TOKEN or the token saved by `hf auth login`")
    if status == 400:
        return NarbuildError(f"the Hugging Face Hub at {endpoint} refused the listing query "
                             f"(400 Bad Request: {redact(_first_line(exc.server_message), token)})",
                             "check --hub-sort, --hub-library, --hub-pipeline-tag")
    if status == 429:
        return SourceUnavailableError(
            f"the Hugging Face Hub at {endpoint} kept rate-limiting the listing (429)",
            "wait a few minutes and re-run the crawl: it resumes from the saved page")
    return SourceUnavailableError(f"listing models on the Hugging Face Hub at {endpoint} failed "
                                  f"(HTTP {status})",
                                  "re-run the crawl: it resumes from the saved page")


def _page_models(response: httpx.Response, endpoint: str) -> list[dict[str, Any]]:
    """The models of a listing page, checked to be a JSON list of objects with an id."""
    try:
        models = response.json()
    except ValueError:
        models = None
    if not isinstance(models, list):
        raise SourceUnavailableError(
            f"{endpoint}/api/models did not answer with a JSON list of models",
            "check that HF_ENDPOINT points to a Hugging Face Hub or mirror")
    return [m for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)]


def _next_page(response: httpx.Response, endpoint: str) -> str | None:
    """The ``rel="next"`` URL of the Link header, made absolute; None on the last page. A next
    page on another host is refused: the token would be sent there."""
    nxt = response.links.get("next", {}).get("url")
    if not nxt:
        return None
    url = urljoin(str(response.url), nxt)
    if not same_host(url, endpoint):
        raise SourceUnavailableError(
            f"the Hub at {endpoint} pointed its next listing page to another host "
            f"({urlsplit(url).netloc or url[:60]}); narbuild does not follow it, so the token "
            "is not sent there", "check HF_ENDPOINT; the pages read so far are kept")
    return url


def _known_rows(ws: Workspace) -> dict[str, dict[str, Any]]:
    """The manifest's ``ok`` hf-hub rows: model id -> revision and config."""
    table = ws.table("manifest")
    if not table.exists():
        return {}
    rows = table.read(["model_id", "revision", "status", "config"]).to_pylist()
    return {r["model_id"]: r for r in rows
            if r["model_id"].startswith("hf:") and r["status"] == "ok" and r["revision"]}


def _model_row(
    info: dict[str, Any], endpoint: str, token: str | None, known: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The row of one listed model: reused when its sha is unchanged, else from config.json."""
    old = known.get(f"hf:{info['id']}")
    if old and old["revision"] == info.get("sha"):
        stored = json.loads(old["config"])
        if isinstance(stored.get("config"), dict):
            return _row(info, stored["config"])
    try:
        return _row(info, _read_config(info, endpoint, token))
    except _ConfigProblem as problem:
        return _row(info, None, error=str(problem))


class _ConfigProblem(Exception):
    """config.json cannot be read for a reason that belongs to this model (an error row)."""


def _read_config(info: dict[str, Any], endpoint: str, token: str | None) -> dict[str, Any]:
    """Download config.json at the listed sha and parse it."""
    repo_id, sha = info["id"], info.get("sha")
    try:
        path = hf_hub_download(repo_id, "config.json", revision=sha, endpoint=endpoint,
                               token=token, tqdm_class=_QuietTqdm)
    except GatedRepoError as exc:
        raise _ConfigProblem(f"gated repo: accept its conditions at {endpoint}/{repo_id} and "
                             "crawl with a token that has access (--token / HF_TOKEN)") from exc
    except RepositoryNotFoundError as exc:
        raise _ConfigProblem("repo not found (deleted, renamed or private): check the id, or "
                             "crawl with a token that has access") from exc
    except RevisionNotFoundError as exc:
        raise _ConfigProblem(f"revision {sha} is gone (the repo changed during the crawl): "
                             "re-run the crawl") from exc
    except LocalEntryNotFoundError as exc:  # no connection and nothing cached
        raise unreachable(endpoint, exc.__cause__ or exc) from exc
    except EntryNotFoundError as exc:
        raise _ConfigProblem("the repo has no config.json, so it cannot be built from a "
                             "config; exclude it or use another source") from exc
    except HFValidationError as exc:
        raise _ConfigProblem(f"invalid repo id: {_first_line(str(exc))}") from exc
    except _UNREACHABLE as exc:
        raise unreachable(endpoint, exc) from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise _ConfigProblem(f"reading config.json failed (HTTP {status}): "
                             "re-run the crawl to retry") from exc
    return _parse_config(Path(path))


def _parse_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise _ConfigProblem("config.json is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise _ConfigProblem(f"config.json is not valid JSON ({exc.msg} at line {exc.lineno} "
                             f"column {exc.colno}); the repo's owner must fix it") from exc
    if not isinstance(config, dict):
        raise _ConfigProblem(f"config.json holds a JSON {type(config).__name__}, not an object")
    return config


def _row(info: dict[str, Any], config: dict[str, Any] | None, error: str | None = None) -> dict:
    """A manifest row from the listing entry and config.json (None for an error row)."""
    repo_id, library = info["id"], info.get("library_name")
    tags = [t for t in info.get("tags") or [] if isinstance(t, str)]
    cfg = config or {}
    architectures = cfg.get("architectures")
    if not (isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)):
        architectures = None
    model_type = cfg.get("model_type")
    return manifest_row(
        "hf-hub", repo_id, {"repo_id": repo_id, "library": library, "config": config},
        id_prefix="hf", repo=repo_id, revision=info.get("sha"), task=info.get("pipeline_tag"),
        library=library, model_type=model_type if isinstance(model_type, str) else None,
        architectures=architectures,
        metadata={"tags": tags, **{k: info.get(k) for k in _METADATA}},
        needs_remote_code="auto_map" in cfg or "custom_code" in tags,
        error=error,
    )


def _reason(exc: BaseException) -> str:
    detail = _first_line(str(exc))
    return type(exc).__name__ + ("" if detail == "no details" else f": {detail}")


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:200] if lines else "no details"


class _QuietTqdm(hf_tqdm):
    """No per-file download bar: the crawl has its own progress."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)
