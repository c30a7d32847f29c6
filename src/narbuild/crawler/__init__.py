"""Stage 1, ``narbuild crawl``: enumerate models into the ``manifest`` table.

Offline sources are real registries (timm, torchvision, transformers); the Hub sources list
models over HTTP and read only ``config.json``. Rows are keyed by model id, so a re-crawl
updates rows in place.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from narbuild import sources as registry
from narbuild.crawler.base import CHECKPOINT
from narbuild.errors import NarbuildError, SourceUnavailableError
from narbuild.workspace import Workspace

__all__ = ["CHECKPOINT", "CrawlSummary", "crawl", "manifest_ids", "select"]


@dataclass
class CrawlSummary:
    """What a crawl did: rows per source, totals and time."""

    per_source: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    written: int = 0
    total_rows: int = 0
    seconds: float = 0.0
    workspace: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _source_rows(source: str, options: dict[str, Any], ws: Workspace) -> Iterator[dict]:
    module = registry.get(source)
    if module.SOURCE.offline:
        return module.iter_rows()
    return module.iter_rows(workspace=ws, **options.get(registry.MODULES[source], {}))


def select(
    rows: Iterable[dict], include: list[str], exclude: list[str], task: str | None
) -> Iterator[dict]:
    """Filter rows by fnmatch patterns on the model id and by task."""
    for row in rows:
        if row is CHECKPOINT:
            yield row
            continue
        mid = row["model_id"]
        if include and not any(fnmatch.fnmatchcase(mid, p) for p in include):
            continue
        if any(fnmatch.fnmatchcase(mid, p) for p in exclude):
            continue
        if task and row["task"] != task:
            continue
        yield row


def crawl(
    workspace: Workspace,
    sources: Iterable[str] | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    limit: int | None = None,
    task: str | None = None,
    options: dict[str, Any] | None = None,
    on_row: Callable[[str], None] | None = None,
) -> CrawlSummary:
    """Crawl ``sources`` into the workspace's ``manifest`` table and return a summary.

    Args:
        workspace: where the manifest lives (rows with the same model id are replaced).
        sources: names of the registry (:mod:`narbuild.sources`); default: every offline
            source. A source whose package is not installed is skipped with its reason in
            ``summary.missing``; when every one is missing the crawl fails.
        include / exclude: fnmatch patterns on the model id, e.g. ``timm:resnet*``.
        limit: at most this many rows per source.
        task: keep only rows of this task, e.g. ``image-classification``.
        options: per-source options, e.g. ``{"hf_hub": {"limit": 100}}``.
        on_row: called with each model id as it is written (progress).
    """
    names = list(dict.fromkeys(registry.offline_sources() if sources is None else sources))
    for source in names:
        registry.get(source)  # unknown names fail before any work
    missing = {s: registry.get(s).SOURCE.install_hint() for s in names if not registry.available(s)}
    if missing and len(missing) == len(names):
        first = next(iter(missing))
        raise SourceUnavailableError(
            f"no source can be crawled: {', '.join(missing)} not installed", missing[first])
    include, exclude = list(include), list(exclude)
    table = workspace.table("manifest")
    table.keys()  # validate existing data before any work
    start = time.perf_counter()
    summary = CrawlSummary(workspace=str(workspace.root), missing=missing)
    batch: list[dict] = []
    for source in names:
        if source in missing:
            continue
        count = 0
        rows = select(_source_rows(source, options or {}, workspace), include, exclude, task)
        for row in rows:
            if row is CHECKPOINT:
                table.append(batch)
                batch = []
                continue
            if limit is not None and count >= limit:
                break
            batch.append(row)
            count += 1
            summary.errors[source] = summary.errors.get(source, 0) + (row["status"] != "ok")
            if on_row:
                on_row(row["model_id"])
            if len(batch) >= 500:  # checkpoint long (online) crawls
                table.append(batch)
                batch = []
        summary.per_source[source] = count
        summary.written += count
    table.append(batch)
    table.compact()
    if summary.written == 0 and (include or exclude or task):
        raise NarbuildError("no model matched the given --include/--exclude/--task filters",
                            "check the patterns, e.g. --include 'timm:resnet*'")
    summary.total_rows = len(table.keys())
    summary.seconds = round(time.perf_counter() - start, 2)
    workspace.record_command("crawl", crawl_command(
        None if sources is None else names, include, exclude, limit, task))
    return summary


def crawl_command(sources: list[str] | None, include: list[str], exclude: list[str],
                  limit: int | None, task: str | None) -> str:
    """The ``narbuild crawl`` command line of one call (shown in the dataset card)."""
    parts = ["narbuild crawl", *(f"-s {s}" for s in sources or ()), *patterns(include, exclude)]
    parts += [f"--limit {limit}"] * (limit is not None) + [f"--task {task}"] * bool(task)
    return " ".join(parts)


def manifest_ids(ws: Workspace, include: Iterable[str], exclude: Iterable[str]) -> list[str] | None:
    """The manifest's model ids that ``--include``/``--exclude`` patterns select; None without
    patterns (every row); a clear error when patterns select nothing."""
    include, exclude = list(include), list(exclude)
    if not include and not exclude:
        return None
    rows = ws.table("manifest").read(["model_id", "task"]).to_pylist()
    ids = [r["model_id"] for r in select(rows, include, exclude, None)]
    if not ids:
        raise NarbuildError("no manifest row matches the given --include/--exclude",
                            "check the patterns, e.g. --include 'timm:resnet*'")
    return ids


def patterns(include: Iterable[str], exclude: Iterable[str]) -> list[str]:
    """``--include``/``--exclude`` options as a command line writes them."""
    return [f"--include '{p}'" for p in include] + [f"--exclude '{p}'" for p in exclude]
