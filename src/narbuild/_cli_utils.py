"""What every ``narbuild`` command shares: the options object, the progress bar, the model-id
filters and the Hub token option. The root command (:mod:`narbuild.cli`) and the stage commands (``<stage>/cli.py``) both
import it, so neither imports the other."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import click

from narbuild.errors import register_secret
from narbuild.workspace import Workspace, default_root


class Context:
    """Options shared by every subcommand."""

    def __init__(self, workdir: str | None, as_json: bool, quiet: bool,
                 wait: bool = False) -> None:
        self.workdir = workdir
        self.as_json = as_json
        self.quiet = quiet
        self.wait = wait

    def workspace(self, create: bool = False, writer: str | None = None) -> Workspace:
        """The workspace; with ``writer`` (the command's name), held under the writer lock
        until the command ends (a second writer fails at once, or waits with --wait)."""
        ws = Workspace(self.workdir or default_root(), create=create)
        if writer:
            click.get_current_context().with_resource(ws.writer(writer, self.wait))
        return ws

    def emit(self, summary: dict[str, Any], render: Callable[[dict[str, Any]], None]) -> None:
        """Print a command's summary: JSON on stdout with --json, else a human rendering."""
        if self.as_json:
            click.echo(json.dumps(summary, indent=2, default=str))
        else:
            render(summary)


@contextmanager
def progress(ctx: Context, description: str, total: int | None = None):
    """A rich progress bar on an interactive stderr; a no-op advance function otherwise."""
    if ctx.quiet or ctx.as_json or not sys.stderr.isatty():
        yield lambda *_: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ["{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda *_: bar.advance(task)


def id_filters(command):
    """The --include/--exclude model-id patterns that several commands take."""
    command = click.option("--exclude", multiple=True, metavar="PATTERN",
                           help="Skip model ids matching this fnmatch pattern (repeatable).")(command)
    return click.option("--include", multiple=True, metavar="PATTERN",
                        help="Only model ids matching this fnmatch pattern (repeatable), "
                             "e.g. 'timm:resnet*'.")(command)


def hub_token_option(kind: str = "token"):
    """``--token`` (or $HF_TOKEN), registered as a secret so no message ever prints it;
    ``kind`` says what the token must allow (``"write token"`` for push)."""
    return click.option(
        "--token", default=None, envvar="HF_TOKEN", show_envvar=True,
        callback=lambda _c, _p, value: register_secret(value),
        help=f"Hugging Face {kind} (never printed or stored). Prefer HF_TOKEN or "
             "`hf auth login`: a --token value shows in the process list.")
