"""The ``narbuild embed`` and ``narbuild eval`` commands (registered by :mod:`narbuild.cli`)."""

from __future__ import annotations

from typing import Any

import click

from narbuild.encoder.bundled import BUNDLED
from narbuild.encoder.methods import LEARNED
from narbuild.encoder.train import TrainConfig
from narbuild.errors import NarbuildError

DEFAULT_EVAL_METHODS = "nar,nar-cl,nar-cl+wl-fam,gcn,gat,wl,wl-fam,vae"
"""The paper protocol's methods when --methods is not given (the API's default is
:data:`narbuild.encoder.evaluate.METHODS`: the paper's own)."""
DEFAULT_PROTOCOL_METHODS = "nar,nar-ce,nar-cl,nar-val,nar-cl+wl-fam,gcn,gat,vae,wl,wl-fam"
"""Benchmark v2's methods when --methods is not given (the same list as the API's
:data:`narbuild.benchmark.run.DEFAULT_METHODS`; a test keeps them equal)."""


def train_options(loss: str):
    """The training recipe flags shared by embed and eval (defaults: the paper's Table 5, but
    for the graph-level ``loss``, which each command sets)."""
    return lambda command: _with_train_options(command, loss)


def _with_train_options(command, loss: str):
    options = [
        click.option("--device", default="auto", show_default=True,
                     type=click.Choice(["auto", "cpu", "cuda"]), help="Where to train and embed."),
        click.option("--epochs", type=click.IntRange(min=1), default=TrainConfig.epochs,
                     show_default=True,
                     help="Graph-stage epochs."),
        click.option("--motif-epochs", type=click.IntRange(min=0), default=TrainConfig.motif_epochs,
                     show_default=True,
                     help="Motif-stage epochs (NAR)."),
        click.option("--dim", type=click.IntRange(min=4), default=TrainConfig.dim, show_default=True,
                     help="Embedding width."),
        click.option("--loss", type=click.Choice(["ce", "cl", "ce+cl"]), default=loss,
                     show_default=True, help="Graph-level objective (Eq. 6; Table 3)."),
        click.option("--temperature", type=float, default=TrainConfig.temperature,
                     show_default=True,
                     help="Of the cosine similarities in the contrastive losses."),
        click.option("--amp/--no-amp", default=TrainConfig.amp, show_default=True,
                     help="bfloat16 autocast while training on a GPU."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _config(seed: int, **kw: Any) -> TrainConfig:
    return TrainConfig(epochs=kw["epochs"], motif_epochs=kw["motif_epochs"], dim=kw["dim"],
                       loss=kw["loss"], temperature=kw["temperature"], amp=kw["amp"], seed=seed)


@click.command(name="embed")
@click.option("--dataset", type=click.Choice(["real", "nas", "all"]), default="all",
              show_default=True, help="Which processed records to embed.")
@click.option("--method", type=click.Choice(list(LEARNED)), default=BUNDLED[0],
              show_default=True,
              help=f"Learned method (bundled checkpoints: {', '.join(BUNDLED)}; the others need "
                   "--train, arch2vec-io also --dataset nas and the nas_io table).")
@click.option("--train", is_flag=True, help="Train the encoder on the training records first.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Embed with this checkpoint instead of the bundled one.")
@click.option("--save-checkpoint", type=click.Path(dir_okay=False), default=None,
              help="With --train: where to save (default <workdir>/checkpoints/).")
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="ray: Ray Data reads the records and Ray actors embed "
                                      "them, one GPU each where the cluster has GPUs.")
@click.option("--address", default=None, metavar="auto|HOST:PORT",
              help="ray: the cluster [default: $RAY_ADDRESS, else a local instance].")
@train_options("cl")  # benchmark v2 validation picks cl (the bundled checkpoint's)
@click.pass_obj
def embed(ctx: Any, dataset: str, method: str, train: bool, checkpoint: str | None,
          save_checkpoint: str | None, seed: int, executor: str, address: str | None,
          **kw: Any) -> None:
    """Embed the processed records into the embeddings table.

    \b
    Examples:
      narbuild embed                              # the bundled wl-metric encoder, real + nas
      narbuild embed --method nar                 # the bundled NAR encoder (the paper's)
      narbuild embed --train                      # retrain wl-metric on this workspace, then embed
      narbuild embed --checkpoint my.pt --dataset real
      narbuild embed --executor ray               # on a Ray cluster ($RAY_ADDRESS)
    """
    from narbuild.encoder.embed import embed as run

    if save_checkpoint and not train:
        raise NarbuildError("--save-checkpoint needs --train", "add --train")
    summary = run(ctx.workspace(writer="embed"), dataset, method, train, checkpoint,
                  save_checkpoint, _config(seed, **kw), kw["device"], executor, address)

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
@click.option("--protocol", default="paper", show_default=True,
              help="Comma list: paper (v1: the processed split, relevant = same fine label, "
                   "the paper's Table 1), or benchmark v2's closed, loo, open, variants; all = "
                   "the four v2 protocols (DESIGN.md, bench/README.md); io = the arch2vec-IO "
                   "evaluations on the nas_io table (arch2vec, arch2vec-io, nar, wl, #params).")
@click.option("--methods", default=None,
              help="Comma list. paper: nar, gcn, gat, wl, vae, the ablations nar-ce, nar-cl, "
                   "nar-nas, nar-ft, and ours: nar-set (distinct-motif readout), wl-fam, "
                   "nar-cl+wl, nar-cl+wl-fam [default: "
                   f"{DEFAULT_EVAL_METHODS}]. v2 adds nar-val and fusions chosen on validation "
                   f"[default: {DEFAULT_PROTOCOL_METHODS}].")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma list of seeds.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="v2: folds of loo and open.")
