"""Fault injection: bad release targets, kills, user code that misbehaves, two writers at once,
tokens that could leak, and inputs that used to end in a traceback.

Each case asserts its outcome: the files before and after, rows equal to unique keys, no token
in any output or file, no process left behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
import torch
from fake_hub import FakeHub, FakeModel, fake_hub_fixture  # noqa: F401 - the `hub` fixture

from narbuild import Workspace, crawl
from narbuild.cards import stage_release
from narbuild.cards.folder import foreign_files, read_marker
from narbuild.crawler.base import CHECKPOINT
from narbuild.crawler.hf_hub import iter_hf_hub
from narbuild.errors import SourceUnavailableError
from narbuild.workspace import WorkspaceBusy

MODELS = ["timm:resnet18", "timm:resnet34"]
TOKEN = "hf_secret_token_0123456789"


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    """A small real workspace: two crawled and traced timm models, preprocessed."""
    from narbuild.preprocess import preprocess
    from narbuild.tracing import trace_spec

    ws = Workspace(tmp_path_factory.mktemp("faults") / "ws", create=True)
    crawl(ws, ["timm"], include=MODELS)
    ws.table("graphs").append([trace_spec(m) for m in MODELS])
    preprocess(ws, "real", workers=1)
    return ws


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (lock files aside) with its sha256, symlinks as links."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            files[str(path)] = f"-> {os.readlink(path)}"
        elif path.is_file() and "lock" not in path.name:
            files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def children() -> set[int]:
    """Live child processes of this one."""
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids |= {int(p) for p in (task / "children").read_text().split()}
        except FileNotFoundError:  # a thread that ended after the listing has no children
            continue
    return {p for p in pids if _alive(p)}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def one_line(err: str) -> bool:
    return err.strip() != "" and err.strip().count("\n") == 0


# ------------------------------------------------------------------ release targets (1, 2)


def _workspace_inside(tmp: Path, ws: Workspace) -> tuple[Path, Path]:
    shutil.copytree(ws.root, tmp / "p" / "data")
    return tmp / "p", tmp / "p" / "data"


def _inside_workspace(tmp: Path, ws: Workspace) -> tuple[Path, Path]:
    shutil.copytree(ws.root, tmp / "ws")
    return tmp / "ws" / "release", tmp / "ws"


def _user_files(tmp: Path, ws: Workspace) -> tuple[Path, Path]:
    for rel in ("README.md", "data/experiment_results.csv", "figures/plot_for_paper.png"):
        (tmp / "p" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "p" / rel).write_text(f"the user's {rel}")
    return tmp / "p", ws.root


def _read_only(tmp: Path, ws: Workspace) -> tuple[Path, Path]:
    stage_release(ws, tmp / "p", map_points=10)
    (tmp / "p").chmod(0o555)
    return tmp / "p", ws.root


def _symlink_to_workspace(tmp: Path, ws: Workspace) -> tuple[Path, Path]:
    (tmp / "link").symlink_to(ws.root, target_is_directory=True)
    return tmp / "link", ws.root


def _user_file_in_release(tmp: Path, ws: Workspace) -> tuple[Path, Path]:
    stage_release(ws, tmp / "p", map_points=10)
    (tmp / "p" / "data" / "notes.csv").write_text("mine")
    return tmp / "p", ws.root


def _edited_card(tmp: Path, ws: Workspace) -> tuple[Path, Path]:
    stage_release(ws, tmp / "p", map_points=10)
    with open(tmp / "p" / "README.md", "a") as fh:
        fh.write("\nmy notes\n")
    return tmp / "p", ws.root


@pytest.mark.parametrize("layout, reason", [
    (_workspace_inside, "holds the workspace"),
    (_inside_workspace, "lies inside the workspace"),
    (_user_files, "not a narbuild release"),
    (_read_only, "is read-only"),
    (_symlink_to_workspace, "is a symbolic link"),
    (_user_file_in_release, "data/notes.csv was not written by narbuild"),
    (_edited_card, "README.md changed since narbuild wrote it"),
])
def test_push_deletes_nothing_it_did_not_write(layout, reason, ws, tmp_path, run_cli):
    target, root = layout(tmp_path, ws)
    before = snapshot(tmp_path)
    try:
        code, _, err = run_cli(["-w", str(root), "push", "--local-dir", str(target)])
    finally:
        if target.exists():
            target.chmod(0o755)
    assert code == 2 and one_line(err) and reason in err, err
    assert snapshot(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*") if ".staging-" in p.name or ".old-" in p.name]


def test_a_release_can_be_replaced_by_the_next_one(ws, tmp_path, run_cli):
    target = tmp_path / "p"
    for _ in range(2):
        code, _, err = run_cli(["-w", str(ws.root), "push", "--local-dir", str(target)])
        assert code == 0, err
    assert foreign_files(target) is None and read_marker(target)["complete"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def _killed_staging(ws: Workspace, target: Path, point: str) -> None:
    """Stage into ``target`` in a forked child that dies (as by SIGKILL: no clean-up runs) at
    ``point``."""
    pid = os.fork()
    if pid == 0:  # the child
        try:
            _arm(point)
            stage_release(ws, target, map_points=10)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9, "the child did not die where it was told"


def _arm(point: str) -> None:
    from narbuild.cards import card, folder

    def die(*_args, **_kwargs):
        os._exit(9)

    if point == "staging":
        card.render_card = die
    elif point == "journal":
        write = folder.write_text_atomic
        folder.write_text_atomic = lambda p, t: (write(p, t), p.name.endswith(".swap.json")
                                                 and die())
    elif point == "between-renames":
        rename = Path.rename
        Path.rename = lambda self, t: die() if ".staging-" in self.name else rename(self, t)
    elif point == "old-removal":
        folder.shutil.rmtree = die


@pytest.mark.parametrize("point, said, new_release", [
    ("staging", "removed 1 leftover staging folder", False),
    ("journal", "rolled back an interrupted release swap", False),
    ("between-renames", "completed an interrupted release swap", True),
    ("old-removal", "removed 1 leftover staging folder", True),
])
def test_a_killed_push_is_repaired_by_the_next(point, said, new_release, ws, tmp_path, run_cli):
    target = tmp_path / "p"
    stage_release(ws, target, map_points=10)
    earlier = snapshot(target)
    _killed_staging(ws, target, point)
    leftovers = [p for p in tmp_path.iterdir() if p.name != "p"]
    assert leftovers, "the kill left nothing to repair"
    if target.exists() and not new_release:
        assert snapshot(target) == earlier  # the earlier release is intact meanwhile
    code, _, err = run_cli(["-w", str(ws.root), "push", "--local-dir", str(target)])
    assert code == 0 and said in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    assert foreign_files(target) is None and read_marker(target)["complete"]


# ------------------------------------------------------------------ user code isolated (3, 4)


FACTORIES = '''
import os, sys, time
import torch

def ok():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())

def sleeps():
    time.sleep(600)

def exits():
    os._exit(1)

def calls_sys_exit():
    sys.exit(3)

def hogs_memory():
    keep = []
    while True:
        keep.append(bytearray(100 * 2**20))
        time.sleep(0.02)
'''


@pytest.fixture
def factories(tmp_path) -> Path:
    path = tmp_path / "user_nets.py"
    path.write_text(FACTORIES)
    return path


@pytest.mark.parametrize("factory, said", [
    ("sleeps", "timed out after 2 s"),
    ("exits", "ended the worker process with exit status 1"),
    ("calls_sys_exit", "called sys.exit(3)"),
    ("hogs_memory", "exceeded the memory limit of 400 MiB"),
])
def test_user_code_runs_isolated_under_the_trace_limits(factory, said, factories, run_cli):
    before = children()
    start = time.monotonic()
    code, _, err = run_cli(["trace", "--model", f"{factories}:{factory}", "--timeout", "2",
                            "--memory-limit", "400"])
    assert code == 2 and one_line(err) and said in err, err
    assert time.monotonic() - start < 30
    assert children() == before


def test_search_runs_the_query_isolated(factories, ws, run_cli):
    before = children()
    code, _, err = run_cli(["-w", str(ws.root), "search", f"{factories}:hogs_memory",
                            "--memory-limit", "400"])
    assert code == 2 and one_line(err) and "exceeded the memory limit" in err, err
    code, out, err = run_cli(["-w", str(ws.root), "search", f"{factories}:ok", "-k", "1"])
    assert code == 0 and "user_nets.ok" in out, err
    assert children() == before


def test_trace_workers_die_with_their_parent(tmp_path):
    root = tmp_path / "ws"
    crawl(Workspace(root, create=True), ["timm"], include=["timm:resnet*"], limit=20)
    proc = subprocess.Popen([sys.executable, "-m", "narbuild.cli", "-w", str(root), "trace",
                             "--workers", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            workers = {int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                       .read_text().split()}
        except OSError:
            pass
    assert len(workers) == 2, "the trace never started its two workers"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)
    graphs = Workspace(root).table("graphs")
    if graphs.exists():  # what was written before the kill stays valid
        assert graphs.read().num_rows == len(graphs.keys())


# ------------------------------------------------------------------ one writer at a time (5)


HOLDER = """
import sys, time
from narbuild import Workspace
with Workspace(sys.argv[1]).writer("trace"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_writer_gets_one_line_or_waits(ws, tmp_path, run_cli):
    root = tmp_path / "ws"
    shutil.copytree(ws.root, root)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), "3"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    before = snapshot(root)
    code, _, err = run_cli(["-w", str(root), "preprocess"])
    assert code == 2 and one_line(err), err
    assert f"is being written by `narbuild trace` (pid {holder.pid}" in err and "--wait" in err
    assert snapshot(root) == before
    start = time.monotonic()
    code, _, err = run_cli(["-w", str(root), "--wait", "preprocess", "--workers", "1"])
    assert code == 0 and time.monotonic() - start > 1, err  # it waited for the holder
    assert holder.wait(timeout=10) == 0
    processed = Workspace(root).table("processed")
    assert processed.read().num_rows == len(processed.keys())


