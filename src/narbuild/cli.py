"""The ``narbuild`` command line: a thin layer over the Python API."""

from __future__ import annotations

import sys
from importlib import import_module

import click

from narbuild._cli_utils import Context
from narbuild._version import __version__
from narbuild.errors import NarbuildError, redact
from narbuild.workspace import ENV_VAR

# Stage commands live beside their stage's code and are imported when used, so a command pays
# only for its own imports (`narbuild search` does not load the Hub client, say).
_STAGE_COMMANDS = {
    "crawl": "narbuild.crawler.cli:crawl", "trace": "narbuild.tracing.cli:trace",
    "gen-nas": "narbuild.nasgen.cli:gen_nas", "preprocess": "narbuild.preprocess.cli:preprocess",
    "embed": "narbuild.encoder.cli:embed", "eval": "narbuild.encoder.cli:eval_",
    "push": "narbuild.cards.cli:push", "search": "narbuild.retrieval.cli:search",
    "serve": "narbuild.serve.cli:serve", "nas-io": "narbuild.nasio.cli:nas_io",
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
