"""Fault injection, before and after: every case of the reliability issue run as a user would,
through the `narbuild` CLI in fresh processes, against the code under ``--src``.

    git worktree add /tmp/before 04742bc
    python bench/bench_faults.py --src /tmp/before/src --label before --out bench/results/faults.json
    python bench/bench_faults.py --src src --label after --out bench/results/faults.json
    python bench/bench_faults.py --table bench/results/faults.json    # case | before | after

Each case records what happened: the exit code and first stderr line (tokens masked here, and
whether the token showed), the bytes of files narbuild did not write that were lost, leftovers,
processes left alive, rows against unique keys, requests and tokens that reached a Hub host.
Hub cases use the in-process fake Hub of tests/fake_hub.py, over huggingface_hub's real client.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
TOKEN = "hf_bench_secret_token_42"
SRC: Path = ROOT / "src"

FACTORIES = '''
import os, sys, time
import torch

def sleeps():
    time.sleep(600)

def exits():
    os._exit(1)

def calls_sys_exit():
    sys.exit(3)

def hogs_memory():  # stops at 3 GiB, so the run without limits ends too
    keep = [bytearray(100 * 2**20) for _ in range(30) if not time.sleep(0.02)]
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
'''


def cli(*args: str, env: dict | None = None, timeout: float = 120, wait: bool = True):
    """Run narbuild from ``SRC`` in a fresh process: (exit code, stdout, stderr, seconds, peak
    MiB of the process tree, peak MiB of the narbuild process itself); a run past ``timeout``
    is killed (exit None)."""
    full = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "narbuild.cli", *args], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    if not wait:
        return proc
    peak = own = 0.0
    while proc.poll() is None and time.monotonic() - start < timeout:
        peak, own = max(peak, tree_mb(proc.pid)), max(own, tree_mb(proc.pid, own=True))
        time.sleep(0.05)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    return proc.returncode if time.monotonic() - start < timeout else None, out, err, \
        round(time.monotonic() - start, 1), round(peak), round(own)


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree_mb(pid: int, own: bool = False) -> float:
    """Resident MiB of ``pid`` and its descendants (``own``: of ``pid`` alone)."""
    total = 0.0
    for p in [pid] if own else tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def outcome(code, err: str, **extra) -> dict:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    return {"exit": code, "stderr_lines": len(lines), "traceback": "Traceback" in err,
            "token_shown": TOKEN in err, "said": (lines[-1] if lines else "").replace(TOKEN,
                                                                                "<TOKEN>")[:220],
            **extra}


def files(folder: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink() and "lock" not in p.name:
            out[str(p)] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def lost_bytes(before: dict, after: dict, mine: set[str]) -> int:
    """Bytes of files the user had (``mine``) that are gone or changed."""
    return sum(size for path, (size, digest) in before.items()
               if path in mine and after.get(path, (0, ""))[1] != digest)


# ------------------------------------------------------------------------------ the cases


def make_workspace(root: Path) -> Path:
    ws = root / "ws"
    cli("-w", str(ws), "crawl", "-s", "timm", "--include", "timm:resnet18",
        "--include", "timm:resnet34")
    cli("-w", str(ws), "trace", "--workers", "1")
    cli("-w", str(ws), "preprocess", "--workers", "1")
    return ws


def push_layouts(ws: Path, tmp: Path) -> dict:
    """Each target layout: exit, bytes of the user's files lost, leftovers."""
    results = {}
    for name in ("workspace inside target", "target inside workspace", "user files",
                 "read-only release", "symlink to workspace", "user file in a release",
                 "edited card"):
        case = tmp / name.replace(" ", "-")
        case.mkdir()
        target, root, mine = _layout(name, case, ws)
        before = files(case)
        mine = {p for p in before if any(p.startswith(str(m)) for m in mine)}
        code, _, err, secs, *_ = cli("-w", str(root), "push", "--local-dir", str(target))
        if target.exists() and not target.is_symlink():
            target.chmod(0o755)
        after = files(case)
        leftovers = [p.name for p in target.parent.iterdir() if ".staging-" in p.name
                     or ".old-" in p.name]
        results[name] = outcome(code, err, user_bytes_lost=lost_bytes(before, after, mine),
                                user_bytes=sum(before[p][0] for p in mine),
                                leftovers=len(leftovers), seconds=secs)
    return results


