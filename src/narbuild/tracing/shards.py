"""Shards of a catalog trace: which shard a manifest row belongs to, and whether a shard is done.

Light on purpose (no torch): the Ray driver and its tasks use it too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from narbuild.errors import NarbuildError
from narbuild.workspace import Table, Workspace

DONE_MARKER = "_SUCCESS"


@dataclass
class TraceCounts:
    """What a trace did to the catalog's rows (a run, a shard, or a Ray run's shards)."""

    traced: int = 0
    cached: int = 0
    skipped: int = 0
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def add(self, other: Mapping[str, Any]) -> None:
        """Add another run's row counts (its :meth:`as_dict`, or a shard's JSON summary)."""
        for key in ("traced", "cached", "skipped", "ok", "errors"):
            setattr(self, key, getattr(self, key) + int(other.get(key, 0)))
KEYS = ["model_id", "status", "config_hash"]
_SHARD_DIR = re.compile(r"shard-\d{5}-of-(\d{5})")


def shard_of(key: str, num_shards: int) -> int:
    """A stable shard number for a key (the same on every machine and run). Rows are sharded by
    config hash, so identical configs land in one shard and are traced once."""
    digest = hashlib.sha1(key.encode()).digest()
    return int.from_bytes(digest[:4], "big") % num_shards


def shard_dir(shard: int, num_shards: int) -> str:
    """A shard's folder in the graphs table (and the name of its log)."""
    return f"shard-{shard:05d}-of-{num_shards:05d}"


def row_shard(row: dict[str, Any], num_shards: int) -> int:
    """The shard of a manifest row (by config hash; the model id for a row without one)."""
    return shard_of(row["config_hash"] or row["model_id"], num_shards)


def manifest_digest(workspace: Workspace, shard: int, num_shards: int) -> tuple[int, str]:
    """How many ok manifest rows a shard covers, and a digest of their ids and config hashes."""
    mine = sorted((r["model_id"], r["config_hash"] or "")
                  for r in workspace.table("manifest").read(KEYS).to_pylist()
                  if r["status"] == "ok" and row_shard(r, num_shards) == shard)
    return len(mine), hashlib.sha256(json.dumps(mine).encode()).hexdigest()[:16]


def package_version(name: str) -> str | None:
    """An installed package's version as its metadata says (``torch`` without importing it)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def read_done(workspace: Workspace, shard: int, num_shards: int) -> dict[str, Any] | None:
    """A shard's ``_SUCCESS`` record, or None when the shard is not finished."""
    path = workspace.table("graphs").path / shard_dir(shard, num_shards) / DONE_MARKER
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return done if isinstance(done, dict) else None


def pinned_shard_count(table: Table) -> int | None:
    """The shard count the workspace's graphs are traced in, if any."""
    counts = {int(m[1]) for p in (table.path.iterdir() if table.path.is_dir() else [])
              if (m := _SHARD_DIR.fullmatch(p.name))}
    return max(counts) if counts else None


def check_shard_count(table: Table, num_shards: int) -> None:
    """A workspace's graphs keep one shard count: another would trace every model again under
    another split."""
    pinned = pinned_shard_count(table)
    if pinned is not None and pinned != num_shards:
        raise NarbuildError(f"this workspace's graphs are traced in {pinned} shards "
                            f"(shard-*-of-{pinned:05d}), not {num_shards}",
                            f"pass --num-shards {pinned}, or trace into a new --workdir")
