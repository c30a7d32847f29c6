"""`narbuild trace --executor ray` on a local Ray instance (2 CPUs, loopback only): the same table
as a local run, failing models as error rows, and kills that lose and duplicate nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every Ray service on 127.0.0.1
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from narbuild import Workspace, crawl
from narbuild.crawler.base import manifest_row
from narbuild.tracing import TraceOptions, trace_catalog

MODELS = ["timm:resnet18", "timm:resnet10t", "timm:mobilenetv3_small_050",
          "torchvision:squeezenet1_0", "torchvision:squeezenet1_1"]
FAULTY = '''
import os, signal, time
import torch

def segfaults():
    os.kill(os.getpid(), signal.SIGSEGV)

def hangs():
    time.sleep(600)

def hogs():
    keep = []
    while True:
        keep.append(bytearray(100 * 2**20))
        time.sleep(0.02)
'''
# Ray's workers run at nice 15: on a loaded machine a worker can take seconds to import torch,
# so the time limit leaves the memory hog room to reach the memory limit first
TIMEOUT_S = 10
LIMITS = ["--timeout", str(TIMEOUT_S), "--memory-limit", "600"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Workspace:
    """A manifest of five registry models and three user factories that fail in three ways."""
    root = tmp_path_factory.mktemp("ray")
    (root / "faulty.py").write_text(FAULTY)
    ws = Workspace(root / "catalog", create=True)
    crawl(ws, ["timm", "torchvision"], include=MODELS)
    ws.table("manifest").upsert([manifest_row("file", f"faulty.{n}", {
        "path": str(root / "faulty.py"), "factory": n}) for n in ("segfaults", "hangs", "hogs")])
    return ws


@pytest.fixture(scope="module")
def reference(catalog, tmp_path_factory) -> dict[str, tuple]:
    """The table a local run makes."""
    ws = _copy(catalog, tmp_path_factory.mktemp("ref"))
    trace_catalog(ws, TraceOptions(workers=2, timeout_s=TIMEOUT_S, memory_limit_mb=600))
    return _table(ws)


def _copy(catalog: Workspace, folder: Path) -> Workspace:
    shutil.copytree(catalog.root, folder / "ws")
    return Workspace(folder / "ws")


def _table(ws: Workspace) -> dict[str, tuple]:
    """status and graph hash per model id; asserts rows equal unique keys on disk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = ws.table("graphs").parts()
    ids = pa.concat_tables([pq.read_table(p, columns=["model_id"]) for p in parts])
    assert ids.num_rows == len(set(ids.column(0).to_pylist())), "duplicate rows on disk"
    rows = ws.table("graphs").read(["model_id", "status", "graph_hash"]).to_pylist()
    return {r["model_id"]: (r["status"], r["graph_hash"]) for r in rows}


