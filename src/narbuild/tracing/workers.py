"""The trace's jobs in the isolated worker pool (:mod:`narbuild.pool`).

Each model is built and traced in a worker process with a time and a memory limit; a crash,
hang, out-of-memory or exit of the model's code becomes an error row that says what happened.
:func:`run_trace_pool` serves the catalog (:mod:`narbuild.tracing.runner`);
:func:`trace_isolated` runs one spec (a registry id, a config.json, or a user's
``file.py:factory``, whose code then never runs in the caller's process). Workers are reused
across models (imports cost seconds, a model costs ~0.5 s). Importing this module imports no
torch. The catalog imports the tracer before the first fork (:func:`preload_libraries`); a
one-spec worker imports it itself, so its caller never loads torch and can work while the
worker starts (:class:`PendingTrace`).
"""

from __future__ import annotations

import functools
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from narbuild import pool
from narbuild.errors import NarbuildError, one_line
from narbuild.tracing.rows import graphs_row
from narbuild.tracing.shards import TraceCounts


@dataclass
class TraceOptions:
    """How a catalog trace runs."""

    workers: int = max(1, os.cpu_count() or 1)
    timeout_s: float = 180.0
    memory_limit_mb: float = 3072.0  # a worker's private memory (see :func:`private_mb`)
    shard: int = 0
    num_shards: int = 1
    retry_errors: bool = False
    recycle_every: int = 200
    flush_every: int = 25
    memory_check_s: float = 1.0  # how often a busy worker's memory is read (~15 ms a read)


@dataclass
class TraceSummary(TraceCounts):
    """What a trace run did."""

    models_per_minute: float = 0.0
    peak_worker_rss_mb: float = 0.0  # resident, the pages shared with the parent included
    peak_worker_private_mb: float = 0.0  # the worker's own pages, as the memory limit counts
    shard: str = ""
    fallbacks: dict[str, int] = field(default_factory=dict)
    top_errors: dict[str, int] = field(default_factory=dict)

    @classmethod
    def combine(cls, runs: list[TraceSummary]) -> TraceSummary:
        """The summary of several shards run one after another."""
        out = cls(shard=f"{len(runs)} shards")
        for run in runs:
            out.add(run.as_dict())
            out.seconds += run.seconds
            out.peak_worker_rss_mb = max(out.peak_worker_rss_mb, run.peak_worker_rss_mb)
            out.peak_worker_private_mb = max(out.peak_worker_private_mb,
                                             run.peak_worker_private_mb)
            for mine, theirs in ((out.fallbacks, run.fallbacks), (out.top_errors,
                                                                  run.top_errors)):
                for k, v in theirs.items():
                    mine[k] = mine.get(k, 0) + v
        if out.traced:
            out.models_per_minute = round(60 * out.traced / max(out.seconds, 1e-9), 1)
        return out


def _setup_worker(catalog: bool) -> None:
    """A trace worker's start: libraries print (transformers' docstring checks), and stdout is
    the user's, so a catalog run drops it and one model's prints (a user's factory) go to
    stderr; one thread; torch's own meta kernels."""
    _redirect_stdout(os.devnull if catalog else None)
    import torch

    torch.set_num_threads(1)
    from narbuild.tracing.metakernels import pin_native_meta_kernels

    pin_native_meta_kernels()
    if catalog:
        _quiet_libraries()


def _trace_job(job: dict) -> dict:
    result = _run_job(job)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _failed_row(job: dict, reason: str, seconds: float) -> dict:
    """The error row of a model whose worker crashed, hung or went over its memory."""
    kind = "TraceLimit" if "limit" in reason or "timed out" in reason else "WorkerExit"
    return graphs_row(job["model_id"], job.get("config_hash"), error=f"{kind}: {reason}",
                      seconds=seconds)


