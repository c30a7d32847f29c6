"""`narbuild search`: end-to-end latency in a cold process, the ranking step alone, and the
top-5 precision of queries no registry knows (tests/query_models.py).

    python bench/bench_search.py ranking                       # synthetic vectors, no workspace
    python bench/bench_search.py latency --workdir WS          # a traced+processed(+embedded) catalog
    python bench/bench_search.py quality --workdir WS
    ... [--out bench/results/search.json]  (results are merged into that file)
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_json

from narbuild.retrieval.rankers import DEFAULT_METHOD

ROOT = Path(__file__).resolve().parent.parent
VIT_B = '''
def vit_b():  # a ViT-B/16 no registry names: torchvision's class, built by hand
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=12,
                             hidden_dim=768, mlp_dim=3072)
'''


def ranking(sizes: list[int], dim: int = 512, queries: int = 50) -> dict:
    """Per-query time of VectorIndex.search (k=10) on random unit vectors, and its agreement with
    a float32 brute-force top 10."""
    from narbuild.retrieval.index import VectorIndex

    rng = np.random.default_rng(0)
    out = {}
    for n in sizes:
        vectors = rng.standard_normal((n, dim), dtype=np.float32)
        index = VectorIndex([str(i) for i in range(n)], vectors)
        qs = rng.standard_normal((queries, dim), dtype=np.float32)
        index.search(qs[0], 10)  # the float16 copy is made on the first search
        times = []
        for q in qs:  # back to back, as a service answers queries
            start = time.perf_counter()
            index.search(q, 10)
            times.append(time.perf_counter() - start)
        agree = 0
        for q in qs:
            exact = index.exact @ (q / np.linalg.norm(q))
            agree += (index.search(q, 10)[1].tolist()
                      == np.lexsort((np.arange(n), -exact))[:10].tolist())
        start = time.perf_counter()
        for q in qs[:10]:
            scores = index.exact @ (q / np.linalg.norm(q))
            np.argpartition(-scores, 10)[:10]
        brute = (time.perf_counter() - start) / 10
        out[str(n)] = {"median_ms": round(statistics.median(times) * 1e3, 2),
                       "p90_ms": round(float(np.percentile(times, 90)) * 1e3, 2),
                       "float32_numpy_brute_force_ms": round(brute * 1e3, 2),
                       "top10_equal_to_float32": f"{agree}/{queries}"}
        print(f"{n:>9,} vectors: {out[str(n)]}", flush=True)
    return out


def _cli(workdir: str, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "narbuild.cli", "-w", workdir, "search", *args,
                    "-k", "10", "--json"], check=True, capture_output=True)
    return time.perf_counter() - start


def latency(workdir: str, repeats: int = 3) -> dict:
    """Wall time of `narbuild search` in a fresh process for each case (median of repeats)."""
    spec_dir = Path(tempfile.mkdtemp())
    (spec_dir / "vit_b_query.py").write_text(VIT_B)
    spec = f"{spec_dir}/vit_b_query.py:vit_b"
    cache = Path(workdir) / "cache" / "queries"
    out = {"import_torch_s": _median(repeats, lambda: _run([sys.executable, "-c",
                                                               "import torch"]))}

    def traced(method: str) -> float:
        shutil.rmtree(cache, ignore_errors=True)
        return _cli(workdir, spec, "--method", method)

    cases = {
        "registry id in the workspace (timm:vit_base_patch16_224), the default":
            lambda: _cli(workdir, "timm:vit_base_patch16_224"),
        "unseen ViT-B file, first search (trace), the default": lambda: traced(DEFAULT_METHOD),
        "unseen ViT-B file, cached graph, the default": lambda: _cli(workdir, spec),
        "registry id in the workspace (timm:vit_base_patch16_224), wl":
            lambda: _cli(workdir, "timm:vit_base_patch16_224", "--method", "wl"),
        "unseen ViT-B file, first search (trace), wl": lambda: traced("wl"),
        "unseen ViT-B file, cached graph, wl": lambda: _cli(workdir, spec, "--method", "wl"),
        "unseen ViT-B file, first search (trace), nar": lambda: traced("nar"),
        "unseen ViT-B file, cached graph, nar": lambda: _cli(workdir, spec, "--method", "nar"),
    }
    for name, run in cases.items():
        out[name] = _median(repeats, run)
        print(f"{name}: {out[name]} s", flush=True)
    shutil.rmtree(spec_dir)
    return out | _unembedded(workdir, repeats)


def _unembedded(workdir: str, repeats: int) -> dict:
    """The default search of a workspace that has only its processed records (right after
    `preprocess`): the first one embeds them with the bundled encoder and builds the WL
    indexes; later ones read the cache. Real and NAS records."""
    out = {}
    for dataset in ("real", "nas"):
        fresh = Path(tempfile.mkdtemp()) / "ws"
        fresh.mkdir()
        for part in ("narbuild-workspace.json", "processed", "graphs", "manifest"):
            (fresh / part).symlink_to(Path(workdir).resolve() / part)
        run = functools.partial(_cli, str(fresh), "timm:resnet50", "--dataset", dataset)
        out[f"no embeddings, first search ({dataset}), the default"] = round(run(), 2)
        out[f"no embeddings, later search ({dataset}), the default"] = _median(repeats, run)
        shutil.rmtree(fresh.parent)
    for name, value in out.items():
        print(f"{name}: {value} s", flush=True)
    return out


def _run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def _median(repeats: int, run) -> float:
    return round(statistics.median(run() for _ in range(repeats)), 2)


def quality(workdir: str, methods: list[str]) -> dict:
    """Top-5 precision per query and method: a result is right when one of its model ids is of
    the query's family."""
    sys.path.insert(0, str(ROOT / "tests"))
    from query_models import QUERIES

    from narbuild.retrieval import search

    out: dict = {}
    for method in methods:
        rows = {}
        for name, (factory, families) in QUERIES.items():
            result = search(factory(), k=5, workspace=workdir, method=method)
            right = [bool(families & set(h.families)) for h in result.hits]
            rows[name] = {"precision@5": sum(right) / 5,
                          "top5": [f"{h.family}:{h.score:.3f}" for h in result.hits]}
            print(f"{method} {name:22s} {sum(right)}/5  {', '.join(rows[name]['top5'])}",
                  flush=True)
        mean = statistics.mean(r["precision@5"] for r in rows.values())
        out[method] = {"mean_precision@5": round(mean, 3), "queries": rows}
        print(f"{method}: mean top-5 precision {mean:.3f} over {len(rows)} queries", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["ranking", "latency", "quality"])
    parser.add_argument("--workdir")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--methods", nargs="+",
                        default=["wl", "wl-fam", "nar", "wl-metric", DEFAULT_METHOD])
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.what != "ranking" and not args.workdir:
        parser.error(f"{args.what} needs --workdir")
    result = {"ranking": lambda: ranking(args.sizes),
              "latency": lambda: latency(args.workdir),
              "quality": lambda: quality(args.workdir, args.methods)}[args.what]()
    result = {"machine": f"{os.cpu_count()} CPUs", "result": result}
    if args.out:
        write_json(args.out, result, key=args.what)


if __name__ == "__main__":
    main()