def test_a_killed_driver_then_a_rerun_loses_and_duplicates_nothing(catalog, reference,
                                                                   tmp_path):
    """First in the module: the driver starts its own local Ray instance."""
    ws = _copy(catalog, tmp_path)
    command = [sys.executable, "-m", "narbuild.cli", "-w", str(ws.root), "trace",
               "--executor", "ray", "--num-shards", "4", *LIMITS]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not list((ws.root / "graphs").glob("*/part-*.parquet")) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 60  # Ray ends the dead driver's tasks, and they their shards
    while _shard_processes(ws.root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _shard_processes(ws.root)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert _table(ws) == reference


def test_a_node_removed_mid_run_loses_no_shard(catalog, reference, tmp_path):
    """A two-node cluster (one CPU each) loses a node mid-run: Ray retries its tasks on the
    other node and every shard finishes, with the local table."""
    from ray.cluster_utils import Cluster

    ws = _copy(catalog, tmp_path)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        doomed = cluster.add_node(num_cpus=1)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        driver = subprocess.Popen(
            [sys.executable, "-m", "narbuild.cli", "-w", str(ws.root), "--json", "trace",
             "--executor", "ray", "--address", cluster.address, "--num-shards", "4", *LIMITS],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 90
        while len(_shard_processes(ws.root)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_shard_processes(ws.root)) == 2, "two shards never ran at once"
        cluster.remove_node(doomed)
        out, err = driver.communicate(timeout=300)
    finally:
        cluster.shutdown()
    assert driver.returncode == 0, err
    assert '"shards_run": 4' in out
    assert _table(ws) == reference


def test_ray_gives_the_local_table_and_failures_are_error_rows(local_ray, catalog, reference,
                                                               tmp_path, run_cli):
    ws = _copy(catalog, tmp_path)
    code, out, err = run_cli(["-w", str(ws.root), "trace", "--executor", "ray",
                              "--num-shards", "4", *LIMITS])
    assert code == 0, err
    assert "4 of 4 shards run" in out
    table = _table(ws)
    assert table == reference
    assert {m: s for m, (s, _) in table.items() if m.startswith("file:")} == dict.fromkeys(
        ["file:faulty.segfaults", "file:faulty.hangs", "file:faulty.hogs"], "error")
    errors = {r["model_id"]: r["error"] for r in ws.table("graphs").read_rows()
              if r["status"] == "error"}
    assert "SIGSEGV" in errors["file:faulty.segfaults"]
    assert "timed out" in errors["file:faulty.hangs"]
    assert "memory limit" in errors["file:faulty.hogs"]
    code, out, _ = run_cli(["-w", str(ws.root), "trace", "--executor", "ray", *LIMITS])
    assert code == 0 and "0 of 4 shards run" in out and "4 already done" in out
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # tests/ is not importable
    assert not ray.get(ray.remote(_torch_loaded).remote())  # the Ray worker never imports it


def _torch_loaded() -> bool:
    import narbuild.tracing.ray_executor  # noqa: F401 - what a shard task imports

    return "torch" in sys.modules


def _shard_processes(root: Path) -> list[int]:
    """Live shard subprocesses tracing into ``root``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--shard" in cmd and str(root).encode() in cmd and proc.name.isdigit():
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize("victim", ["shard subprocess", "Ray worker"])
def test_a_killed_shard_or_ray_worker_is_run_again_and_resumes(local_ray, catalog, reference,
                                                               tmp_path, run_cli, victim):
    """SIGKILL of a shard's subprocess: the driver resubmits the shard. SIGKILL of the Ray
    worker running it: Ray retries the task (its subprocess dies with it). Either way the shard
    resumes from its parts: the local table, no row lost or repeated."""
    ws = _copy(catalog, tmp_path)
    killed: list[int] = []

    def kill_one() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid in _shard_processes(ws.root):
                target = pid if victim == "shard subprocess" else _parent(pid)
                os.kill(target, signal.SIGKILL)
                killed.append(target)
                break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one)
    killer.start()
    code, out, err = run_cli(["-w", str(ws.root), "--json", "trace", "--executor", "ray",
                              "--num-shards", "4", *LIMITS])
    killer.join()
    assert killed and code == 0, err
    if victim == "shard subprocess":
        assert '"resubmitted": 1' in out
    assert _table(ws) == reference


def _parent(pid: int) -> int:
    """The parent process of ``pid`` (for a shard subprocess: the Ray worker running it)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_gen_nas_on_ray_gives_the_local_table(local_ray, tmp_path):
    from narbuild.nasgen.dataset import write

    args = {"count": 120, "classes": 3, "seed": 4, "depth": 5, "pool": 200}
    here, there = (Workspace(tmp_path / name, create=True) for name in ("local", "ray"))
    local_summary = write(here, **args)
    ray_summary = write(there, **args, executor="ray", chunk=50)
    assert len(there.table("nas").parts()) == 3  # one staged part per chunk, swapped in
    assert there.table("nas").read().equals(here.table("nas").read())
    for key in ("rows", "class_sizes", "nodes", "darts_nodes", "distance_to_own_centre"):
        assert ray_summary[key] == local_summary[key]
    assert not [p for p in tmp_path.rglob(".nas.staging-*")]
