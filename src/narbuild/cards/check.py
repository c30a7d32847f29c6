"""Load a staged release the way its users will: ``datasets.load_dataset`` on every config."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from narbuild.cards.release import CONFIGS, release_schema
from narbuild.errors import NarbuildError
from narbuild.schemas import TABLES


def load_check(folder: str | Path, expected: dict[str, dict[str, int]] | None = None
               ) -> dict[str, dict[str, Any]]:
    """Load every config of ``folder`` (as its card declares them) with ``datasets``.

    Returns ``{config: {"rows": {split: n}, "columns": n}}``. Raises :class:`NarbuildError` when
    a config does not load, its features differ from the schema module's, or its rows differ
    from ``expected`` (``{config: {split: n}}``, e.g. a :class:`ReleaseSummary`'s configs).
    """
    from datasets import Features, get_dataset_config_names, load_dataset
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar

    folder = str(folder)
    tables = {spec.name: spec.table for spec in CONFIGS}
    out: dict[str, dict[str, Any]] = {}
    disable_progress_bar()
    try:
        with tempfile.TemporaryDirectory(prefix="narbuild-load-check-") as cache:
            for name in get_dataset_config_names(folder):
                if name not in tables:
                    raise NarbuildError(f"{folder} declares config {name!r}, which is not "
                                        "a narbuild config", "stage the release again")
                ds = load_dataset(folder, name, cache_dir=cache)
                rows = {split: d.num_rows for split, d in ds.items()}
                want = Features.from_arrow_schema(release_schema(TABLES[tables[name]][0]))
                if any(d.features != want for d in ds.values()):
                    raise NarbuildError(f"config {name} of {folder} loads with other features "
                                        "than the schema module's", "stage the release again")
                if expected is not None and rows != expected.get(name):
                    raise NarbuildError(f"config {name} of {folder} loads {rows} rows, "
                                        f"expected {expected.get(name)}", "stage it again")
                out[name] = {"rows": rows, "columns": len(want)}
    finally:
        enable_progress_bar()
    return out
