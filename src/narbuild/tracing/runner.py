"""``narbuild trace``: the manifest through a pool of isolated workers into the graphs table.

:func:`trace_catalog` plans what is left to trace (rows already traced, and twins with the same
config hash, are not traced again), runs it through :mod:`narbuild.tracing.workers` and writes
results in small atomic Parquet parts, so a run killed at any point (SIGKILL included) resumes
where it stopped, with no lost and no duplicated rows. ``--shard i --num-shards n`` splits the
catalog by config hash (identical configs share a shard and are traced once) with one folder
and a JSON ``_SUCCESS`` marker per shard, an empty shard too; a workspace keeps one shard count.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from narbuild.errors import NarbuildError
from narbuild.tracing.shards import (
    DONE_MARKER,
    KEYS,
    check_shard_count,
    manifest_digest,
    package_version,
    row_shard,
    shard_dir,
    shard_of,
)
from narbuild.tracing.workers import TraceOptions, TraceSummary, run_trace_pool
from narbuild.workspace import Table, Workspace, write_text_atomic

__all__ = ["TraceOptions", "TraceSummary", "error_kind", "plan", "shard_of", "trace_catalog"]


def plan(workspace: Workspace, options: TraceOptions, model_ids: set[str] | None = None,
         ) -> tuple[list[dict], list[dict], int]:
    """Rows to trace, rows to copy from a traced twin (same config hash), rows already done.

    Only the key, status and config-hash columns of the manifest and the graphs table are read
    for the plan; full rows only for what this shard traces or copies."""
    graphs = workspace.table("graphs")
    done = {r["model_id"]: r for r in graphs.read(KEYS).to_pylist()} if graphs.exists() else {}
    ok_by_hash = {r["config_hash"]: r["model_id"] for r in done.values() if r["status"] == "ok"}
    todo, copies, skipped = [], [], 0
    first_of_hash: dict[str, str] = {}
    for row in workspace.table("manifest").read(KEYS).to_pylist():
        key = row["config_hash"] or row["model_id"]
        if row["status"] != "ok" or row_shard(row, options.num_shards) != options.shard:
            continue
        if model_ids is not None and row["model_id"] not in model_ids:
            continue
        prev = done.get(row["model_id"])
        if prev and prev["config_hash"] == row["config_hash"] and (
                prev["status"] == "ok" or not options.retry_errors):
            skipped += 1
        elif key in ok_by_hash:
            copies.append({"model_id": row["model_id"], "done_twin": ok_by_hash[key]})
        elif key in first_of_hash:
            copies.append({"model_id": row["model_id"], "twin": first_of_hash[key]})
        else:
            first_of_hash[key] = row["model_id"]
            todo.append(row["model_id"])
    full = _full_rows(workspace.table("manifest"), todo)
    twins = _full_rows(graphs, [c["done_twin"] for c in copies if "done_twin" in c])
    copies = [{**twins[c["done_twin"]], "model_id": c["model_id"]} if "done_twin" in c else c
              for c in copies]
    return [full[i] for i in todo], copies, skipped


def _full_rows(table: Table, ids: list[str]) -> dict[str, dict]:
    """Every column of the rows with these model ids (nothing is read for none)."""
    if not ids:
        return {}
    rows = table.read()
    rows = rows.filter(pc.is_in(rows["model_id"], pa.array(sorted(set(ids)))))
    return {r["model_id"]: r for r in rows.to_pylist()}


def trace_workspace(workspace: Workspace, options: TraceOptions | None = None,
                    include: Iterable[str] = (), exclude: Iterable[str] = (),
                    shard: int | None = None,
                    on_result: Callable[[dict], None] | None = None) -> TraceSummary:
    """``narbuild trace``: the manifest rows that ``include``/``exclude`` select (every row
    without patterns), through every shard of the graphs table in turn (only ``shard`` when
    given); the command line is recorded for the dataset card."""
    from narbuild.crawler import manifest_ids, patterns

    include, exclude = list(include), list(exclude)
    options = options or TraceOptions()
    ids = manifest_ids(workspace, include, exclude)
    shards = range(options.num_shards) if shard is None else [shard]
    runs = [trace_catalog(workspace, dataclasses.replace(options, shard=i), ids, on_result)
            for i in shards]
    workspace.record_command("trace", " ".join(["narbuild trace", *patterns(include, exclude)]))
    return runs[0] if len(runs) == 1 else TraceSummary.combine(runs)


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
    check_shard_count(table, options.num_shards)
    todo, copies, skipped = plan(workspace, options, set(model_ids) if model_ids else None)
    summary = TraceSummary(skipped=skipped, shard=shard_dir(options.shard, options.num_shards))
    writer = _Writer(table, shard_dir(options.shard, options.num_shards), options.flush_every)
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
        run_trace_pool(todo, options, record, summary)
        for row in copies:  # twins traced in this run
            if "twin" in row:
                summary.cached += 1
                twin = results[row["twin"]]
                record({**twin, "model_id": row["model_id"]})
    finally:
        writer.flush()
    if not todo and not copies and not skipped and not _any_ok(workspace):
        raise NarbuildError("nothing to trace: the manifest has no model to trace",
                            "run `narbuild crawl` first or check --include")
    _finish_shard(table, options, workspace)
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


def _any_ok(workspace: Workspace) -> bool:
    status = workspace.table("manifest").read(["status"]).column("status")
    return bool(pc.any(pc.equal(status, "ok")).as_py())


def _finish_shard(table: Table, options: TraceOptions, workspace: Workspace) -> None:
    """Fold the shard's parts into one Parquet file and mark the shard complete, an empty shard
    too, with a JSON ``_SUCCESS``: its counts, the digest of the manifest rows it covers, and
    the versions that traced it."""
    from narbuild._version import __version__

    subdir = shard_dir(options.shard, options.num_shards)
    folder = table.path / subdir
    folder.mkdir(parents=True, exist_ok=True)
    table.compact(subdir)
    rows = table.read(KEYS, subdir=subdir).to_pylist() if table.parts(subdir) else []
    covered, digest = manifest_digest(workspace, options.shard, options.num_shards)
    done = {"shard": options.shard, "num_shards": options.num_shards, "rows": len(rows),
            "ok": sum(r["status"] == "ok" for r in rows),
            "errors": sum(r["status"] != "ok" for r in rows),
            "manifest_rows": covered, "manifest_digest": digest,
            "narbuild_version": __version__, "torch_version": package_version("torch"),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    write_text_atomic(folder / DONE_MARKER, json.dumps(done, indent=1))
