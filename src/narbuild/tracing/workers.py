"""Isolated worker processes: the one runner for every model build and every piece of user code.

Each model runs in a worker process with a time and a memory limit; a crash, hang,
out-of-memory or exit of the model's code becomes an error row that says what happened, and a
fresh worker takes over. Workers die with their parent (a parent-death signal), so a killed run
leaves no process behind. :func:`run_pool` serves the catalog (:mod:`narbuild.tracing.runner`);
:func:`trace_isolated` runs one spec (a registry id, a config.json, or a user's
``file.py:factory``, whose code then never runs in the caller's process). Workers are reused
across models (imports cost seconds, a model costs ~0.5 s) and replaced every ``recycle_every``
models. Importing this module imports no torch. The catalog imports the tracer before the
first fork (:func:`preload_libraries`); a one-spec worker imports it itself, so its caller never
loads torch and can work while the worker starts (:class:`PendingTrace`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from narbuild.errors import NarbuildError, one_line
from narbuild.processes import die_with_parent
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


def _worker_main(conn: Connection, parent_pid: int, catalog: bool) -> None:
    """Worker loop: receive jobs, send graphs rows, until told to stop (None).

    A job is a manifest row, or ``{"model_id", "spec"}`` for :func:`trace_isolated`."""
    _die_with_parent(parent_pid)
    _drop_inherited_locks()
    import faulthandler

    faulthandler.disable()  # a model's crash is an error row, not a stack dump on stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    # libraries print (transformers' docstring checks): stdout is the user's, so a catalog
    # run drops it; one model's prints (a user's factory) go to stderr
    _redirect_stdout(os.devnull if catalog else None)
    import torch

    torch.set_num_threads(1)
    from narbuild.tracing.metakernels import pin_native_meta_kernels

    pin_native_meta_kernels()
    if catalog:
        _quiet_libraries()
    while True:
        job = conn.recv()
        if job is None:
            return
        result = _run_job(job)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        conn.send(result)
        if resident_mb(os.getpid()) > TRIM_ABOVE_MB:
            _release_memory()


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


def _die_with_parent(parent_pid: int) -> None:
    """Die with the parent (a SIGKILL'd trace leaves no worker waiting on a dead pipe); exit at
    once if the parent is already gone."""
    die_with_parent()
    if os.getppid() != parent_pid:
        os._exit(1)


def _drop_inherited_locks() -> None:
    """Close the workspace lock files a forked worker inherited (the parent keeps the locks)."""
    from narbuild.workspace import _HELD

    for fd, _ in list(_HELD.values()):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


TRIM_ABOVE_MB = 1536.0
"""A worker resident in more than this after a model hands its freed heap back."""


def _release_memory() -> None:
    """Collect garbage and return freed heap pages (glibc keeps them otherwise), so the next
    model starts from a low resident size."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def private_mb(pid: int) -> float:
    """Memory a process holds on its own, in MiB: its private pages. A forked worker shares the
    parent's pages (torch, transformers and timm, imported once) until it writes to them; those
    are not its cost. Resident memory where /proc has no smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            return sum(int(line.split()[1]) for line in fh
                       if line.startswith(("Private_Clean:", "Private_Dirty:"))) / 1024
    except (OSError, ValueError):
        return resident_mb(pid)


def resident_mb(pid: int) -> float:
    """Resident memory of a process in MiB, shared pages included (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


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


class _Worker:
    def __init__(self, ctx, catalog: bool = True) -> None:
        self.conn, child = ctx.Pipe()
        self.catalog = catalog
        self.proc = ctx.Process(target=_worker_main, args=(child, os.getpid(), catalog),
                                daemon=True)
        self.proc.start()
        child.close()
        self.row: dict | None = None
        self.started = self.checked = 0.0
        self.served = 0

    def send(self, row: dict) -> None:
        self.row, self.started = row, time.monotonic()
        self.conn.send(row)

    def private_mb(self) -> float:
        return private_mb(self.proc.pid)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
            self.proc.join(timeout=5)
        except (BrokenPipeError, OSError):
            pass
        self.kill()


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
        options = options or TraceOptions()
        single = TraceOptions(workers=1, timeout_s=options.timeout_s,
                              memory_limit_mb=options.memory_limit_mb, memory_check_s=0.2)
        self._rows: list[dict] = []
        self._failed: BaseException | None = None
        self._cancel = threading.Event()
        worker = _Worker(_context(), catalog=False)  # forked in the caller's thread
        job = {"model_id": spec, "config_hash": None, "spec": spec}
        self._thread = threading.Thread(target=self._run, args=(job, single, worker),
                                        name=f"trace {spec}", daemon=True)
        self._thread.start()

    def _run(self, job: dict, options: TraceOptions, worker: _Worker) -> None:
        try:
            run_pool([job], options, self._rows.append, TraceSummary(), catalog=False,
                     started=[worker], cancel=self._cancel)
        except BaseException as exc:  # noqa: BLE001 - raised again in result()
            self._failed = exc

    def result(self) -> dict[str, Any]:
        """The graphs row, once the worker is done (see :func:`trace_isolated`)."""
        while self._thread.is_alive():
            self._thread.join(0.1)  # short joins: Ctrl-C still reaches the caller
        if self._failed is not None:
            raise self._failed
        if not self._rows:
            raise NarbuildError("the trace was cancelled", "search again")
        row = self._rows[0]
        if "narbuild_error" in row:
            raise NarbuildError(*row["narbuild_error"])
        return row

    def cancel(self) -> None:
        """Stop the worker (the caller no longer needs the graph)."""
        self._cancel.set()
        self._thread.join()


def _context():
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def run_pool(todo: list[dict], options: TraceOptions, record: Callable[[dict], None],
             summary: TraceSummary, catalog: bool = True, started: list[_Worker] | None = None,
             cancel: threading.Event | None = None) -> None:
    """Trace ``todo`` (manifest rows, or spec jobs) in ``options.workers`` workers; each
    result, or the error row of a worker that failed, goes to ``record``. ``started``: workers
    already forked; ``cancel``: set to stop, killing the workers."""
    if not todo:
        return
    if catalog:
        preload_libraries()
    ctx = _context()
    queue = list(reversed(todo))
    workers = started or [_Worker(ctx, catalog) for _ in range(min(options.workers, len(todo)))]
    try:
        for w in workers:
            w.send(queue.pop())
        busy = list(workers)
        while busy and not (cancel and cancel.is_set()):
            ready = wait([w.conn for w in busy], timeout=0.1 if cancel else 0.25)
            for w in list(busy):
                replacement = _poll(w, w.conn in ready, options, record, summary, ctx, queue)
                if replacement is not w or w.row is None:
                    busy.remove(w)
                    workers[workers.index(w)] = replacement
                    if queue:
                        replacement.send(queue.pop())
                        busy.append(replacement)
    finally:
        for w in workers:
            w.kill() if cancel and cancel.is_set() else w.stop()


def _poll(w: _Worker, ready: bool, options: TraceOptions, record, summary, ctx,
          queue: list[dict]) -> _Worker:
    """Collect a result or enforce the limits; return the worker to use next.

    A model that exceeds the memory limit in a worker that traced others first is tried once
    more in a fresh worker (what earlier models left on the heap counts against the limit)."""
    failure = None
    if ready:
        try:
            result = w.conn.recv()
        except (EOFError, OSError):
            w.proc.join(timeout=5)
            failure = exit_reason(w.proc.exitcode)
        else:
            summary.traced += 1
            w.row, w.served = None, w.served + 1
            record(result)
            if w.served >= options.recycle_every:
                w.stop()
                return _Worker(ctx, w.catalog)
            return w
    elif time.monotonic() - w.started > options.timeout_s:
        failure = f"timed out after {options.timeout_s:.0f} s (a hang or a very large model)"
    elif time.monotonic() - w.checked >= options.memory_check_s:
        w.checked = time.monotonic()
        held = w.private_mb()
        summary.peak_worker_private_mb = max(summary.peak_worker_private_mb, round(held, 1))
        if held > options.memory_limit_mb:
            failure = f"exceeded the memory limit of {options.memory_limit_mb:.0f} MiB"
    if failure is None:
        return w
    row = w.row
    w.kill()
    if "memory limit" in failure and w.served and not row.get(_FRESH_RETRY):
        queue.append({**row, _FRESH_RETRY: True})
        return _Worker(ctx, w.catalog)
    summary.traced += 1
    kind = "TraceLimit" if "limit" in failure or "timed out" in failure else "WorkerExit"
    record(graphs_row(row["model_id"], row["config_hash"], error=f"{kind}: {failure}",
                      seconds=time.monotonic() - w.started))
    if not queue:  # nothing left to trace: no fresh worker to fork (and stop again)
        w.row = None
        return w
    return _Worker(ctx, w.catalog)


def exit_reason(code: int | None) -> str:
    """What a worker's exit status says, in words."""
    if code is None:
        return "the worker process stopped answering"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        why = {"SIGKILL": " (out of memory? the OOM killer sends it)",
               "SIGSEGV": " (a crash in native code)", "SIGABRT": " (an abort in native code)"}
        return f"the worker process was killed by {name}{why.get(name, '')}"
    return (f"the model's code ended the worker process with exit status {code} "
            "(os._exit, or a crash in native code)")


_FRESH_RETRY = "_fresh_worker_retry"
