"""The ``narbuild embed`` and ``narbuild eval`` commands (registered by :mod:`narbuild.cli`)."""

from __future__ import annotations

from typing import Any

import click

from narbuild.errors import NarbuildError

DEFAULT_EVAL_METHODS = "nar,nar-cl,nar-cl+wl-fam,gcn,gat,wl,wl-fam,vae"


def train_options(command):
    """The training recipe flags shared by embed and eval (defaults: the paper's Table 5)."""
    options = [
        click.option("--device", default="auto", show_default=True,
                     type=click.Choice(["auto", "cpu", "cuda"]), help="Where to train and embed."),
        click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True,
                     help="Graph-stage epochs."),
        click.option("--motif-epochs", type=click.IntRange(min=0), default=5, show_default=True,
                     help="Motif-stage epochs (NAR)."),
        click.option("--dim", type=click.IntRange(min=4), default=512, show_default=True,
                     help="Embedding width."),
        click.option("--loss", type=click.Choice(["ce", "cl", "ce+cl"]), default="ce+cl",
                     show_default=True, help="Graph-level objective (Eq. 6; Table 3)."),
        click.option("--temperature", type=float, default=0.1, show_default=True,
                     help="Of the cosine similarities in the contrastive losses."),
        click.option("--amp/--no-amp", default=False, show_default=True,
                     help="bfloat16 autocast while training on a GPU."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _config(seed: int, **kw: Any):
    from narbuild.encoder.train import TrainConfig

    return TrainConfig(epochs=kw["epochs"], motif_epochs=kw["motif_epochs"], dim=kw["dim"],
                       loss=kw["loss"], temperature=kw["temperature"], amp=kw["amp"], seed=seed)


@click.command(name="embed")
@click.option("--dataset", type=click.Choice(["real", "nas", "all"]), default="all",
              show_default=True, help="Which processed records to embed.")
@click.option("--method", type=click.Choice(["nar", "gcn", "gat", "vae"]), default="nar",
              show_default=True, help="Encoder (the bundled checkpoint is nar).")
@click.option("--train", is_flag=True, help="Train the encoder on the training records first.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Embed with this checkpoint instead of the bundled one.")
@click.option("--save-checkpoint", type=click.Path(dir_okay=False), default=None,
              help="With --train: where to save (default <workdir>/checkpoints/).")
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@train_options
@click.pass_obj
def embed(ctx: Any, dataset: str, method: str, train: bool, checkpoint: str | None,
          save_checkpoint: str | None, seed: int, **kw: Any) -> None:
    """Embed the processed records into the embeddings table.

    \b
    Examples:
      narbuild embed                              # the bundled NAR encoder, real + nas
      narbuild embed --train --loss cl            # retrain on this workspace, then embed
      narbuild embed --checkpoint my.pt --dataset real
    """
    from narbuild.encoder.embed import embed as run

    if save_checkpoint and not train:
        raise NarbuildError("--save-checkpoint needs --train", "add --train")
    summary = run(ctx.workspace(writer="embed"), dataset, method, train, checkpoint,
                  save_checkpoint, _config(seed, **kw), kw["device"])

    def render(s: dict[str, Any]) -> None:
        for name, d in s["datasets"].items():
            click.echo(f"{name}: {d['records']} records -> {d['dim']}-dim vectors with "
                       f"{d['encoder_id']} on {s['device']} ({d['graphs_per_second']} graphs/s; "
                       f"{d['seconds']} s in all)")
            click.echo(f"  checkpoint: {d['checkpoint']}")
        click.echo(f"embeddings: {ctx.workspace().root / 'embeddings'}")

    ctx.emit(summary.as_dict(), render)


@click.command(name="eval")
@click.option("--dataset", type=click.Choice(["real", "nas", "all"]), default="all",
              show_default=True, help="Which processed records to evaluate on.")
@click.option("--methods", default=DEFAULT_EVAL_METHODS, show_default=True,
              help="Comma list of nar, gcn, gat, wl, vae, the ablations nar-ce, nar-cl, "
                   "nar-nas, nar-ft, and ours: wl-fam (WL weighted by the training families), "
                   "nar-cl+wl and nar-cl+wl-fam (cosines weighted).")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma list of seeds.")
@train_options
@click.pass_obj
def eval_(ctx: Any, dataset: str, methods: str, seeds: str, **kw: Any) -> None:
    """Train every method on the training records, rank, and report MRR/MAP/NDCG@20/50/100.

    Writes reports/eval.json (what --json prints), reports/eval-details.json (stds, seeds,
    timings) and reports/eval.md (the paper's table layout) in the workspace.
    """
    from narbuild.cli import progress
    from narbuild.encoder.evaluate import (
        ABLATIONS,
        DATASETS,
        METHODS,
        evaluate,
        summary,
        write_report,
    )

    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS + ABLATIONS]
    if unknown:
        raise NarbuildError(f"unknown method(s) {', '.join(unknown)}",
                            f"use {', '.join(METHODS + ABLATIONS)}")
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise NarbuildError(f"--seeds must be integers, got {seeds!r}",
                            "e.g. --seeds 0,1,2") from None
    datasets = DATASETS if dataset == "all" else (dataset,)
    ws = ctx.workspace()
    with progress(ctx, "evaluating") as advance:
        report = evaluate(ws, datasets, names, seed_list, _config(0, **kw), kw["device"],
                          on_run=lambda *_: advance())
    paths = write_report(ws, report)

    def render(_: dict[str, Any]) -> None:
        click.echo((paths["markdown"]).read_text())
        click.echo(f"report: {paths['markdown']} and {paths['json']}")

    ctx.emit(summary(report), render)
