"""The ``narbuild gen-nas`` command (registered by :mod:`narbuild.cli`)."""

from __future__ import annotations

from typing import Any

import click


@click.command("gen-nas")
@click.option("--count", type=click.IntRange(min=1), default=30000, show_default=True,
              help="Networks to generate.")
@click.option("--classes", type=click.IntRange(min=1), default=10, show_default=True,
              help="Edit-distance classes (of equal size).")
@click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=0, show_default=True,
              help="Random seed: the same seed gives the same table.")
@click.option("--depth", type=click.IntRange(min=3), default=8, show_default=True,
              help="Cells per network (reduction cells at one and two thirds).")
@click.option("--radius", type=click.IntRange(min=1), default=None,
              help="Edit radius around each centre [default: the largest the centres "
                   "guarantee, (smallest centre distance - 1) // 2].")
@click.option("--pool", type=click.IntRange(min=1), default=10000, show_default=True,
              help="Random networks the centres are chosen from (farthest-point sampling).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="ray: graphs built by Ray tasks, chunk by chunk, into "
                                      "staging parts swapped in together (the same table).")
@click.option("--address", default=None, metavar="auto|HOST:PORT",
              help="ray: the cluster [default: $RAY_ADDRESS, else a local instance].")
@click.pass_obj
def gen_nas(ctx: Any, count: int, classes: int, seed: int, depth: int, radius: int | None,
            pool: int, executor: str, address: str | None) -> None:
    """Generate DARTS-space networks in edit-distance classes into the nas table.

    \b
    Each network: a normal and a reduction cell (4 ADD nodes, 7 DARTS operations), stored as
    its genotype, its operator-level graph (the real models' autograd vocabulary) and its
    DARTS-level graph, with its class, the class centre and the exact graph edit distance to
    it. Re-running replaces the table.

    \b
    Examples:
      narbuild gen-nas                          # 30,000 networks, 10 classes, seed 0
      narbuild gen-nas --count 3000 --seed 1
    """
    from narbuild.nasgen.dataset import write

    ws = ctx.workspace(create=True, writer="gen-nas")
    summary = write(ws, count=count, classes=classes, seed=seed, depth=depth, radius=radius,
                    pool=pool, executor=executor, address=address)
    ctx.emit(summary, _render)


def _render(s: dict[str, Any]) -> None:
    sizes = s["class_sizes"]
    click.echo(f"classes: {len(sizes)} of {min(sizes)}" + (f"-{max(sizes)}" if max(sizes) !=
                                                            min(sizes) else "")
               + f" networks; centres {s['centre_distance']['min']}-"
                 f"{s['centre_distance']['max']} edits apart; radius {s['radius']}")
    click.echo("distance to own centre:        " + _hist(s["distance_to_own_centre"]))
    click.echo("distance to nearest other one: " + _hist(s["distance_to_nearest_other_centre"]))
    click.echo(f"operator graphs: {s['nodes']['min']}-{s['nodes']['max']} nodes "
               f"(mean {s['nodes']['mean']})")
    click.echo(f"nas: {s['rows']} rows in {s['path']} ({s['seconds_total']:.1f} s, "
               f"peak {s['peak_rss_mb']:.0f} MiB)")


def _hist(hist: dict[int, int]) -> str:
    return "  ".join(f"{d}:{n}" for d, n in hist.items())
