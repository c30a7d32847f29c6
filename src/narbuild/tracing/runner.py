"""``narbuild trace``: the manifest through a pool of isolated workers into the graphs table.

:func:`trace_catalog` plans what is left to trace (rows already traced, and twins with the same
config hash, are not traced again), runs it through :mod:`narbuild.tracing.workers` and writes
results in small atomic Parquet parts, so a run killed at any point (SIGKILL included) resumes
where it stopped, with no lost and no duplicated rows. ``--shard i --num-shards n`` splits the
catalog with one folder and a ``_SUCCESS`` marker per shard.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable

from narbuild.errors import NarbuildError
from narbuild.tracing.workers import TraceOptions, TraceSummary, run_pool
from narbuild.workspace import Table, Workspace

__all__ = ["TraceOptions", "TraceSummary", "error_kind", "plan", "shard_of", "trace_catalog"]

DONE_MARKER = "_SUCCESS"


def shard_of(model_id: str, num_shards: int) -> int:
    """A stable shard number for a model id (the same on every machine and run)."""
    digest = hashlib.sha1(model_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % num_shards


def shard_dir(options: TraceOptions) -> str:
    return f"shard-{options.shard:05d}-of-{options.num_shards:05d}"


def plan(workspace: Workspace, options: TraceOptions, model_ids: set[str] | None = None,
         ) -> tuple[list[dict], list[dict], int]:
    """Rows to trace, rows to copy from a traced twin (same config hash), rows already done."""
    manifest = workspace.table("manifest").read_rows()
    graphs = workspace.table("graphs")
    done = {r["model_id"]: r for r in graphs.read_rows()} if graphs.exists() else {}
    by_hash = {r["config_hash"]: r for r in done.values() if r["status"] == "ok"}
    todo, copies, skipped = [], [], 0
    first_of_hash: dict[str, dict] = {}
    for row in manifest:
        if row["status"] != "ok" or shard_of(row["model_id"], options.num_shards) != options.shard:
            continue
        if model_ids is not None and row["model_id"] not in model_ids:
            continue
        prev = done.get(row["model_id"])
        if prev and prev["config_hash"] == row["config_hash"] and (
                prev["status"] == "ok" or not options.retry_errors):
            skipped += 1
            continue
        key = row["config_hash"]
        if key in by_hash:
            copies.append({**by_hash[key], "model_id": row["model_id"]})
        elif key in first_of_hash:
            copies.append({"model_id": row["model_id"], "twin": first_of_hash[key]["model_id"]})
        else:
            first_of_hash[key] = row
            todo.append(row)
    return todo, copies, skipped


def trace_catalog(
    workspace: Workspace,
    options: TraceOptions | None = None,
    model_ids: Iterable[str] | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> TraceSummary:
    """Trace every manifest row of this shard that is not traced yet into the graphs table
    (under the workspace's writer lock: two runs never trace the same models twice)."""
    with workspace.writer("trace"):
        return _trace_catalog(workspace, options or TraceOptions(), model_ids, on_result)


def _trace_catalog(workspace: Workspace, options: TraceOptions, model_ids: Iterable[str] | None,
                   on_result: Callable[[dict], None] | None) -> TraceSummary:
    if not 0 <= options.shard < options.num_shards:
        raise NarbuildError(f"--shard {options.shard} is outside 0..{options.num_shards - 1}",
                            "pass 0 <= --shard < --num-shards")
    start = time.perf_counter()
    table = workspace.table("graphs")
    todo, copies, skipped = plan(workspace, options, set(model_ids) if model_ids else None)
    summary = TraceSummary(skipped=skipped, shard=shard_dir(options))
    writer = _Writer(table, shard_dir(options), options.flush_every)
    twins = {row["twin"] for row in copies if "twin" in row}
    results: dict[str, dict] = {}  # only rows that twins copy: workers fork from this process

    def record(row: dict) -> None:
        if row["model_id"] in twins:
            results[row["model_id"]] = row
        writer.add(row)
        _count(summary, row)
        if on_result:
            on_result(row)

    try:
        for row in copies:  # twins already traced in an earlier run
            if "twin" not in row:
                summary.cached += 1
                record(row)
        run_pool(todo, options, record, summary)
        for row in copies:  # twins traced in this run
            if "twin" in row:
                summary.cached += 1
                twin = results[row["twin"]]
                record({**twin, "model_id": row["model_id"]})
    finally:
        writer.flush()
    if not todo and not copies and not table.parts():
        raise NarbuildError("nothing to trace: the manifest has no rows for this shard",
                            "run `narbuild crawl` first or check --include")
    _finish_shard(table, shard_dir(options))
    summary.seconds = round(time.perf_counter() - start, 2)
    if summary.traced:
        summary.models_per_minute = round(60 * summary.traced / max(summary.seconds, 1e-9), 1)
    summary.top_errors = dict(sorted(summary.top_errors.items(), key=lambda kv: -kv[1])[:10])
    return summary


def _count(summary: TraceSummary, row: dict) -> None:
    if row["status"] == "ok":
        summary.ok += 1
        summary.fallbacks[row["fallback"]] = summary.fallbacks.get(row["fallback"], 0) + 1
    else:
        summary.errors += 1
        key = error_kind(row["error"] or "")
        summary.top_errors[key] = summary.top_errors.get(key, 0) + 1
    summary.peak_worker_rss_mb = max(summary.peak_worker_rss_mb, row.get("peak_rss_mb") or 0.0)


def error_kind(error: str) -> str:
    """A short, groupable reason: the first failure's exception and message, numbers masked."""
    import re

    first = error.split(" | ")[0]
    first = re.sub(r"^[\w-]+: (?=\w+(Error|Exception|Limit|NotImplemented))", "", first)
    return re.sub(r"\d+", "N", first)[:90]


class _Writer:
    """Buffers result rows and appends them to the shard's folder as atomic Parquet parts."""

    def __init__(self, table: Table, subdir: str, every: int) -> None:
        self.table, self.subdir, self.every = table, subdir, every
        self.rows: list[dict] = []
        self.last = time.monotonic()

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.every or time.monotonic() - self.last > 10:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.table.append(self.rows, subdir=self.subdir)
            (self.table.path / self.subdir / DONE_MARKER).unlink(missing_ok=True)
        self.rows, self.last = [], time.monotonic()


def _finish_shard(table: Table, subdir: str) -> None:
    """Fold the shard's parts into one Parquet file and mark the shard complete."""
    folder = table.path / subdir
    if not folder.is_dir():
        return
    table.compact(subdir)
    (folder / DONE_MARKER).write_text("")
