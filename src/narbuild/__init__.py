"""narbuild: build, embed and publish neural-architecture graphs for Neural Architecture Retrieval.

The command line (``narbuild``) is a thin layer over this API::

    from narbuild import Workspace, crawl
    ws = Workspace("narbuild-data")
    summary = crawl(ws, sources=["timm", "torchvision"])
    result = narbuild.search(my_module, example_inputs, k=10, workspace=ws)
"""

from __future__ import annotations

from narbuild._version import __version__
from narbuild.errors import NarbuildError

__all__ = ["NarbuildError", "Workspace", "__version__", "crawl", "search"]


def __getattr__(name: str):
    """The API loads on first use: ``import narbuild`` (and ``narbuild.__version__``) costs
    nothing, ``narbuild.search`` alone loads the retrieval stack (torch, the encoder)."""
    if name == "crawl":
        from narbuild.crawler import crawl

        return crawl
    if name == "Workspace":
        from narbuild.workspace import Workspace

        return Workspace
    if name == "search":
        from narbuild.retrieval.search import search

        return search
    raise AttributeError(f"module 'narbuild' has no attribute {name!r}")
