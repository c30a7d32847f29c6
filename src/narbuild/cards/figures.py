"""The release's figures: the embedding map (as the NAR paper's figure 5) and parameters
against FLOPs by family. PNG files drawn with matplotlib's Agg renderer, no pyplot state.

Both are deterministic (sorted rows, seeded subsample and t-SNE, no timestamp in the PNG), so an
unchanged workspace gives byte-identical images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COARSE_COLOURS = {"attention-block": "#2ca02c", "cnn-block": "#d62728", "other": "#1f77b4"}
"""The paper's colours: attention green, CNN red, other blue."""
METHOD_ORDER = ("nar", "gcn", "gat", "wl", "vae")
MAX_METHODS = 3
SEED = 0


@dataclass(frozen=True)
class Figure:
    """A figure of the release: its path in the folder, title and caption."""

    path: str
    title: str
    caption: str


def make_figures(tables: dict[str, pa.Table], folder: Path, *,
                 max_points: int = 2000) -> list[Figure]:
    """Draw every figure the tables allow into ``folder``; returns what was drawn."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    if "embeddings" in tables:
        figures.append(embedding_map(tables["embeddings"], tables.get("processed"),
                                     folder / "embedding-map.png", max_points=max_points))
    scatter = params_flops(tables, folder / "params-vs-flops.png")
    if scatter is not None:
        figures.append(scatter)
    return [f for f in figures if f is not None]


# --------------------------------------------------------------------------- embedding map


def embedding_map(embeddings: pa.Table, processed: pa.Table | None, path: Path, *,
                  max_points: int = 2000, seed: int = SEED) -> Figure | None:
    """t-SNE of each method's vectors, one panel per (dataset, method): real records coloured
    by coarse label, NAS networks by edit-distance class. At most ``max_points`` per panel."""
    datasets = [d for d in ("real", "nas") if d in set(embeddings.column("dataset").to_pylist())]
    methods = _methods(embeddings)
    if not datasets or not methods:
        return None
    labels = _labels(processed)
    fig = _new_figure(len(datasets), len(methods))
    axes = np.atleast_2d(fig.subplots(len(datasets), len(methods), squeeze=False))
    for i, dataset in enumerate(datasets):
        rows = embeddings.filter(pc.equal(embeddings.column("dataset"), dataset))
        keep = _sample(sorted(set(rows.column("record_id").to_pylist())), max_points, seed)
        for j, method in enumerate(methods):
            ids, vectors = _vectors(rows, method, keep)
            _panel(axes[i, j], f"{dataset} · {method} ({len(ids):,} points)",
                   _project(vectors, seed), [labels.get(r, "unlabelled") for r in ids], dataset)
    _save(fig, path)
    return Figure(f"figures/{path.name}", "Embedding map",
                  f"t-SNE of the embeddings (PCA to 50 dimensions first), one panel per dataset "
                  f"and method ({', '.join(methods)}); at most {max_points:,} records per "
                  f"dataset, a seeded random "
                  f"sample (seed {seed}). Real models are coloured by coarse label (attention "
                  f"green, CNN red, other blue, as in the NAR paper's figure 5), NAS networks by "
                  f"edit-distance class.")


def _methods(embeddings: pa.Table) -> list[str]:
    present = set(embeddings.column("method").to_pylist())
    ordered = [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))
    return ordered[:MAX_METHODS]


def _labels(processed: pa.Table | None) -> dict[str, str]:
    """record_id -> colour label: coarse label (real) or ``class k`` (nas)."""
    if processed is None:
        return {}
    cols = processed.select(["record_id", "dataset", "coarse_label", "cluster"]).to_pylist()
    return {r["record_id"]: (f"class {r['cluster']}" if r["dataset"] == "nas"
                             and r["cluster"] is not None else r["coarse_label"] or "other")
            for r in cols}


def _sample(ids: list[str], k: int, seed: int) -> set[str]:
    if len(ids) <= k:
        return set(ids)
    pick = np.random.default_rng(seed).choice(len(ids), size=k, replace=False)
    return {ids[i] for i in pick}


def _vectors(rows: pa.Table, method: str, keep: set[str]) -> tuple[list[str], np.ndarray]:
    rows = rows.filter(pc.equal(rows.column("method"), method))
    rows = rows.filter(pc.is_in(rows.column("record_id"), pa.array(sorted(keep))))
    rows = rows.sort_by("record_id")
    lengths = pc.list_value_length(rows.column("vector")).to_numpy(zero_copy_only=False)
    if rows.num_rows == 0 or len(set(lengths.tolist())) != 1:
        return [], np.zeros((0, 2), dtype=np.float32)
    flat = pc.list_flatten(rows.column("vector")).to_numpy(zero_copy_only=False)
    return rows.column("record_id").to_pylist(), flat.reshape(rows.num_rows, -1)


def _project(vectors: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE coordinates, on one thread: OpenMP's busy waiting makes t-SNE many times slower
    when the cores are shared with other work."""
    import sklearn.manifold  # noqa: F401 - loads OpenMP, so that the limit below applies to it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _tsne(vectors, seed)