def _layout(name: str, case: Path, ws: Path) -> tuple[Path, Path, set[Path]]:
    """(target, workspace, the user's paths) of one layout."""
    if name == "workspace inside target":
        shutil.copytree(ws, case / "p" / "data")
        return case / "p", case / "p" / "data", {case / "p" / "data"}
    if name == "target inside workspace":
        shutil.copytree(ws, case / "ws")
        return case / "ws" / "release", case / "ws", {case / "ws"}
    if name == "user files":
        for rel in ("README.md", "data/experiment_results.csv", "figures/plot_for_paper.png"):
            (case / "p" / rel).parent.mkdir(parents=True, exist_ok=True)
            (case / "p" / rel).write_text(f"the user's {rel}\n" * 100)
        return case / "p", ws, {case / "p"}
    if name == "symlink to workspace":
        shutil.copytree(ws, case / "ws")
        (case / "link").symlink_to(case / "ws", target_is_directory=True)
        return case / "link", case / "ws", {case / "ws"}
    cli("-w", str(ws), "push", "--local-dir", str(case / "p"))
    if name == "read-only release":
        (case / "p").chmod(0o555)
        return case / "p", ws, set()
    if name == "user file in a release":
        (case / "p" / "data" / "notes.csv").write_text("the user's notes\n" * 100)
        return case / "p", ws, {case / "p" / "data" / "notes.csv"}
    with open(case / "p" / "README.md", "a") as fh:
        fh.write("\nthe user's notes on this release\n")
    return case / "p", ws, {case / "p" / "README.md"}


