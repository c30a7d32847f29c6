"""The ``narbuild serve`` command (registered by :mod:`narbuild.cli`)."""

from __future__ import annotations

from typing import Any

import click

from narbuild.errors import SourceUnavailableError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; only this machine can connect unless you pass "
                   "another one (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--dataset", type=click.Choice(["real", "nas", "all"]), default="real",
              show_default=True, help="The records searched by default.")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds a query's trace may take (in a separate process).")
@click.option("--memory-limit", type=click.FloatRange(min=256), default=3072.0,
              show_default=True, help="MiB a query's trace process may hold.")
@click.pass_obj
def serve(ctx: Any, host: str, port: int, dataset: str, timeout: float,
          memory_limit: float) -> None:
    """Serve the search web app over the workspace (and GET /api/search as JSON).

    \b
    Examples:
      narbuild serve                       # http://127.0.0.1:7860, this machine only
      narbuild serve --host 0.0.0.0        # reachable from the network
    """
    try:
        import uvicorn

        from narbuild.serve.app import build_app
    except ImportError as exc:
        raise SourceUnavailableError(f"narbuild serve needs {exc.name}, which is not installed",
                                     "pip install 'narbuild[serve]' (or `make setup`)") from None
    from narbuild.serve.engine import SearchEngine
    from narbuild.tracing import TraceOptions

    engine = SearchEngine(ctx.workspace(), TraceOptions(timeout_s=timeout,
                                                        memory_limit_mb=memory_limit))
    click.echo("narbuild serve: loading the workspace's indexes ...", err=True)
    engine.warm(dataset)
    where = ("this machine only; pass --host 0.0.0.0 to serve the network"
             if host in ("127.0.0.1", "localhost", "::1") else "reachable from the network")
    click.echo(f"narbuild serve: http://{host}:{port} ({where}); JSON at /api/search", err=True)
    try:
        uvicorn.run(build_app(engine, dataset), host=host, port=port, log_level="warning")
    finally:
        engine.close()
