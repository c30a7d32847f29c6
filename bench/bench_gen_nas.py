"""Benchmark `narbuild gen-nas`: time, memory, classes, distances, agreement with exact GED.

    .venv/bin/python bench/bench_gen_nas.py                 # the default 30,000 / 10 run
    .venv/bin/python bench/bench_gen_nas.py --count 3000 --ged-pairs 50

The generation runs in a fresh interpreter (imports, generation, Parquet write: the whole cost
a user pays), timed from outside, with its peak resident memory. The parent then reads the table
back and measures, from the stored genotypes:

- class sizes, and each network's distance to its own centre and to the nearest other centre;
- distances between random pairs of networks of the same class and of different classes;
- agreement of our cell distance with networkx's exact graph edit distance on the normal cells
  of random network pairs from the table, half within and half between classes (needs scipy);
- with --repeat, that a second run with the same seed gives the same rows (content hash).

Figures are printed and written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import write_json

from narbuild import Workspace
from narbuild.nasgen import networkx_ged, parse_genotype
from narbuild.nasgen.distance import pair_distances
from narbuild.nasgen.genotype import array_to_cell, cell_to_array

CHILD = """
import json, sys
from narbuild import Workspace
from narbuild.nasgen import write
summary = write(Workspace(sys.argv[1], create=True), count=int(sys.argv[2]),
                classes=int(sys.argv[3]), seed=int(sys.argv[4]))
print(json.dumps(summary))
"""


def run_child(workdir: Path, count: int, classes: int, seed: int) -> dict:
    """One generation in a fresh interpreter: its summary, wall time, CPU time, peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(workdir), str(count), str(classes),
                          str(seed)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    summary["process"] = {
        "wall_s": round(wall, 2),
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
    }
    return summary


def content_hash(table) -> str:
    """sha256 of the rows (every column, in order), independent of file names."""
    digest = hashlib.sha256()
    for batch in table.to_batches(max_chunksize=4096):
        for column in batch.columns:
            for buffer in column.buffers():
                if buffer is not None:
                    digest.update(buffer)
    return digest.hexdigest()


def quantiles(values: np.ndarray) -> dict:
    q = np.percentile(values, [0, 5, 25, 50, 75, 95, 100])
    return {"mean": round(float(values.mean()), 2),
            **{k: int(v) for k, v in zip(["min", "p5", "p25", "median", "p75", "p95", "max"], q)},
            "histogram": {int(d): int(n) for d, n in enumerate(np.bincount(values)) if n}}


def partners(cluster: np.ndarray, rng, i: np.ndarray, same: bool) -> np.ndarray:
    """For each row ``i``, a random other row of the same class (or of another class)."""
    order = np.argsort(cluster, kind="stable")
    sizes = np.bincount(cluster)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    j = np.empty_like(i)
    todo = np.ones(len(i), dtype=bool)
    while todo.any():
        if same:
            c = cluster[i[todo]]
            j[todo] = order[starts[c] + rng.integers(0, sizes[c])]
        else:
            j[todo] = rng.integers(0, len(cluster), size=int(todo.sum()))
        todo = (j == i) | ((cluster[j] == cluster[i]) != same)
    return j


def pair_stats(normal, reduce, cluster, rng, pairs: int) -> dict:
    """Network distances of random same-class and different-class pairs."""
    out = {}
    for name, same in (("within_class", True), ("between_classes", False)):
        i = rng.integers(0, len(cluster), size=pairs)
        j = partners(cluster, rng, i, same)
        d = pair_distances(normal[i], normal[j]) + pair_distances(reduce[i], reduce[j])
        out[name] = quantiles(d)
    return out


def ged_agreement(normal, cluster, rng, pairs: int) -> dict:
    """Our cell distance against networkx's exact GED on cells of random network pairs."""
    try:
        import scipy  # noqa: F401
    except ImportError:
        return {"skipped": "scipy is not installed (networkx's GED needs it)"}
    i = rng.integers(0, len(cluster), size=pairs)
    j = np.where(np.arange(pairs) % 2 == 0, partners(cluster, rng, i, True),
                 partners(cluster, rng, i, False))      # half within, half between classes
    ours = pair_distances(normal[i], normal[j])
    start, agree, seen = time.perf_counter(), 0, []
    for a, b, d in zip(i, j, ours):
        exact = networkx_ged(array_to_cell(normal[a]), array_to_cell(normal[b]))
        agree += int(exact == d)
        seen.append(int(d))
    return {"pairs": pairs, "agree": agree, "distances": quantiles(np.array(seen)),
            "networkx_seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=20000, help="random pairs per statistic")
    parser.add_argument("--ged-pairs", type=int, default=200, help="pairs checked with networkx")
    parser.add_argument("--repeat", action="store_true", help="run twice, compare the rows")
    parser.add_argument("--out", default="bench/results/gen_nas.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        summary = run_child(Path(tmp) / "ws", args.count, args.classes, args.seed)
        table = Workspace(Path(tmp) / "ws").table("nas").read()
        figures = {"run": summary, "content_hash": content_hash(table)}
        if args.repeat:
            again = run_child(Path(tmp) / "ws2", args.count, args.classes, args.seed)
            second = content_hash(Workspace(Path(tmp) / "ws2").table("nas").read())
            figures["repeat"] = {"same_rows": second == figures["content_hash"],
                                 "process": again["process"]}

    genotypes = [parse_genotype(g) for g in table.column("genotype").to_pylist()]
    normal = np.stack([cell_to_array(g.normal) for g in genotypes])
    reduce = np.stack([cell_to_array(g.reduce) for g in genotypes])
    cluster = table.column("cluster").to_numpy()
    rng = np.random.default_rng(12345)
    figures["pairs"] = pair_stats(normal, reduce, cluster, rng, args.pairs)
    figures["ged"] = ged_agreement(normal, cluster, rng, args.ged_pairs)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, figures)
    report(figures, out)


def report(f: dict, out: Path) -> None:
    run, proc = f["run"], f["run"]["process"]
    print(f"gen-nas {run['options']['count']} networks / {run['options']['classes']} classes: "
          f"{proc['wall_s']} s wall ({proc['cpu_s']} s CPU, in-process {run['seconds_total']} s: "
          f"{run['seconds']}), peak RSS {proc['peak_rss_mb']} MiB")
    print(f"class sizes {run['class_sizes']}; centres {run['centre_distance']['min']}-"
          f"{run['centre_distance']['max']} apart; radius {run['radius']}; "
          f"min margin {run['min_margin']}")
    print(f"distance to own centre:          {run['distance_to_own_centre']}")
    print(f"distance to nearest other centre: {run['distance_to_nearest_other_centre']}")
    for name, q in f["pairs"].items():
        print(f"pairs {name:<16} min {q['min']} p5 {q['p5']} median {q['median']} "
              f"p95 {q['p95']} max {q['max']} mean {q['mean']}")
    ged = f["ged"]
    if "skipped" in ged:
        print(f"exact GED check skipped: {ged['skipped']}")
    else:
        print(f"exact GED (networkx) agrees on {ged['agree']}/{ged['pairs']} cell pairs "
              f"(distances {ged['distances']['min']}-{ged['distances']['max']}, "
              f"networkx {ged['networkx_seconds']} s)")
    if "repeat" in f:
        print(f"same seed again: same rows = {f['repeat']['same_rows']} "
              f"({f['repeat']['process']['wall_s']} s)")
    print(f"content hash {f['content_hash'][:16]}...; figures in {out}")


if __name__ == "__main__":
    main()