def killed_push(ws: Path, tmp: Path) -> dict:
    """SIGKILL mid-stage (once the staging folder exists), then the next push."""
    target = tmp / "killed" / "p"
    target.parent.mkdir()
    cli("-w", str(ws), "push", "--local-dir", str(target))
    proc = cli("-w", str(ws), "push", "--local-dir", str(target), wait=False)
    deadline = time.monotonic() + 60
    while not list(target.parent.glob(".p.staging-*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    left = len(list(target.parent.glob(".p.*")))
    code, _, err, *_ = cli("-w", str(ws), "push", "--local-dir", str(target))
    return outcome(code, err, leftovers_after_kill=left,
                   leftovers_after_next_run=len(list(target.parent.glob(".p.*"))))


def user_code(ws: Path, tmp: Path) -> dict:
    nets = tmp / "user_nets.py"
    nets.write_text(FACTORIES)
    results = {}
    for factory in ("sleeps", "exits", "calls_sys_exit", "hogs_memory"):
        code, _, err, secs, peak, own = cli("trace", "--model", f"{nets}:{factory}", "--timeout",
                                            "5", "--memory-limit", "1024", timeout=40)
        results[f"trace --model {factory}"] = outcome(code, err, seconds=secs, peak_mb=peak,
                                                      narbuild_process_peak_mb=own)
    limit = ["--memory-limit", "1024"] if "--memory-limit" in cli("search", "--help")[1] else []
    code, _, err, secs, peak, own = cli("-w", str(ws), "search", f"{nets}:hogs_memory", *limit,
                                        timeout=60)
    results["search hogs_memory"] = outcome(code, err, seconds=secs, peak_mb=peak,
                                            narbuild_process_peak_mb=own, options=limit)
    return results


def killed_trace(tmp: Path) -> dict:
    ws = tmp / "ws-kill"
    cli("-w", str(ws), "crawl", "-s", "timm", "--include", "timm:resnet*")
    proc = cli("-w", str(ws), "trace", "--workers", "2", wait=False)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = tree(proc.pid)[1:]
    proc.kill()
    proc.wait()
    time.sleep(5)
    left = [p for p in workers if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return {"workers": len(workers), "alive_5s_after_kill": len(left)}


def concurrent(ws: Path, tmp: Path, command: list[str], tries: int) -> dict:
    """``command`` twice at once on a copy of ``ws``, ``tries`` times."""
    crashes, busy, dup_rows, traced = 0, 0, 0, []
    for i in range(tries):
        copy = tmp / f"ws-{command[0]}-{i}"
        shutil.copytree(ws, copy)
        runs = [cli("-w", str(copy), "--json", *command, wait=False) for _ in range(2)]
        for proc in runs:
            out, err = proc.communicate()
            crashes += proc.returncode not in (0, 2) or "Traceback" in err
            busy += proc.returncode == 2 and "being written" in err
            try:
                traced.append(json.loads(out).get("traced", 0))
            except ValueError:
                pass
        table = "processed" if command[0] == "preprocess" else "graphs"
        dup_rows += _rows_minus_keys(copy, table)
    return {"tries": tries, "crashed_runs": crashes, "refused_busy": busy,
            "rows_minus_unique_keys": dup_rows, "models_traced_per_run": traced}


def manifest_only(tmp: Path) -> Path:
    ws = tmp / "ws-manifest"
    cli("-w", str(ws), "crawl", "-s", "timm", "--include", "timm:resnet1*")
    return ws


def _rows_minus_keys(ws: Path, table: str) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted((ws / table).rglob("*.parquet"))
    if not parts:
        return 0
    keys = pa.concat_tables([pq.read_table(p, columns=["record_id" if table == "processed"
                                                       else "model_id"]) for p in parts])
    return keys.num_rows - len(set(keys.column(0).to_pylist()))


def tokens(tmp: Path) -> dict:
    from fake_hub import FakeHub, FakeModel

    results = {}
    hub, other = FakeHub(page_size=2).start(), FakeHub().start()
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp / "hf-home"), "HF_TOKEN": TOKEN,
           "NO_PROXY": "127.0.0.1,localhost", "HF_HUB_OFFLINE": "0"}
    try:
        hub.add(*[FakeModel(f"org/m{i}", config={"model_type": "bert"}) for i in range(3)])
        hub.next_base = other.url
        ws = tmp / "ws-hub"
        code, _, err, *_ = cli("-w", str(ws), "crawl", "-s", "hf-hub", env=env)
        state = b"".join(p.read_bytes() for p in ws.rglob("*.json"))
        results["next page on another host"] = outcome(
            code, err, requests_to_other_host=len(other.requests),
            token_sent_to_other_host=any(r.authorized for r in other.requests),
            other_host_saved_as_resume_point=other.url.encode() in state)
        hub.next_base, hub.echo_auth = None, True
        code, _, err, *_ = cli("-w", str(tmp / "ws-echo"), "crawl", "-s", "hf-hub", env=env)
        results["server message echoes the token"] = outcome(code, err)
        hub.echo_auth = False
        hub.clear()
        config = tmp / "config.json"
        config.write_text('{"architecture": "hf-hub:org/x", "num_classes": 10}')
        code, _, err, *_ = cli("trace", "--model", str(config), env=env)
        results["config names hf-hub: architecture"] = outcome(
            code, err, hub_requests=len(hub.requests),
            token_sent=any(r.authorized for r in hub.requests))
    finally:
        hub.stop()
        other.stop()
    return results


def one_liners(ws: Path, tmp: Path) -> dict:
    import torch

    bundled = SRC / "narbuild" / "data" / "encoder" / "nar-real.pt"
    results = {}
    for name, change in (("unknown config key", lambda p: p["config"].update(colour="blue")),
                         ("non-list label_names", lambda p: p.update(label_names="x")),
                         ("huge dim", lambda p: p["config"].update(dim=10**6))):
        payload = torch.load(bundled, map_location="cpu", weights_only=True)
        change(payload)
        path = tmp / f"{name.replace(' ', '-')}.pt"
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        path.write_bytes(buffer.getvalue())
        code, _, err, secs, peak, _ = cli("-w", str(ws), "embed", "--dataset", "real",
                                          "--checkpoint", str(path), timeout=120)
        results[f"embed --checkpoint, {name}"] = outcome(code, err, seconds=secs, peak_mb=peak)
    code, _, err, *_ = cli("trace", "--model", "timm:resnet18", "--out",
                             str(tmp / "missing" / "x.json"))
    results["trace --out into a missing folder"] = outcome(code, err)
    return results


MOE = """
import torch
from transformers import MixtralConfig, MixtralForCausalLM
from narbuild.tracing import trace_module
cfg = MixtralConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                    num_experts_per_tok=2, vocab_size=1000)
with torch.device("meta"):
    m = MixtralForCausalLM(cfg)
try:
    r = trace_module(m, {"input_ids": torch.zeros(1, 16, dtype=torch.long, device="meta")})
    print("ok", len(r.graph.nodes), "nodes,", r.extra.get("step", "meta"))
except Exception as e:
    print("error", type(e).__name__, str(e)[:120])
"""


def moe() -> dict:
    out = subprocess.run([sys.executable, "-c", MOE], env={**os.environ, "PYTHONPATH": str(SRC)},
                         capture_output=True, text=True, check=False).stdout.strip()
    return {"trace_module(meta Mixtral)": out}


def table(path: Path) -> str:
    """The results file as a Markdown table: case | before | after."""
    runs = json.loads(path.read_text())
    labels = [x for x in ("before", "after") if x in runs]
    head = " | ".join(f"{x} ({runs[x]['commit']})" for x in labels)
    lines = [f"| case | {head} |", "|---" * (len(labels) + 1) + "|"]
    first = runs[labels[0]]["cases"]
    for group, cases in first.items():
        names = cases if group in ("push targets", "user code", "tokens", "one-line errors") \
            else {group: cases}
        for name in names:
            cells = []
            for label in labels:
                got = runs[label]["cases"][group]
                cells.append(_cell(group, got.get(name, got) if name in got else got))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(group: str, r: dict) -> str:
    if group == "trace killed":
        return f"{r['alive_5s_after_kill']} of {r['workers']} workers alive 5 s after kill -9"
    if group.startswith("two "):
        what = (f"{r['refused_busy']} refused in one line" if r["refused_busy"]
                else "none refused")
        traced = f", models traced per run {r['models_traced_per_run']}" \
            if group == "two trace at once" else ""
        return (f"{r['tries']} tries: {r['crashed_runs']} runs crashed, {what}, "
                f"rows - unique keys = {r['rows_minus_unique_keys']}{traced}")
    if group == "trace_module MoE":
        return next(iter(r.values()))
    if group == "push killed mid-stage":
        return (f"{r['leftovers_after_kill']} staging leftover after the kill, "
                f"{r['leftovers_after_next_run']} after the next push (exit {r['exit']})")
    said = ("silent" if r["stderr_lines"] == 0 else "a traceback" if r["traceback"]
            else "one line")
    out = [f"exit {r['exit'] if r['exit'] is not None else 'none (killed at 40 s)'}, {said}"]
    if r.get("user_bytes"):
        out.append(f"{r['user_bytes_lost']:,} of {r['user_bytes']:,} user bytes lost")
    if "narbuild_process_peak_mb" in r:
        out.append(f"{r['narbuild_process_peak_mb']:,} MiB in the narbuild process")
    if r.get("token_shown"):
        out.append("token shown")
    for key, words in (("token_sent_to_other_host", "token sent to the other host"),
                       ("token_sent", "token sent to the Hub")):
        if r.get(key):
            out.append(words)
    if "hub_requests" in r:
        out.append(f"{r['hub_requests']} Hub requests")
    return ", ".join(out)


def main() -> None:
    global SRC
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=str(ROOT / "src"))
    parser.add_argument("--label", default="after")
    parser.add_argument("--out", default=None)
    parser.add_argument("--table", default=None, metavar="RESULTS",
                        help="Print a results file as a Markdown table and exit.")
    args = parser.parse_args()
    if args.table:
        print(table(Path(args.table)))
        return
    SRC = Path(args.src).resolve()
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="narbuild-faults-") as tmp_name:
        tmp = Path(tmp_name)
        ws = make_workspace(tmp)
        for name, run in (("push targets", lambda: push_layouts(ws, tmp)),
                          ("push killed mid-stage", lambda: killed_push(ws, tmp)),
                          ("user code", lambda: user_code(ws, tmp)),
                          ("trace killed", lambda: killed_trace(tmp)),
                          ("two preprocess at once", lambda: concurrent(
                              ws, tmp, ["preprocess", "--workers", "1"], 4)),
                          ("two trace at once", lambda: concurrent(
                              manifest_only(tmp), tmp, ["trace", "--workers", "1"], 1)),
                          ("tokens", lambda: tokens(tmp)),
                          ("one-line errors", lambda: one_liners(ws, tmp)),
                          ("trace_module MoE", moe)):
            start = time.monotonic()
            report[name] = run()
            print(f"{name}: {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
    commit = subprocess.run(["git", "-C", str(SRC), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    result = {"commit": commit, "src": str(SRC), "cases": report}
    print(json.dumps(result, indent=1))
    if args.out:
        write_json(args.out, result, key=args.label)


if __name__ == "__main__":
    main()
