"""The workspace: one folder that holds every stage's tables as Parquet.

A table is a folder of Parquet part files. Writers only ever *add* a part (written to a temporary
name, then renamed), so a crash or SIGKILL never leaves a half-written row behind; readers merge
the parts and keep the last row per key. :meth:`Table.compact` folds the parts into one file and
:meth:`Table.replace` swaps a folder's rows for new ones; both make the new file visible and
remove the old ones under an exclusive lock that every read holds shared, so a reader never
sees half a replace.

One process writes a workspace at a time: :meth:`Workspace.writer` holds an exclusive lock
(``.narbuild-lock``, released by the kernel when the process ends, SIGKILL included); a second
writer gets a one-line :class:`WorkspaceBusy` error naming the first, or waits for it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from narbuild import schemas
from narbuild.errors import WorkspaceError


class WorkspaceBusy(WorkspaceError):
    """Another process is writing the workspace."""

MARKER = "narbuild-workspace.json"
WRITER_LOCK = ".narbuild-lock"
TABLES_LOCK = ".narbuild-tables.lock"
DELEGATED_ENV = "NARBUILD_LOCK_DELEGATED"
"""Set by a driver that holds the writer lock for the processes it starts (Ray shards)."""
ENV_VAR = "NARBUILD_HOME"
DEFAULT_DIR = "narbuild-data"


def default_root() -> Path:
    """The workspace folder: ``$NARBUILD_HOME`` or ``./narbuild-data``."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


class Workspace:
    """A narbuild workspace folder.

    Args:
        root: the folder; defaults to :func:`default_root`.
        create: create the folder (and its marker) when missing. Without it a missing
            workspace is a :class:`WorkspaceError`.
    """

    def __init__(self, root: str | os.PathLike | None = None, create: bool = False) -> None:
        self.root = Path(root) if root is not None else default_root()
        self._check(create)

    def _check(self, create: bool) -> None:
        marker = self.root / MARKER
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(f"workspace {self.root} is a file, not a folder",
                                 "pass another --workdir")
        if marker.exists():
            try:
                json.loads(marker.read_text())
            except (OSError, ValueError) as exc:
                raise WorkspaceError(f"workspace marker {marker} is unreadable: {exc}",
                                     "restore it or pick another --workdir") from exc
            return
        if self.root.exists() and any(self.root.iterdir()):
            raise WorkspaceError(
                f"{self.root} is not a narbuild workspace (no {MARKER}, but it is not empty)",
                "pass an empty or new folder with --workdir / NARBUILD_HOME",
            )
        if not create:
            raise WorkspaceError(f"no narbuild workspace at {self.root}",
                                 "run `narbuild crawl` first or pass --workdir")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_text_atomic(marker, json.dumps({"format": "narbuild-workspace",
                                                   "schema_version": schemas.SCHEMA_VERSION}))
        except OSError as exc:
            raise WorkspaceError(f"cannot create workspace {self.root}: {exc.strerror}",
                                 "pick a writable --workdir") from exc

    def table(self, name: str) -> Table:
        """The table ``name`` (see :data:`narbuild.schemas.TABLES`)."""
        schema, key = schemas.TABLES[name]
        return Table(self.root / name, name, schema, key)

    @contextmanager
    def writer(self, command: str, wait: bool = False) -> Iterator[None]:
        """Hold the workspace's writer lock for ``command`` (re-entrant within a process).

        Raises :class:`WorkspaceBusy` when another process holds it, unless ``wait``."""
        key = os.path.realpath(self.root)
        if os.environ.get(DELEGATED_ENV) == key:
            yield  # the driver that started this process holds the lock for it
            return
        if key in _HELD:
            _HELD[key][1] += 1
            try:
                yield
            finally:
                _HELD[key][1] -= 1
            return
        fd = _acquire(self.root / WRITER_LOCK, command, wait)
        _HELD[key] = [fd, 1]
        try:
            yield
        finally:
            del _HELD[key]
            os.close(fd)  # closing releases the lock

    def state_path(self, name: str) -> Path:
        """A JSON file for a stage's resumable state (e.g. a Hub listing cursor)."""
        (self.root / "state").mkdir(exist_ok=True)
        return self.root / "state" / f"{name}.json"

    def record_command(self, stage: str, command: str, replace: bool = False) -> None:
        """Remember a command line that wrote this stage's table (once, in order), so the
        dataset card can print the commands that reproduce the build. ``replace``: the command
        rewrote the whole table, so it is the stage's only one."""
        path = self.state_path("commands")
        state = load_state(path)
        if replace:
            save_state(path, {**state, stage: [command]})
        elif command not in state.get(stage, []):
            save_state(path, {**state, stage: [*state.get(stage, []), command]})

    def commands(self) -> dict[str, list[str]]:
        """Every recorded command line, per stage (see :meth:`record_command`)."""
        return load_state(self.state_path("commands"))

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"


