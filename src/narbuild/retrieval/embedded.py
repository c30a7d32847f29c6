"""The vectors a learned method ranks with, and the encoder that embeds a query.

The records' vectors are the workspace's embeddings of the method (``narbuild embed``). A
workspace without them (searched right after ``preprocess``) is embedded at search time by the
method's bundled checkpoint, or the one given, and the vectors are cached under
``<workspace>/cache/search`` like the WL indexes. A query that is not one of the records is
embedded by the encoder that made the vectors; wl-metric's map is kept in the cache as numpy
(:class:`ColourMap`), so its queries embed with no torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from narbuild.encoder.bundled import BUNDLED, bundled_checkpoint
from narbuild.encoder.wl import presence_rows, record_counts
from narbuild.errors import NarbuildError
from narbuild.retrieval.index import VectorIndex
from narbuild.retrieval.wl_index import save_cached, search_cache
from narbuild.workspace import Workspace

Progress = Callable[[str], None] | None


def stored_embeddings(ws: Workspace, name: str, method: str) -> tuple[VectorIndex, str] | None:
    """The dataset's ``method`` embeddings as an index, and the encoder that made them; None
    when the workspace has none."""
    table = ws.table("embeddings")
    if not table.exists():
        return None
    # each dataset's vectors are in its own folder; a workspace embedded before that holds
    # them all in one, filtered here
    rows = table.read(["record_id", "dataset", "method", "encoder_id", "vector"],
                      subdir=name if table.parts(name) else "")
    rows = rows.filter(pc.and_(pc.equal(rows["dataset"], name), pc.equal(rows["method"], method)))
    if not rows.num_rows:
        return None
    encoders = set(rows["encoder_id"].to_pylist())
    if len(encoders) > 1:
        raise NarbuildError(f"the {name} embeddings come from {len(encoders)} encoders",
                            f"re-run `narbuild embed --dataset {name}` to embed them all again")
    vectors = rows["vector"].combine_chunks()
    matrix = vectors.flatten().to_numpy(zero_copy_only=False).reshape(len(vectors), -1)
    return VectorIndex(rows["record_id"].to_pylist(), matrix), encoders.pop()


def checkpoint_embeddings(ws: Workspace, name: str, method: str, checkpoint: str | Path | None,
                          build: bool, on_progress: Progress = None
                          ) -> tuple[VectorIndex, str] | None:
    """The dataset's processed records embedded by ``checkpoint`` (default: ``method``'s bundled
    one), from the cache or, with ``build``, embedded now and cached; None when not cached and
    not ``build``. An error says what to run when there is no such checkpoint."""
    path = Path(checkpoint) if checkpoint else bundled_checkpoint(method, name)
    if checkpoint and not path.is_file():
        raise NarbuildError(f"no checkpoint at {path}",
                            "pass a file written by `narbuild embed --train`, or omit "
                            "--checkpoint to use the bundled encoder")
    if path is None:
        raise NarbuildError(f"the workspace has no {method} embeddings of the {name} set",
                            f"train and embed them (`narbuild embed --train --dataset {name} "
                            f"--method {method}`), pass --checkpoint, or search with a bundled "
                            f"encoder: {', '.join(BUNDLED)}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    cache = search_cache(ws, f"embedded-{method}", name, digest)
    found = _load_vectors(cache)
    if found is not None or not build:
        return found
    from narbuild.encoder.checkpoint import encoder_id, load_checkpoint
    from narbuild.encoder.data import Inputs, load_records
    from narbuild.encoder.train import resolve_device, vectors_of

    model, meta = load_checkpoint(path)
    made_by = encoder_id(meta, bundled=not checkpoint)
    records = load_records(ws, name)
    if on_progress:
        on_progress(f"embedding the {len(records):,} {name} records with {made_by} (once; "
                    "cached in the workspace; `narbuild embed` stores them)")
    vectors = vectors_of(meta["method"], model, Inputs(records), resolve_device("cpu"))
    index = VectorIndex(records.record_ids, vectors)
    save_cached(cache, lambda p: np.savez(p, ids=np.array(index.ids), vectors=index.exact,
                                          encoder_id=made_by))
    return index, made_by


def _load_vectors(path: Path) -> tuple[VectorIndex, str] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return VectorIndex(z["ids"].tolist(), z["vectors"]), str(z["encoder_id"])
    except (OSError, ValueError, KeyError, NarbuildError):
        return None


@dataclass
class ColourMap:
    """A wl-metric encoder in numpy (:class:`narbuild.encoder.wlmetric.WLMetric`): the training
    colours (sorted uint64), their idf, the learned map (float16 rows) and the WL rounds."""

    colours: np.ndarray
    idf: np.ndarray
    proj: np.ndarray
    rounds: int

    def embed(self, record: dict[str, Any]) -> np.ndarray:
        """The unit vector of a processed record."""
        row = presence_rows(self.colours, self.idf, *record_counts(record, self.rounds))
        vector = row.data.astype(np.float32) @ self.proj[row.indices].astype(np.float32)
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def save(self, path: Path) -> None:
        np.savez(path, colours=self.colours, idf=self.idf, proj=self.proj, rounds=self.rounds)

    @classmethod
    def load(cls, path: Path) -> ColourMap | None:
        """The cached map, or None when the file is missing or torn."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["colours"], z["idf"], z["proj"], int(z["rounds"]))
        except (OSError, ValueError, KeyError):
            return None


class QueryEncoder:
    """Embeds query records as the encoder labelled ``encoder_id`` did the dataset's records:
    with the checkpoint given, or the one :func:`find_checkpoint` finds. A wl-metric map is
    cached as a :class:`ColourMap` on first use, and read from there without torch."""

    def __init__(self, ws: Workspace, dataset: str, encoder_id: str,
                 checkpoint: str | Path | None) -> None:
        self.ws, self.dataset, self.encoder_id, self.checkpoint = ws, dataset, encoder_id, checkpoint
        digest = encoder_id.partition("@")[2].split(" ")[0]
        self._map_path = ws.root / "cache" / "search" / f"colour-map-{dataset}-{digest}.npz"
        self._encoder: Any = None

    def embed(self, record: dict[str, Any]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = ColourMap.load(self._map_path) or self._load()
        if isinstance(self._encoder, ColourMap):
            return self._encoder.embed(record)
        from narbuild.encoder.data import Inputs, records_from_rows
        from narbuild.encoder.train import resolve_device, vectors_of

        model, meta = self._encoder
        return vectors_of(meta["method"], model, Inputs(records_from_rows([record])),
                          resolve_device("cpu"))[0]

    def _load(self) -> Any:
        from narbuild.encoder.checkpoint import encoder_id, find_checkpoint, load_checkpoint

        path = (Path(self.checkpoint) if self.checkpoint
                else find_checkpoint(self.encoder_id, self.dataset, self.ws.root / "checkpoints"))
        model, meta = load_checkpoint(path)
        made = encoder_id(meta)
        if not self.encoder_id.startswith(made):
            raise NarbuildError(f"{path} is encoder {made}, but the "
                                f"{self.dataset} embeddings come from {self.encoder_id}",
                                "pass the checkpoint that made them, or re-run `narbuild embed`")
        if meta["method"] != "wlm":
            return model, meta
        found = ColourMap(model.colours.numpy().view(np.uint64), model.idf.numpy(),
                          model.proj.detach().numpy().astype(np.float16), model.rounds)
        save_cached(self._map_path, found.save)
        return found
