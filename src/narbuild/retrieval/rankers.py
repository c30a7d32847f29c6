"""How a search ranks one dataset's records: one :class:`Ranker` per method.

``wl`` and ``wl-fam`` rank by WL colour cosines (:class:`WLRanker`), a learned method by its
embeddings' cosines (:class:`EmbeddingRanker`), and ``nar+wl-fam`` by the two weighted
(:class:`FusedRanker`). :func:`ranker` reads a method name; the search calls only
:meth:`Ranker.open`, :meth:`Ranker.rank` and the attributes below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow.compute as pc

from narbuild.encoder.wl import WL_METHODS, fusion_weight
from narbuild.errors import NarbuildError
from narbuild.retrieval.index import VectorIndex, best
from narbuild.retrieval.wl_index import WLIndex, load_wl_index
from narbuild.workspace import Workspace

Progress = Callable[[str], None] | None


class Ranker(Protocol):
    """Ranks the records of one dataset against a query record."""

    description: str
    """What ranks, for people (the search's ``encoders`` line)."""

    def open(self, build: bool) -> bool:
        """Load what ranking needs; with ``build`` False only what is cached (a slow first
        build waits until the query traced). True once ready."""

    def rank(self, record: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best (scores, rows), best first, for a processed query record."""

    def scores(self, record: dict[str, Any]) -> np.ndarray:
        """The query's score with every row."""

    @property
    def ids(self) -> list[str]:
        """The record id of each row."""

    def vectors(self) -> Any:
        """The row vectors it ranks with (for the embedding map)."""


def ranker(ws: Workspace, dataset: str, method: str, checkpoint: str | Path | None = None,
           on_progress: Progress = None) -> Ranker:
    """The ranker of ``method`` over ``dataset``: ``wl``, ``wl-fam``, a learned method the
    workspace has embeddings of (``nar``, ``gcn``, ...), or one fused with a WL method
    (``nar+wl-fam``)."""
    if method in WL_METHODS:
        return WLRanker(ws, dataset, method, on_progress)
    learned, _, fused = method.partition("+")
    if fused and (fused not in WL_METHODS or learned in WL_METHODS):
        raise NarbuildError(f"unknown method {method!r}",
                            "fuse an embedding method with wl or wl-fam, e.g. nar+wl-fam")
    embedding = EmbeddingRanker(ws, dataset, learned, checkpoint)
    if not fused:
        return embedding
    return FusedRanker(embedding, WLRanker(ws, dataset, fused, on_progress))


class WLRanker:
    """WL colour cosines (``wl``: histograms; ``wl-fam``: presence with an idf over the
    families, equal cosines ordered by ``wl``'s, so a deeper relative follows a closer one)."""

    def __init__(self, ws: Workspace, dataset: str, method: str, on_progress: Progress) -> None:
        self.ws, self.dataset, self.method, self.on_progress = ws, dataset, method, on_progress
        self.index: WLIndex | None = None
        self.tiebreak: WLIndex | None = None
        self.description = method

    def open(self, build: bool) -> bool:
        if self.index is None:
            self.index = load_wl_index(self.ws, self.dataset, self.method, self.on_progress, build)
            if self.index is not None:
                self.description = (
                    f"wl ({self.index.rounds} rounds, training-free)" if self.method == "wl"
                    else f"wl-fam ({self.index.rounds} rounds, idf over the families)")
        if self.method == "wl-fam" and self.tiebreak is None:
            self.tiebreak = load_wl_index(self.ws, self.dataset, "wl", self.on_progress, build)
        return self.index is not None and (self.method != "wl-fam" or self.tiebreak is not None)

    def rank(self, record: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(record, k, self.tiebreak)

    def scores(self, record: dict[str, Any]) -> np.ndarray:
        return self.index.scores(record)

    @property
    def ids(self) -> list[str]:
        return self.index.ids

    def vectors(self) -> Any:
        return self.index.matrix


class EmbeddingRanker:
    """Cosines of the workspace's embeddings of one learned method. The query takes its
    record's stored vector when it is one of the dataset's records (the vector the encoder
    gives that graph, so no encoder is loaded), else the encoder embeds it."""

    def __init__(self, ws: Workspace, dataset: str, method: str,
                 checkpoint: str | Path | None) -> None:
        self.ws, self.dataset, self.checkpoint = ws, dataset, checkpoint
        self.index, self.encoder_id = _embedding_index(ws, dataset, method)
        self.description = self.encoder_id
        self._rows = {record_id: i for i, record_id in enumerate(self.index.ids)}
        self._encoder: tuple[Any, dict[str, Any]] | None = None

    def open(self, build: bool) -> bool:
        return True

    def vector(self, record: dict[str, Any]) -> np.ndarray:
        """The query record's vector: its stored one, or the encoder's."""
        row = self._rows.get(f"{self.dataset}:{record['graph_hash'][:16]}")
        return self.index.exact[row] if row is not None else self._embed(record)

    def rank(self, record: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(self.vector(record), k)

    def scores(self, record: dict[str, Any]) -> np.ndarray:
        return self.index.scores(self.vector(record))

    @property
    def ids(self) -> list[str]:
        return self.index.ids

    def vectors(self) -> Any:
        return self.index.exact

    def _embed(self, record: dict[str, Any]) -> np.ndarray:
        from narbuild.encoder.checkpoint import encoder_label, find_checkpoint, load_checkpoint
        from narbuild.encoder.data import Inputs, records_from_rows
        from narbuild.encoder.train import resolve_device, vectors_of

        if self._encoder is None:
            path = (Path(self.checkpoint) if self.checkpoint
                    else find_checkpoint(self.encoder_id, self.dataset,
                                         self.ws.root / "checkpoints"))
            model, meta = load_checkpoint(path)
            made = f"{encoder_label(meta)}@{meta['hash']}"
            if not self.encoder_id.startswith(made):
                raise NarbuildError(f"{path} is encoder {made}, but the "
                                    f"{self.dataset} embeddings come from {self.encoder_id}",
                                    "pass the checkpoint that made them, or re-run "
                                    "`narbuild embed`")
            self._encoder = model, meta
        model, meta = self._encoder
        inputs = Inputs(records_from_rows([record]))
        return vectors_of(meta["method"], model, inputs, resolve_device("cpu"))[0]


class FusedRanker:
    """An embedding's cosine and a WL method's, weighted per dataset
    (:func:`narbuild.encoder.wl.fusion_weight`, chosen on a validation split)."""

    def __init__(self, embedding: EmbeddingRanker, wl: WLRanker) -> None:
        self.embedding, self.wl = embedding, wl
        self.weight = fusion_weight(embedding.dataset, wl.method)
        self._wl_rows: np.ndarray | None = None
        self.description = embedding.description

    def open(self, build: bool) -> bool:
        if self._wl_rows is None and self.wl.open(build):
            position = {record_id: i for i, record_id in enumerate(self.wl.ids)}
            missing = [r for r in self.ids if r not in position]
            if missing:
                raise NarbuildError(f"record {missing[0]} has an embedding but no processed row",
                                    "re-run `narbuild embed` after `narbuild preprocess`")
            self._wl_rows = np.array([position[r] for r in self.ids], dtype=np.int64)
            self.description = (f"{self.embedding.description} + {self.wl.description}, "
                                f"cosines weighted {self.weight:g}:{1 - self.weight:g}")
        return self._wl_rows is not None

    def scores(self, record: dict[str, Any]) -> np.ndarray:
        return (self.weight * self.embedding.scores(record)
                + (1 - self.weight) * self.wl.scores(record)[self._wl_rows])

    def rank(self, record: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
        return best(self.scores(record), np.arange(len(self.ids)), min(k, len(self.ids)))

    @property
    def ids(self) -> list[str]:
        return self.embedding.ids

    def vectors(self) -> Any:
        return self.embedding.vectors()


def _embedding_index(ws: Workspace, name: str, method: str) -> tuple[VectorIndex, str]:
    """The dataset's ``method`` embeddings as an index, and the encoder that made them."""
    table = ws.table("embeddings")
    if not table.exists():
        raise NarbuildError(f"the workspace {ws.root} has no embeddings",
                            "run `narbuild embed` first, or search with --method wl")
    # each dataset's vectors are in its own folder; a workspace embedded before that holds
    # them all in one, filtered here
    rows = table.read(["record_id", "dataset", "method", "encoder_id", "vector"],
                      subdir=name if table.parts(name) else "")
    rows = rows.filter(pc.and_(pc.equal(rows["dataset"], name), pc.equal(rows["method"], method)))
    if not rows.num_rows:
        raise NarbuildError(f"the workspace has no {method} embeddings of the {name} set",
                            f"run `narbuild embed --dataset {name}`"
                            + ("" if method == "nar" else f" --method {method}"))
    encoders = set(rows["encoder_id"].to_pylist())
    if len(encoders) > 1:
        raise NarbuildError(f"the {name} embeddings come from {len(encoders)} encoders",
                            f"re-run `narbuild embed --dataset {name}` to embed them all again")
    vectors = rows["vector"].combine_chunks()
    matrix = vectors.flatten().to_numpy(zero_copy_only=False).reshape(len(vectors), -1)
    return VectorIndex(rows["record_id"].to_pylist(), matrix), encoders.pop()
