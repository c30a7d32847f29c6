"""The ``narbuild push`` command (registered by :mod:`narbuild.cli`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from narbuild._cli_utils import hub_token_option
from narbuild.cards.release import DEFAULT_LICENSE
from narbuild.cards.shards import MAX_SHARD_BYTES


@click.command(name="push")
@click.option("--local-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Stage the release into DIR. Without --repo-id: stage only, upload nothing.")
@click.option("--repo-id", default=None, metavar="ORG/NAME",
              help="Publish to this Hub dataset repo (created when missing).")
@click.option("--space", default=None, metavar="ORG/NAME",
              help="Also publish the search web app (narbuild serve) as this Hub Space, "
                   "reading the dataset of --repo-id.")
@click.option("--space-requirement", default=None, metavar="SPEC",
              help="How the Space installs narbuild [default: narbuild[serve]==VERSION]; "
                   "e.g. a git URL or a wheel's URL.")
@click.option("--private", is_flag=True, help="Create the repo private.")
@click.option("--branch", "--revision", "branch", default=None, metavar="NAME",
              help="Branch to commit to (created from the default branch when missing) "
                   "[default: main].")
@click.option("--dry-run", is_flag=True,
              help="List the operations a push would make; create and upload nothing.")
@hub_token_option("write token")
@click.option("--license", "license_", default=DEFAULT_LICENSE, show_default=True,
              help="Licence id for the card's header.")
@click.option("--max-shard-mb", type=click.IntRange(min=1), default=MAX_SHARD_BYTES // 10**6,
              show_default=True, help="Largest Parquet shard, in MB.")
@click.option("--check", is_flag=True,
              help="Load every staged config with datasets.load_dataset and check its rows and "
                   "features.")
@click.option("--map-points", type=click.IntRange(min=10), default=2000, show_default=True,
              help="At most this many records per embedding-map panel (seeded subsample).")
@click.pass_obj
def push(ctx: Any, local_dir: str | None, repo_id: str | None, space: str | None,
         space_requirement: str | None, private: bool, branch: str | None, dry_run: bool,
         token: str | None, license_: str, max_shard_mb: int, check: bool,
         map_points: int) -> None:
    """Stage the workspace's tables as a Hub dataset (Parquet configs, dataset card, figures)
    and publish it in one atomic commit.

    \b
    Examples:
      narbuild push --local-dir release              # stage only: inspect release/
      narbuild push --local-dir release --check      # ... and load it with `datasets`
      narbuild push --repo-id my-org/nar-graphs --dry-run
      narbuild push --repo-id my-org/nar-graphs      # token from HF_TOKEN or `hf auth login`
      narbuild push --repo-id my-org/nar-graphs --space my-org/nar-search   # and the app
    """
    from narbuild.cards.flow import release

    with _upload_bars(not (ctx.quiet or ctx.as_json or not sys.stderr.isatty())):
        summary = release(ctx.workdir, local_dir=local_dir, repo_id=repo_id, check=check,
                          token=token, private=private, branch=branch, dry_run=dry_run,
                          space=space, space_requirement=space_requirement,
                          max_shard_bytes=max_shard_mb * 10**6, license=license_,
                          map_points=map_points)
    if summary["recovered"]:
        click.echo(f"narbuild: {local_dir or 'the release folder'}: {summary['recovered']}",
                   err=True)
    ctx.emit(summary, _render)


@contextmanager
def _upload_bars(show: bool) -> Iterator[None]:
    """huggingface_hub's upload bars only on an interactive stderr (as narbuild's own bars)."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    was_disabled = are_progress_bars_disabled()
    if not show:
        disable_progress_bars()
    try:
        yield
    finally:
        if not show and not was_disabled:
            enable_progress_bars()


def _render(s: dict[str, Any]) -> None:
    for name, splits in s["configs"].items():
        click.echo(f"  {name:<12}" + ", ".join(f"{split} {n:,}" for split, n in splits.items()))
    click.echo(f"staged {len(s['files'])} files ({s['bytes'] / 1e6:.1f} MB) in {s['folder']} "
               f"({s['seconds']:.1f} s)")
    for name, c in s.get("load_check", {}).items():
        click.echo(f"load_dataset({s['folder']!r}, {name!r}): "
                   + ", ".join(f"{split} {n:,}" for split, n in c["rows"].items())
                   + f" rows, {c['columns']} columns as in the schema: ok")
    for key in ("push", "space"):
        if s.get(key):
            _render_push(s[key])


def _render_push(p: dict[str, Any]) -> None:
    verb = "would" if p["dry_run"] else "did"
    if p["created_repo"]:
        click.echo(f"{verb} create the {p.get('repo_type', 'dataset')} repo {p['repo_id']}")
    if p["created_branch"]:
        click.echo(f"{verb} create the branch {p['branch']}")
    for op in p["operations"]:
        size = f" ({op['size'] / 1e6:.2f} MB)" if op["op"] == "add" else ""
        click.echo(f"  {op['op']:<6} {op['path']}{size}")
    if p["up_to_date"]:
        click.echo(f"{p['url']} is up to date on {p['branch']}: no commit "
                   f"({p['unchanged']} files unchanged)")
    elif p["dry_run"]:
        click.echo(f"dry run: {len(p['operations'])} operations on {p['url']} ({p['branch']}); "
                   "nothing was uploaded")
    else:
        click.echo(f"published {p['url']} ({p['branch']}): commit {p['commit']}, "
                   f"{len(p['operations'])} operations, {p['unchanged']} files unchanged")
