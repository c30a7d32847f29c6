"""The ``narbuild preprocess`` command (registered by :mod:`narbuild.cli`)."""

from __future__ import annotations

from typing import Any

import click

from narbuild.preprocess.motifs import DEFAULT_STEPS


@click.command(name="preprocess")
@click.option("--dataset", type=click.Choice(["real", "nas", "all"]), default="all",
              show_default=True,
              help="real: the graphs table; nas: the gen-nas table; all: whichever exist.")
@click.option("--steps", "-s", type=click.IntRange(min=0), default=DEFAULT_STEPS,
              show_default=True, help="Neighbour-encoding steps s of motif sampling (paper 3.2).")
@click.option("--splitter", default="motif", show_default=True, metavar="SPEC",
              help="motif, or a Table-2 baseline: nodes:N, count:K, random:A-B.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the train/test split (and of random:A-B).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes.")
@click.pass_obj
def preprocess(ctx: Any, dataset: str, steps: int, splitter: str, seed: int, workers: int) -> None:
    """Map operators to the NAR vocabulary, label, collapse duplicates, mine motifs and macro
    graphs, and split 0.9/0.1 into the processed table.

    \b
    Examples:
      narbuild preprocess                       # graphs (+ nas when present)
      narbuild preprocess --dataset nas --steps 3
      narbuild preprocess --splitter nodes:16   # a Table-2 baseline splitter
    """
    from narbuild._cli_utils import progress
    from narbuild.preprocess.pipeline import preprocess as run

    ws = ctx.workspace(writer="preprocess")
    with progress(ctx, "preprocessing") as advance:
        summary = run(ws, dataset, steps, splitter, seed, workers, on_graph=advance)

    def render(s: dict[str, Any]) -> None:
        for name, d in s["datasets"].items():
            click.echo(f"{name}: {d['records']} records from {d['ok']} graphs "
                       f"({d['collapsed']} duplicates collapsed, {d['errors']} error rows "
                       f"skipped) in {d['seconds']:.1f} s")
            click.echo(f"  operators: {d['outside_published_share']:.2%} of {d['nodes']} nodes "
                       f"outside the published 89 ({d['unknown_share']:.2%} unknown): "
                       + _top(d["outside_published_top"], 5))
            click.echo(f"  motifs: median {d['median_motifs']} per graph, median compression "
                       f"{d['median_compression']}x ({d['distinct_motifs']} distinct, "
                       f"{d['shared_motifs']} shared by 2+ records)")
            click.echo(f"  coarse: {_top(d['coarse_labels'], 3)}")
            click.echo(f"  fine: {len(d['fine_labels'])} families: {_top(d['fine_labels'], 8)}")
            click.echo(f"  split: {_top(d['splits'], 2)}")
        click.echo(f"processed: {ws.root / 'processed'} ({s['seconds']:.1f} s, s={s['steps']}, "
                   f"splitter {s['splitter']})")

    ctx.emit(summary.as_dict(), render)


def _top(counts: dict[str, int], k: int) -> str:
    """``'a 3, b 2 +4 more'``: the first ``k`` entries of a count table."""
    text = ", ".join(f"{n} {c}" for n, c in list(counts.items())[:k]) or "none"
    return text + (f" +{len(counts) - k} more" if len(counts) > k else "")
