"""Benchmark v2: retrieval units, relevance by family sets, and the four protocols.

**Retrieval units.** The heads of one backbone are one unit: a transformers model id
``transformers:<type>/<head>[@mapping]`` belongs to the unit of ``<type>``; any other id is its
own unit (a timm or torchvision architecture, a NAS network). A record (one distinct graph,
possibly shared by several ids) joins every unit of its ids, so units are the connected
components of records and their keys. A query's same-unit siblings are removed from its
ranking and from its relevant set.

**Relevance.** A record carries every family of its ids (``fine_labels``): bert, roberta and
camembert trace to identical graphs, so their shared record is all three. A result is relevant
when its families intersect the query's. Families linked by a shared record form a *family
group*; the ``open`` folds split groups, so no family reaches two sides.

**Protocols** (each a list of :class:`Task`: the rows a method may fit on, the validation
queries that choose its settings, and the test queries):

* ``closed``: the processed table's split (v1's, for comparison with the paper);
* ``loo``: every record with a relevant record in another unit is a query, once, in one of
  :data:`FOLDS` unit-disjoint folds (trained without the query's unit);
* ``open``: :data:`FOLDS` folds over family groups; a test group is never fitted, trained on
  or used for selection; the gallery holds everything;
* ``variants``: depth and width variants (:mod:`narbuild.benchmark.variants`) queried against
  the catalogue with ``closed``'s fitting; relevant = same family, whatever the size.

Validation queries are cut from each task's training side the same way its test queries are
cut (records in ``closed``, units in ``loo``, family groups in ``open``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from narbuild.encoder.data import validation_split

PROTOCOLS = ("closed", "loo", "open", "variants")
FOLDS = 5
VALIDATION_SHARE = 10
"""One in this many training-side units (loo) or groups (open) becomes validation."""
SIZE_BUCKETS = (("1", 1), ("2", 2), ("3-5", 5), ("6-20", 20))
"""Family-size slices by their largest size; anything larger is ``>20``."""


def unit_key(model_id: str) -> str:
    """The backbone a model id belongs to (see the module docstring)."""
    if model_id.startswith("transformers:") and "/" in model_id:
        return model_id.split("/", 1)[0]
    return model_id


def components(owners: Sequence[Sequence[str]]) -> np.ndarray:
    """Connected component of each row in the bipartite graph of rows and the keys each row
    holds (``owners[i]``), numbered in order of first appearance."""
    index: dict[str, int] = {}
    rows, cols = [], []
    for i, keys in enumerate(owners):
        for key in keys:
            rows.append(i)
            cols.append(index.setdefault(key, len(index)))
    n = len(owners)
    graph = sp.coo_matrix((np.ones(len(rows)), (rows, np.array(cols, dtype=np.int64) + n)),
                          shape=(n + len(index), n + len(index)))
    _, labels = connected_components(graph, directed=False)
    _, first = np.unique(labels[:n], return_inverse=True)
    return first.astype(np.int64)


@dataclass
class Catalogue:
    """What every protocol reads, one entry per record (the catalogue, then any variants)."""

    families: sp.csr_matrix
    """Records x family names, 1 where the record carries the family."""
    family_names: list[str]
    units: np.ndarray
    groups: np.ndarray
    """Family group of each record (families linked by shared records)."""
    gallery: np.ndarray
    """True for catalogue records (rankable); False for variants (queries only)."""
    family_size: np.ndarray
    """Records of the query's own (first) family in the catalogue: the size slices."""

    def __len__(self) -> int:
        return len(self.units)

    @classmethod
    def build(cls, model_ids: Sequence[Sequence[str]], fine_labels: Sequence[Sequence[str]],
              gallery: Sequence[bool] | None = None) -> Catalogue:
        """From each record's model ids and families (the processed ``model_ids`` and
        ``fine_labels``); ``gallery`` False marks variants (default: every record rankable)."""
        gallery = np.ones(len(model_ids), bool) if gallery is None else np.asarray(gallery)
        names = sorted({f for labels in fine_labels for f in labels})
        col = {n: i for i, n in enumerate(names)}
        rows = [i for i, labels in enumerate(fine_labels) for _ in set(labels)]
        cols = [col[f] for labels in fine_labels for f in sorted(set(labels))]
        families = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                                 shape=(len(model_ids), len(names)))
        # variants are their own unit: their base architecture is relevant, not a sibling
        keys = [sorted({unit_key(m) for m in ids}) if g else [f"variant:{i}"]
                for i, (ids, g) in enumerate(zip(model_ids, gallery))]
        groups = components([[f"family:{f}" for f in labels] for labels in fine_labels])
        first = np.array([col[labels[0]] for labels in fine_labels], dtype=np.int64)
        counts = np.bincount(first[gallery], minlength=len(names))
        return cls(families, names, components(keys), groups, gallery, counts[first])

    def excluded(self, queries: np.ndarray) -> np.ndarray:
        """``[len(queries), len(self)]`` True where a record may not be ranked for the query:
        itself, its same-unit siblings, and every non-gallery record."""
        out = self.units[np.asarray(queries)][:, None] == self.units[None, :]
        out |= ~self.gallery[None, :]
        return out

    def relevant(self, queries: np.ndarray) -> np.ndarray:
        """``[len(queries), len(self)]`` True where a record shares a family with the query
        (before exclusions)."""
        return (self.families[np.asarray(queries)] @ self.families.T).toarray() > 0

    def rankable_relevant(self, queries: np.ndarray) -> np.ndarray:
        """:meth:`relevant` less :meth:`excluded`: what a query's metrics count as relevant."""
        return self.relevant(queries) & ~self.excluded(queries)

    def num_relevant(self, rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """Rankable relevant records of each row (0: the row cannot be a query)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.int64)
        for start in range(0, len(rows), chunk):
            out[start:start + chunk] = self.rankable_relevant(rows[start:start + chunk]).sum(1)
        return out

    def queryable(self, rows: np.ndarray) -> np.ndarray:
        """The ``rows`` with at least one rankable relevant record."""
        rows = np.asarray(rows, dtype=np.int64)
        return rows[self.num_relevant(rows) > 0]


@dataclass
class Task:
    """One fitting and the queries it answers."""

    protocol: str
    name: str
    fit: np.ndarray
    """Rows any training or fitting step may read (labels included)."""
    validation: np.ndarray
    """Held-out training-side rows, queried to choose settings (never test rows)."""
    queries: np.ndarray


def _positions(keys: np.ndarray, salt: str) -> np.ndarray:
    """Each row's key's position in a salted-hash order of the distinct keys (equal keys, equal
    positions): dealing positions round-robin gives balanced, seeded folds."""
    distinct = sorted({str(v) for v in keys},
                      key=lambda v: hashlib.sha256(f"{salt}:{v}".encode()).hexdigest())
    position = {v: i for i, v in enumerate(distinct)}
    return np.array([position[str(v)] for v in keys], dtype=np.int64)


def closed_tasks(cat: Catalogue, split: np.ndarray, labels: np.ndarray, seed: int = 0
                 ) -> list[Task]:
    """The processed split: fit on the training rows less a validation cut, query the test
    rows."""
    train = np.flatnonzero((split == "train") & cat.gallery)
    fit, validation = validation_split(train, labels, seed)
    test = np.flatnonzero((split == "test") & cat.gallery)
    return [Task("closed", "closed", fit, cat.queryable(validation), cat.queryable(test))]


def variants_tasks(cat: Catalogue, closed: Task) -> list[Task]:
    """The variants (non-gallery rows) queried with ``closed``'s fitting."""
    variants = np.flatnonzero(~cat.gallery)
    if not len(variants):
        return []
    return [Task("variants", "variants", closed.fit, closed.validation, cat.queryable(variants))]


def grouped_tasks(cat: Catalogue, protocol: str, keys: np.ndarray, folds: int = FOLDS,
                  seed: int = 0) -> list[Task]:
    """``folds`` tasks whose test rows are the catalogue rows of one fold of ``keys`` (units
    for ``loo``, family groups for ``open``; keys dealt round-robin in a seeded hash order);
    of the other keys, one in :data:`VALIDATION_SHARE` (the first, so at least one unless
    only one is left) is validation, the rest is fitted. Empty folds are skipped."""
    rows = np.flatnonzero(cat.gallery)
    fold = _positions(keys[rows], f"{protocol}:{seed}") % folds
    tasks = []
    for f in range(folds):
        test, side = rows[fold == f], rows[fold != f]
        held = _positions(keys[side], f"{protocol}:{seed}:{f}") % VALIDATION_SHARE == 0
        if held.all():  # one key left: fit on it, choose with no validation
            held[:] = False
        validation, fit = side[held], side[~held]
        if not len(test) or not len(fit):
            continue
        tasks.append(Task(protocol, f"{protocol} fold {f + 1}/{folds}", fit,
                          cat.queryable(validation), cat.queryable(test)))
    return tasks


def protocol_tasks(cat: Catalogue, protocols: Sequence[str], split: np.ndarray,
                   labels: np.ndarray, folds: int = FOLDS, seed: int = 0) -> list[Task]:
    """Every task of ``protocols`` (any of :data:`PROTOCOLS`)."""
    tasks: list[Task] = []
    closed = closed_tasks(cat, split, labels, seed)
    for protocol in protocols:
        if protocol == "closed":
            tasks += closed
        elif protocol == "variants":
            tasks += variants_tasks(cat, closed[0])
        elif protocol == "loo":
            tasks += grouped_tasks(cat, "loo", cat.units, folds, seed)
        elif protocol == "open":
            tasks += grouped_tasks(cat, "open", cat.groups, folds, seed)
    return tasks


def size_bucket(size: int) -> str:
    """The family-size slice of a query whose family has ``size`` catalogue records."""
    return next((name for name, top in SIZE_BUCKETS if size <= top), ">20")
