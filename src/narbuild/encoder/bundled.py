"""Where the bundled encoder checkpoints are (no torch: a search reads this)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLED = ("wl-metric", "nar")
"""The learned methods narbuild ships a checkpoint of, for each dataset (``<method>-<dataset>.pt``
in ``narbuild/data/encoder``); the first is what ``narbuild embed`` uses by default."""


def bundled_path(method: str, dataset: str) -> Path:
    """The packaged checkpoint of ``method`` (:data:`BUNDLED`) for ``dataset`` (real | nas)."""
    folder = resources.files("narbuild") / "data" / "encoder"
    return Path(str(folder / f"{method}-{dataset}.pt"))


def bundled_checkpoint(method: str, dataset: str) -> Path | None:
    """The packaged checkpoint of ``method`` for ``dataset`` when narbuild ships one, else None."""
    path = bundled_path(method, dataset) if method in BUNDLED else None
    return path if path is not None and path.is_file() else None
