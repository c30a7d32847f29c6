"""torch-hub: the entry points of PyTorch Hub repos, on GitHub or in a local folder.

A repo is ``owner/name[:ref]`` on GitHub (listed with ``torch.hub.list``) or a local folder that
holds a ``hubconf.py``. Listing imports ``hubconf.py``, which runs the repo's code, so this source
is opt-in (``trust_remote_code``). One row per entry point; nothing is built here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.error import HTTPError, URLError

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError, SourceUnavailableError

_GITHUB = re.compile(r"^[\w.-]+/[\w.-]+(:[\w./-]+)?$")
_Entries = list[tuple[str, str | None]]


def iter_torch_hub(
    *, repos: Sequence[str] = (), trust_remote_code: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield one manifest row per entry point of each repo.

    Args:
        repos: ``owner/name[:ref]`` GitHub repos or local folders with a ``hubconf.py``.
        trust_remote_code: must be True: listing imports each repo's ``hubconf.py``.

    Raises:
        NarbuildError: without ``trust_remote_code``, without repos, or for a repo that is
            neither a folder nor ``owner/name[:ref]``.
        SourceUnavailableError: GitHub cannot be reached.
    """
    if not trust_remote_code:
        raise NarbuildError("listing torch-hub entry points imports each repo's hubconf.py, "
                            "which runs the repo's code",
                            "pass --trust-remote-code if you trust the repos given with --repo")
    if not repos:
        raise NarbuildError("the torch-hub source needs at least one repo",
                            "pass --repo owner/name[:ref] or --repo DIR (a folder with hubconf.py)")
    return (row for repo in repos for row in _repo_rows(repo))


def _repo_rows(repo: str) -> Iterator[dict[str, Any]]:
    """Rows of one repo; a hubconf.py that fails to import gives one error row."""
    folder = Path(repo).expanduser()
    if folder.is_dir():
        folder = folder.resolve()
        name, source, where = folder.name, "local", str(folder)
    elif _GITHUB.fullmatch(repo):
        name, source, where = repo.split(":")[0], "github", repo
    else:
        raise NarbuildError(f"--repo {repo!r} is neither an existing folder nor owner/name[:ref]",
                            "pass a folder that holds hubconf.py, or e.g. pytorch/vision:v0.20.0")
    try:
        entries = _local_entries(folder) if source == "local" else _github_entries(repo)
    except NarbuildError:
        raise
    except Exception as exc:  # noqa: BLE001 - the repo's code failed: an error row, go on
        yield manifest_row("torch-hub", name, {"repo": where, "source": source, "entry": None},
                           library="torch-hub", repo=name if source == "github" else where,
                           needs_remote_code=True,
                           error=f"listing entry points failed: {_one_line(exc)}")
        return
    for entry, doc in entries:
        yield manifest_row(
            "torch-hub", f"{name}/{entry}", {"repo": where, "source": source, "entry": entry},
            library="torch-hub", repo=name if source == "github" else where,
            needs_remote_code=True, metadata={"doc": doc, "hub_source": source},
        )


def _local_entries(folder: Path) -> _Entries:
    """Entry points of a local hubconf.py, by torch.hub's rule: public callables."""
    hubconf = folder / "hubconf.py"
    if not hubconf.is_file():
        raise NarbuildError(f"{folder} has no hubconf.py",
                            "pass the repo's root folder, the one that holds hubconf.py")
    module = _import_hubconf(hubconf)
    names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
    return [(n, _doc_line(getattr(module, n))) for n in sorted(names)]


def _import_hubconf(hubconf: Path) -> ModuleType:
    """Import hubconf.py as torch.hub does: its folder first on sys.path while it runs."""
    tag = hashlib.sha1(str(hubconf).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"narbuild_hubconf_{tag}", hubconf)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(hubconf.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(hubconf.parent))
    return module


def _github_entries(repo: str) -> _Entries:
    """Entry points of a GitHub repo via torch.hub (downloads the repo into torch's hub cache)."""
    import torch.hub

    try:
        names = torch.hub.list(repo, trust_repo=True, verbose=False)
        return [(n, _doc_line(torch.hub.help(repo, n, trust_repo=True))) for n in sorted(names)]
    except HTTPError:
        raise  # GitHub answered: missing repo or ref, an error row
    except URLError as exc:
        raise _github_unreachable(repo, exc) from exc
    except RuntimeError as exc:
        if "no internet connection" in str(exc):
            raise _github_unreachable(repo, exc) from exc
        raise


def _github_unreachable(repo: str, exc: BaseException) -> SourceUnavailableError:
    return SourceUnavailableError(
        f"GitHub cannot be reached to list the torch-hub repo {repo} ({_one_line(exc)})",
        "check the network, or clone the repo and pass its folder with --repo DIR")


def _doc_line(obj: Any) -> str | None:
    """The first line of a docstring (an object or the text itself), or None."""
    doc = obj if isinstance(obj, str) else inspect.getdoc(obj)
    lines = [line.strip() for line in (doc or "").splitlines() if line.strip()]
    return lines[0] if lines else None


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__
