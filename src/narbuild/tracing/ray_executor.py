"""``narbuild trace --executor ray``: one Ray task per shard, each running the shard command.

The driver (this process) holds the workspace's writer lock. Each Ray task runs
``narbuild trace --shard i --num-shards n`` as a subprocess (fork+exec: the Ray worker never
imports torch), which keeps narbuild's own per-model time and memory limits and its atomic
parts, so a shard killed at any point resumes from its parts when it runs again.

* Ray retries a task whose worker or node dies (``max_retries``); the driver resubmits a shard
  whose command exits non-zero or outlives ``shard_timeout_s``, up to ``retries`` times.
* Before launch, a probe task on every node checks that narbuild and torch have the driver's
  versions and that the workspace is visible there.
* A shard whose JSON ``_SUCCESS`` matches the manifest's rows for it (and the versions) is not
  run again, so a rerun of the same command runs only the stale shards.
* Shards that still fail are listed with their log files, and the command exits non-zero.

``RAY_ADDRESS`` (or ``address``) names a running cluster; without one a local Ray instance is
started on the loopback interface with ``num_cpus`` CPUs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from narbuild._version import __version__
from narbuild.errors import NarbuildError
from narbuild.processes import die_with_parent
from narbuild.tracing.shards import (
    TraceCounts,
    manifest_digest,
    package_version,
    pinned_shard_count,
    read_done,
    shard_dir,
)
from narbuild.workspace import DELEGATED_ENV, Workspace

DEFAULT_SHARDS = 8


@dataclass
class RayOptions:
    """How a catalog trace runs on Ray."""

    address: str | None = None  # None: $RAY_ADDRESS, else a local instance
    num_cpus: int | None = None  # of a local instance
    shard_timeout_s: float | None = None
    retries: int = 2  # driver-side resubmits of a failed or timed-out shard
    max_retries: int = 3  # Ray's retries of a task whose worker or node died


@dataclass
class RaySummary(TraceCounts):
    """What a Ray trace did, added up over its shards."""

    num_shards: int = 0
    shards_run: int = 0
    shards_fresh: int = 0
    resubmitted: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # shard -> its log file
    nodes: int = 0


def connect(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Ray, connected to ``address`` / ``$RAY_ADDRESS``, or to a new local instance that
    listens on the loopback interface only."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None:  # a local instance: keep every Ray service on 127.0.0.1
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as exc:
        raise NarbuildError("--executor ray needs Ray, which is not installed",
                            "pip install 'narbuild[ray]'") from exc
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise NarbuildError(f"cannot reach the Ray cluster at {address}: "
                            f"{str(exc).splitlines()[0][:200]}",
                            "check --address / RAY_ADDRESS, or omit both for a local "
                            "instance") from exc
    return ray


def num_shards_for(workspace: Workspace, requested: int | None) -> int:
    """The shard count: the one asked for, else the workspace's own, else
    :data:`DEFAULT_SHARDS`."""
    return requested or pinned_shard_count(workspace.table("graphs")) or DEFAULT_SHARDS


def trace_on_ray(workspace: Workspace, shard_args: list[str], num_shards: int,
                 options: RayOptions | None = None, retry_errors: bool = False,
                 on_shard: Any = None) -> RaySummary:
    """Trace the workspace's manifest in ``num_shards`` Ray tasks, each running
    ``narbuild trace --shard i --num-shards num_shards *shard_args``."""
    options = options or RayOptions()
    start = time.perf_counter()
    summary = RaySummary(num_shards=num_shards)
    with workspace.writer("trace --executor ray"):
        ray = connect(options.address, options.num_cpus)
        summary.nodes = _probe(ray, workspace)
        todo = [i for i in range(num_shards)
                if not _fresh(workspace, i, num_shards, retry_errors)]
        summary.shards_fresh = num_shards - len(todo)
        logs = workspace.root / "logs"
        logs.mkdir(exist_ok=True)
        _run(ray, workspace, todo, num_shards, shard_args, options, summary, logs, on_shard)
    summary.seconds = round(time.perf_counter() - start, 2)
    return summary


def _fresh(workspace: Workspace, shard: int, num_shards: int, retry_errors: bool) -> bool:
    """Whether a shard's ``_SUCCESS`` says it is done for the manifest and versions of now."""
    done = read_done(workspace, shard, num_shards)
    if done is None or (retry_errors and done.get("errors")):
        return False
    covered, digest = manifest_digest(workspace, shard, num_shards)
    return (done.get("manifest_digest"), done.get("manifest_rows")) == (digest, covered) and \
        done.get("narbuild_version") == __version__ and \
        done.get("torch_version") == package_version("torch")


