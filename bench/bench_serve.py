"""`narbuild serve` latency: a warm server's queries, 20 concurrent ones, and the cold CLI.

    python bench/bench_serve.py --workdir WS --out bench/results/serve.json

Measures, on the workspace WS (the whole catalogue for the published figures):
- a registry id the workspace holds, through GET /api/search on a live server (median, p95);
- a new ViT-B/16-sized ``.py`` file (each run a file never seen, so it is traced), end to end
  through the engine the page calls (the upload is a file the page hands the engine);
- 20 concurrent GET /api/search queries from a loopback client (p95, all answered?);
- the cold CLI, ``narbuild search FILE.py:build`` in a new process, against its floor,
  ``python -c "import torch"``, in the same run.
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
IDS = ["timm:resnet50", "timm:vit_base_patch16_224", "torchvision:densenet121",
       "transformers:bert/Model", "timm:convnext_tiny"]


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
    cold, floor = [], []
    for i in range(3):
        path = folder / f"cold_{i}.py"
        path.write_text(VIT_B.format(tag=uuid.uuid4().hex, depth=9))
        cold.append(timed(lambda p=path: subprocess.run(
            [str(Path(sys.executable).parent / "narbuild"), "-w", args.workdir, "search",
             f"{p}:build", "--json"], check=True, capture_output=True)))
        floor.append(timed(lambda: subprocess.run([sys.executable, "-c", "import torch"],
                                                  check=True)))
    result["cold_cli_new_file"] = stats(cold)
    result["import_torch_floor"] = stats(floor)
    result["cold_over_floor"] = round(statistics.median(cold) / statistics.median(floor), 2)
    engine.close()
    print(result)
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
