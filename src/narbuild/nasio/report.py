"""The IO protocol's report: ``reports/eval-io.json``, ``eval-io.md`` and two figures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from narbuild.workspace import Workspace, write_text_atomic

NAMES = {"arch2vec": "arch2vec", "arch2vec-io": "arch2vec-io", "nar": "NAR (bundled)",
         "wl": "WL TF-IDF", "params": "#params (log10)", "random": "random"}


def write_io_report(ws: Workspace, report: dict[str, Any]) -> dict[str, Path]:
    """Write the JSON, the Markdown and the loss and regret figures under ``reports/``."""
    folder = ws.root / "reports"
    folder.mkdir(exist_ok=True)
    paths = {"json": folder / "eval-io.json", "markdown": folder / "eval-io.md",
             "regret": folder / "eval-io-regret.png", "losses": folder / "eval-io-losses.png"}
    write_text_atomic(paths["json"], json.dumps(report, indent=2))
    write_text_atomic(paths["markdown"], markdown(report))
    regret_figure(report, paths["regret"])
    if report["losses"]:
        loss_figure(report, paths["losses"])
    return paths


def read_io_report(root: Path) -> dict[str, Any] | None:
    """``reports/eval-io.json`` under ``root`` when it exists and parses, else None."""
    try:
        report = json.loads((root / "reports" / "eval-io.json").read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and "prediction" in report else None


def card_section(r: dict[str, Any]) -> str:
    """The dataset card's summary of the io protocol: (a) to (d) in one table each line."""
    p, d = r["protocol"], r["retrieval"]
    lines = [(f"**What the outputs add** (`narbuild eval --protocol io`; seeds {p['seeds']}, "
             f"{p['recipe']['epochs']} epochs, NAS data hash {p['data_hash']}, nas_io hash "
             f"{p['nas_io_hash']}, git {p.get('git')}):"), ""]
    if r["losses"]:
        last = r["losses"][-1]
        lines.append("- (a) validation L1 of arch2vec-io, against predicting the mean output: "
                     + "; ".join(f"{n.replace('_', ' ')} {last[n]['l1']:.3f} against "
                                 f"{last[n]['baseline']:.3f}"
                                 for n in ("unseen_networks", "unseen_images")) + ".")
    budget = len(r["search"]["random"]["val"]["mean"])
    lines += ["", (f"| features | (b) accuracy prediction, Spearman (95 % CI) | (c) regret "
                   f"after {budget} queries | (d) functional retrieval, MAP@20 |"),
              "| --- | --- | --- | --- |"]
    for m, name in NAMES.items():
        b = r["prediction"].get(m)
        c = r["search"].get(m)
        ret = d["methods"].get(m)
        lines.append(f"| {name} | "
                     + (f"{b['spearman']['mean']:.3f} ({b['spearman_ci'][0]:.3f}–"
                        f"{b['spearman_ci'][1]:.3f})" if b else "–") + " | "
                     + (f"{c['val']['mean'][-1]:.4f}" if c else "–") + " | "
                     + (f"{ret['map@20']:.4f}" if ret else "–") + " |")
    return "\n".join(lines)


