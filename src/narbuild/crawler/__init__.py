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

from narbuild.errors import NarbuildError
from narbuild.workspace import Workspace

OFFLINE_SOURCES = ("timm", "torchvision", "transformers")
ONLINE_SOURCES = ("hf-hub", "torch-hub")
SOURCES = OFFLINE_SOURCES + ONLINE_SOURCES

CHECKPOINT: dict[str, Any] = {"model_id": "<checkpoint>"}
"""Yielded by a source between rows: :func:`crawl` writes the rows so far before the source goes
on (the Hub listing saves its resume cursor only once its page's rows are on disk)."""


@dataclass
class CrawlSummary:
    """What a crawl did: rows per source, totals and time."""

    per_source: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    written: int = 0
    total_rows: int = 0
    seconds: float = 0.0
    workspace: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _source_iterator(source: str, options: dict[str, Any], ws: Workspace) -> Iterator[dict]:
    if source == "timm":
        from narbuild.crawler.timm_source import iter_timm

        return iter_timm()
    if source == "torchvision":
        from narbuild.crawler.torchvision_source import iter_torchvision

        return iter_torchvision()
    if source == "transformers":
        from narbuild.crawler.transformers_source import iter_transformers

        return iter_transformers()
    if source == "hf-hub":
        from narbuild.crawler.hf_hub import iter_hf_hub

        return iter_hf_hub(ws, **options.get("hf_hub", {}))
    if source == "torch-hub":
        from narbuild.crawler.torch_hub import iter_torch_hub

        return iter_torch_hub(**options.get("torch_hub", {}))
    raise NarbuildError(f"unknown source {source!r}", f"choose from {', '.join(SOURCES)}")


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
    sources: Iterable[str] = OFFLINE_SOURCES,
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
        sources: any of :data:`SOURCES`.
        include / exclude: fnmatch patterns on the model id, e.g. ``timm:resnet*``.
        limit: at most this many rows per source.
        task: keep only rows of this task, e.g. ``image-classification``.
        options: per-source options, e.g. ``{"hf_hub": {"limit": 100}}``.
        on_row: called with each model id as it is written (progress).
    """
    sources = list(dict.fromkeys(sources))
    for source in sources:
        if source not in SOURCES:
            raise NarbuildError(f"unknown source {source!r}", f"choose from {', '.join(SOURCES)}")
    include, exclude = list(include), list(exclude)
    table = workspace.table("manifest")
    table.keys()  # validate existing data before any work
    start = time.perf_counter()
    summary = CrawlSummary(workspace=str(workspace.root))
    batch: list[dict] = []
    for source in sources:
        count = 0
        rows = select(_source_iterator(source, options or {}, workspace), include, exclude, task)
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
    return summary
