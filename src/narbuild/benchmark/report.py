"""The v2 report as JSON and Markdown: ``reports/eval-protocols.json`` and ``.md``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from narbuild.workspace import Workspace, write_text_atomic

SHOWN = ("mrr@20", "map@20", "ndcg@20")

PROTOCOL_TEXT = {
    "closed": "the processed table's 0.9/0.1 split (v1's queries; siblings excluded)",
    "loo": "every record with a relevant record in another unit is a query once, in "
           "unit-disjoint folds",
    "open": "family-disjoint folds: a test family is never fitted, trained on or selected on",
    "variants": "depth/width variants of catalogue architectures against the catalogue; "
                "relevant = same family",
}


def markdown(report: dict[str, Any]) -> str:
    """Per dataset and protocol: a table of every method (mean ± std over seeds, bootstrap 95 %
    interval), then the slices of the best method and the choices made on validation."""
    p = report["protocol"]
    lines = ["# narbuild eval: benchmark v2", "",
             f"Relevant = shares a family with the query; same-backbone siblings and variants "
             f"are never ranked. {p['folds']} folds; seeds {p['seeds']}; settings chosen "
             f"{p['selection']}; 95 % intervals from {p['bootstrap']} bootstrap resamples of "
             f"the queries. git {p['git']}, device {p['device']}, dim {p['config']['dim']}, "
             f"epochs {p['config']['epochs']} (motif {p['config']['motif_epochs']}); "
             + ", ".join(f"{k} {v}" for k, v in p["packages"].items()) + ".", ""]
    for name, d in report["datasets"].items():
        lines += [(f"## {name}: {d['records']} records, {d['units']} retrieval units, "
                  f"{d['families']} families in {d['family_groups']} groups "
                  f"(data hash {d['catalogue_hash']})"), ""]
        if d.get("variants_version"):
            lines += [(f"Variants v{d['variants_version']}: {d['traced']} traced, {d['kept']} "
                      f"kept, {d['same_as_catalogue']} dropped as equal to a catalogue graph."),
                      ""]
        for protocol, r in d["protocols"].items():
            lines += _protocol_table(protocol, r)
    return "\n".join(lines) + "\n"


def _protocol_table(protocol: str, r: dict[str, Any]) -> list[str]:
    lines = [f"### {protocol}: {r['queries']} queries, {r['seconds']} s", "",
             PROTOCOL_TEXT.get(protocol, ""), ""]
    if not r["queries"]:
        return [*lines, ("No record has a relevant record it may rank under this protocol "
                        "(too few families with two or more retrieval units)."), ""]
    lines += ["| Method | " + " | ".join(m.upper() for m in SHOWN) + " | MAP@20 95 % CI | "
              "Validation MAP@20 | Chosen on validation |", "|---|" + "---|" * (len(SHOWN) + 3)]
    for method, row in r["methods"].items():
        cells = [mean_std_cell(row["mean"][m], row["std"][m], row["seeds"]) for m in SHOWN]
        lo, hi = row["ci95"]["map@20"]
        chosen = "; ".join(f"{k} ×{n}" for k, n in row["choices"].items()) or "-"
        held = (row.get("validation") or {}).get("map@20")
        held = "-" if held is None else f"{held:.3f}"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | [{lo:.3f}, {hi:.3f}] | "
                     f"{held} | {chosen} |")
    best = max(r["methods"], key=lambda m: r["methods"][m]["mean"]["map@20"])
    lines += ["", f"Slices of {best} (MAP@20, queries):", ""]
    for kind, values in r["methods"][best]["slices"].items():
        lines.append(f"- {kind}: " + ", ".join(f"{v} {s['map@20']:.3f} ({s['queries']})"
                                              for v, s in values.items()))
    return lines + [""]


def mean_std_cell(mean: float, std: float, seeds: int) -> str:
    """``mean ± std`` (just the mean for one seed; ``-`` for NaN)."""
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f} ± {std:.3f}" if seeds > 1 else f"{mean:.3f}"


def card_section(report: dict[str, Any]) -> str:
    """The dataset card's benchmark-v2 tables: per dataset and protocol, each method's @20
    metrics with the MAP@20 interval, the protocol named and the data hash beside them."""
    p = report.get("protocol", {})
    lines = [(f"**Benchmark v2** (`narbuild eval --protocol all`; relevant = shares a family, "
             f"same-backbone siblings never ranked, settings chosen on validation; "
             f"{p.get('folds')} folds, seeds {p.get('seeds')}, "
             f"dim {p.get('config', {}).get('dim')}, git {p.get('git')}):"), ""]
    for name, d in report.get("datasets", {}).items():
        for protocol, r in d.get("protocols", {}).items():
            if not r.get("queries"):
                continue
            lines += [(f"*{name} / {protocol}* ({PROTOCOL_TEXT.get(protocol, '')}; "
                      f"{r['queries']} queries; data hash {d.get('catalogue_hash')}):"), "",
                      "| method | MRR@20 | MAP@20 | MAP@20 95 % CI | NDCG@20 |",
                      "| --- | --- | --- | --- | --- |"]
            for method, row in r["methods"].items():
                lo, hi = row["ci95"]["map@20"]
                lines.append(f"| {method} | {row['mean']['mrr@20']:.3f} | "
                             f"{row['mean']['map@20']:.3f} | [{lo:.3f}, {hi:.3f}] | "
                             f"{row['mean']['ndcg@20']:.3f} |")
            lines.append("")
    return "\n".join(lines).rstrip()


TRAINING_FREE = ("wl", "wl-fam")


def embedding_comparison(report: dict[str, Any], method: str) -> list[str]:
    """One line per dataset and protocol where the v2 ``report`` ran ``method``: its MAP@20
    and NDCG@20 (MAP@20 interval) beside the training-free rankings' (:data:`TRAINING_FREE`)."""
    lines = []
    for name, d in report.get("datasets", {}).items():
        for protocol, r in d.get("protocols", {}).items():
            rows = r.get("methods", {})
            if not r.get("queries") or method not in rows:
                continue
            cells = [_map_ndcg(m, rows[m]) for m in (method, *TRAINING_FREE) if m in rows]
            lines.append(f"- {name} / {protocol} ({r['queries']} queries, data hash "
                         f"{d.get('catalogue_hash')}): " + "; ".join(cells))
    return lines


def _map_ndcg(method: str, row: dict[str, Any]) -> str:
    lo, hi = row["ci95"]["map@20"]
    return (f"{method} MAP@20 {row['mean']['map@20']:.3f} [{lo:.3f}, {hi:.3f}], NDCG@20 "
            f"{row['mean']['ndcg@20']:.3f}")


def read_protocol_report(root: Path) -> dict[str, Any] | None:
    """``reports/eval-protocols.json`` under ``root`` when it exists and parses, else None."""
    path = root / "reports" / "eval-protocols.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and "datasets" in report else None


def write_protocol_report(ws: Workspace, report: dict[str, Any]) -> dict[str, Path]:
    """``reports/eval-protocols.json`` (everything) and ``reports/eval-protocols.md``."""
    folder = ws.root / "reports"
    folder.mkdir(exist_ok=True)
    paths = {"json": folder / "eval-protocols.json", "markdown": folder / "eval-protocols.md"}
    write_text_atomic(paths["json"], json.dumps(report, indent=2))
    write_text_atomic(paths["markdown"], markdown(report))
    return paths
