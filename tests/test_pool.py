"""The isolated worker pool that trace and preprocess share (narbuild.pool)."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

from narbuild import pool


def square(job):
    if job == "hang":
        time.sleep(60)
    if job == "exits":
        os._exit(3)
    if job == "hogs":
        held = b"x" * (400 * 2**20)  # written pages: private memory
        time.sleep(10)
        return len(held)
    return job * job


def failed(job, reason, seconds):
    return ("failed", job, reason)


def test_every_job_gets_a_result_and_failures_are_results_too():
    got = []
    jobs = [1, 2, "hang", 3, "exits", 4, "hogs", 5]
    stats = pool.run_pool(jobs, pool.Task(square, failed),
                          pool.Limits(workers=2, timeout_s=3, memory_limit_mb=200,
                                      memory_check_s=0.1, recycle_every=2), got.append)
    assert sorted(r for r in got if isinstance(r, int)) == [1, 4, 9, 16, 25]
    reasons = {r[1]: r[2] for r in got if isinstance(r, tuple)}
    assert "timed out after 3 s" in reasons["hang"]
    assert "exit status 3" in reasons["exits"]
    assert "exceeded the memory limit of 200 MiB" in reasons["hogs"]
    assert stats.done == len(jobs) == len(got) and stats.peak_private_mb > 200
    assert not mp.active_children()


def test_a_started_job_runs_beside_its_caller_and_cancels():
    job = pool.start(7, pool.Task(square, failed), pool.Limits())
    assert job.result() == 49
    job = pool.start("hang", pool.Task(square, failed), pool.Limits())
    assert len(mp.active_children()) == 1
    begun = time.monotonic()
    job.cancel()
    assert time.monotonic() - begun < 2 and job.result() is None and not mp.active_children()
