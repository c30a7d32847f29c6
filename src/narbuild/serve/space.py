"""The search app as a Hugging Face Space that reads the published dataset.

``narbuild push --repo-id ORG/DATA --space ORG/APP`` stages a Space folder (:func:`stage_space`:
a Gradio Space card, ``app.py`` and ``requirements.txt``) and publishes it with the dataset's own
atomic commit path. On the Space, ``app.py`` calls :func:`run_space`, which loads the dataset's
configs with ``datasets.load_dataset`` into a fresh workspace (:func:`workspace_from_release`)
and serves the same page as ``narbuild serve``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from narbuild._version import __version__
from narbuild.errors import NarbuildError
from narbuild.workspace import Workspace

CONFIG_TABLES = {"manifest": ("manifest", None), "graphs": ("graphs", None),
                 "real": ("processed", "real"), "nas": ("processed", "nas"),
                 "embeddings": ("embeddings", None)}
"""Release config -> (workspace table, sub-folder): what a search needs."""
SPACE_FILES = ("README.md", "app.py", "requirements.txt")

_CARD = """---
title: Neural architecture retrieval
emoji: 🔎
colorFrom: indigo
colorTo: yellow
sdk: gradio
sdk_version: {gradio}
app_file: app.py
pinned: false
license: apache-2.0
datasets:
- {dataset}
---

# Neural architecture retrieval over [{dataset}](https://huggingface.co/datasets/{dataset})

Give a model id, a Python file with a factory, or a config.json: the page finds the dataset's
networks whose designs are most similar, with the motifs they share. Built with narbuild
{version} (`narbuild serve`); the Space loads the dataset with `datasets.load_dataset` when it
starts.
"""
_APP = '''"""The Space's entry point: narbuild's search page over {dataset}."""

from narbuild.serve.space import run_space

run_space("{dataset}")
'''


def stage_space(folder: str | Path, dataset: str, requirement: str | None = None) -> Path:
    """Write the Space for ``dataset`` (a Hub dataset repo id) into ``folder``: its card,
    ``app.py`` and ``requirements.txt`` (``requirement``: how the Space installs narbuild;
    ``narbuild[serve]==<this version>`` by default)."""
    import gradio

    from narbuild.cards.publish import check_repo_id

    check_repo_id(dataset)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(_CARD.format(gradio=gradio.__version__, dataset=dataset,
                                                   version=__version__))
    (folder / "app.py").write_text(_APP.format(dataset=dataset))
    (folder / "requirements.txt").write_text(
        (requirement or f"narbuild[serve]=={__version__}") + "\n")
    return folder


def workspace_from_release(source: str | Path, root: str | Path,
                           cache_dir: str | Path | None = None) -> Workspace:
    """A workspace at ``root`` holding a release's configs (a Hub dataset repo id, or a staged
    release folder), read with ``datasets.load_dataset``: what a search reads."""
    import pyarrow as pa
    from datasets import get_dataset_config_names, load_dataset

    ws = Workspace(root, create=True)
    names = get_dataset_config_names(str(source))
    if "real" not in names and "nas" not in names:
        raise NarbuildError(f"{source} has no real or nas config",
                            "publish the processed records with `narbuild push`")
    for name, (table, subdir) in CONFIG_TABLES.items():
        if name not in names:
            continue
        loaded = load_dataset(str(source), name, cache_dir=str(cache_dir) if cache_dir else None)
        parts = [split.data.table for split in loaded.values()]
        arrow = pa.concat_tables(parts)
        target = ws.table(table)
        schema = target.schema
        arrow = arrow.select(schema.names).cast(schema, safe=False)  # ms timestamps back to s
        target.append(arrow, subdir=subdir or "")
    return ws


def run_space(dataset: str, port: int = 7860) -> None:
    """Load ``dataset`` into a fresh workspace and serve the search page (a Space's app)."""
    import uvicorn

    from narbuild.serve.app import build_app
    from narbuild.serve.engine import SearchEngine

    root = Path(tempfile.mkdtemp(prefix="narbuild-space-")) / "ws"
    engine = SearchEngine(workspace_from_release(dataset, root))
    engine.warm()
    uvicorn.run(build_app(engine), host="0.0.0.0", port=port, log_level="warning")
