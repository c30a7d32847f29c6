"""The ``narbuild trace`` command (registered by :mod:`narbuild.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from narbuild._cli_utils import Context, id_filters, progress
from narbuild.errors import NarbuildError
from narbuild.tracing.workers import TraceOptions


@click.command()
@click.option("--model", "spec", default=None, metavar="SPEC",
              help="Trace one model: a model id (timm:resnet50, transformers:llama), a path to a "
                   "Hugging Face config.json, or path/to/file.py:factory.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="With --model: write the graph (nodes, edges, FLOPs, params) to this JSON file.")
@id_filters
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: the number of cores].")
@click.option("--timeout", type=click.FloatRange(min=1), default=TraceOptions.timeout_s,
              show_default=True,
              help="Seconds per model before it becomes an error row.")
@click.option("--memory-limit", type=click.FloatRange(min=256), default=TraceOptions.memory_limit_mb,
              show_default=True,
              help="MiB of a worker's own memory (libraries shared with the parent do not "
                   "count) before the model becomes an error row.")
@click.option("--shard", type=click.IntRange(min=0), default=None,
              help="This run's shard (0-based) [default: every shard, one after another].")
@click.option("--num-shards", type=click.IntRange(min=1), default=None,
              help="Number of shards; each writes its own Parquet file and completion marker "
                   "[default: 1; with --executor ray the workspace's count, else 8].")
@click.option("--retry-errors", is_flag=True, help="Trace error rows again.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="ray: one Ray task per shard, each with --workers "
                                      "workers: give a shard a node's cores (pip install "
                                      "'narbuild[ray]').")
@click.option("--address", default=None, metavar="auto|HOST:PORT",
              help="ray: the cluster [default: $RAY_ADDRESS, else a local instance].")
@click.option("--shard-timeout", type=click.FloatRange(min=1), default=None,
              help="ray: seconds before a shard is cancelled and resubmitted (it resumes).")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="ray: resubmits of a shard that fails or times out.")
@click.pass_obj
def trace(ctx: Context, spec, out, include, exclude, workers, timeout, memory_limit, shard,
          num_shards, retry_errors, executor, address, shard_timeout, retries) -> None:
    """Trace models into the graphs table (weightless, on the meta device).

    \b
    Examples:
      narbuild trace                                  # every manifest row not traced yet
      narbuild trace --include 'timm:resnet*' --workers 2
      narbuild trace --model timm:resnet50 --out resnet50.json
      narbuild trace --model my_net.py:build          # uses example_inputs() if defined
      narbuild trace --executor ray --num-shards 64   # on a Ray cluster ($RAY_ADDRESS)
    """
    if spec:
        _trace_one(ctx, spec, out, timeout, memory_limit)
        return
    if out:
        raise click.UsageError("--out needs --model")
    if executor == "ray":
        limits = ["--timeout", str(timeout), "--memory-limit", str(memory_limit),
                  "--workers", str(workers or 1), *[f"--include={p}" for p in include],
                  *[f"--exclude={p}" for p in exclude], *(["--retry-errors"] * retry_errors)]
        _trace_on_ray(ctx, limits, num_shards, address, shard_timeout, retries, retry_errors)
        return
    from narbuild.tracing import trace_workspace
    from narbuild.tracing.shards import pinned_shard_count

    ws = ctx.workspace(writer="trace")
    options = TraceOptions(timeout_s=timeout, memory_limit_mb=memory_limit,
                           num_shards=num_shards or pinned_shard_count(ws.table("graphs")) or 1,
                           retry_errors=retry_errors)
    if workers:
        options.workers = workers
    with progress(ctx, "tracing") as advance:
        summary = trace_workspace(ws, options, include, exclude, shard, on_result=advance)

    def render(s: dict[str, Any]) -> None:
        click.echo(f"traced {s['traced']} models ({s['cached']} copied from identical configs, "
                   f"{s['skipped']} already done) in {s['seconds']:.1f} s: "
                   f"{s['ok']} ok, {s['errors']} errors")
        if s["fallbacks"]:
            click.echo("  by step: " + ", ".join(f"{k} {v}" for k, v in s["fallbacks"].items()))
        for reason, count in list(s["top_errors"].items())[:5]:
            click.echo(f"  {count:>5} x {reason}")
        click.echo(f"graphs: {ws.root / 'graphs'}")

    ctx.emit(summary.as_dict(), render)


def _trace_on_ray(ctx: Context, shard_args: list[str], num_shards: int | None,
                  address: str | None, shard_timeout: float | None, retries: int,
                  retry_errors: bool) -> None:
    from narbuild.tracing.ray_executor import RayOptions, num_shards_for, trace_on_ray

    ws = ctx.workspace(writer="trace --executor ray")
    n = num_shards_for(ws, num_shards)
    options = RayOptions(address=address, shard_timeout_s=shard_timeout, retries=retries)
    with progress(ctx, "shards", total=n) as advance:
        summary = trace_on_ray(ws, shard_args, n, options, retry_errors, on_shard=advance)

    def render(s: dict[str, Any]) -> None:
        click.echo(f"{s['shards_run']} of {s['num_shards']} shards run on {s['nodes']} Ray "
                   f"node(s) ({s['shards_fresh']} already done, {s['resubmitted']} resubmitted)"
                   f" in {s['seconds']:.1f} s: {s['traced']} models traced, {s['ok']} ok, "
                   f"{s['errors']} errors")
        click.echo(f"graphs: {ws.root / 'graphs'}; shard logs: {ws.root / 'logs'}")

    ctx.emit(summary.as_dict(), render)
    if summary.failed:
        first, log = next(iter(summary.failed.items()))
        raise NarbuildError(f"{len(summary.failed)} shard(s) failed after {retries} "
                            f"resubmits: {sorted(summary.failed)} (shard {first}: {log})",
                            "read the logs; a rerun of the same command runs only these "
                            "shards")


def _trace_one(ctx: Context, spec: str, out: str | None, timeout: float,
               memory_limit: float) -> None:
    """Trace one spec in an isolated worker (the user's code never runs in this process)."""
    from narbuild.tracing import trace_isolated

    if out and not Path(out).resolve().parent.is_dir():
        raise NarbuildError(f"cannot write {out}: the folder {Path(out).parent} does not exist",
                            "create it first or pass another --out")
    row = trace_isolated(spec, TraceOptions(timeout_s=timeout, memory_limit_mb=memory_limit))
    if row["status"] != "ok":
        raise NarbuildError(f"tracing {row['model_id']} failed: {row['error']}",
                            "raise --timeout or --memory-limit if the model is only large"
                            if row["error"].startswith("TraceLimit") else
                            "fix the model or its example inputs")
    graph = {k: row[k] for k in ("model_id", "nodes", "edge_src", "edge_dst", "num_nodes",
                                 "num_edges", "graph_hash", "flops", "macs", "params",
                                 "fallback", "device")}
    graph["inputs"] = json.loads(row["inputs"])
    if out:
        try:
            Path(out).write_text(json.dumps(graph))
        except OSError as exc:
            raise NarbuildError(f"cannot write {out}: {exc.strerror or exc}",
                                "pass another --out") from exc

    def render(g: dict[str, Any]) -> None:
        flops = ("FLOPs not measured" if g["flops"] is None else
                 f"{g['flops'] / 1e9:.2f} GFLOPs ({g['macs'] / 1e9:.2f} GMACs)")
        click.echo(f"{g['model_id']}: {g['num_nodes']} nodes, {g['num_edges']} edges, "
                   f"{g['params'] / 1e6:.2f} M params, {flops}, step {g['fallback']}")
        if out:
            click.echo(f"graph written to {out}")

    summary = {k: v for k, v in graph.items() if k not in ("nodes", "edge_src", "edge_dst")}
    ctx.emit(summary, render)
