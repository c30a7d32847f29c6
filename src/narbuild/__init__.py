"""narbuild: build, embed and publish neural-architecture graphs for Neural Architecture Retrieval.

The command line (``narbuild``) is a thin layer over this API::

    from narbuild import Workspace, crawl
    ws = Workspace("narbuild-data")
    summary = crawl(ws, sources=["timm", "torchvision"])
"""

from __future__ import annotations

__version__ = "0.1.0"

from narbuild.crawler import crawl
from narbuild.errors import NarbuildError
from narbuild.workspace import Workspace

__all__ = ["NarbuildError", "Workspace", "__version__", "crawl"]
