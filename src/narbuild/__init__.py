"""narbuild: build, embed and publish neural-architecture graphs for Neural Architecture Retrieval.

The command line (``narbuild``) is a thin layer over this API::

    from narbuild import Workspace, crawl
    ws = Workspace("narbuild-data")
    summary = crawl(ws, sources=["timm", "torchvision"])
    result = narbuild.search(my_module, example_inputs, k=10, workspace=ws)
"""

from __future__ import annotations

__version__ = "0.1.0"

from narbuild.crawler import crawl
from narbuild.errors import NarbuildError
from narbuild.workspace import Workspace

__all__ = ["NarbuildError", "Workspace", "__version__", "crawl", "search"]


def __getattr__(name: str):
    """``narbuild.search`` loads the retrieval stack (torch, the encoder) on first use."""
    if name == "search":
        from narbuild.retrieval.search import search

        return search
    raise AttributeError(f"module 'narbuild' has no attribute {name!r}")
