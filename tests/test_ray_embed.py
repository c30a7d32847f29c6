"""`narbuild embed --executor ray` on a local Ray instance (2 CPUs, loopback only): Ray Data reads
the processed parts, actors embed them, and the driver writes the vectors a local run writes."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every Ray service on 127.0.0.1
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytest.importorskip("ray.data", reason="the ray extra is not installed")

from narbuild import Workspace
from narbuild.encoder.bundled import bundled_path
from narbuild.encoder.ray_embed import embed_on_ray


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def stored(ws: Workspace, dataset: str, method: str = "wl-metric") -> dict[str, tuple]:
    rows = ws.table("embeddings").read(subdir=dataset).to_pylist()
    return {r["record_id"]: (np.array(r["vector"]), r["encoder_id"], r["model_id"]) for r in rows
            if r["method"] == method}


def test_embed_on_ray_writes_the_local_vectors(local_ray, catalog, tmp_path, run_cli):
    """``catalog`` was embedded by a local run (the default: wl-metric); the same command on
    Ray gives its rows."""
    ws = Workspace(shutil.copytree(catalog.root, tmp_path / "ws"))
    shutil.rmtree(ws.root / "embeddings")
    code, out, err = run_cli(["-w", str(ws.root), "--json", "embed", "--executor", "ray"])
    assert code == 0, err
    summary = json.loads(out)  # stdout holds the summary only
    assert summary["device"] == "ray (auto)" and set(summary["datasets"]) == {"real", "nas"}
    for dataset in ("real", "nas"):
        local, on_ray = stored(catalog, dataset), stored(ws, dataset)
        assert local.keys() == on_ray.keys() and len(local) > 10
        for rid, (vector, encoder_id, model_id) in local.items():
            assert on_ray[rid][1:] == (encoder_id, model_id)
            assert np.allclose(on_ray[rid][0], vector, rtol=1e-4, atol=1e-4)


def test_small_batches_and_repeated_record_ids_change_no_vector(local_ray, catalog, tmp_path):
    """A record's NAR vector does not depend on its batch (whose motifs are embedded together);
    a record id written twice (the newest row wins) is read through the table, once."""
    ws = Workspace(shutil.copytree(catalog.root, tmp_path / "ws"))
    local = stored(catalog, "nas", "nar")
    found = embed_on_ray(ws, "nas", bundled_path("nar", "nas"), "cpu", batch=16)
    assert found.keys() == local.keys()
    assert all(np.allclose(found[r], local[r][0], rtol=1e-4, atol=1e-4) for r in local)
    processed = ws.table("processed")
    processed.append(processed.read(subdir="nas").slice(0, 5), subdir="nas")
    again = embed_on_ray(ws, "nas", bundled_path("nar", "nas"), "cpu", batch=16)
    assert again.keys() == local.keys()
    assert all(np.allclose(again[r], found[r], rtol=1e-4, atol=1e-4) for r in found)


def test_embed_on_ray_errors_are_one_line(local_ray, catalog, run_cli):
    cases = [(["embed", "--executor", "ray", "--train"], "does not train"),
             (["embed", "--executor", "ray", "--method", "gcn"], "no bundled gcn encoder")]
    if not ray.cluster_resources().get("GPU"):
        cases.append((["embed", "--executor", "ray", "--device", "cuda"], "has no GPU"))
    for args, message in cases:
        code, _, err = run_cli(["-w", str(catalog.root), *args])
        assert code != 0 and message in err and err.count("\n") == 1, (args, err)
