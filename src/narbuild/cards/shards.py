"""Parquet shards for the Hub: bounded size, content-defined chunking, a page index.

Content-defined chunking (pyarrow >= 21) cuts data pages where the content says, not at fixed
offsets, so a re-release that changes a few rows re-uploads a few pages (the Hub's Xet storage
deduplicates the rest). The page index lets readers skip pages by column statistics.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from narbuild.errors import NarbuildError

MAX_SHARD_BYTES = 500 * 1000 * 1000
"""The Hub's recommended upper bound for one Parquet file of a dataset."""

PARQUET_OPTIONS = {"compression": "zstd", "use_content_defined_chunking": True,
                   "write_page_index": True, "write_statistics": True}
_ROW_GROUP_BYTES = 64 * 1024 * 1024  # uncompressed bytes per row group, at most
_MAX_GROUP_ROWS = 100_000


def write_shards(table: pa.Table, folder: Path, stem: str,
                 max_bytes: int = MAX_SHARD_BYTES) -> list[Path]:
    """Write ``table`` as ``<stem>-0000i-of-0000N.parquet`` files of at most ``max_bytes`` each.

    Row groups are written one by one; a shard is closed before the next group could push it
    past the target (the group's compressed size is estimated from the groups written so far).
    Should a shard still come out too large, the table is written again with a lower target.
    Rows keep their order, so the same table always gives the same bytes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = max_bytes
    for _ in range(4):
        paths = _write(table, folder, stem, target)
        if all(p.stat().st_size <= max_bytes for p in paths):
            return _rename(paths, stem)
        for p in paths:
            p.unlink()
        target = int(target * 0.7)
    raise NarbuildError(f"cannot write {folder.name}/{stem} in Parquet shards of at most "
                        f"{max_bytes:,} bytes (a single row is too large)",
                        "raise --max-shard-mb")


def _write(table: pa.Table, folder: Path, stem: str, target: int) -> list[Path]:
    budget = max(1, min(_ROW_GROUP_BYTES, target // 4))
    written: list[Path] = []
    shard: _Shard | None = None
    ratios: list[float] = []  # compressed / uncompressed size of each group written
    for group in row_groups(table, budget):
        ratio = 1.25 * max(ratios) if ratios else 1.0
        if shard is not None and not shard.fits(group, ratio, target):
            shard.close()
            shard = None
        if shard is None:
            shard = _Shard(folder / f".{stem}-{len(written):05d}.tmp", table.schema)
            written.append(shard.path)
        ratios.append(shard.write(group))
    if shard is not None:
        shard.close()
    return written


def row_groups(table: pa.Table, budget: int) -> Iterator[pa.Table]:
    """Consecutive slices of ``table`` of at most ``budget`` uncompressed bytes (or one row)."""
    avg = max(1, table.nbytes // max(1, table.num_rows))
    step = max(1, min(_MAX_GROUP_ROWS, budget // avg))
    start = 0
    while start < table.num_rows:
        n = min(step, table.num_rows - start)
        part = table.slice(start, n)
        while n > 1 and part.nbytes > budget:
            n //= 2
            part = table.slice(start, n)
        yield part
        start += n


class _Shard:
    """One Parquet file being written, with its size so far."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = pq.ParquetWriter(self.sink, schema, **PARQUET_OPTIONS)
        self.groups = 0
        self.columns = len(schema)

    def fits(self, group: pa.Table, ratio: float, max_bytes: int) -> bool:
        """Whether ``group`` and the footer (metadata and page index) still fit."""
        footer = min(64 * 1024, max_bytes // 16) + (self.groups + 1) * self.columns * 256
        return self.sink.tell() + group.nbytes * ratio + footer <= max_bytes

    def write(self, group: pa.Table) -> float:
        """Write one row group; returns its compressed / uncompressed size ratio."""
        before = self.sink.tell()
        self.writer.write_table(group, row_group_size=max(1, group.num_rows))
        self.groups += 1
        return (self.sink.tell() - before) / max(1, group.nbytes)

    def close(self) -> None:
        self.writer.close()
        self.sink.close()


def _rename(paths: list[Path], stem: str) -> list[Path]:
    final = []
    for i, path in enumerate(paths):
        target = path.with_name(f"{stem}-{i:05d}-of-{len(paths):05d}.parquet")
        os.replace(path, target)
        final.append(target)
    return final
