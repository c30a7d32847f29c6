"""Stage 7, ``narbuild push``: the release folder, its dataset card and figures, and publishing.

::

    from narbuild import Workspace
    from narbuild.cards import push_release, stage_release

    stage_release(Workspace("narbuild-data"), "release")      # data/, figures/, README.md
    load_check("release")                                      # datasets.load_dataset, per config
    push_release("release", "my-org/nar-graphs")               # one atomic commit
    release(Workspace("narbuild-data"), repo_id="my-org/nar-graphs", check=True)  # all three

Modules: :mod:`.release` (the folder and its configs), :mod:`.shards` (Parquet shards),
:mod:`.card` (README.md), :mod:`.figures` (the PNGs), :mod:`.check` (the load check),
:mod:`.publish` (the Hub), :mod:`.flow` (the three in one call), :mod:`.cli`.
"""

from __future__ import annotations

from narbuild.cards.check import load_check
from narbuild.cards.flow import release
from narbuild.cards.publish import PushSummary, check_repo_id, push_release
from narbuild.cards.release import CONFIGS, ReleaseSummary, stage_release

__all__ = ["CONFIGS", "PushSummary", "ReleaseSummary", "check_repo_id", "load_check",
           "push_release", "release", "stage_release"]