def _run_job(job: dict) -> dict:
    """Trace one job into a graphs row; the model's code exiting becomes an error row too.
    A spec that is wrong (no such file, no such id) comes back as ``narbuild_error``."""
    start = time.perf_counter()
    try:
        if "spec" not in job:
            from narbuild.tracing.ladder import trace_manifest_row

            return trace_manifest_row(job)
        from narbuild.tracing.spec import trace_spec

        return trace_spec(job["spec"])
    except NarbuildError as exc:
        return {"narbuild_error": [exc.message, exc.hint]}
    except SystemExit as exc:
        reason = f"ModelExit: the model's code called sys.exit({exc.code!r})"
    except Exception as exc:  # noqa: BLE001 - a bad model must not end the worker
        reason = one_line(exc)
    return graphs_row(job["model_id"], job.get("config_hash"), error=reason,
                      seconds=time.perf_counter() - start)


def _redirect_stdout(path: str | None) -> None:
    """Point this process's stdout at ``path`` (None: at stderr), so --json output stays
    parseable."""
    import sys

    sys.stdout.flush()
    if path is None:
        os.dup2(2, 1)
        return
    fd = os.open(path, os.O_WRONLY)
    os.dup2(fd, 1)
    os.close(fd)


def _quiet_libraries() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)  # library chatter; failures are recorded in the rows
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def preload_libraries() -> None:
    """Import the heavy libraries once in the parent so forked workers start in milliseconds.

    The imported objects (some 400k) are then frozen out of the garbage collector: a full
    collection in a worker no longer walks them (0.4 s each time otherwise), and forked workers
    keep sharing their pages instead of copying them when the collector touches them."""
    import gc

    import timm  # noqa: F401
    import torch  # noqa: F401
    import torchvision  # noqa: F401
    import transformers  # noqa: F401

    import narbuild.tracing.ladder  # noqa: F401

    gc.collect()
    gc.freeze()


CATALOG = pool.Task(_trace_job, _failed_row, preload=preload_libraries,
                    setup=functools.partial(_setup_worker, True))
ONE_SPEC = pool.Task(_trace_job, _failed_row, setup=functools.partial(_setup_worker, False))


def run_trace_pool(todo: list[dict], options: TraceOptions, record: Callable[[dict], None],
                   summary: TraceSummary) -> None:
    """Trace ``todo`` (manifest rows) in ``options.workers`` workers; each graphs row, an error
    row for a worker that failed, goes to ``record``."""
    stats = pool.PoolStats()
    try:
        pool.run_pool(todo, CATALOG, _limits(options), record, stats)
    finally:
        summary.traced += stats.done
        summary.peak_worker_private_mb = max(summary.peak_worker_private_mb,
                                             stats.peak_private_mb)


def _limits(options: TraceOptions, memory_check_s: float | None = None) -> pool.Limits:
    return pool.Limits(options.workers, options.timeout_s, options.memory_limit_mb,
                       memory_check_s or options.memory_check_s, options.recycle_every)


def trace_isolated(spec: str, options: TraceOptions | None = None) -> dict[str, Any]:
    """Trace one spec (see :func:`narbuild.tracing.trace_spec`) in a worker process under
    ``options``' time and memory limits; its graphs row, an error row when the model failed,
    hung, ran out of memory or ended the process. A spec that names nothing traceable raises
    the :class:`NarbuildError` the worker met."""
    return PendingTrace(spec, options).result()


class PendingTrace:
    """:func:`trace_isolated`, started now and collected later: the worker forks at once and a
    thread enforces its limits, so the caller works meanwhile (a cold ``narbuild search``
    imports its libraries and reads its indexes while the worker imports torch)."""

    def __init__(self, spec: str, options: TraceOptions | None = None) -> None:
        self._job = pool.start({"model_id": spec, "config_hash": None, "spec": spec},
                               ONE_SPEC, _limits(options or TraceOptions(), memory_check_s=0.2))

    def result(self) -> dict[str, Any]:
        """The graphs row, once the worker is done (see :func:`trace_isolated`)."""
        row = self._job.result()
        if row is None:
            raise NarbuildError("the trace was cancelled", "search again")
        if "narbuild_error" in row:
            raise NarbuildError(*row["narbuild_error"])
        return row

    def cancel(self) -> None:
        """Stop the worker (the caller no longer needs the graph)."""
        self._job.cancel()