def _probe(ray: Any, workspace: Workspace) -> int:
    """Check every alive node: narbuild's and torch's versions, and the workspace in sight."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(_node_facts)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote(str(workspace.root.resolve())) for n in nodes]
    want = {"narbuild": __version__, "torch": package_version("torch"), "workspace": True}
    for node, facts in zip(nodes, ray.get(refs)):
        wrong = {k: v for k, v in facts.items() if want.get(k) != v}
        if wrong:
            raise NarbuildError(f"Ray node {node['NodeManagerAddress']} differs from this "
                                f"machine: {wrong} (want {want})",
                                "install the same narbuild and torch on every node and put "
                                "the workspace on a shared file system")
    return len(nodes)


def _node_facts(workspace: str) -> dict[str, Any]:
    """Runs on a node (no torch import): what the driver needs to be the same there."""
    from narbuild._version import __version__ as version
    from narbuild.workspace import MARKER

    return {"narbuild": version, "torch": package_version("torch"),
            "workspace": os.path.isfile(os.path.join(workspace, MARKER))}


def run_shard(command: list[str], log: str) -> tuple[int, str]:
    """Runs in a Ray task: the shard command as a subprocess that dies with the task; its
    stderr goes to ``log``. Returns (exit code, stdout: the shard's JSON summary)."""
    import subprocess

    root = command[command.index("-w") + 1]
    env = {**os.environ, DELEGATED_ENV: os.path.realpath(root), "PYTHONUNBUFFERED": "1"}
    with open(log, "a") as fh:
        fh.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n")
        fh.flush()
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=fh, env=env, text=True,
                              preexec_fn=die_with_parent, check=False)
    return proc.returncode, proc.stdout


def _run(ray: Any, workspace: Workspace, todo: list[int], num_shards: int,
         shard_args: list[str], options: RayOptions, summary: RaySummary, logs: Path,
         on_shard: Any) -> None:
    """Submit every shard, collect results, resubmit failures, until done or out of tries."""
    task = ray.remote(num_cpus=_workers(shard_args), max_retries=options.max_retries,
                      retry_exceptions=False)(run_shard)
    root = str(workspace.root.resolve())
    tries = dict.fromkeys(todo, 0)
    pending: dict[Any, tuple[int, float]] = {}

    def submit(shard: int) -> None:
        tries[shard] += 1
        command = [sys.executable, "-m", "narbuild.cli", "-w", root, "--json", "--quiet",
                   "trace", "--shard", str(shard), "--num-shards", str(num_shards), *shard_args]
        pending[task.remote(command, str(_log(logs, shard, num_shards)))] = (shard, time.monotonic())

    for shard in todo:
        submit(shard)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            shard, _ = pending.pop(ref)
            try:
                code, out = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a task Ray gave up on
                code, out = -1, ""
                _note(logs, shard, num_shards, f"the Ray task failed: {exc!r}"[:500])
            _collect(shard, code, out, summary, tries, options, submit, logs, num_shards)
            if on_shard:
                on_shard(shard)
        for ref, (shard, started) in list(pending.items()):
            if options.shard_timeout_s and time.monotonic() - started > options.shard_timeout_s:
                del pending[ref]
                ray.cancel(ref, force=True)
                _note(logs, shard, num_shards,
                      f"timed out after {options.shard_timeout_s:.0f} s; cancelled")
                _collect(shard, -1, "", summary, tries, options, submit, logs, num_shards)


def _collect(shard: int, code: int, out: str, summary: RaySummary, tries: dict[int, int],
             options: RayOptions, submit: Any, logs: Path, num_shards: int) -> None:
    if code == 0:
        summary.shards_run += 1
        try:
            result = json.loads(out)
        except ValueError:
            result = {}
        summary.add(result)
    elif tries[shard] <= options.retries:
        summary.resubmitted += 1
        submit(shard)
    else:
        summary.failed[shard] = str(_log(logs, shard, num_shards))


def _log(logs: Path, shard: int, num_shards: int) -> Path:
    """A shard's log file (every attempt, and the driver's notes, appended)."""
    return logs / f"trace-{shard_dir(shard, num_shards)}.log"


def _note(logs: Path, shard: int, num_shards: int, text: str) -> None:
    with open(_log(logs, shard, num_shards), "a") as fh:
        fh.write(f"--- driver: {text}\n")


def _workers(shard_args: list[str]) -> int:
    """CPUs a shard reserves: its ``--workers``."""
    if "--workers" in shard_args:
        return int(shard_args[shard_args.index("--workers") + 1])
    return 1
