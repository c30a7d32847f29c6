"""How a search ranks one dataset's records: one :class:`Ranker` per method.

``wl`` and ``wl-fam`` rank by WL colour cosines (:class:`WLRanker`), a learned method by its
embeddings' cosines (:class:`EmbeddingRanker`), and ``wl-metric+wl-fam`` (the default) or
``nar+wl-fam`` by the two weighted (:class:`FusedRanker`). :func:`ranker` reads a method name;
the search calls only :meth:`Ranker.open`, :meth:`Ranker.rank` and the attributes below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from narbuild.encoder.wl import WL_METHODS, fusion_weight
from narbuild.errors import NarbuildError
from narbuild.retrieval.embedded import QueryEncoder, checkpoint_embeddings, stored_embeddings
from narbuild.retrieval.index import VectorIndex, best
from narbuild.retrieval.wl_index import WLIndex, load_wl_index
from narbuild.workspace import Workspace

Progress = Callable[[str], None] | None

DEFAULT_METHOD = "wl-metric+wl-fam"
"""What a search ranks by unless told: the bundled wl-metric encoder's cosine fused with
wl-fam's, weighted per dataset (:func:`narbuild.encoder.wl.fusion_weight`). It is the ranking
best on benchmark v2's ``open`` and ``variants`` protocols (``bench/bench_fusion_fixed.py``)."""


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
    workspace has embeddings of or narbuild bundles (``wl-metric``, ``nar``, ``gcn``, ...), or
    one fused with a WL method (``wl-metric+wl-fam``)."""
    if method in WL_METHODS:
        return WLRanker(ws, dataset, method, on_progress)
    learned, _, fused = method.partition("+")
    if fused and (fused not in WL_METHODS or learned in WL_METHODS):
        raise NarbuildError(f"unknown method {method!r}",
                            "fuse an embedding method with wl or wl-fam, e.g. nar+wl-fam")
    embedding = EmbeddingRanker(ws, dataset, learned, checkpoint, on_progress)
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
    """Cosines of one learned method's vectors of the records: the workspace's embeddings, or
    without them those of the method's bundled checkpoint (or ``checkpoint``), embedded once and
    cached (:mod:`narbuild.retrieval.embedded`). The query takes its record's vector when it is
    one of the dataset's records (so no encoder is loaded), else the encoder embeds it."""

    def __init__(self, ws: Workspace, dataset: str, method: str,
                 checkpoint: str | Path | None, on_progress: Progress = None) -> None:
        self.ws, self.dataset, self.method, self.checkpoint = ws, dataset, method, checkpoint
        self.on_progress = on_progress
        self.index: VectorIndex | None = None
        self.description = self.encoder_id = method
        self._stored = stored_embeddings(ws, dataset, method)
        self._rows: dict[str, int] = {}
        self._encoder: QueryEncoder | None = None

    def open(self, build: bool) -> bool:
        if self.index is None:
            found = self._stored or checkpoint_embeddings(self.ws, self.dataset, self.method,
                                                          self.checkpoint, build,
                                                          self.on_progress)
            if found is not None:
                self.index, self.encoder_id = found
                self.description = self.encoder_id
                self._rows = {record_id: i for i, record_id in enumerate(self.index.ids)}
        return self.index is not None

    def vector(self, record: dict[str, Any]) -> np.ndarray:
        """The query record's vector: its stored one, or the encoder's."""
        row = self._rows.get(f"{self.dataset}:{record['graph_hash'][:16]}")
        if row is not None:
            return self.index.exact[row]
        if self._encoder is None:
            self._encoder = QueryEncoder(self.ws, self.dataset, self.encoder_id, self.checkpoint)
        return self._encoder.embed(record)

    def rank(self, record: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(self.vector(record), k)

    def scores(self, record: dict[str, Any]) -> np.ndarray:
        return self.index.scores(self.vector(record))

    @property
    def ids(self) -> list[str]:
        return self.index.ids

    def vectors(self) -> Any:
        return self.index.exact


class FusedRanker:
    """An embedding's cosine and a WL method's, weighted per dataset
    (:func:`narbuild.encoder.wl.fusion_weight`, chosen on a validation split). Where the WL
    method weighs nothing (wl-metric on NAS), its index is not loaded."""

    def __init__(self, embedding: EmbeddingRanker, wl: WLRanker) -> None:
        self.embedding, self.wl = embedding, wl
        self.weight = fusion_weight(embedding.dataset, wl.method, embedding.method)
        self._wl_rows: np.ndarray | None = None
        self.description = embedding.description

    def open(self, build: bool) -> bool:
        opened = self.embedding.open(build)  # both start, so a build does them together
        if self.weight >= 1:
            self.description = (f"{self.embedding.description}, cosines weighted 1:0 "
                                f"({self.wl.method} weighs nothing on this set)")
            return opened
        if self._wl_rows is None and self.wl.open(build) and opened:
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
        if self.weight >= 1:
            return self.embedding.scores(record)
        return (self.weight * self.embedding.scores(record)
                + (1 - self.weight) * self.wl.scores(record)[self._wl_rows])

    def rank(self, record: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best rows; scores equal to the 4 decimals a hit shows go by ``wl``'s cosine
        (a design the learned metric cannot tell apart by depth: the closest depth first)."""
        scores, second = self.scores(record), None
        if self.weight < 1 and self.wl.tiebreak is not None:
            scores, second = np.round(scores, 4), self.wl.tiebreak.scores(record)[self._wl_rows]
        return best(scores, np.arange(len(self.ids)), min(k, len(self.ids)), second)

    @property
    def ids(self) -> list[str]:
        return self.embedding.ids

    def vectors(self) -> Any:
        return self.embedding.vectors()
