"""The diffusers source: its listing, a lookup, a meta build with derived inputs, one trace."""

from __future__ import annotations

import json

import pytest

from narbuild import NarbuildError, sources
from narbuild.sources import diffusers as source  # imports diffusers only when used
from narbuild.sources.diffusers import makers
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row

pytest.importorskip("diffusers")

EXPECTED = ("UNet2DModel", "UNet2DConditionModel", "AutoencoderKL", "DiTTransformer2DModel",
            "PixArtTransformer2DModel", "SD3Transformer2DModel", "FluxTransformer2DModel",
            "ControlNetModel", "SD3ControlNetModel", "FluxControlNetModel", "VQModel",
            "WanTransformer3DModel")


def _row(name: str) -> dict:
    return next(source.iter_rows([name]))


def test_listing_has_the_model_classes_once_and_no_containers():
    names = source.names()
    assert set(EXPECTED) <= set(names) and len(names) > 100
    assert len(set(names)) == len(names)
    assert not set(names) & set(source._EXCLUDED)
    assert "ModelMixin" not in names and "MultiControlNetModel" not in names


def test_a_row_carries_the_default_config_family_and_task():
    row = _row("UNet2DConditionModel")
    assert row["model_id"] == "diffusers:UNet2DConditionModel" and row["status"] == "ok"
    assert (row["module"], row["task"], row["library"]) == (
        "unet_2d_condition", "text-to-image", "diffusers")
    config = json.loads(row["config"])
    assert config["_class_name"] == "UNet2DConditionModel"
    assert config["block_out_channels"] == [320, 640, 1280, 1280]  # tuples as JSON lists
    assert _row("AutoencoderKL")["task"] == "autoencoding"
    assert _row("WanTransformer3DModel")["task"] == "text-to-video"
    assert _row("ControlNetModel")["module"] == "controlnet"
    assert _row("AudioLDM2UNet2DConditionModel")["module"] == "audioldm2"  # a pipeline's model


def test_classes_without_buildable_defaults_get_reference_or_block_configs():
    hunyuan = json.loads(_row("HunyuanDiT2DModel")["config"])
    assert (hunyuan["in_channels"], hunyuan["patch_size"]) == (4, 2)
    block = json.loads(_row("Transformer2DModel")["config"])  # UNet2DConditionModel's first block
    assert block["in_channels"] == 320 and block["cross_attention_dim"] == 1280


def test_lookup_of_one_id_and_a_clear_error_for_an_unknown_one():
    row = sources.lookup("diffusers:UNet2DModel")
    assert row["model_id"] == "diffusers:UNet2DModel" and row["module"] == "unet_2d"
    with pytest.raises(NarbuildError, match="unknown model id 'diffusers:UNet2DModl'") as err:
        sources.lookup("diffusers:UNet2DModl")
    assert "diffusers:UNet2DModel" in str(err.value)


def test_flux_builds_on_meta_with_packed_latents_and_positions():
    built = build("diffusers", json.loads(_row("FluxTransformer2DModel")["config"]),
                  device="meta")
    inputs = built.inputs
    assert next(built.model.parameters()).is_meta
    assert inputs["hidden_states"].shape == (1, (makers.SIZE // 2) ** 2, 64)  # 2 x 2 patches
    assert inputs["img_ids"].shape == (inputs["hidden_states"].shape[1], 3)
    assert inputs["encoder_hidden_states"].shape == (1, makers.TEXT, 4096)
    assert inputs["txt_ids"].shape == (makers.TEXT, 3)
    assert inputs["pooled_projections"].shape == (1, 768)
    assert "guidance" not in inputs and inputs["return_dict"] is False  # not guidance-distilled


def test_a_unet_and_a_video_transformer_get_their_own_layouts():
    unet = build("diffusers", json.loads(_row("UNet2DConditionModel")["config"]), device="meta")
    assert unet.inputs["sample"].shape == (1, 4, makers.SIZE, makers.SIZE)
    assert unet.inputs["encoder_hidden_states"].shape == (1, makers.TEXT, 1280)
    wan = build("diffusers", json.loads(_row("WanTransformer3DModel")["config"]), device="meta")
    assert wan.inputs["hidden_states"].shape == (1, 16, makers.FRAMES, makers.SIZE, makers.SIZE)


def test_a_small_class_traces():
    graph = trace_manifest_row(_row("AutoencoderKL"))
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] == "meta" and graph["num_nodes"] > 100
    assert json.loads(graph["inputs"])["sample"]["shape"] == [1, 3, makers.PIXELS, makers.PIXELS]
