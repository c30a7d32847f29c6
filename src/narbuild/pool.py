"""A pool of isolated worker processes: the one runner for trace and preprocess jobs.

A :class:`Task` names what a worker runs on a job, and what the parent records when the
worker crashed, hung or went over its memory instead. Each job runs in a forked worker under
:class:`Limits` (a time and a memory limit); a worker that fails is replaced by a fresh one,
and a job that went over its memory in a worker that ran others first is tried once more in a
fresh worker (what earlier jobs left on the heap counts against the limit). Workers are reused
across jobs and replaced every ``recycle_every`` jobs. They die with their parent (a
parent-death signal), so a killed run leaves no process behind. :func:`start` runs one job
while its caller works (a thread enforces the limits). Importing this module imports no torch.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from narbuild.processes import die_with_parent


@dataclass(frozen=True)
class Task:
    """What a pool runs: ``run(job)`` gives a job's result in a worker; ``failed(job, reason,
    seconds)`` gives it in the parent when the worker died, hung or went over its memory (it
    may raise, which ends the pool). ``preload`` runs in the parent before the first fork (the
    imports every worker then shares); ``setup`` once in each worker. Module-level functions,
    or ``functools.partial`` of them."""

    run: Callable[[Any], Any]
    failed: Callable[[Any, str, float], Any]
    preload: Callable[[], None] | None = None
    setup: Callable[[], None] | None = None


@dataclass
class Limits:
    """How many workers, and what one job may take."""

    workers: int = 1
    timeout_s: float = math.inf
    memory_limit_mb: float = math.inf  # a worker's private memory (see :func:`private_mb`)
    memory_check_s: float = 1.0  # how often a busy worker's memory is read (~15 ms a read)
    recycle_every: int = 0  # replace a worker after this many jobs (0: never)


@dataclass
class PoolStats:
    """What a pool did."""

    done: int = 0
    peak_private_mb: float = 0.0


def run_pool(jobs: list, task: Task, limits: Limits, record: Callable[[Any], None],
             stats: PoolStats | None = None, cancel: threading.Event | None = None,
             started: list[_Worker] | None = None) -> PoolStats:
    """Run ``jobs`` in ``limits.workers`` workers; each result (or ``task.failed``'s, for a
    worker that failed) goes to ``record``, in the order they finish. ``cancel``: set it to
    stop, killing the workers; ``started``: workers already forked (see :func:`start`)."""
    stats = stats or PoolStats()
    if not jobs:
        return stats
    if task.preload and not started:
        task.preload()
    ctx = _context()
    queue = [(job, False) for job in reversed(jobs)]  # (job, already retried in a fresh worker)
    workers = started or [_Worker(ctx, task) for _ in range(min(limits.workers, len(jobs)))]
    try:
        for w in workers:
            w.send(queue.pop())
        busy = list(workers)
        while busy and not (cancel and cancel.is_set()):
            ready = wait([w.conn for w in busy], timeout=0.1 if cancel else 0.25)
            for w in list(busy):
                replacement = _poll(w, w.conn in ready, limits, record, stats, ctx, queue)
                if replacement is not w or w.job is None:
                    busy.remove(w)
                    workers[workers.index(w)] = replacement
                    if queue:
                        replacement.send(queue.pop())
                        busy.append(replacement)
    finally:
        for w in workers:
            w.kill() if cancel and cancel.is_set() else w.stop()
    return stats


class Pending:
    """One job started by :func:`start`: its worker runs while the caller works."""

    def __init__(self, job: Any, task: Task, limits: Limits) -> None:
        self._results: list = []
        self._failed: BaseException | None = None
        self._cancel = threading.Event()
        worker = _Worker(_context(), task)  # forked in the caller's thread
        self._thread = threading.Thread(target=self._run, args=(job, task, limits, worker),
                                        name="narbuild job", daemon=True)
        self._thread.start()

    def _run(self, job: Any, task: Task, limits: Limits, worker: _Worker) -> None:
        try:
            run_pool([job], task, limits, self._results.append, cancel=self._cancel,
                     started=[worker])
        except BaseException as exc:  # noqa: BLE001 - raised again in result()
            self._failed = exc

    def result(self) -> Any:
        """The job's result (or ``task.failed``'s), once its worker is done; None if cancelled."""
        while self._thread.is_alive():
            self._thread.join(0.1)  # short joins: Ctrl-C still reaches the caller
        if self._failed is not None:
            raise self._failed
        return self._results[0] if self._results else None

    def cancel(self) -> None:
        """Stop the worker (the caller no longer needs the result)."""
        self._cancel.set()
        self._thread.join()


def start(job: Any, task: Task, limits: Limits) -> Pending:
    """Run one job in a worker forked now; collect it with :meth:`Pending.result`."""
    return Pending(job, task, limits)


def _poll(w: _Worker, ready: bool, limits: Limits, record, stats: PoolStats, ctx,
          queue: list[tuple[Any, bool]]) -> _Worker:
    """Collect a result or enforce the limits; return the worker to use next."""
    failure = None
    if ready:
        try:
            result = w.conn.recv()
        except (EOFError, OSError):
            w.proc.join(timeout=5)
            failure = exit_reason(w.proc.exitcode)
        else:
            stats.done += 1
            w.job, w.served = None, w.served + 1
            record(result)
            if limits.recycle_every and w.served >= limits.recycle_every:
                w.stop()
                return _Worker(ctx, w.task)
            return w
    elif time.monotonic() - w.started > limits.timeout_s:
        failure = f"timed out after {limits.timeout_s:.0f} s (a hang or a very large model)"
    elif (math.isfinite(limits.memory_limit_mb)
          and time.monotonic() - w.checked >= limits.memory_check_s):
        w.checked = time.monotonic()
        held = private_mb(w.proc.pid)
        stats.peak_private_mb = max(stats.peak_private_mb, round(held, 1))
        if held > limits.memory_limit_mb:
            failure = f"exceeded the memory limit of {limits.memory_limit_mb:.0f} MiB"
    if failure is None:
        return w
    (job, retried), seconds = w.job, time.monotonic() - w.started
    w.kill()
    if "memory limit" in failure and w.served and not retried:
        queue.append((job, True))
        return _Worker(ctx, w.task)
    stats.done += 1
    record(w.task.failed(job, failure, seconds))
    if not queue:  # nothing left to run: no fresh worker to fork (and stop again)
        w.job = None
        return w
    return _Worker(ctx, w.task)


class _Worker:
    def __init__(self, ctx, task: Task) -> None:
        self.conn, child = ctx.Pipe()
        self.task = task
        self.proc = ctx.Process(target=_worker_main, args=(child, os.getpid(), task),
                                daemon=True)
        self.proc.start()
        child.close()
        self.job: tuple[Any, bool] | None = None
        self.started = self.checked = 0.0
        self.served = 0

    def send(self, item: tuple[Any, bool]) -> None:
        self.job, self.started = item, time.monotonic()
        self.conn.send(item[0])

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


def _worker_main(conn: Connection, parent_pid: int, task: Task) -> None:
    """Worker loop: receive jobs, send results, until told to stop (None)."""
    _die_with_parent(parent_pid)
    _drop_inherited_locks()
    import faulthandler

    faulthandler.disable()  # a job's crash is a failed result, not a stack dump on stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if task.setup:
        task.setup()
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(task.run(job))
        if resident_mb(os.getpid()) > TRIM_ABOVE_MB:
            _release_memory()


def _context():
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def _die_with_parent(parent_pid: int) -> None:
    """Die with the parent (a SIGKILL'd run leaves no worker waiting on a dead pipe); exit at
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


TRIM_ABOVE_MB = 1536.0
"""A worker resident in more than this after a job hands its freed heap back."""


def _release_memory() -> None:
    """Collect garbage and return freed heap pages (glibc keeps them otherwise), so the next
    job starts from a low resident size."""
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
