"""Shared fixtures: workspaces built from the real offline registries, once per session."""

from __future__ import annotations

import pytest

from narbuild import Workspace, crawl


@pytest.fixture(scope="session")
def offline_manifest(tmp_path_factory) -> Workspace:
    """A workspace holding the full offline manifest (timm + torchvision + transformers)."""
    ws = Workspace(tmp_path_factory.mktemp("ws") / "data", create=True)
    crawl(ws)
    return ws
