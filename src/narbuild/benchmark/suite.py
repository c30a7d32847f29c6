"""Benchmark v2 on a workspace: load the catalogue (and its variants), run, report."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from narbuild.benchmark.protocols import FOLDS, PROTOCOLS, Catalogue
from narbuild.encoder.data import (
    Inputs,
    Records,
    data_hash,
    load_datasets,
    load_records,
    records_of,
)
from narbuild.encoder.train import TrainConfig
from narbuild.provenance import provenance
from narbuild.workspace import Workspace

NAS_PROTOCOLS = ("closed", "open")
"""The NAS set has no heads, no sources and no registry knobs: closed and open (by class)."""


def load_catalogue(ws: Workspace, dataset: str, with_variants: bool,
                   on_step: Callable[[str], None] | None = None, workers: int = 2,
                   records: Records | None = None) -> tuple[Inputs, Catalogue, dict[str, Any]]:
    """The dataset's records (real: plus the variants, built on first use, when asked), their
    catalogue, and what names the data: the catalogue's :func:`data_hash`, and how many
    variants were traced, kept, and dropped as equal to a catalogue graph. ``records``: the
    dataset's records when already read."""
    records = records if records is not None else load_records(ws, dataset)
    info: dict[str, Any] = {"catalogue_hash": data_hash(records)}
    table = records.table
    gallery = [True] * len(records)
    if with_variants and dataset == "real":
        from narbuild.benchmark.variants import VARIANTS_VERSION, build_variants

        sub = build_variants(ws, workers=workers, on_step=on_step)
        variants = load_datasets(sub, ["real"], skip_missing=True).get("real")
        kept = 0
        if variants is not None:
            known = table["graph_hash"].combine_chunks()
            new = pc.invert(pc.is_in(variants.table["graph_hash"], value_set=known))
            extra = variants.table.filter(new).cast(table.schema)
            extra = extra.set_column(extra.schema.get_field_index("split"), "split",
                                     pa.array(["variant"] * extra.num_rows))
            kept = extra.num_rows
            info |= {"variants_version": VARIANTS_VERSION, "traced": len(variants), "kept": kept,
                    "same_as_catalogue": len(variants) - kept}
            table = pa.concat_tables([table, extra])
            gallery += [False] * kept
        records = records_of(table)
    cat = Catalogue.build(table["model_ids"].to_pylist(), table["fine_labels"].to_pylist(),
                          np.array(gallery))
    return Inputs(records), cat, info


def evaluate_protocols(ws: Workspace, datasets: Sequence[str], protocols: Sequence[str],
                       methods: Sequence[str], seeds: Sequence[int], cfg: TrainConfig,
                       device: str = "auto", folds: int = FOLDS,
                       on_run: Callable[[str, str, int], None] | None = None,
                       on_step: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The v2 report of ``methods`` on ``protocols`` for each dataset with records."""
    from narbuild.benchmark.run import FUSION_GRID, WL_ROUNDS, benchmark
    from narbuild.encoder.metrics import BOOTSTRAP
    from narbuild.encoder.train import resolve_device

    report: dict[str, Any] = {
        "protocol": {"version": 2, "folds": folds, "seeds": list(seeds),
                     "selection": "per task on validation queries (map@20)",
                     "wl_rounds": list(WL_ROUNDS), "fusion_grid": list(FUSION_GRID),
                     "bootstrap": BOOTSTRAP, "config": cfg.as_dict(),
                     "device": str(resolve_device(device)), **provenance()},
        "datasets": {}}
    present = load_datasets(ws, datasets)
    for name in present:
        wanted = [p for p in protocols if name == "real" or p in NAS_PROTOCOLS]
        start = time.perf_counter()
        inputs, cat, data = load_catalogue(ws, name, "variants" in wanted, on_step,
                                           records=present[name])
        build_seconds = round(time.perf_counter() - start, 1)
        pretrain = None
        if name == "real" and "nar-nas" in methods:
            nas = present.get("nas") or (load_datasets(ws, ["nas"]).get("nas")
                                         if ws.table("processed").parts("nas") else None)
            pretrain = Inputs(nas) if nas is not None else None
        mine = [m for m in methods if name == "real" or m != "nar-nas"]
        result = benchmark(inputs, cat, wanted, mine, seeds, cfg, device, folds,
                           lambda p, m, s, n=name: on_run and on_run(n, p, m, s),
                           cache=ws.root / "cache" / "eval", pretrain=pretrain)
        report["datasets"][name] = {"records": int(cat.gallery.sum()),
                                    "units": len(np.unique(cat.units[cat.gallery])),
                                    "families": len(cat.family_names),
                                    "family_groups": len(np.unique(cat.groups)),
                                    **data, "load_seconds": build_seconds,
                                    **result}
    return report


__all__ = ["NAS_PROTOCOLS", "PROTOCOLS", "evaluate_protocols", "load_catalogue"]
