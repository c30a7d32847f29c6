"""The monai source: listing, lookup, a meta build and a trace of ``monai.networks.nets``."""

from __future__ import annotations

import importlib.util
import json

import pytest

from narbuild import sources
from narbuild.errors import NarbuildError
from narbuild.sources import monai as source
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row

pytest.importorskip("monai", reason="the monai extra is not installed")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return list(source.iter_rows())


def test_listing_has_each_network_once(rows):
    ids = [r["model_id"] for r in rows]
    assert len(ids) == len(set(ids))
    expected = {"UNet", "BasicUNet", "SegResNet", "SegResNetVAE", "UNETR", "SwinUNETR",
                "SwinUNETR/v2", "DenseNet121", "DenseNet169", "DenseNet201", "ViT",
                "EfficientNetBN/efficientnet-b0", "ResNet/resnet18", "MedNeXt/S",
                "VISTA3D/vista3d132", "AutoencoderKL", "DiffusionModelUNet", "VoxelMorph"}
    assert {f"monai:{n}" for n in expected} <= set(ids)
    assert "monai:Unet" not in ids  # an alias of UNet
    assert not set(source._EXCLUDED) & {r["name"] for r in rows}
    assert all(r["status"] == "ok" and r["source"] == "monai" for r in rows)


def test_rows_never_ask_for_weights(rows):
    for row in rows:
        kwargs = json.loads(row["config"])["kwargs"]
        assert kwargs.get("pretrained", False) is False, row["model_id"]


def test_rows_carry_family_task_and_inputs(rows):
    by_id = {r["model_id"]: r for r in rows}
    unet = by_id["monai:UNet"]
    assert (unet["module"], unet["task"]) == ("unet", "image-segmentation")
    assert json.loads(unet["config"])["inputs"] == {"x": [1, 1, 64, 64, 64]}
    assert by_id["monai:DenseNet121"]["task"] == "image-classification"
    assert by_id["monai:VoxelMorph"]["task"] == "image-registration"
    assert by_id["monai:AutoencoderKL"]["task"] == "image-generation"
    hovernet = json.loads(by_id["monai:HoVerNet"]["config"])["inputs"]["x"]
    assert len(hovernet) == 4  # a 2-D network


def test_lookup_of_one_id_and_of_an_alias():
    row = sources.lookup("monai:UNet")
    assert row["model_id"] == "monai:UNet" and row["task"] == "image-segmentation"
    assert sources.lookup("monai:Unet")["model_id"] == "monai:UNet"


def test_lookup_of_an_unknown_id_suggests_close_ones():
    with pytest.raises(NarbuildError, match="monai:UNet"):
        sources.lookup("monai:UNett")
    with pytest.raises(NarbuildError, match="not listed: a part of Transchex"):
        sources.lookup("monai:Pooler")


def test_build_on_meta():
    config = json.loads(sources.lookup("monai:UNet")["config"])
    built = build("monai", config, device="meta")
    assert all(p.is_meta for p in built.model.parameters())
    assert tuple(built.inputs["x"].shape) == (1, 1, 64, 64, 64)


def test_transchex_builds_without_fetching_bert(monkeypatch):
    from monai.networks.nets import transchex

    def offline(*args, **kwargs):
        raise AssertionError("the build tried to fetch weights")

    monkeypatch.setattr(transchex, "cached_file", offline)
    config = json.loads(sources.lookup("monai:Transchex")["config"])
    built = build("monai", config, device="meta")
    assert set(built.inputs) == {"input_ids", "vision_feats"}


def test_trace_of_a_small_network():
    graph = trace_manifest_row(sources.lookup("monai:UNet"))
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] == "meta" and graph["num_nodes"] > 10
    assert json.loads(graph["outputs"]) == [[1, 2, 64, 64, 64]]


@pytest.mark.skipif(importlib.util.find_spec("nvsubquadratic") is not None,
                    reason="nvsubquadratic is installed")
def test_missing_optional_package_is_a_clear_error():
    graph = trace_manifest_row(sources.lookup("monai:HyenaNDUNETR/HHAA"))
    assert graph["status"] == "error"
    assert "nvsubquadratic" in graph["error"] and "monai[hyena]" in graph["error"]


@pytest.mark.slow
def test_most_networks_trace(rows):
    graphs = [trace_manifest_row(row) for row in rows]
    failed = {g["model_id"]: g["error"] for g in graphs if g["status"] != "ok"}
    assert len(failed) <= 0.05 * len(rows), failed
