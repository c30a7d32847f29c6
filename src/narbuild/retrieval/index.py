"""Exact cosine search over embedding vectors.

Up to 100k vectors the scan is exhaustive in float32. Beyond, it is memory-bound (100k x 512
float32 is 205 MB read per query), so it reads a float16 copy of the unit vectors (half the
bytes) and re-scores the best candidates in float32: the
returned scores are float32 cosines, and the top k equal a float32 exhaustive search unless
float16 rounding (relative error ~1e-3) moves a true top-k vector below ``candidates``
others, which ``bench/search_bench.py`` measures (recall 1.0 at 100k and 1M).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from narbuild.errors import NarbuildError

EXACT_UP_TO = 100_000
"""Up to this many vectors, a search is one exhaustive float32 scan (a few ms; no torch)."""


class VectorIndex:
    """Unit-normalised vectors with their ids; :meth:`search` ranks them by cosine."""

    def __init__(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(ids) != len(vectors):
            raise NarbuildError(f"{len(ids)} ids for vectors of shape {vectors.shape}",
                                "re-run `narbuild embed`")
        self.ids = list(ids)
        self.exact = unit_rows(vectors)
        self._scan = None  # the float16 copy, made on the first search

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return self.exact.shape[1]

    def scores(self, query: np.ndarray) -> np.ndarray:
        """The float32 cosine of one query vector with every row (an exhaustive scan)."""
        q = unit_rows(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        if q.shape[0] != self.dim:
            raise NarbuildError(f"query has {q.shape[0]} dimensions, the index {self.dim}",
                                "embed the query with the encoder that made the index")
        return self.exact @ q

    def search(self, query: np.ndarray, k: int = 10,
               candidates: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best (scores, row indices) for one query vector, best first; ties keep
        row order, so results are reproducible."""
        q = unit_rows(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
        if q.shape[0] != self.dim:
            raise NarbuildError(f"query has {q.shape[0]} dimensions, the index {self.dim}",
                                "embed the query with the encoder that made the index")
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if len(self) <= EXACT_UP_TO:
            return best(self.exact @ q, np.arange(len(self)), k)
        import torch  # imported here: a smaller index is searched without torch

        if self._scan is None:
            self._scan = torch.from_numpy(self.exact).to(torch.float16)
        pool = min(len(self), max(candidates, 4 * k))
        rough = self._scan @ torch.from_numpy(q).to(torch.float16)
        if pool < len(self):
            rows = torch.topk(rough.float(), pool, sorted=False).indices.numpy()
        else:
            rows = np.arange(len(self))
        return best(self.exact[rows] @ q, np.asarray(rows, dtype=np.int64), k)


def best(scores: np.ndarray, rows: np.ndarray, k: int,
         tiebreak: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest (score, row) pairs, best first. Ties (equal to 6 decimals when a
    ``tiebreak`` score per row is given) go by the higher ``tiebreak``, then in row order."""
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    if len(scores) > 4 * k:
        keep = np.argpartition(-scores, k - 1)[:k]
        edge = scores[keep].min()
        keep = np.flatnonzero(scores >= edge - 1e-6)  # rows tied with the k-th stay candidates
        scores, rows = scores[keep], rows[keep]
        tiebreak = None if tiebreak is None else tiebreak[keep]
    if tiebreak is None:
        order = np.lexsort((rows, -scores))[:k]
    else:
        order = np.lexsort((rows, -tiebreak, -np.round(scores, 6)))[:k]
    return scores[order].astype(np.float32), rows[order]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1)).astype(np.float32, copy=False)