@train_options("ce+cl")  # eval's nar is the paper's recipe; nar-cl the ablation
@click.pass_obj
def eval_(ctx: Any, dataset: str, protocol: str, methods: str | None, seeds: str, folds: int,
          **kw: Any) -> None:
    """Train every method on the training records, rank, and report MRR/MAP/NDCG@20/50/100.

    \b
    paper (v1): reports/eval.json (what --json prints), eval-details.json, eval.md.
    v2 protocols: reports/eval-protocols.json and eval-protocols.md, with bootstrap 95 %
    intervals, per-slice metrics and the settings chosen on validation. `variants` traces
    depth/width variants of the catalogue into <workdir>/variants on first use.
    io: reports/eval-io.json, eval-io.md and the regret and loss figures (needs `nas-io`).

    \b
    Examples:
      narbuild eval --seeds 0                      # the paper's protocol
      narbuild eval --protocol all --dim 64        # benchmark v2
      narbuild eval --protocol open --methods wl,wl-fam,nar-cl
      narbuild eval --protocol io                  # after gen-nas, preprocess, nas-io
    """
    from narbuild._cli_utils import progress
    from narbuild.preprocess.pipeline import dataset_names

    protocols = _protocols(protocol)
    seed_list = _seeds(seeds)
    datasets = tuple(dataset_names(dataset))
    ws = ctx.workspace()
    result: dict[str, Any] = {}
    texts: list[str] = []
    if "paper" in protocols:
        result["paper"], text = _paper(ctx, ws, datasets, methods or DEFAULT_EVAL_METHODS,
                                       seed_list, kw, progress)
        texts.append(text)
    if "io" in protocols:
        result["io"], text = _io(ctx, ws, seed_list, kw, progress)
        texts.append(text)
    v2 = [p for p in protocols if p not in ("paper", "io")]
    if v2:
        result["v2"], text = _v2(ctx, ws, datasets, v2, methods or DEFAULT_PROTOCOL_METHODS,
                                 seed_list, folds, kw, progress)
        texts.append(text)

    def render(_: dict[str, Any]) -> None:
        click.echo("\n".join(texts))

    ctx.emit(result["paper"] if list(result) == ["paper"] else result, render)


