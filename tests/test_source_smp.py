"""The smp source: every native encoder under Unet, every decoder with representative encoders."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from narbuild import NarbuildError, sources
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row

smp = pytest.importorskip("segmentation_models_pytorch")
pytestmark = pytest.mark.usefixtures("no_network")  # conftest: sockets refuse

source = sources.get("smp")
DECODERS = {"Unet", "UnetPlusPlus", "FPN", "PSPNet", "DeepLabV3", "DeepLabV3Plus", "Linknet",
            "MAnet", "PAN", "UPerNet", "Segformer", "DPT"}


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["model_id"]: r for r in source.iter_rows()}


def test_listing_follows_the_rule(rows):
    names = source.names()
    assert len(names) == len(set(names)) == len(rows)
    by_decoder = Counter(n.split("/")[0] for n in names)
    assert set(by_decoder) == DECODERS
    unet = {n.split("/", 1)[1] for n in names if n.startswith("Unet/")}
    assert unet == set(source.native_encoders()) and len(unet) >= 70
    assert not any(e.startswith("tu-") for e in unet)
    for decoder in DECODERS - {"Unet", "DPT"}:
        encoders = {n.split("/", 1)[1] for n in names if n.startswith(f"{decoder}/")}
        assert "resnet34" in encoders and encoders <= set(source.REPRESENTATIVE_ENCODERS)
    assert by_decoder["DPT"] == 1 and "smp:DPT/tu-vit_base_patch16_224.augreg_in21k" in rows
    assert "smp:FPN/mit_b0" in rows
    assert "smp:UnetPlusPlus/mit_b0" not in rows and "smp:Linknet/mit_b0" not in rows


def test_validity_comes_from_smp_checks():
    assert source.passes_checks("FPN", "mit_b0")
    assert not source.passes_checks("UnetPlusPlus", "mit_b0")
    assert not source.passes_checks("DPT", "resnet34")


def test_rows_carry_decoder_family_and_encoder(rows):
    row = rows["smp:DeepLabV3Plus/efficientnet-b0"]
    assert row["module"] == "deeplabv3plus" and row["task"] == "image-segmentation"
    assert json.loads(row["metadata"])["encoder"] == "efficientnet"
    config = json.loads(row["config"])
    assert config == {"arch": "DeepLabV3Plus", "encoder_name": "efficientnet-b0",
                      "encoder_weights": None, "in_channels": 3, "classes": 1}
    assert {r["module"] for r in rows.values()} == {d.lower() for d in DECODERS}


def test_lookup_one_id_and_a_clear_error_for_an_unknown_one():
    row = sources.lookup("smp:Unet/resnet34")
    assert row["model_id"] == "smp:Unet/resnet34" and row["module"] == "unet"
    with pytest.raises(NarbuildError, match="did you mean .*smp:Unet/resnet34"):
        sources.lookup("smp:Unet/resnet35")


def test_build_on_meta():
    config = json.loads(sources.lookup("smp:Unet/resnet34")["config"])
    built = build("smp", config, device="meta")
    assert all(p.is_meta for p in built.model.parameters())
    assert built.inputs[0].shape == (1, 3, 256, 256)


def test_a_fixed_size_encoder_gets_its_own_size():
    config = json.loads(sources.lookup("smp:DPT/tu-vit_base_patch16_224.augreg_in21k")["config"])
    assert build("smp", config, device="meta").inputs[0].shape == (1, 3, 224, 224)


def test_trace_one_row():
    graph = trace_manifest_row(sources.lookup("smp:FPN/mobilenet_v2"))
    assert graph["status"] == "ok", graph["error"]
    assert json.loads(graph["outputs"]) == [[1, 1, 256, 256]]


@pytest.mark.slow
def test_every_row_traces(rows):
    failed = {mid: g["error"] for mid, row in rows.items()
              if (g := trace_manifest_row(row))["status"] != "ok"}
    assert not failed
