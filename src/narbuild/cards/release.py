"""Stage a release folder: exactly what ``narbuild push`` uploads.

::

    from narbuild import Workspace
    from narbuild.cards import stage_release

    summary = stage_release(Workspace("narbuild-data"), "release")
    # release/README.md, release/data/<config>/<split>-0000i-of-0000N.parquet, release/figures/*.png

Each workspace table that exists becomes one or two configs (see :data:`CONFIGS`); tables that
do not exist are left out, so a release of only the traced graphs is valid. The output is
deterministic: rows sorted by key, no "now" anywhere, so staging an unchanged workspace again
gives byte-identical files and a re-push changes nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from narbuild.cards.configs import (
    CONFIGS,
    DEFAULT_LICENSE,
    GRAPH_TABLES,
    RELEASE_ENTRIES,
    RELEASED_TABLES,
    ConfigRelease,
    ConfigSpec,
)
from narbuild.cards.folder import MARKER, check_target, recover, staging, swap_in
from narbuild.cards.shards import MAX_SHARD_BYTES, write_shards
from narbuild.errors import NarbuildError
from narbuild.workspace import Workspace

__all__ = [
    "CONFIGS",
    "DEFAULT_LICENSE",
    "GRAPH_TABLES",
    "RELEASE_ENTRIES",
    "ConfigRelease",
    "ConfigSpec",
    "ReleaseSummary",
    "config_table",
    "load_tables",
    "read_eval_report",
    "release_schema",
    "stage_release",
]

@dataclass
class ReleaseSummary:
    """What :func:`stage_release` wrote."""

    folder: Path
    configs: list[ConfigRelease]
    figures: list[str]
    files: dict[str, int]
    seconds: float
    recovered: str | None = None  # what was repaired of an interrupted earlier run

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder),
                "configs": {c.name: c.rows for c in self.configs},
                "figures": self.figures, "files": self.files,
                "bytes": sum(self.files.values()), "seconds": round(self.seconds, 2),
                "recovered": self.recovered}


def stage_release(
    ws: Workspace,
    out_dir: str | Path,
    *,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    eval_report: dict[str, Any] | None = None,
    repo_id: str | None = None,
    license: str = DEFAULT_LICENSE,
    map_points: int = 2000,
) -> ReleaseSummary:
    """Write the release folder ``out_dir`` from the workspace's tables.

    Args:
        ws: the workspace.
        out_dir: the folder; it must be new, empty, or an earlier release exactly as narbuild
            wrote it (replaced only once the new one is complete), outside the workspace, and
            writable (see :mod:`narbuild.cards.folder`).
        max_shard_bytes: upper bound of one Parquet file.
        eval_report: ``narbuild eval``'s report (its summary or details shape); by default the
            workspace's ``reports/eval-details.json`` or ``reports/eval.json`` when present.
        repo_id: the Hub repo the card's examples load from (a placeholder when None).
        license: the dataset licence (a Hub licence id).
        map_points: at most this many points per embedding-map panel (seeded subsample).
    """
    from narbuild.benchmark.report import read_protocol_report
    from narbuild.cards.card import CardInputs, render_card
    from narbuild.cards.figures import make_figures
    from narbuild.nasio.report import read_io_report

    start = time.perf_counter()
    out_dir = Path(out_dir)
    recovered = recover(out_dir) if out_dir.parent.is_dir() else None
    check_target(out_dir, ws.root)
    tables = load_tables(ws)
    report = eval_report if eval_report is not None else read_eval_report(ws)
    try:
        with staging(out_dir) as tmp:
            configs = _write_configs(tables, tmp, max_shard_bytes)
            figures = make_figures(tables, tmp / "figures", max_points=map_points)
            inputs = CardInputs(tables=tables, configs=configs, figures=figures,
                                eval_report=report, protocol_report=read_protocol_report(ws.root),
                                io_report=read_io_report(ws.root),
                                commands=ws.commands(),
                                repo_id=repo_id, license=license,
                                map_points=map_points, max_shard_bytes=max_shard_bytes)
            (tmp / "README.md").write_text(render_card(inputs), encoding="utf-8")
            swap_in(tmp, out_dir)
    except OSError as exc:
        raise NarbuildError(f"cannot write the release to {out_dir}: {exc.strerror or exc}",
                            "free some space or pass another --local-dir; the workspace and "
                            "any earlier release are untouched") from exc
    files = {p.relative_to(out_dir).as_posix(): p.stat().st_size
             for p in sorted(out_dir.rglob("*")) if p.is_file() and p.name != MARKER}
    return ReleaseSummary(out_dir, configs, [f.path for f in figures], files,
                          time.perf_counter() - start, recovered)


def load_tables(ws: Workspace) -> dict[str, pa.Table]:
    """Every table the workspace has, read once; a clear error when there is nothing to release."""
    names = [n for n in RELEASED_TABLES if ws.table(n).exists()]
    if not any(n in GRAPH_TABLES for n in names):
        raise NarbuildError(f"nothing to release: the workspace {ws.root} has no graphs yet",
                            "run `narbuild trace` or `narbuild gen-nas` first")
    return {n: ws.table(n).read() for n in names}


def read_eval_report(ws: Workspace) -> dict[str, Any] | None:
    """``narbuild eval``'s report: ``reports/eval-details.json`` (means, stds, protocol) when it
    exists, else ``reports/eval.json`` (means), else None."""
    for name in ("eval-details.json", "eval.json"):
        path = ws.root / "reports" / name
        if path.is_file():
            try:
                report = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise NarbuildError(f"{path} is not readable JSON ({exc})",
                                    "re-run `narbuild eval`, or move the file away") from exc
            return report if isinstance(report, dict) else None
    return None


def config_table(spec: ConfigSpec, table: pa.Table) -> dict[str, pa.Table]:
    """The rows of one config per split, sorted by the table's key."""
    from narbuild.schemas import TABLES

    key = TABLES[spec.table][1]
    if spec.where is not None:
        table = table.filter(pc.equal(table.column(spec.where[0]), spec.where[1]))
    if spec.split_column is None:
        parts = {spec.splits[0]: table}
    else:
        parts = {s: table.filter(pc.equal(table.column(spec.split_column), s))
                 for s in spec.splits}
    return {s: t.sort_by(key).combine_chunks() for s, t in parts.items() if t.num_rows}


def _write_configs(tables: dict[str, pa.Table], root: Path,
                   max_bytes: int) -> list[ConfigRelease]:
    configs = []
    for spec in CONFIGS:
        if spec.table in tables and (c := _write_config(spec, tables[spec.table], root,
                                                        max_bytes)):
            configs.append(c)
    return configs


def release_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as Parquet stores it: second timestamps become millisecond ones (Parquet has
    no second unit, so readers would see milliseconds anyway); everything else is unchanged."""
    fields = [f.with_type(pa.timestamp("ms", tz=f.type.tz))
              if pa.types.is_timestamp(f.type) and f.type.unit == "s" else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


def _write_config(spec: ConfigSpec, table: pa.Table, root: Path,
                  max_bytes: int) -> ConfigRelease | None:
    schema = release_schema(table.schema)
    release = ConfigRelease(spec, schema)
    for split, part in config_table(spec, table.cast(schema)).items():
        paths = write_shards(part, root / "data" / spec.name, split, max_bytes)
        release.rows[split] = part.num_rows
        release.files[split] = [p.relative_to(root).as_posix() for p in paths]
    return release if release.rows else None
