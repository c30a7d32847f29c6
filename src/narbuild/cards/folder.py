"""A release folder is narbuild's own: it is written, checked and swapped so that nothing narbuild
did not write is ever deleted.

* **Ownership.** Every release folder carries :data:`MARKER`, which lists each file narbuild
  wrote with its sha256. A target folder is replaced only when it is new, empty, or holds
  exactly the files its marker lists, unchanged. Anything else (a user's file, an edited card,
  a folder without a marker) is refused with one line naming the first such file.
* **Placement.** A target that is, contains or lies inside the workspace, a symbolic link, or
  read-only is refused.
* **Swap.** The new release is staged beside the target (``.NAME.staging-*``), then a journal
  (``.NAME.swap.json``) is written and two renames swap it in. A run killed at any point is
  repaired by the next one: a swap half done is completed (or rolled back when the new release
  never got complete), staging and old copies narbuild left are removed, and the command says
  which it did.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from narbuild.errors import NarbuildError
from narbuild.workspace import write_text_atomic

MARKER = ".narbuild-release.json"
FORMAT = "narbuild-release"
_HINT = "pass a new or empty folder with --local-dir"


def file_digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` but the marker: relative path -> sha256."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel != MARKER and (path.is_file() or path.is_symlink()):
            out[rel] = _sha256(path) if path.is_file() and not path.is_symlink() else "link"
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_marker(folder: Path, complete: bool) -> None:
    """Mark ``folder`` as narbuild's; a complete marker lists its files and their hashes."""
    body = {"format": FORMAT, "version": 1, "complete": complete,
            "files": file_digests(folder) if complete else {}}
    write_text_atomic(folder / MARKER, json.dumps(body, indent=1, sort_keys=True))


def read_marker(folder: Path) -> dict | None:
    """The folder's marker, or None where it has none (or one that is not narbuild's)."""
    try:
        body = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) and body.get("format") == FORMAT else None


def check_target(out_dir: Path, workspace_root: Path) -> None:
    """Refuse a target that narbuild may not replace (see the module docstring)."""
    if out_dir.is_symlink():
        raise NarbuildError(f"{out_dir} is a symbolic link (to {os.readlink(out_dir)})",
                            "pass the real folder, or a new one, with --local-dir")
    target, ws = Path(os.path.realpath(out_dir)), Path(os.path.realpath(workspace_root))
    if target == ws or ws.is_relative_to(target):
        raise NarbuildError(f"{out_dir} holds the workspace {workspace_root}; a release there "
                            "would replace it", "pass a folder outside the workspace")
    if target.is_relative_to(ws):
        raise NarbuildError(f"{out_dir} lies inside the workspace {workspace_root}",
                            "pass a folder outside the workspace")
    if out_dir.exists() and not out_dir.is_dir():
        raise NarbuildError(f"{out_dir} is a file, not a folder", "pass another --local-dir")
    parent = _existing_parent(target)
    for folder in ([target] if out_dir.exists() else []) + [parent]:
        if _read_only(folder):
            raise NarbuildError(f"{folder} is read-only", "make it writable or pass another "
                                "--local-dir; nothing was changed")
    if out_dir.is_dir():
        foreign = foreign_files(out_dir)
        if foreign:
            raise NarbuildError(f"{out_dir} is not empty and is not a narbuild release as "
                                f"narbuild wrote it ({foreign})", _HINT)


def foreign_files(folder: Path) -> str | None:
    """Why ``folder`` holds something narbuild did not write, or None when it holds nothing
    else (empty, or exactly the files its marker lists, unchanged)."""
    entries = [p.name for p in folder.iterdir()]
    if not entries:
        return None
    marker = read_marker(folder)
    if marker is None:
        return f"it holds {min(entries)} and no {MARKER}"
    listed = marker.get("files") if marker.get("complete") else {}
    for rel, digest in file_digests(folder).items():
        if rel not in listed:
            return f"{rel} was not written by narbuild"
        if listed[rel] != digest:
            return f"{rel} changed since narbuild wrote it"
    return None


def _existing_parent(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def _read_only(path: Path) -> bool:
    """No write permission, or no write bit at all (root may write anyway; we do not)."""
    mode = path.stat().st_mode
    return not os.access(path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


# ---------------------------------------------------------------------- staging and the swap


def _siblings(out_dir: Path, kind: str) -> Iterator[Path]:
    yield from out_dir.parent.glob(f".{out_dir.name}.{kind}-*")


def _journal(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.swap.json"


def recover(out_dir: Path) -> str | None:
    """Repair what an interrupted run left beside ``out_dir``; says what it did, or None."""
    said = []
    journal = _journal(out_dir)
    if journal.is_file():
        said.append(_finish_swap(out_dir, journal))
    removed = 0
    for kind in ("staging", "old"):
        for path in _siblings(out_dir, kind):
            if path.is_dir() and not path.is_symlink() and (
                    read_marker(path) is not None or not any(path.iterdir())):
                shutil.rmtree(path)
                removed += 1
    if removed:
        said.append(f"removed {removed} leftover staging folder(s)")
    return "; ".join(said) or None


def _finish_swap(out_dir: Path, journal: Path) -> str:
    try:
        plan = json.loads(journal.read_text())
        new, old = out_dir.parent / plan["new"], out_dir.parent / plan["old"]
    except (OSError, ValueError, KeyError, TypeError):
        journal.unlink()
        return "ignored an unreadable swap journal"
    if new.is_dir() and out_dir.exists() and not old.exists():  # the swap never started
        verdict = "rolled back an interrupted release swap (the earlier release stays)"
    elif new.is_dir():  # out_dir moved aside, the new release not yet in place
        new.rename(out_dir)
        verdict = "completed an interrupted release swap"
    elif not out_dir.exists() and old.is_dir():
        old.rename(out_dir)
        verdict = "rolled back an interrupted release swap (the earlier release is back)"
    else:
        verdict = "completed an interrupted release swap"
    journal.unlink()
    return verdict


@contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A marked staging folder beside ``out_dir``; removed on failure."""
    tmp = out_dir.parent / f".{out_dir.name}.staging-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        write_marker(tmp, complete=False)
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def swap_in(new: Path, out_dir: Path) -> None:
    """Put the complete release ``new`` at ``out_dir``; the earlier one is removed afterwards.
    A journal makes each step repairable by :func:`recover`."""
    write_marker(new, complete=True)
    old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
    journal = _journal(out_dir)
    write_text_atomic(journal, json.dumps({"new": new.name, "old": old.name}))
    had_old = out_dir.exists()
    if had_old:
        out_dir.rename(old)
    try:
        new.rename(out_dir)
    except OSError:
        if had_old:
            old.rename(out_dir)
        journal.unlink(missing_ok=True)
        raise
    journal.unlink()
    if had_old:
        shutil.rmtree(old, ignore_errors=True)
