"""The ``narbuild nas-io`` command (registered by :mod:`narbuild.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from narbuild._cli_utils import progress
from narbuild.errors import NarbuildError
from narbuild.workspace import MARKER, default_root


@click.command("nas-io")
@click.option("--train", "train", type=click.IntRange(min=1), default=608, show_default=True,
              help="Labelled training networks (the paper's 608).")
@click.option("--val", "val", type=click.IntRange(min=0), default=77, show_default=True,
              help="Unseen validation networks (the paper's 77).")
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True,
              help="Training epochs of every network.")
@click.option("--width", type=click.IntRange(min=2), default=4, show_default=True,
              help="Channels of the first cell (even); pooled features are 16 x width.")
@click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=0, show_default=True,
              help="Seed of the network sample, the image split and the training.")
@click.pass_obj
def nas_io(ctx: Any, train: int, val: int, epochs: int, width: int, seed: int) -> None:
    """Train networks of the nas table on digit images into the nas_io table (IO-dataset).

    \b
    As arch2vec-IO: `train` + `val` networks drawn across the edit-distance classes, each
    trained for a fixed budget on one CPU thread; a row holds its validation accuracy, its
    pooled features on fixed validation images and on unseen images, its last dense layer and
    the preprocessed outputs (sorted by the class's dense weights, scaled per network and per
    feature). Resumable: networks already in the table are skipped.

    \b
    Examples:
      narbuild nas-io                          # 608 + 77 networks, 3 epochs (about an hour)
      narbuild nas-io --train 60 --val 10 --epochs 1
    """
    from narbuild.nasio.dataset import build
    from narbuild.nasio.train import TrainSettings

    root = Path(ctx.workdir or default_root())
    if not (root / MARKER).exists():
        raise NarbuildError(f"no narbuild workspace at {root}", "run `narbuild gen-nas` first")
    ws = ctx.workspace(writer="nas-io")
    settings = TrainSettings(epochs=epochs, width=width)
    with progress(ctx, "training", total=train + val) as advance:
        summary = build(ws, train=train, val=val, seed=seed, settings=settings,
                        on_network=advance)
    ctx.emit(summary, _render)


def _render(s: dict[str, Any]) -> None:
    acc, secs = s["accuracy"], s["seconds_per_network"]
    click.echo(f"networks: {s['train']} train + {s['val']} val ({s['trained']} trained now, "
               f"{s['skipped']} already in the table)")
    click.echo(f"accuracy: mean {acc['mean']:.3f}, min {acc['min']:.3f}, median "
               f"{acc['median']:.3f}, max {acc['max']:.3f}")
    click.echo(f"training: {secs['mean']:.1f} s a network (max {secs['max']:.1f} s); "
               f"{s['features']} features; preprocessed: {'yes' if s['preprocessed'] else 'no'}")
    click.echo(f"nas_io: {s['rows']} rows in {s['path']} ({s['seconds_total']:.1f} s)")
