"""The ``narbuild crawl`` command (registered by :mod:`narbuild.cli`)."""

from __future__ import annotations

from typing import Any

import click

from narbuild._cli_utils import Context, hub_token_option, id_filters, progress
from narbuild.sources import MODULES as SOURCE_MODULES


@click.command()
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
@hub_token_option()
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