def _protocols(text: str) -> list[str]:
    from narbuild.benchmark.protocols import PROTOCOLS

    names = [p.strip() for p in text.split(",") if p.strip()]
    names = [q for p in names for q in (PROTOCOLS if p == "all" else (p,))]
    unknown = [p for p in names if p not in ("paper", "io", *PROTOCOLS)]
    if unknown or not names:
        raise NarbuildError(f"unknown protocol(s) {', '.join(unknown) or repr(text)}",
                            f"use paper, {', '.join(PROTOCOLS)}, all or io")
    return list(dict.fromkeys(names))


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise NarbuildError(f"--seeds must be integers, got {text!r}",
                            "e.g. --seeds 0,1,2") from None
    if not seeds:
        raise NarbuildError("--seeds is empty", "e.g. --seeds 0,1,2")
    return seeds


def _method_list(text: str, known: tuple[str, ...]) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise NarbuildError(f"unknown method(s) {', '.join(unknown) or repr(text)}",
                            f"use {', '.join(known)}")
    return names


def _paper(ctx: Any, ws: Any, datasets: tuple[str, ...], methods: str, seeds: list[int],
           kw: dict[str, Any], progress: Any) -> tuple[dict[str, Any], str]:
    from narbuild.encoder.evaluate import KNOWN, evaluate
    from narbuild.encoder.report import summary, write_report

    names = _method_list(methods, KNOWN)
    with progress(ctx, "evaluating") as advance:
        report = evaluate(ws, datasets, names, seeds, _config(0, **kw), kw["device"],
                          on_run=lambda *_: advance())
    paths = write_report(ws, report)
    return summary(report), (paths["markdown"].read_text()
                             + f"report: {paths['markdown']} and {paths['json']}")


def _io(ctx: Any, ws: Any, seeds: list[int], kw: dict[str, Any], progress: Any
        ) -> tuple[dict[str, Any], str]:
    """The arch2vec-IO evaluations (a)-(d) on the nas_io table; arch2vec's own 30 epochs
    unless --epochs is given."""
    from narbuild.nasio.evaluate import evaluate_io
    from narbuild.nasio.report import write_io_report

    given = click.get_current_context().get_parameter_source("epochs")
    epochs = kw["epochs"] if given == click.core.ParameterSource.COMMANDLINE else None
    with progress(ctx, "io protocol", total=2 * len(seeds)) as advance:
        report = evaluate_io(ws, seeds, kw["device"], epochs=epochs,
                             on_step=lambda _: advance())
    paths = write_io_report(ws, report)
    summary = {"prediction": {m: v["spearman"]["mean"] for m, v in report["prediction"].items()},
               "retrieval": {m: v["map@20"] for m, v in report["retrieval"]["methods"].items()},
               "report": str(paths["json"])}
    return summary, (paths["markdown"].read_text() + f"report: {paths['markdown']}, "
                     f"{paths['json']}, {paths['regret']}")


def _v2(ctx: Any, ws: Any, datasets: tuple[str, ...], protocols: list[str], methods: str,
        seeds: list[int], folds: int, kw: dict[str, Any], progress: Any
        ) -> tuple[dict[str, Any], str]:
    from narbuild.benchmark.report import write_protocol_report
    from narbuild.benchmark.run import METHODS
    from narbuild.benchmark.suite import evaluate_protocols

    names = _method_list(methods, METHODS)
    with progress(ctx, "benchmark v2") as advance:
        report = evaluate_protocols(ws, datasets, protocols, names, seeds, _config(0, **kw),
                                    kw["device"], folds, on_run=lambda *_: advance(),
                                    on_step=lambda step: advance())
    paths = write_protocol_report(ws, report)
    means = {d: {p: {m: row["mean"] for m, row in r["methods"].items()}
                 for p, r in v["protocols"].items()} for d, v in report["datasets"].items()}
    return means, (paths["markdown"].read_text()
                   + f"report: {paths['markdown']} and {paths['json']}")
