"""How eval's ``wl-fam`` was chosen: WL bag variants scored on a validation split cut from the
training records, then every variant's test figures next to it (so a reader can see the choice
did not look at them).

Validation: from each family with at least 3 training records, 10 % of them (at least 1, seeded)
become validation queries; the idf is fitted on the other training records; the queries rank the
training records only (the test records are never read). Test: the idf is fitted on every
training record and the test queries rank all records, as ``narbuild eval`` does.

Grid: WL rounds 1-4 x term weight (count, log(1 + count), presence) x idf over records (the
``wl`` baseline's) or over the training families.

    python bench/bench_wl_family.py --workdir WS [--dataset real] [--rounds 1 2 3 4]
        [--terms count log presence] [--out bench/results/wl-family.json]
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np
import scipy.sparse as sp

from narbuild.encoder.data import load_records, raw_graphs, validation_split
from narbuild.encoder.metrics import evaluate_vectors
from narbuild.encoder.wl import idf_weights, tfidf_rows, wl_counts
from narbuild.workspace import Workspace

TERMS = {"count": lambda x: x, "log": np.log1p, "presence": np.ones_like}


def bag(counts: sp.csr_matrix, term: str, fit: np.ndarray, labels: np.ndarray | None
        ) -> sp.csr_matrix:
    weighted = counts.copy()
    weighted.data = TERMS[term](weighted.data)
    groups = None if labels is None else labels[fit]
    return tfidf_rows(weighted, idf_weights(counts[fit], groups))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--dataset", default="real")
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--terms", nargs="+", choices=list(TERMS), default=list(TERMS))
    parser.add_argument("--out")
    args = parser.parse_args()
    records = load_records(Workspace(args.workdir), args.dataset)
    raw, labels, train = raw_graphs(records), records.labels, records.train
    fit, held = validation_split(train, labels)
    where = {int(r): i for i, r in enumerate(train)}
    rows = []
    for rounds in args.rounds:
        counts, _ = wl_counts(raw, rounds)
        for term, idf in itertools.product(args.terms, ("records", "families")):
            fam = labels if idf == "families" else None
            val = evaluate_vectors(bag(counts, term, fit, fam)[train], labels[train],
                                   np.array([where[int(q)] for q in held]))
            test = evaluate_vectors(bag(counts, term, train, fam), labels, records.test)
            rows.append({"rounds": rounds, "term": term, "idf": idf,
                         "validation": {k: round(v, 4) for k, v in val.items()},
                         "test": {k: round(v, 4) for k, v in test.items()}})
            print(f"rounds {rounds} {term:8s} idf/{idf:8s} validation MAP@20 "
                  f"{val['map@20']:.3f} NDCG@20 {val['ndcg@20']:.3f} | test MRR@20 "
                  f"{test['mrr@20']:.3f} MAP@20 {test['map@20']:.3f} NDCG@20 "
                  f"{test['ndcg@20']:.3f}", flush=True)
    best = max(rows, key=lambda r: (r["validation"]["map@20"], r["validation"]["ndcg@20"]))
    print("chosen on validation MAP@20:", {k: best[k] for k in ("rounds", "term", "idf")})
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"dataset": args.dataset, "records": len(records),
                       "validation_queries": len(held), "fit_records": len(fit),
                       "test_queries": len(records.test), "chosen": best, "grid": rows}, f,
                      indent=2)


if __name__ == "__main__":
    main()
