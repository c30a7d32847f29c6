"""``narbuild eval``'s report, rendered once: ``reports/eval.md`` and the dataset card's table.

:func:`results_table` is the one renderer of the retrieval metrics. It reads the details report
(``{"protocol": ..., "datasets": {dataset: {"methods": {method: {"mean", "std", "seeds"}}}}}``)
and the summary (``{dataset: {method: {metric: mean}}}``, ``reports/eval.json``); entries of
other shapes are skipped, so a hand-edited or older report still renders what it can. This
module imports no torch: the card renders the report without loading the encoder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from narbuild.workspace import Workspace, write_text_atomic

_METRICS = ("mrr", "map", "ndcg")
_DATASET_ORDER = {"real": 0, "nas": 1}


def summary(report: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """``{dataset: {method: {"mrr@20": mean, ...}}}``: what ``narbuild eval --json`` prints."""
    return {d: {m: row["mean"] for m, row in v["methods"].items()}
            for d, v in report["datasets"].items()}


def results_table(report: dict[str, Any]) -> str:
    """The Markdown table of a report's metrics, one row per dataset and method (``mean ± std``
    over seeds; ``-`` for NaN); ``""`` when the report holds no metric."""
    rows = _rows(report)
    if not rows:
        return ""
    names = sorted({k for *_, cells in rows for k in cells}, key=_metric_order)
    head = ("| Dataset | Method | " + " | ".join(_metric_name(n) for n in names)
            + " |\n| --- | --- |" + " --- |" * len(names))
    body = "\n".join(f"| {d} | {m} | " + " | ".join(c.get(k, "") for k in names) + " |"
                     for d, m, c in rows)
    return f"{head}\n{body}"


def protocol_text(report: dict[str, Any]) -> str:
    """How the figures were made, from a details report's protocol (``""`` without one)."""
    p = report.get("protocol")
    if not isinstance(p, dict):
        return ""
    parts = []
    if isinstance(p.get("seeds"), list):
        parts.append(f"mean ± std over seeds {', '.join(map(str, p['seeds']))} "
                     "(wl is deterministic)")
    packages = p.get("packages") if isinstance(p.get("packages"), dict) else {}
    for key in ("relevant", "similarity", "device", "git", *(() if packages else ("torch",))):
        if isinstance(p.get(key), str):
            parts.append(f"{key} {p[key]}")
    if packages:
        parts.append(", ".join(f"{k} {v}" for k, v in packages.items() if v))
    return "; ".join(parts)


def markdown(report: dict[str, Any]) -> str:
    """``reports/eval.md``: the metrics in the layout of the paper's Table 1, then the record
    counts and the times of a details report."""
    lines = ["# narbuild eval", "", "Retrieval of the test records against the train records; "
             "relevant = same family. " + (protocol_text(report) + ".").lstrip("."), "",
             results_table(report)]
    datasets = report.get("datasets", {})
    lines += ["", "| Dataset | Records | Test queries | Families |", "|---|---|---|---|"]
    lines += [f"| {n} | {d.get('records')} | {d.get('queries')} | {d.get('families')} |"
              for n, d in datasets.items()]
    lines += ["", "| Dataset | Method | Train s (per seed) | s/epoch | Embed s (all records) |",
              "|---|---|---|---|---|"]
    for dataset, d in datasets.items():
        for method, row in d.get("methods", {}).items():
            epochs = ", ".join(f"{k} {v}" for k, v in row.get("epoch_seconds", {}).items())
            lines.append(f"| {dataset} | {method} | {row.get('train_seconds')} | "
                         f"{epochs or '-'} | {row.get('embed_seconds')} |")
    return "\n".join(lines) + "\n"


def write_report(ws: Workspace, report: dict[str, Any]) -> dict[str, Path]:
    """``reports/eval.json`` (the summary), ``eval-details.json`` and ``eval.md``."""
    folder = ws.root / "reports"
    folder.mkdir(exist_ok=True)
    paths = {"json": folder / "eval.json", "details": folder / "eval-details.json",
             "markdown": folder / "eval.md"}
    texts = {"json": json.dumps(summary(report), indent=2),
             "details": json.dumps(report, indent=2), "markdown": markdown(report)}
    for key, path in paths.items():
        write_text_atomic(path, texts[key])
    return paths


# --------------------------------------------------------------------------- cells


def _rows(report: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    datasets = report.get("datasets") if isinstance(report.get("datasets"), dict) else report
    rows = []
    for dataset in sorted(datasets, key=lambda d: (_DATASET_ORDER.get(str(d), 9), str(d))):
        entry = datasets[dataset]
        methods = entry.get("methods") if isinstance(entry, dict) else None
        methods = methods if isinstance(methods, dict) else entry
        for method, row in (methods.items() if isinstance(methods, dict) else ()):
            if isinstance(row, dict) and (cells := _cells(row)):
                rows.append((str(dataset), str(method), cells))
    return rows


def _cells(row: dict[str, Any]) -> dict[str, str]:
    """metric -> formatted value, from ``{metric: value}`` or ``{"mean": {...}, "std": {...}}``."""
    if isinstance(row.get("mean"), dict):
        stds = row.get("std") if isinstance(row.get("std"), dict) and row.get("seeds") != 1 else {}
        row = {m: {"mean": v, "std": stds.get(m)} for m, v in row["mean"].items()}
    return {str(k): v for k, val in row.items() if (v := _metric(val)) is not None}


def _metric(value: Any) -> str | None:
    if isinstance(value, dict):
        mean, std = value.get("mean"), value.get("std")
        if not _is_number(mean):
            return None
        if math.isnan(mean):
            return "-"
        return f"{mean:.3f}" + (f" ± {std:.3f}" if _is_number(std) else "")
    if _is_number(value):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _metric_order(name: str) -> tuple[int, int, str]:
    base, _, k = name.lower().partition("@")
    rank = _METRICS.index(base) if base in _METRICS else len(_METRICS)
    return (rank, int(k) if k.isdigit() else 0, name)


def _metric_name(name: str) -> str:
    base, at, k = name.partition("@")
    return f"{base.upper()}{at}{k}" if base.lower() in _METRICS else name
