"""The web app's pictures: two macro graphs side by side with their shared motifs highlighted,
and the records' map with the query placed among its hits. PNG images (PIL), drawn with
matplotlib and networkx."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

SHARED, OWN, QUERY = "#e8710a", "#c9ced6", "#d93025"


def macro_pair(query: dict[str, Any], hit: dict[str, Any], query_name: str,
               hit_name: str) -> Any:
    """The query's and a hit's macro graphs (one node per motif occurrence, in data-flow
    order), nodes of a motif both have in orange."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shared = set(query["motif_keys"]) & set(hit["motif_keys"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 6), dpi=80)
    for ax, record, name in ((axes[0], query, query_name), (axes[1], hit, hit_name)):
        _draw_macro(ax, record, shared)
        count = len(set(record["motif_keys"]) & shared)
        ax.set_title(f"{name}\n{len(record['macro_motif'])} motif nodes, {count} of "
                     f"{len(set(record['motif_keys']))} distinct motifs shared", fontsize=9)
    fig.suptitle("Macro graphs (orange: a motif both networks have)", fontsize=11)
    return _png(fig)


def _draw_macro(ax: Any, record: dict[str, Any], shared: set[str]) -> None:
    import networkx as nx

    keys = record["motif_keys"]
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(record["macro_motif"])))
    graph.add_edges_from(zip(record["macro_edge_src"], record["macro_edge_dst"]))
    if nx.is_directed_acyclic_graph(graph):  # data flows top to bottom, a layer per row
        pos = {node: (i - (len(nodes) - 1) / 2, -layer)
               for layer, nodes in enumerate(nx.topological_generations(graph))
               for i, node in enumerate(sorted(nodes))}
    else:
        pos = nx.spring_layout(graph, seed=0)
    colours = [SHARED if keys[m] in shared else OWN for m in record["macro_motif"]]
    size = max(8, 120 - len(graph) // 4)
    nx.draw_networkx_edges(graph, pos, ax=ax, width=0.5, alpha=0.5, arrows=False)
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colours, node_size=size,
                           linewidths=0.3, edgecolors="#555")
    ax.set_axis_off()


def record_map(ids: list[str], points: np.ndarray, hits: list[tuple[str, float]],
               title: str) -> Any:
    """Every record as a grey point, the hits in orange, and the query (red star) at the mean
    of its hits' positions weighted by ``exp((score - best) / 0.05)``: the map's axes are fitted
    to the records, so the query is placed among the records it is closest to."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    where = {record_id: i for i, record_id in enumerate(ids)}
    rows = [where[r] for r, _ in hits if r in where]
    scores = np.array([s for r, s in hits if r in where], dtype=float)
    weights = np.exp((scores - scores.max()) / 0.05) if len(scores) else scores
    fig, ax = plt.subplots(figsize=(6, 5), dpi=80)
    ax.scatter(points[:, 0], points[:, 1], s=4, c=OWN, linewidths=0)
    if rows:
        ax.scatter(points[rows, 0], points[rows, 1], s=30, c=SHARED, label="hits")
        spot = (points[rows] * weights[:, None]).sum(0) / weights.sum()
        ax.scatter([spot[0]], [spot[1]], s=220, marker="*", c=QUERY, label="query")
        ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(fig)


def _png(fig: Any) -> Any:
    import matplotlib.pyplot as plt
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")
