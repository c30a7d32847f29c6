"""The release's data model: which dataset configs a workspace's tables become
(:data:`CONFIGS`) and what one staged config holds (:class:`ConfigRelease`).

Read by staging (:mod:`narbuild.cards.release`), the card (:mod:`narbuild.cards.card`), the
load check and the push, without any of them importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

RELEASE_ENTRIES = frozenset({"README.md", "data", "figures"})
"""What a release folder holds; ``push`` manages exactly these paths in the Hub repo."""

GRAPH_TABLES = ("processed", "graphs", "nas", "embeddings")
DEFAULT_LICENSE = "apache-2.0"


@dataclass(frozen=True)
class ConfigSpec:
    """How one workspace table (or part of it) becomes a dataset config."""

    name: str
    table: str
    what: str
    where: tuple[str, str] | None = None  # (column, value) rows to keep
    split_column: str | None = None  # column naming each row's split; None: one "train" split
    splits: tuple[str, ...] = ("train",)


CONFIGS: tuple[ConfigSpec, ...] = (
    ConfigSpec("real", "processed", "a cleaned real-model graph (duplicates collapsed): operator "
               "ids, edges, fine and coarse labels, motifs and macro graph",
               ("dataset", "real"), "split", ("train", "test")),
    ConfigSpec("nas", "processed", "a cleaned DARTS-space network graph with its edit-distance "
               "class, motifs and macro graph", ("dataset", "nas"), "split", ("train", "test")),
    ConfigSpec("graphs", "graphs", "a traced model: autograd operator per node, edges, FLOPs, "
               "parameters, inputs; error rows say why a model could not be traced"),
    ConfigSpec("nas-graphs", "nas", "a generated DARTS-space network: genotype, operator-level "
               "and DARTS-level graphs, class centre and edit distance to it"),
    ConfigSpec("embeddings", "embeddings", "a graph's embedding vector by one method "
               "(join on record_id with the real / nas configs)", None, "dataset",
               ("real", "nas")),
    ConfigSpec("manifest", "manifest", "a crawled model: source, name, task, family hints and "
               "the JSON config that builds it without weights"),
    ConfigSpec("nas-io", "nas_io", "a DARTS-space network trained on a small image set: its "
               "accuracy and its pooled features on fixed validation and unseen images, raw "
               "and preprocessed as arch2vec-IO does (join on model_id with nas-graphs)",
               None, "split", ("train", "val")),
)
RELEASED_TABLES = ("manifest", *GRAPH_TABLES, "nas_io")
"""The workspace tables a release reads (each that exists)."""


@dataclass
class ConfigRelease:
    """One config as staged: its rows and files per split."""

    spec: ConfigSpec
    schema: pa.Schema
    rows: dict[str, int] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def data_files(self) -> list[dict[str, str]]:
        """The card's ``data_files`` entries: one glob per split."""
        return [{"split": s, "path": f"data/{self.name}/{s}-*.parquet"} for s in self.rows]