class Table:
    """A keyed Parquet table stored as a folder of append-only part files."""

    def __init__(self, path: Path, name: str, schema: pa.Schema, key: str) -> None:
        self.path, self.name, self.schema, self.key = path, name, schema, key

    def parts(self, subdir: str = "") -> list[Path]:
        """Part files (of one sub-folder, or all) in write order: by file name, which starts
        with the write stamp, whatever sub-folder (shard) a part is in."""
        folder = self.path / subdir if subdir else self.path
        if not folder.is_dir():
            return []
        return sorted(folder.rglob("*.parquet"), key=lambda p: (p.name, str(p)))

    def exists(self) -> bool:
        return bool(self.parts())

    def append(self, rows: Iterable[Mapping[str, Any]] | pa.Table, subdir: str = "") -> Path | None:
        """Add rows as a new part file, atomically. Returns the file, or None for no rows."""
        table = rows if isinstance(rows, pa.Table) else self.to_arrow(rows)
        if table.num_rows == 0:
            return None
        folder = self.path / subdir if subdir else self.path
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"part-{sortable_stamp()}.parquet"
        write_parquet_atomic(table, target)
        return target

    def to_arrow(self, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
        """Rows (dicts) as an Arrow table of this table's schema; missing columns are null."""
        rows = list(rows)
        columns = {f.name: [r.get(f.name) for r in rows] for f in self.schema}
        return pa.Table.from_pydict(columns, schema=self.schema)

    def read(self, columns: list[str] | None = None, subdir: str = "") -> pa.Table:
        """All rows (of one sub-folder, or all), last write wins per key; only ``columns`` are
        read from disk. Raises WorkspaceError for foreign or corrupt parts."""
        parts = self.parts(subdir)
        if not parts:
            raise WorkspaceError(f"the workspace has no {self.name} table yet",
                                 f"run the stage that writes it first ({_WRITER[self.name]})")
        wanted = None if columns is None else list(dict.fromkeys([*columns, self.key]))
        with _tables_lock(self.path.parent, exclusive=False):
            tables = [self._read_part(p, wanted) for p in self.parts(subdir)]
        if not tables:
            return self.read(columns, subdir)  # emptied since listed: the one-line error
        merged = pa.concat_tables(tables)
        merged = _last_per_key(merged, self.key)
        return merged.select(columns) if columns else merged

    def read_rows(self) -> list[dict[str, Any]]:
        return self.read().to_pylist() if self.exists() else []

    def keys(self) -> set[str]:
        if not self.exists():
            return set()
        return set(self.read([self.key]).column(self.key).to_pylist())

    def upsert(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace rows by key, then compact into one file."""
        self.append(rows)
        self.compact()

    def compact(self, subdir: str = "") -> None:
        """Fold the parts (of one sub-folder, or all) into one file; the old parts are removed
        only after the new file is written."""
        parts = self.parts(subdir)
        if len(parts) <= 1:
            return
        folder = self.path / subdir if subdir else self.path
        merged = _last_per_key(pa.concat_tables([self._read_part(p) for p in parts]), self.key)
        self._swap(folder, merged, parts, name=parts[-1].name)  # keeps the newest write stamp
        for sub in sorted(folder.rglob("*"), reverse=True):
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()

    def replace(self, rows: pa.Table, subdir: str = "") -> None:
        """Make ``rows`` the only rows of the table (or of one sub-folder)."""
        folder = self.path / subdir if subdir else self.path
        folder.mkdir(parents=True, exist_ok=True)
        self._swap(folder, rows, sorted(folder.glob("*.parquet")))

    def replace_files(self, files: list[Path], subdir: str = "") -> None:
        """Make ``files`` (finished part files of this table, written beside the workspace on
        the same file system, named in write order) the table's only parts, in one step under
        the exclusive tables lock."""
        folder = self.path / subdir if subdir else self.path
        folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            self._read_part(path, [self.key])  # ours, readable, of this schema
        old = sorted(folder.glob("*.parquet"))
        with _tables_lock(self.path.parent, exclusive=True):
            for path in files:
                os.replace(path, folder / path.name)
            for p in old:
                p.unlink(missing_ok=True)

    def _swap(self, folder: Path, table: pa.Table, old: list[Path], name: str | None = None,
              ) -> None:
        """Write ``table`` as a new part (named ``name``, else with a new stamp), then, under
        the exclusive tables lock, make it visible and remove ``old``: a reader sees either the
        old parts or the new one."""
        target = folder / (name or f"part-{sortable_stamp()}.parquet")
        tmp = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
        try:
            _write_synced(table, tmp)
            with _tables_lock(self.path.parent, exclusive=True):
                os.replace(tmp, target)
                for p in old:
                    if p != target:
                        p.unlink(missing_ok=True)
        finally:
            tmp.unlink(missing_ok=True)

    def _read_part(self, path: Path, columns: list[str] | None = None) -> pa.Table:
        try:
            meta = pq.read_schema(path).metadata or {}
        except (pa.ArrowException, OSError) as exc:
            raise self._unreadable(path, exc) from exc
        if meta.get(b"narbuild.table", b"").decode() != self.name:
            raise WorkspaceError(
                f"{path} is not a narbuild {self.name} table (foreign Parquet file)",
                "move it out of the workspace",
            )
        version = meta.get(b"narbuild.schema_version", b"").decode()
        if version != schemas.SCHEMA_VERSION:
            raise WorkspaceError(
                f"{path} has schema version {version}, this narbuild reads "
                f"{schemas.SCHEMA_VERSION}",
                f"re-run {_WRITER[self.name]} into a new --workdir",
            )
        names = columns or self.schema.names
        try:
            table = pq.ParquetFile(path).read(columns=names)  # no pyarrow.dataset import
        except (pa.ArrowException, OSError) as exc:
            if "FieldRef" in str(exc):  # a column is missing
                raise self._mismatch(path, exc) from exc
            raise self._unreadable(path, exc) from exc
        try:
            schema = pa.schema([self.schema.field(n) for n in names], self.schema.metadata)
            return table.select(names).cast(schema)
        except (KeyError, pa.ArrowException) as exc:
            raise self._mismatch(path, exc) from exc

    def _unreadable(self, path: Path, exc: Exception) -> WorkspaceError:
        return WorkspaceError(f"{path} is not a readable Parquet file "
                              f"({str(exc).splitlines()[0]})",
                              f"delete that file and re-run the stage to rebuild it "
                              f"({_WRITER[self.name]}); other files are untouched")

    def _mismatch(self, path: Path, exc: Exception) -> WorkspaceError:
        return WorkspaceError(f"{path} does not match the {self.name} schema: {exc}",
                              f"re-run {_WRITER[self.name]} into a new --workdir")


_HELD: dict[str, list[int]] = {}
"""Writer locks this process holds: workspace path -> [file descriptor, depth]."""


def _acquire(path: Path, command: str, wait: bool) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise WorkspaceError(f"cannot lock the workspace {path.parent}: {exc.strerror}",
                             "pick a writable --workdir") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise WorkspaceBusy(f"the workspace {path.parent} is being written by {holder}",
                            "wait for it to finish, or pass --wait to queue behind it") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command,
                              "since": dt.datetime.now().isoformat(timespec="seconds")}).encode(),
              0)
    return fd


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"`narbuild {info['command']}` (pid {info['pid']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another narbuild process"


@contextmanager
def _tables_lock(root: Path, exclusive: bool) -> Iterator[None]:
    """Shared for reads, exclusive while parts are swapped; no lock in a read-only workspace."""
    try:
        fd = os.open(root / TABLES_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError:  # a file system without locks (some network mounts): go on unlocked
            pass
        yield
    finally:
        os.close(fd)


_WRITER = {
    "manifest": "`narbuild crawl`",
    "graphs": "`narbuild trace`",
    "processed": "`narbuild preprocess`",
    "nas": "`narbuild gen-nas`",
    "embeddings": "`narbuild embed`",
    "nas_io": "`narbuild nas-io`",
}


def _last_per_key(table: pa.Table, key: str) -> pa.Table:
    """Keep the last row written for each key (rows stay in write order)."""
    last: dict[Any, int] = {}
    for i, k in enumerate(table.column(key).to_pylist()):
        last[k] = i
    if len(last) == table.num_rows:
        return table
    return table.take(sorted(last.values()))


def write_parquet_atomic(table: pa.Table, target: Path) -> None:
    """Write ``table`` to ``target`` via a temporary file and a rename (never a partial file)."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write_synced(table, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_synced(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Persist a stage's resumable state atomically."""
    write_text_atomic(path, json.dumps(state, indent=1, sort_keys=True))


def load_state(path: Path) -> dict[str, Any]:
    """A stage's saved state, or {} when there is none."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise WorkspaceError(f"state file {path} is corrupt: {exc}",
                             "delete it to start that stage's listing afresh") from exc


_counter = 0


def sortable_stamp() -> str:
    """A file-name stamp that sorts by write order within and across processes."""
    global _counter
    _counter += 1
    return f"{time.time_ns():020d}-{os.getpid():07d}-{_counter:06d}"
