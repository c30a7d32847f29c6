"""What the encoders see of depth and width: each variant's cosine to its own base architecture.

A design-similarity encoder should keep a 4-layer BERT close to the 12-layer one. For every
variant of benchmark v2 (``<workdir>/variants``, built by ``narbuild eval --protocol variants``)
this computes the cosine between the variant and the catalogue record of the model it was made
from, per knob value, for the bundled NAR and wl-metric encoders, WL and WL-fam (fitted on the
catalogue), and the rank of that base record among the whole catalogue.

    python bench/bench_depth.py --workdir WS --out bench/results/depth.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np
from _common import write_json

from narbuild.benchmark.run import bag_rows
from narbuild.benchmark.suite import load_catalogue
from narbuild.encoder.bundled import bundled_path
from narbuild.encoder.checkpoint import load_checkpoint
from narbuild.encoder.metrics import unit_rows
from narbuild.encoder.train import embed_nar, resolve_device, vectors_of
from narbuild.encoder.wl import WL_METHODS, wl_counts
from narbuild.workspace import Workspace


def vectors(inputs, method: str, catalogue: np.ndarray):
    if method == "nar":
        model, _ = load_checkpoint(bundled_path("nar", "real"))
        return embed_nar(model, inputs.motifs, resolve_device("cpu"))
    if method == "wl-metric":
        model, _ = load_checkpoint(bundled_path("wl-metric", "real"))
        return vectors_of("wlm", model, inputs, resolve_device("cpu"))
    counts = wl_counts(inputs.raw, WL_METHODS[method])[0]
    return bag_rows(method, counts, inputs.records.labels, catalogue)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out")
    args = parser.parse_args()
    inputs, cat, info = load_catalogue(Workspace(args.workdir), "real", with_variants=True)
    table = inputs.records.table
    catalogue = np.flatnonzero(cat.gallery)
    base_row = {m: i for i in catalogue for m in table["model_ids"][int(i)].as_py()}
    manifest = Workspace(args.workdir + "/variants").table("manifest").read(
        ["model_id", "metadata"]).to_pylist()
    variant_of = {r["model_id"]: json.loads(r["metadata"]) for r in manifest}
    pairs = []  # (variant row, base row, source, knob, value)
    for i in np.flatnonzero(~cat.gallery):
        m = variant_of[table["model_id"][int(i)].as_py()]
        if m["variant_of"] in base_row:
            pairs.append((int(i), base_row[m["variant_of"]], table["source"][int(i)].as_py(),
                          m["knob"], m["value"]))
    result = {"data": info, "pairs": len(pairs), "methods": {}}
    for method in ("nar", "wl-metric", "wl", "wl-fam"):
        unit = unit_rows(vectors(inputs, method, catalogue))
        dense = unit.toarray() if hasattr(unit, "toarray") else unit.numpy()
        sims = dense[[p[0] for p in pairs]] @ dense[catalogue].T
        groups: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for row, (v, b, source, knob, value) in enumerate(pairs):
            base = int(np.flatnonzero(catalogue == b)[0])
            rank = int((sims[row] > sims[row, base]).sum()) + 1
            key = f"{source} {knob}={value}" if source == "transformers" else f"{source} {knob}"
            groups[key].append((float(sims[row, base]), rank))
        result["methods"][method] = {
            k: {"pairs": len(v), "cosine_to_base": round(float(np.mean([c for c, _ in v])), 3),
                "base_rank_median": float(np.median([r for _, r in v]))}
            for k, v in sorted(groups.items())}
        print(method, json.dumps(result["methods"][method]), flush=True)
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
