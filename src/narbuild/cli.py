"""The ``narbuild`` command line: a thin layer over the Python API."""

from __future__ import annotations

import json
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

import click

from narbuild._cli_utils import Context, id_filters, progress
from narbuild._version import __version__
from narbuild.errors import NarbuildError, redact, register_secret
from narbuild.sources import MODULES as SOURCE_MODULES
from narbuild.workspace import ENV_VAR

# Stage commands live beside their stage's code and are imported when used, so a command pays
# only for its own imports (`narbuild search` does not load the Hub client, say).
_STAGE_COMMANDS = {
    "gen-nas": "narbuild.nasgen.cli:gen_nas", "preprocess": "narbuild.preprocess.cli:preprocess",
    "embed": "narbuild.encoder.cli:embed", "eval": "narbuild.encoder.cli:eval_",
    "push": "narbuild.cards.cli:push", "search": "narbuild.retrieval.cli:search",
}


class _Pipeline(click.Group):
    """The command group; stage commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_STAGE_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in _STAGE_COMMANDS and name not in self.commands:
            module, attr = _STAGE_COMMANDS[name].split(":")
            self.add_command(getattr(import_module(module), attr), name)
        return super().get_command(ctx, name)


@click.group(cls=_Pipeline, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="narbuild")
@click.option("--workdir", "-w", type=click.Path(file_okay=False), default=None,
              help=f"Workspace folder holding every table [env {ENV_VAR}; default ./narbuild-data].")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--wait", is_flag=True,
              help="When another narbuild command is writing the workspace, wait for it to "
                   "finish instead of failing.")
@click.pass_context
def cli(click_ctx: click.Context, workdir: str | None, as_json: bool, quiet: bool,
        wait: bool) -> None:
    """Build, embed and publish neural-architecture graphs for Neural Architecture Retrieval.

    \b
    Pipeline (each stage reads the previous stage's tables in the workspace):
      crawl -> trace -> preprocess -> embed -> eval -> push
      gen-nas (DARTS-space networks) feeds preprocess, embed and eval too.
    """
    click_ctx.obj = Context(workdir, as_json, quiet, wait)


@cli.command()
@click.option("--source", "-s", "sources", multiple=True,
              type=click.Choice([s for s in SOURCE_MODULES if s != "file"]),
              help="Model source (repeatable). Default: every offline registry "
                   "(see --list-sources).")
@click.option("--list-sources", is_flag=True,
              help="List every source: offline or online, installed or not, licence; then exit.")
@id_filters
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most N models per source.")
@click.option("--task", default=None, help="Keep only this task, e.g. image-classification.")
@click.option("--hub-library", default=None, help="hf-hub: only models of this library.")
@click.option("--hub-pipeline-tag", default=None, help="hf-hub: only this pipeline tag.")
@click.option("--hub-sort", default="downloads", show_default=True, help="hf-hub: listing order.")
@click.option("--hub-search", default=None, help="hf-hub: free-text search on model ids.")
@click.option("--repo", "repos", multiple=True, metavar="OWNER/NAME|DIR",
              help="torch-hub: GitHub repo or local folder with a hubconf.py (repeatable).")
@click.option("--trust-remote-code", is_flag=True,
              help="Allow listing torch-hub entry points and building models that run repo code.")
@click.option("--token", default=None, envvar="HF_TOKEN", show_envvar=True,
              callback=lambda _c, _p, value: register_secret(value),
              help="Hugging Face token (never printed or stored). Prefer HF_TOKEN or "
                   "`hf auth login`: a --token value shows in the process list.")
@click.pass_obj
def crawl(ctx: Context, sources, list_sources, include, exclude, limit, task, hub_library,
          hub_pipeline_tag, hub_sort, hub_search, repos, trust_remote_code, token) -> None:
    """Enumerate models into the manifest table (one row per model to trace).

    \b
    Examples:
      narbuild crawl                                   # every offline registry
      narbuild crawl --list-sources
      narbuild crawl -s timm --include 'timm:resnet*'
      narbuild crawl -s hf-hub --hub-library timm --limit 200   # needs the network
    """
    from narbuild.crawler import crawl as run_crawl

    if list_sources:
        _list_sources(ctx)
        return

    options = {
        "hf_hub": {"library": hub_library, "pipeline_tag": hub_pipeline_tag, "sort": hub_sort,
                   "search": hub_search, "token": token, "limit": limit},
        "torch_hub": {"repos": list(repos), "trust_remote_code": trust_remote_code},
    }
    ws = ctx.workspace(create=True, writer="crawl")
    with progress(ctx, "crawling") as advance:
        summary = run_crawl(ws, sources or None, include, exclude, limit, task,
                            options, on_row=advance)

    def render(s: dict[str, Any]) -> None:
        for source, hint in s["missing"].items():
            click.echo(f"  {source:<14} skipped: its package is not installed ({hint})")
        for source, count in s["per_source"].items():
            errors = s["errors"].get(source, 0)
            click.echo(f"  {source:<14}{count:>6} models" + (f"  ({errors} error rows)" if errors else ""))
        click.echo(f"manifest: {s['total_rows']} rows in {ws.root / 'manifest'} "
                   f"({s['written']} written in {s['seconds']:.1f} s)")

    ctx.emit(summary.as_dict(), render)


def _list_sources(ctx: Context) -> None:
    from narbuild import sources

    rows = [{"source": s.name, "offline": s.offline, "installed": sources.available(s.name),
             "license": s.license, "title": s.title, "install": s.install_hint()}
            for s in sources.all_sources() if s.name != "file"]

    def render(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            where = "offline" if r["offline"] else "online"
            state = "installed" if r["installed"] else f"missing: {r['install']}"
            click.echo(f"  {r['source']:<13}{where:<9}{r['license']:<15}{r['title']}  [{state}]")

    ctx.emit(rows, render)


@cli.command()
@click.option("--model", "spec", default=None, metavar="SPEC",
              help="Trace one model: a model id (timm:resnet50, transformers:llama), a path to a "
                   "Hugging Face config.json, or path/to/file.py:factory.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="With --model: write the graph (nodes, edges, FLOPs, params) to this JSON file.")
@id_filters
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: the number of cores].")
@click.option("--timeout", type=click.FloatRange(min=1), default=180.0, show_default=True,
              help="Seconds per model before it becomes an error row.")
@click.option("--memory-limit", type=click.FloatRange(min=256), default=3072.0, show_default=True,
              help="MiB of a worker's own memory (libraries shared with the parent do not "
                   "count) before the model becomes an error row.")
@click.option("--shard", type=click.IntRange(min=0), default=None,
              help="This run's shard (0-based) [default: every shard, one after another].")
@click.option("--num-shards", type=click.IntRange(min=1), default=None,
              help="Number of shards; each writes its own Parquet file and completion marker "
                   "[default: 1; with --executor ray the workspace's count, else 8].")
@click.option("--retry-errors", is_flag=True, help="Trace error rows again.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="ray: one Ray task per shard (pip install "
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
    from narbuild.crawler import patterns, select
    from narbuild.tracing import TraceOptions, TraceSummary, trace_catalog
    from narbuild.tracing.shards import pinned_shard_count

    ws = ctx.workspace(writer="trace")
    num_shards = num_shards or pinned_shard_count(ws.table("graphs")) or 1
    ids = None
    if include or exclude:
        rows = ws.table("manifest").read(["model_id", "task"]).to_pylist()
        ids = [r["model_id"] for r in select(rows, list(include), list(exclude), None)]
        if not ids:
            raise NarbuildError("no manifest row matches the given --include/--exclude",
                                "check the patterns, e.g. --include 'timm:resnet*'")
    runs = []
    for i in range(num_shards) if shard is None else [shard]:
        options = TraceOptions(timeout_s=timeout, memory_limit_mb=memory_limit, shard=i,
                               num_shards=num_shards, retry_errors=retry_errors)
        if workers:
            options.workers = workers
        with progress(ctx, "tracing") as advance:
            runs.append(trace_catalog(ws, options, ids, on_result=advance))
    summary = runs[0] if len(runs) == 1 else TraceSummary.combine(runs)
    ws.record_command("trace", " ".join(["narbuild trace", *patterns(include, exclude)]))

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
    from narbuild.tracing import TraceOptions, trace_isolated

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


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, no traceback."""
    try:
        cli.main(args=argv, prog_name="narbuild", standalone_mode=False)
    except NarbuildError as exc:
        click.echo(f"narbuild: error: {redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("narbuild: interrupted; rows already written are kept, re-run to resume",
                   err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.message = redact(exc.message)
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("narbuild: interrupted; rows already written are kept, re-run to resume",
                   err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