def _tsne(vectors: np.ndarray, seed: int) -> np.ndarray:
    """PCA to at most 50 dimensions, then t-SNE (PCA alone for fewer than 5 points)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(vectors)
    if n < 2:
        return np.zeros((n, 2))
    vectors = np.nan_to_num(vectors.astype(np.float64))
    dims = min(50, vectors.shape[1], n)
    reduced = PCA(dims, random_state=seed).fit_transform(vectors) if dims > 2 else vectors
    if n < 5 or reduced.shape[1] < 2:
        return np.pad(reduced, ((0, 0), (0, max(0, 2 - reduced.shape[1]))))[:, :2]
    tsne = TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed,
                max_iter=500)
    return tsne.fit_transform(reduced)


def _panel(ax, title: str, xy: np.ndarray, labels: list[str], dataset: str) -> None:
    names = sorted(set(labels), key=_label_order)
    colours = _colours(names, dataset)
    for name in names:
        mask = np.array([lbl == name for lbl in labels], dtype=bool)
        ax.scatter(xy[mask, 0], xy[mask, 1], s=4, alpha=0.7, color=colours[name],
                   label=f"{name} ({int(mask.sum()):,})", linewidths=0)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if names:
        ax.legend(fontsize=6, markerscale=2.5, loc="best", ncol=2 if len(names) > 5 else 1)


def _label_order(name: str) -> tuple[int, str]:
    if name.startswith("class "):
        return (1, f"{int(name.split()[1]):06d}")
    return (0, name)


def _colours(names: list[str], dataset: str) -> dict[str, str]:
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    out = {}
    for i, name in enumerate(names):
        out[name] = COARSE_COLOURS.get(name) if dataset == "real" else None
        out[name] = out[name] or _hex(palette[i % len(palette)])
    return out


# --------------------------------------------------------------------------- params vs FLOPs


def params_flops(tables: dict[str, pa.Table], path: Path, top: int = 10) -> Figure | None:
    """Parameters against FLOPs (log-log), the ``top`` largest families coloured."""
    source = _scatter_source(tables)
    if source is None:
        return None
    rows, group_by, what, noun = source
    rows = rows.filter(pc.and_(pc.greater(rows.column("flops"), 0),
                               pc.greater(rows.column("params"), 0)))
    if rows.num_rows == 0:
        return None
    groups = [str(g) for g in rows.column(group_by).to_pylist()]
    params = rows.column("params").to_numpy(zero_copy_only=False).astype(float)
    flops = rows.column("flops").to_numpy(zero_copy_only=False).astype(float)
    counts: dict[str, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    shown = sorted(counts, key=lambda g: (-counts[g], g))[:top]
    fig = _new_figure(1, 1, width=7.5, height=5.0)
    ax = fig.subplots()
    rest = np.array([g not in shown for g in groups])
    ax.scatter(params[rest], flops[rest], s=6, color="#bbbbbb", linewidths=0,
               label=f"other {noun} ({int(rest.sum()):,})")
    palette = _tab(len(shown))
    for colour, name in zip(palette, shown):
        mask = np.array([g == name for g in groups])
        ax.scatter(params[mask], flops[mask], s=9, color=colour, linewidths=0, alpha=0.85,
                   label=f"{name} ({counts[name]:,})")
    ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="FLOPs per forward pass")
    ax.set_title(f"Parameters against FLOPs, {what}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)
    return Figure(f"figures/{path.name}", "Parameters against FLOPs",
                  f"{what.capitalize()}: parameters and FLOPs of one forward pass at the traced "
                  f"input size (log-log); the {len(shown)} largest {noun} are coloured, the "
                  f"rest grey. Rows with unknown FLOPs are left out.")


def _scatter_source(tables: dict[str, pa.Table]) -> tuple[pa.Table, str, str, str] | None:
    """(rows, grouping column, description, group noun): processed real, else graphs, else NAS."""
    processed = tables.get("processed")
    if processed is not None:
        real = processed.filter(pc.equal(processed.column("dataset"), "real"))
        if real.num_rows:
            return real.select(["fine_label", "flops", "params"]), "fine_label", \
                "one point per real record, coloured by family", "families"
    if "graphs" in tables:
        graphs = tables["graphs"].filter(pc.equal(tables["graphs"].column("status"), "ok"))
        prefix = [m.split(":", 1)[0] for m in graphs.column("model_id").to_pylist()]
        rows = graphs.select(["flops", "params"]).append_column("source", pa.array(prefix))
        return rows, "source", "one point per traced model, coloured by source", "sources"
    if "nas" in tables:
        nas = tables["nas"].filter(pc.equal(tables["nas"].column("status"), "ok"))
        return nas.select(["cluster", "flops", "params"]), "cluster", \
            "one point per NAS network, coloured by edit-distance class", \
            "classes"
    return None


# --------------------------------------------------------------------------- drawing


def _new_figure(rows: int, cols: int, width: float | None = None, height: float | None = None):
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width or 4.2 * cols, height or 3.8 * rows), dpi=110,
                     layout="constrained")


def _save(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", metadata={"Software": None})


def _tab(n: int) -> list[str]:
    from matplotlib import colormaps

    palette = colormaps["tab10" if n <= 10 else "tab20"].colors
    return [_hex(palette[i % len(palette)]) for i in range(n)]


def _hex(rgb: tuple[float, ...]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb[:3])
