"""`narbuild serve` latency: a warm server's queries, 20 concurrent ones, and the cold CLI.

    python bench/bench_serve.py --workdir WS --out bench/results/serve.json

Measures, on the workspace WS (the whole catalogue for the published figures):
- a registry id the workspace holds, through GET /api/search on a live server (median, p95);
- a new ViT-B/16-sized ``.py`` file (each run a file never seen, so it is traced), end to end
  through the engine the page calls (the upload is a file the page hands the engine);
- 20 concurrent GET /api/search queries from a loopback client (p95, all answered?);
- the cold CLI, ``narbuild search FILE.py:build`` in a new process, for a ViT-B/16 file
  built on timm and one in plain torch.nn, each against its floor (what importing the file's
  own libraries costs: ``import timm.models.vision_transformer``, ``import torch``), in the
  same run, alternating; and, where the workspace has embeddings, ``narbuild search
  timm:resnet50 --method nar`` (a model the workspace holds: its stored vector, no encoder).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import write_json

from narbuild.serve.engine import Query, SearchEngine

VIT_B = '''# {tag}
from timm.models.vision_transformer import VisionTransformer


def build():
    return VisionTransformer(img_size=224, patch_size=16, embed_dim=768, depth={depth},
                             num_heads=12, mlp_ratio=4.0, class_token=True)
'''
VIT_B_TORCH = '''# {tag}
import torch
from torch import nn


class ViT(nn.Module):
    """ViT-B/16 in plain torch.nn: 16x16 patches, pre-norm blocks of width 768."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 768, 16, 16)
        self.cls = nn.Parameter(torch.zeros(1, 1, 768))
        self.pos = nn.Parameter(torch.zeros(1, 197, 768))
        block = nn.TransformerEncoderLayer(768, 12, 3072, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(768)
        self.head = nn.Linear(768, 1000)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


def build():
    return ViT(depth={depth})
'''
FILES = {"timm_file": (VIT_B, "import timm.models.vision_transformer"),
         "torch_file": (VIT_B_TORCH, "import torch")}
"""The cold CLI's two files, each with its floor: what importing the file's own libraries costs
(timm pulls in torchvision and torch._dynamo; plain torch.nn needs torch alone)."""
IDS = ["timm:resnet50", "timm:vit_base_patch16_224", "torchvision:densenet121",
       "transformers:bert/Model", "timm:convnext_tiny"]


def cold_cli(workdir: str, folder: Path, runs: int = 5) -> dict:
    """``narbuild search FILE.py:build`` in a new process (a new file each time, so traced),
    alternating with its floor and with ``import torch``."""
    times: dict[str, list[float]] = {}
    for i in range(runs):
        for name, (text, floor) in FILES.items():
            path = folder / f"cold_{name}_{i}.py"
            path.write_text(text.format(tag=uuid.uuid4().hex, depth=9))
            times.setdefault(f"cold_cli_{name}", []).append(timed(lambda p=path: subprocess.run(
                [str(Path(sys.executable).parent / "narbuild"), "-w", workdir, "search",
                 f"{p}:build", "--json"], check=True, capture_output=True)))
            times.setdefault(f"floor_{name}", []).append(timed(lambda f=floor: subprocess.run(
                [sys.executable, "-c", f], check=True)))
        if (Path(workdir) / "embeddings").is_dir():  # a held model by its stored vector
            times.setdefault("cold_cli_registry_id_nar", []).append(timed(lambda: subprocess.run(
                [str(Path(sys.executable).parent / "narbuild"), "-w", workdir, "search",
                 "timm:resnet50", "--method", "nar", "--json"], check=True,
                capture_output=True)))
    out = {name: stats(t) for name, t in times.items()}
    for name in FILES:
        cold = statistics.median(times[f"cold_cli_{name}"])
        out[f"cold_over_floor_{name}"] = round(cold / statistics.median(times[f"floor_{name}"]), 2)
    out["cold_over_import_torch_timm_file"] = round(
        statistics.median(times["cold_cli_timm_file"]) / statistics.median(times["floor_torch_file"]), 2)
    return out


def serve(engine: SearchEngine) -> tuple[str, object]:
    import uvicorn

    from narbuild.serve.app import build_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(engine), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def stats(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"n": len(seconds), "median_s": round(statistics.median(seconds), 4),
            "p95_s": round(p95, 4), "max_s": round(max(seconds), 4)}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--out")
    args = parser.parse_args()
    import httpx

    result: dict = {"workspace": args.workdir}
    start = time.perf_counter()
    engine = SearchEngine(args.workdir)
    engine.warm()
    result["warm_up_s"] = round(time.perf_counter() - start, 2)
    url, server = serve(engine)
    with httpx.Client(timeout=120) as client:
        get = lambda q: client.get(f"{url}/api/search", params={"query": q, "k": 10})
        for q in IDS:
            assert get(q).status_code == 200, q
        result["registry_id_http"] = stats([timed(lambda q=q: get(q))
                                            for _ in range(args.repeats // len(IDS))
                                            for q in IDS])
        with ThreadPoolExecutor(20) as pool:
            def one(q: str) -> tuple[int, float]:
                t0 = time.perf_counter()
                return get(q).status_code, time.perf_counter() - t0
            answers = list(pool.map(one, IDS * 4))
        result["concurrent_20"] = {**stats([s for _, s in answers]),
                                   "answered": sum(c == 200 for c, _ in answers),
                                   "still_up": get(IDS[0]).status_code == 200}
    folder = Path(tempfile.mkdtemp())
    runs = []
    for i in range(args.files):
        path = folder / f"vit_{i}.py"
        path.write_text(VIT_B.format(tag=uuid.uuid4().hex, depth=10 + i % 3))
        t0 = time.perf_counter()
        found = engine.search(Query(file=str(path)), "wl-fam", 10, "real")
        runs.append(time.perf_counter() - t0)
        assert found.query["origin"] == "traced", found.query
    result["new_vit_b_file_engine"] = {**stats(runs), "seconds_of_last": found.seconds,
                                       "top_hit": found.hits[0].model_id}
    server.should_exit = True
    result.update(cold_cli(args.workdir, folder))
    engine.close()
    print(result)
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
