"""torch-hub: the entry points of PyTorch Hub repos (online, or a local folder); listed only.

Listing imports each repo's ``hubconf.py`` (see :mod:`narbuild.crawler.torch_hub`), so the
source is opt-in with ``--trust-remote-code``; its rows are not built by ``trace``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="torch-hub", title="PyTorch Hub entry points (hubconf.py; listed only)", package=None,
    offline=False, license="per repository", family="the name hints over the entry point")


def iter_rows(names: list[str] | None = None, *, workspace: Any = None,
              **options: Any) -> Iterator[dict[str, Any]]:
    """The entry points of ``options["repos"]`` (see :func:`~narbuild.crawler.torch_hub.iter_torch_hub`)."""
    from narbuild.crawler.torch_hub import iter_torch_hub

    return iter_torch_hub(**options)


def build(config: dict[str, Any], step: str) -> Built:
    raise NarbuildError("cannot build models of source 'torch-hub'",
                        "this source's models are listed only")
