"""Shared fixtures: workspaces built from the real offline registries, once per session."""

from __future__ import annotations

import socket

import pytest

from narbuild import Workspace, crawl


@pytest.fixture(scope="session")
def offline_manifest(tmp_path_factory) -> Workspace:
    """A workspace holding the full offline manifest (every offline source)."""
    ws = Workspace(tmp_path_factory.mktemp("ws") / "data", create=True)
    crawl(ws)
    return ws


@pytest.fixture(scope="session")
def catalog(tmp_path_factory) -> Workspace:
    """The search catalogue (``query_models.CATALOG``) and 60 NAS networks, traced,
    preprocessed and embedded with the bundled encoders (for search and serve)."""
    from query_models import CATALOG

    from narbuild.encoder.embed import embed
    from narbuild.nasgen import generate
    from narbuild.preprocess import preprocess
    from narbuild.tracing import TraceOptions, trace_catalog

    ws = Workspace(tmp_path_factory.mktemp("search") / "ws", create=True)
    crawl(ws, ["timm", "torchvision", "transformers"], include=CATALOG)
    summary = trace_catalog(ws, TraceOptions(workers=2))
    assert summary.errors == 0
    ws.table("nas").append(generate(count=60, classes=3, seed=0, pool=200))
    preprocess(ws, "all", workers=1)
    embed(ws, "all", device="cpu")  # wl-metric
    embed(ws, "all", method="nar", device="cpu")
    return ws


@pytest.fixture()
def no_network(monkeypatch):
    """Nothing may reach the network: every socket connection and name lookup fails."""
    def refuse(*args, **kwargs):
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture()
def run_cli(capsys):
    """Run ``narbuild`` in-process: returns (exit code, stdout, stderr)."""
    from narbuild.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(args)
            raise SystemExit(0)
        out = capsys.readouterr()
        return exc.value.code, out.out, out.err

    return run