def markdown(r: dict[str, Any]) -> str:
    p = r["protocol"]
    lines = [(f"# IO protocol (arch2vec-IO): {p['networks']['train']} training and "
             f"{p['networks']['val']} unseen networks"),
             "",
             (f"NAS data hash `{p['data_hash']}`, nas_io hash `{p['nas_io_hash']}`, seeds "
             f"{p['seeds']}, {p['recipe']['epochs']} epochs, {p['device']}, git "
             f"{p.get('git')}; {r['seconds']} s in all."), ""]
    lines += _losses(r["losses"])
    lines += ["## (b) Accuracy prediction: random forest, 5-fold CV", "",
              "| features | Spearman (mean ± std over seeds) | 95 % CI | R² | 95 % CI |",
              "|---|---|---|---|---|"]
    for m, v in r["prediction"].items():
        lines.append(f"| {NAMES[m]} | {v['spearman']['mean']:.3f} ± {v['spearman']['std']:.3f} "
                     f"| {v['spearman_ci'][0]:.3f}–{v['spearman_ci'][1]:.3f} "
                     f"| {v['r2']['mean']:.3f} ± {v['r2']['std']:.3f} "
                     f"| {v['r2_ci'][0]:.3f}–{v['r2_ci'][1]:.3f} |")
    if "accuracy_retest" in r:
        lines += ["", ("The accuracy itself is noisy: a second sample of images (the unseen "
                  "ones) reproduces the networks' accuracy ranking with Spearman "
                  f"{r['accuracy_retest']:.3f} only.")]
    lines += ["", (f"## (c) Search: regret after n queries ({p['runs']} runs each; mean and "
              "95 % CI over runs)"), "", "| method | regret | " + " | ".join(
                  f"n = {n}" for n in _counts(r)) + " |",
              "|---|---|" + "---|" * len(_counts(r))]
    for m, v in r["search"].items():
        for kind in ("val", "test"):
            c = v[kind]
            cells = [f"{c['mean'][n - 1]:.4f} ({c['lo'][n - 1]:.4f}–{c['hi'][n - 1]:.4f})"
                     for n in _counts(r)]
            lines.append(f"| {NAMES[m]} | {kind} | " + " | ".join(cells) + " |")
    d = r["retrieval"]
    lines += ["", "## (d) Functional retrieval: MAP@20 of the unseen networks", "",
              (f"Relevant: output cosine ≥ {d['threshold']} (chosen on the training networks "
              f"for {p['relevant_per_validation_query']} relevant each on average); "
              f"{d['queries']} queries with {d['mean_relevant']} relevant on average."), "",
              "| method | MAP@20 | 95 % CI |", "|---|---|---|"]
    for m, v in d["methods"].items():
        lines.append(f"| {NAMES[m]} | {v['map@20']:.4f} | {v['ci'][0]:.4f}–{v['ci'][1]:.4f} |")
    return "\n".join(lines) + "\n"


def _counts(r: dict[str, Any]) -> list[int]:
    budget = len(next(iter(r["search"].values()))["val"]["mean"])
    return [n for n in (10, 25, 50, 100) if n <= budget] or [budget]


def _losses(curves: list[dict[str, Any]]) -> list[str]:
    if not curves:
        return []
    last = curves[-1]
    lines = [f"## (a) Validation L1 after epoch {last['epoch']} (seed mean; 95 % bootstrap CI)",
             "", "| set | arch2vec-io | baseline (mean vector) |", "|---|---|---|"]
    for name in ("unseen_networks", "unseen_images"):
        v = last[name]
        lines.append(f"| {name.replace('_', ' ')} | {v['l1']:.4f} ({v['l1_lo']:.4f}–"
                     f"{v['l1_hi']:.4f}) | {v['baseline']:.4f} ({v['baseline_lo']:.4f}–"
                     f"{v['baseline_hi']:.4f}) |")
    return lines + [""]


def regret_figure(r: dict[str, Any], path: Path) -> None:
    """Mean regret against queries with 95 % bands, validation and test (Figures 7 and 8)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, kind in zip(axes, ("val", "test")):
        for m, v in r["search"].items():
            c = v[kind]
            x = range(1, len(c["mean"]) + 1)
            ax.plot(x, c["mean"], label=NAMES[m])
            ax.fill_between(x, c["lo"], c["hi"], alpha=0.2)
        ax.set_xlabel("queries")
        ax.set_ylabel(f"{'validation' if kind == 'val' else 'unseen-image'} accuracy regret")
        ax.set_yscale("log")
        ax.legend()
    fig.suptitle(f"REINFORCE vs random search over {sum(r['protocol']['networks'].values())} "
                 f"trained networks ({r['protocol']['runs']} runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def loss_figure(r: dict[str, Any], path: Path) -> None:
    """Validation L1 per epoch with 95 % bands, and the mean-vector baseline (Figures 3, 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [c["epoch"] for c in r["losses"]]
    for ax, name in zip(axes, ("unseen_networks", "unseen_images")):
        for key, label in (("l1", "arch2vec-io"), ("baseline", "mean-vector baseline")):
            ax.plot(epochs, [c[name][key] for c in r["losses"]], label=label)
            ax.fill_between(epochs, [c[name][f"{key}_lo"] for c in r["losses"]],
                            [c[name][f"{key}_hi"] for c in r["losses"]], alpha=0.2)
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel("L1 loss")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
