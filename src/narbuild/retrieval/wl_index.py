"""Search by Weisfeiler-Lehman colour histograms: the eval's ``wl`` (training-free) and
``wl-fam`` (colour presence, idf over the catalog's families) methods.

The workspace's records are turned into TF-IDF rows once and cached under
``<workspace>/cache/search`` (keyed by the processed table's files); a query's colours are
matched to the catalog's by value, with the catalog's idf. Colours the catalog never saw still
count in the query's length, so a query unlike everything scores low everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from narbuild.encoder.wl import (
    DEFAULT_ROUNDS,
    WL_METHODS,
    family_rows,
    idf_weights,
    record_counts,
    tfidf_rows,
    wl_counts,
)
from narbuild.retrieval.index import best
from narbuild.workspace import Workspace

if TYPE_CHECKING:
    from narbuild.encoder.graphs import GraphStore

FORMAT = 2


class WLIndex:
    """TF-IDF rows of WL colours, one per record. ``unseen_idf`` weighs a query colour no record
    has; with ``presence``, a colour counts once however often it occurs."""

    def __init__(self, ids: list[str], matrix: sp.csr_matrix, features: np.ndarray,
                 idf: np.ndarray, rounds: int, unseen_idf: float, presence: bool = False) -> None:
        self.ids, self.matrix, self.features, self.idf, self.rounds = (
            ids, matrix.tocsr(), features, idf, rounds)
        self.unseen_idf, self.presence = unseen_idf, presence

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: list[str], graphs: GraphStore, rounds: int = DEFAULT_ROUNDS,
              families: np.ndarray | None = None) -> WLIndex:
        """Plain TF-IDF rows (``wl``), or with ``families`` (one label per record) colour
        presence weighted by the idf over families (``wl-fam``)."""
        counts, features = wl_counts(graphs, rounds)
        if families is None:
            idf = idf_weights(counts)
            matrix, groups = tfidf_rows(counts, idf), len(ids)
        else:
            matrix, idf = family_rows(counts, families, np.arange(len(ids)))
            groups = len(np.unique(families))
        return cls(ids, matrix, features, idf, rounds, float(np.log(1 + groups) + 1),
                   families is not None)

    def search(self, record: dict[str, Any], k: int, tiebreak: WLIndex | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` records closest to a processed record, as (cosines, rows); equal cosines
        go by ``tiebreak``'s (an index of the same records, e.g. ``wl`` under ``wl-fam``)."""
        second = tiebreak.scores(record) if tiebreak is not None else None
        return best(self.scores(record), np.arange(len(self)), min(k, len(self)), second)

    def scores(self, record: dict[str, Any]) -> np.ndarray:
        """The cosine of a processed record with every row."""
        counts, colours = record_counts(record, self.rounds)
        weights = counts.toarray()[0]
        if self.presence:
            weights = np.minimum(weights, 1)
        pos = np.searchsorted(self.features, colours).clip(0, max(len(self.features) - 1, 0))
        known = self.features[pos] == colours if len(self.features) else np.zeros(0, bool)
        weights = weights * np.where(known, self.idf[pos], self.unseen_idf)
        norm = np.linalg.norm(weights) or 1.0
        q = sp.csr_matrix((weights[known] / norm, (pos[known], np.zeros(known.sum(), int))),
                          shape=(len(self.features), 1))
        return np.asarray((self.matrix @ q).todense()).ravel()

    def save(self, path: Path) -> None:
        m = self.matrix
        np.savez(path, format=FORMAT, ids=np.array(self.ids), data=m.data, indices=m.indices,
                 indptr=m.indptr, shape=np.array(m.shape), features=self.features, idf=self.idf,
                 rounds=self.rounds, unseen_idf=self.unseen_idf, presence=self.presence)

    @classmethod
    def load(cls, path: Path) -> WLIndex | None:
        """The cached index, or None when the file is missing, torn or of another format."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"]) != FORMAT:
                    return None
                matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]),
                                       shape=tuple(z["shape"]))
                return cls(z["ids"].tolist(), matrix, z["features"], z["idf"], int(z["rounds"]),
                           float(z["unseen_idf"]), bool(z["presence"]))
        except (OSError, ValueError, KeyError):
            return None


def load_wl_index(ws: Workspace, dataset: str, method: str = "wl",
                  on_build: Callable[[str], None] | None = None,
                  build: bool = True) -> WLIndex | None:
    """The ``method`` (wl | wl-fam) index of a dataset's processed records, from the cache or
    built (and cached); ``on_build`` hears about a build (about 26 s and 3.6 GB for 28,699 NAS
    records). ``build=False``: None when the cache has none."""
    path = search_cache(ws, method, dataset, f"{WL_METHODS[method]}")
    index = WLIndex.load(path) if path.is_file() else None
    if index is None and build:
        from narbuild.encoder.data import load_records, raw_graphs  # torch: only to build

        records = load_records(ws, dataset)
        if on_build:
            on_build(f"building the WL index of {len(records):,} {dataset} records "
                     "(once; it is cached in the workspace)")
        index = WLIndex.build(records.record_ids, raw_graphs(records), WL_METHODS[method],
                              records.labels if method == "wl-fam" else None)
        save_cached(path, index.save)
    return index


def search_cache(ws: Workspace, kind: str, dataset: str, salt: str) -> Path:
    """The cache file of ``kind`` (a WL method, embedded vectors) for a dataset's processed
    records: named by the processed table's files and ``salt``, so a new preprocess misses."""
    stamp = hashlib.sha256(salt.encode())
    for part in ws.table("processed").parts(dataset):
        info = part.stat()
        stamp.update(f"{part.name}:{info.st_size}:{info.st_mtime_ns}".encode())
    return ws.root / "cache" / "search" / f"{kind}-{dataset}-{stamp.hexdigest()[:16]}.npz"


def save_cached(path: Path, save: Callable[[Path], None]) -> None:
    """Write a cache file (``KIND-DATASET-STAMP.npz``) through ``save``, in place of the older
    stamps of its kind and dataset. A read-only workspace keeps none: searched all the same,
    built again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob(f"{path.name.rsplit('-', 1)[0]}-*.npz"):
            old.unlink()
        tmp = path.with_name(f".{path.name}.tmp.npz")
        save(tmp)
        tmp.replace(path)
    except OSError:
        pass