def test_two_preprocess_runs_at_once(ws, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(ws.root, root)
    runs = [subprocess.Popen([sys.executable, "-m", "narbuild.cli", "-w", str(root),
                              "preprocess", "--workers", "1"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(), p.stderr.read()) for p in runs]
    for code, err in results:
        assert code == 0 or (code == 2 and one_line(err) and "is being written by" in err), err
    assert any(code == 0 for code, _ in results)
    processed = Workspace(root).table("processed")
    assert processed.read().num_rows == len(processed.keys()) == len(MODELS)
    assert len(processed.parts()) == 1


def test_readers_never_see_half_a_replace(ws, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(ws.root, root)
    table = Workspace(root).table("manifest")
    rows = table.read()
    ids = rows.column("model_id").to_pylist()
    versions = [rows.set_column(rows.schema.get_field_index("model_id"), "model_id",
                                pa.array([f"{tag}:{i}" for i in ids])) for tag in "ab"]
    table.replace(versions[0])
    seen: list[set[str]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            keys = table.keys()
            seen.append({k.split(":", 1)[0] for k in keys})

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(30):
        table.replace(versions[i % 2])
    stop.set()
    reader.join()
    assert seen and all(s in ({"a"}, {"b"}) for s in seen), [s for s in seen if len(s) != 1]


def test_the_writer_lock_is_reentrant_and_released(tmp_path):
    ws = Workspace(tmp_path / "ws", create=True)
    with ws.writer("crawl"), ws.writer("crawl"):
        pass
    with ws.writer("trace"):  # released: taken again at once
        pass
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ws.root), "1"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(WorkspaceBusy), ws.writer("crawl"):
        pass
    holder.wait()


# ------------------------------------------------------------------ tokens (6)


def test_a_next_page_on_another_host_gets_no_token(hub, tmp_path, monkeypatch):
    other = FakeHub().start()
    try:
        hub.add(*[FakeModel(f"org/m{i}", config={"model_type": "bert"}) for i in range(3)])
        hub.page_size, hub.token, hub.next_base = 2, TOKEN, other.url
        root = Workspace(tmp_path / "ws", create=True)
        with pytest.raises(SourceUnavailableError, match="another host"):
            crawl(root, ["hf-hub"], options={"hf_hub": {"token": TOKEN}})
        assert other.requests == []
        manifest = root.table("manifest")
        assert manifest.read().num_rows == len(manifest.keys()) == 2  # page 1 is kept
        assert other.url.encode() not in b"".join(
            p.read_bytes() for p in root.root.rglob("*") if p.is_file())
        assert not any(TOKEN.encode() in p.read_bytes() for p in root.root.rglob("*")
                       if p.is_file())
    finally:
        other.stop()


def test_a_saved_cursor_on_another_host_is_not_followed(hub, tmp_path):
    from narbuild.workspace import save_state

    hub.add(FakeModel("org/m0", config={"model_type": "bert"}))
    root = Workspace(tmp_path / "ws", create=True)
    signature = {"endpoint": hub.url, "library": None, "pipeline_tag": None,
                 "sort": "downloads", "search": None}
    save_state(root.state_path("hf-hub"), {"signature": signature, "listed": 5, "page": 3,
                                           "next": "http://127.0.0.9:1/api/models?cursor=5"})
    rows = [r for r in iter_hf_hub(root, token=TOKEN) if r is not CHECKPOINT]
    assert [r["model_id"] for r in rows] == ["hf:org/m0"]  # listed afresh, at the endpoint


def test_a_server_message_that_echoes_the_token_is_masked(hub, tmp_path, run_cli):
    hub.echo_auth = True
    code, out, err = run_cli(["-w", str(tmp_path / "ws"), "crawl", "-s", "hf-hub",
                              "--token", TOKEN])
    assert code == 2 and one_line(err) and "400 Bad Request" in err, err
    assert TOKEN not in out + err and "***" in err


def test_a_config_naming_a_hub_architecture_contacts_nothing(hub, tmp_path, run_cli,
                                                             monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    config = tmp_path / "config.json"
    config.write_text('{"architecture": "hf-hub:org/x", "num_classes": 10}')
    code, out, err = run_cli(["trace", "--model", str(config)])
    assert code == 2 and one_line(err) and "hf-hub:org/x" in err and "hf:org/x" in err, err
    assert hub.requests == [] and TOKEN not in out + err


def test_token_help_points_to_the_safe_ways(run_cli):
    for command in ("crawl", "push"):
        code, out, _ = run_cli([command, "--help"])
        assert code == 0 and "HF_TOKEN" in out and "process list" in " ".join(out.split())


# ------------------------------------------------------------------ one line, no traceback (7)


def _checkpoint(tmp_path: Path, name: str, change) -> Path:
    from narbuild.encoder.bundled import bundled_path

    payload = torch.load(bundled_path("nar", "real"), map_location="cpu", weights_only=True)
    change(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = tmp_path / f"{name}.pt"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("name, change, said", [
    ("unknown-key", lambda p: p["config"].update(colour="blue"), "unknown keys (colour)"),
    ("labels", lambda p: p.update(label_names="resnet"), "label_names is not a list"),
    ("huge-dim", lambda p: p["config"].update(dim=10**9), "its dim is 1000000000"),
    ("shapes", lambda p: p["config"].update(dim=256), "of another shape"),
])
def test_a_bad_checkpoint_is_one_line(name, change, said, ws, tmp_path, run_cli):
    path = _checkpoint(tmp_path, name, change)
    before = snapshot(ws.root)
    code, _, err = run_cli(["-w", str(ws.root), "embed", "--dataset", "real",
                            "--checkpoint", str(path)])
    assert code == 2 and one_line(err) and said in err, err
    assert snapshot(ws.root) == before


def test_trace_out_into_a_missing_folder_is_one_line(tmp_path, run_cli):
    code, _, err = run_cli(["trace", "--model", "timm:resnet18", "--out",
                            str(tmp_path / "missing" / "x.json")])
    assert code == 2 and one_line(err) and "does not exist" in err, err


# ------------------------------------------------------------------ trace_module on MoE (8)


def test_trace_module_traces_a_meta_built_mixture_of_experts():
    from transformers import MixtralConfig, MixtralForCausalLM

    from narbuild.tracing import trace_module

    config = MixtralConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                           num_experts_per_tok=2, vocab_size=1000)
    with torch.device("meta"):
        model = MixtralForCausalLM(config)
    result = trace_module(model, {"input_ids": torch.zeros(1, 16, dtype=torch.long,
                                                            device="meta")})
    assert result.extra["step"] == "meta-bf16" and result.flops > 0
    assert any("GroupedMm" in n or "Bmm" in n or "Mm" in n for n in result.graph.nodes)
    assert next(model.parameters()).dtype == torch.float32  # cast back
