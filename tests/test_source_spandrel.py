"""The spandrel source: listing from spandrel's registry, the traces that check it (lookup,
a meta build, every row: tests/test_source_contract.py; the missing-package path:
tests/test_sources.py)."""

from __future__ import annotations

import json

import pytest

from narbuild import sources
from narbuild.sources import spandrel as source
from narbuild.tracing.ladder import trace_manifest_row

spandrel = pytest.importorskip("spandrel", reason="the spandrel extra is not installed")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["name"]: r for r in source.iter_rows()}


def test_listing_has_every_architecture_of_the_registry(rows):
    ids = {support.architecture.id for support in spandrel.MAIN_REGISTRY.architectures()}
    assert {json.loads(r["metadata"])["architecture"] for r in rows.values()} == ids
    assert len(rows) >= len(ids) >= 40
    # a union of model classes is one row per class
    assert {"RealCUGAN/UpCunet2x", "RealCUGAN/UpCunet4x", "PLKSR/PLKSR",
            "PLKSR/RealPLKSR"} <= set(rows)
    esrgan = rows["ESRGAN"]
    assert (esrgan["module"], esrgan["task"]) == ("esrgan", "image-to-image")
    assert json.loads(esrgan["config"])["input_shape"] == [3, 64, 64]
    lama = json.loads(rows["LaMa"]["config"])
    assert lama["kwargs"] == {"in_nc": 4} and lama["input_shape"][0] == 3 and lama["mask"]




def test_trace_of_esrgan_counts_its_published_parameters():
    graph = trace_manifest_row(sources.lookup("spandrel:ESRGAN"))
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] == "meta" and graph["num_nodes"] > 1000
    assert graph["params"] == 16_697_987  # RRDBNet x4, 23 blocks: Real-ESRGAN's x4 model


def test_lama_inpaints_an_image_under_a_mask():
    graph = trace_manifest_row(sources.lookup("spandrel:LaMa"))
    assert graph["status"] == "ok", graph["error"]
