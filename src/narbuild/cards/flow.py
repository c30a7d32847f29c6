"""``narbuild push`` as one call: stage the workspace, check the folder loads, publish it.

The CLI and a script run the same sequence::

    from narbuild.cards.flow import release
    release(Workspace("narbuild-data"), local_dir="release", check=True)   # stage and check
    release(Workspace("narbuild-data"), repo_id="my-org/nar-graphs")       # stage and publish
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from narbuild.cards.check import load_check
from narbuild.cards.publish import check_repo_id, push_release
from narbuild.cards.release import stage_release
from narbuild.errors import NarbuildError
from narbuild.workspace import Workspace


def release(workspace: Workspace | str | Path | None, *, local_dir: str | Path | None = None, repo_id: str | None = None,
            check: bool = False, token: str | None = None, private: bool = False,
            branch: str | None = None, dry_run: bool = False, space: str | None = None,
            space_requirement: str | None = None, **stage_options: Any) -> dict[str, Any]:
    """Stage the workspace (a :class:`Workspace`, its folder, or None for the default one) into ``local_dir`` (a temporary folder when only ``repo_id`` is given),
    load-check it when ``check``, and push it to ``repo_id`` when given. The repo id is
    validated before any work, even before the workspace is opened. Returns the staging summary with ``load_check`` and ``push``
    added; ``stage_options`` go to :func:`~narbuild.cards.release.stage_release`."""
    if not local_dir and not repo_id:
        raise NarbuildError("`narbuild push` needs --local-dir DIR (stage only) or --repo-id "
                            "ORG/NAME (publish)", "see `narbuild push --help`")
    if repo_id:
        check_repo_id(repo_id)
    if space:
        check_repo_id(space)
        if not repo_id:
            raise NarbuildError("--space publishes the search app over a dataset: it needs "
                                "--repo-id ORG/NAME, the dataset it reads",
                                "pass both --repo-id and --space")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    with _folder(local_dir) as folder:
        summary = stage_release(ws, folder, repo_id=repo_id, **stage_options).as_dict()
        if check:
            summary["load_check"] = load_check(folder, summary["configs"])
        if repo_id:
            summary["push"] = push_release(folder, repo_id, token=token, private=private,
                                           branch=branch, dry_run=dry_run).as_dict()
    if space:
        summary["space"] = _push_space(space, repo_id, space_requirement, token=token,
                                       private=private, branch=branch, dry_run=dry_run)
    return summary


def _push_space(space: str, dataset: str, requirement: str | None,
                **push: Any) -> dict[str, Any]:
    from narbuild.cards.publish import SPACE
    from narbuild.serve.space import stage_space

    with tempfile.TemporaryDirectory(prefix="narbuild-space-") as tmp:
        stage_space(tmp, dataset, requirement)
        return push_release(tmp, space, kind=SPACE, **push).as_dict()


@contextmanager
def _folder(local_dir: str | Path | None) -> Iterator[Path]:
    if local_dir:
        yield Path(local_dir)
        return
    with tempfile.TemporaryDirectory(prefix="narbuild-release-") as tmp:
        yield Path(tmp) / "release"
