"""``narbuild search``: the command over :func:`narbuild.retrieval.search`."""

from __future__ import annotations

import json
from typing import Any

import click

_WIDTH = 44


@click.command()
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many results.")
@click.option("--dataset", type=click.Choice(["real", "nas", "all"]), default="real",
              show_default=True, help="Which records to search.")
@click.option("--method", default="wl-metric+wl-fam", show_default=True,
              help="wl-metric+wl-fam: the bundled wl-metric encoder's cosine fused with "
                   "wl-fam's, weighted per dataset as chosen on validation (best on benchmark "
                   "v2's open and variants protocols). wl-fam: WL colour presence weighted by "
                   "an idf over the catalog's families (equal scores ordered by wl's); wl: WL "
                   "colour histograms with plain TF-IDF (training-free). wl-metric, nar, gcn, "
                   "...: the workspace's embeddings of that method with its encoder, or the "
                   "bundled encoder's (wl-metric, nar) when it has none; nar+wl-fam (or +wl): "
                   "fused likewise. The result names the encoder and the weights.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="The encoder that made the embeddings, if not where `embed` left it; in a "
                   "workspace without embeddings of the method, the one to embed the records "
                   "with (default: the bundled one).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the results as a JSON list (rank, model_id, family, score, ...).")
@click.option("--timeout", type=click.FloatRange(min=1), default=180.0, show_default=True,
              help="Seconds the query's trace may take (it runs in a separate process).")
@click.option("--memory-limit", type=click.FloatRange(min=256), default=3072.0,
              show_default=True, help="MiB the query's trace process may hold.")
@click.pass_obj
def search(ctx, query: str, k: int, dataset: str, method: str, checkpoint: str | None,
           as_json: bool, timeout: float, memory_limit: float) -> None:
    """Find the workspace's architectures most similar to QUERY.

    \b
    QUERY is anything `narbuild trace --model` accepts:
      timm:convnext_tiny | transformers:llama | path/to/config.json |
      hf:ORG/NAME (needs the Hub) | path/to/file.py:factory (uses example_inputs() if defined)
    """
    from narbuild.retrieval.query import QueryGraph
    from narbuild.tracing.workers import TraceOptions

    ws = ctx.workspace()
    # a query that needs a trace starts it now: the worker imports torch while this process
    # imports the search and reads its indexes
    pending = QueryGraph(ws, query, TraceOptions(timeout_s=timeout, memory_limit_mb=memory_limit))
    from narbuild.retrieval.search import search as run

    quiet = ctx.quiet or ctx.as_json or as_json
    result = run(pending, k=k, dataset=dataset, workspace=ws, method=method,
                 checkpoint=checkpoint,
                 on_progress=None if quiet else lambda line: click.echo(line, err=True))
    if as_json or ctx.as_json:
        click.echo(json.dumps([vars(hit) for hit in result.hits], indent=2))
    else:
        click.echo(render(result.as_dict()))


def render(result: dict[str, Any]) -> str:
    """A search result as text a person reads: the query, then one block per hit."""
    q = result["query"]
    searched = ", ".join(f"{n:,} {name}" for name, n in result["searched"].items())
    origin = {"workspace": "graph from the workspace", "cache": "graph from the query cache",
              "traced": f"traced in {result['seconds'].get('trace', 0):.2f} s"}[q["origin"]]
    lines = [f"query  {q['model_id']}  ({origin})",
             (f"       {q['nodes']} nodes, {q['distinct_motifs']} distinct motifs, "
             f"{_count(q['params'])} params, {_flops(q['flops'])}, {q['coarse_label']}"),
             f"searched {searched} records with {', '.join(set(result['encoders'].values()))}",
             "",
             (f"{'rank':>4}  {'score':>6}  {'model':<{_WIDTH}}  {'family':<18} {'coarse':<15} "
             f"{'params':>8} {'FLOPs':>9}")]
    for hit in result["hits"]:
        name = _names(hit["model_ids"])
        lines.append(f"{hit['rank']:>4}  {hit['score']:>6.3f}  {name:<{_WIDTH}}  "
                     f"{_family(hit):<18} {hit['coarse_label']:<15} "
                     f"{_count(hit['params']):>8} {_flops(hit['flops']):>9}")
        if hit["shared_motifs"]:
            examples = "; ".join(dict.fromkeys(_motif(m) for m in hit["shared_examples"]))
            lines.append(f"{'':14}shares {hit['shared_motifs']}/{q['distinct_motifs']} motifs, "
                         f"e.g. {examples}")
    return "\n".join(lines)


def _family(hit: dict[str, Any]) -> str:
    """The record's family, with a count of the other families among its model ids."""
    others = len(hit["families"]) - 1
    return hit["family"][:14] + (f" +{others}" if others > 0 else "")


def _names(ids: list[str]) -> str:
    first = ids[0] if len(ids[0]) <= _WIDTH - 10 else ids[0][:_WIDTH - 11] + "…"
    return first + (f" (+{len(ids) - 1} more)" if len(ids) > 1 else "")


_SHORT = {"Convolution": "Conv", "NativeBatchNorm": "BN", "NativeLayerNorm": "LN",
          "Relu": "ReLU"}


def _motif(ops: str, limit: int = 8) -> str:
    """A motif's operator sequence, short: repeated runs folded (``(Conv›BN›ReLU)×3›Add``)."""
    seq = [_SHORT.get(op, op) for op in ops.split()]
    parts, i = [], 0
    while i < len(seq):
        best = (1, 1)  # (period, repeats)
        for period in range(1, 5):
            unit, reps = seq[i:i + period], 1
            while seq[i + reps * period:i + (reps + 1) * period] == unit:
                reps += 1
            if reps > 1 and reps * period > best[0] * best[1]:
                best = (period, reps)
        period, reps = best
        unit = "›".join(seq[i:i + period])
        folded = f"({unit})×{reps}" if period > 1 else f"{unit}×{reps}"
        parts.append(unit if reps == 1 else folded)
        i += period * reps
    return "›".join(parts[:limit]) + ("›…" if len(parts) > limit else "")


def _count(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e9:.1f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def _flops(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e9:.2f} G"
