"""What every crawl source yields: manifest rows, built the same way."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

CHECKPOINT: dict[str, Any] = {"model_id": "<checkpoint>"}
"""Yielded by a source between rows: the crawl writes the rows so far before the source goes
on (the Hub listing saves its resume cursor only once its page's rows are on disk)."""


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal content gives equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(obj: Any) -> str:
    """sha256 of :func:`canonical_json` (hex, 16 characters are plenty as a key)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def manifest_row(
    source: str,
    name: str,
    config: dict[str, Any],
    *,
    id_prefix: str | None = None,
    task: str | None = None,
    library: str | None = None,
    module: str | None = None,
    model_type: str | None = None,
    architectures: list[str] | None = None,
    repo: str | None = None,
    revision: str | None = None,
    metadata: dict[str, Any] | None = None,
    needs_remote_code: bool = False,
    error: str | None = None,
) -> dict[str, Any]:
    """One manifest row; ``model_id`` is ``<id_prefix or source>:<name>``."""
    return {
        "model_id": f"{id_prefix or source}:{name}",
        "source": source,
        "name": name,
        "repo": repo,
        "revision": revision,
        "task": task,
        "library": library,
        "module": module,
        "model_type": model_type,
        "architectures": architectures,
        "config": canonical_json(config),
        "config_hash": content_hash(config),
        "metadata": canonical_json(metadata or {}),
        "needs_remote_code": needs_remote_code,
        "status": "error" if error else "ok",
        "error": error,
        "crawled_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
    }
