"""The open_clip source: every shipped model config, both towers, built offline."""

from __future__ import annotations

import json

import pytest

from narbuild import NarbuildError, sources
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row

open_clip = pytest.importorskip("open_clip")
pytestmark = pytest.mark.usefixtures("no_network")  # conftest: sockets refuse

source = sources.get("open_clip")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["model_id"]: r for r in source.iter_rows()}


def test_one_row_per_model_config(rows):
    names = open_clip.list_models()
    assert len(rows) == len(names) == len(set(source.names()))
    assert set(rows) == {f"open_clip:{n}" for n in names}
    assert {"open_clip:ViT-B-32", "open_clip:RN50", "open_clip:coca_ViT-B-32"} <= set(rows)
    for row in rows.values():
        config = json.loads(row["config"])
        assert config["model_cfg"] == open_clip.get_model_config(row["name"])
        assert row["module"] and row["module"] == row["module"].lower()


def test_family_task_and_metadata(rows):
    def family(name):
        return rows[f"open_clip:{name}"]["module"]

    assert family("RN50") == "resnet" and family("ViT-B-32") == "vit"
    assert family("coca_ViT-B-32") == "coca" and family("convnext_base") == "convnext"
    assert family("ViT-B-16-SigLIP") == "siglip" and family("MobileCLIP-S1") == "mobileclip"
    assert family("EVA02-B-16") == "eva" and family("ViTamin-S") == "vitamin"
    assert family("xlm-roberta-base-ViT-B-32") == "xlm_roberta"
    assert rows["open_clip:coca_ViT-B-32"]["task"] == "image-to-text"
    assert rows["open_clip:ViT-B-32"]["task"] == "zero-shot-image-classification"
    meta = json.loads(rows["open_clip:RN50"]["metadata"])
    assert meta["vision_tower"] == "modified-resnet" and meta["context_length"] == 77
    hf = json.loads(rows["open_clip:roberta-ViT-B-32"]["metadata"])
    assert hf["text_tower"] == "hf:roberta-base" and "default" in hf["text_tower_config"]


def test_hf_model_type_from_the_repo_name():
    assert source.hf_model_type("google/mt5-xl") == "mt5"
    assert source.hf_model_type("xlm-roberta-large") == "xlm-roberta"
    assert source.hf_model_type("roberta-base") == "roberta"
    assert source.hf_model_type("facebook/nllb-200-distilled-600M") == "m2m_100"
    assert source.hf_model_type("org/unknown-model") is None


def test_lookup_one_id_and_a_clear_error_for_an_unknown_one():
    row = sources.lookup("open_clip:RN50")
    assert row["model_id"] == "open_clip:RN50" and row["status"] == "ok"
    with pytest.raises(NarbuildError, match="did you mean .*open_clip:RN50"):
        sources.lookup("open_clip:RN5O")


def test_build_on_meta_gives_image_and_tokens():
    config = json.loads(sources.lookup("open_clip:ViT-B-32")["config"])
    built = build("open_clip", config, device="meta")
    assert all(p.is_meta for p in built.model.parameters())
    image, tokens = built.inputs
    assert image.shape == (1, 3, 224, 224) and tokens.shape == (1, 77)
    assert not tokens.is_floating_point()


def test_hf_text_tower_builds_offline_from_a_default_config():
    config = json.loads(sources.lookup("open_clip:roberta-ViT-B-32")["config"])
    built = build("open_clip", config, device="meta")
    assert built.model.text.config.model_type == "roberta" and built.attention == "eager"


def test_trace_reaches_both_towers():
    graph = trace_manifest_row(sources.lookup("open_clip:RN50"))
    assert graph["status"] == "ok", graph["error"]
    image, text = json.loads(graph["outputs"])[:2]
    assert image == text == [1, 1024]  # image and text features
    assert graph["params"] > 50_000_000


def test_hf_text_tower_traces_on_meta():
    graph = trace_manifest_row(sources.lookup("open_clip:xlm-roberta-base-ViT-B-32"))
    assert graph["status"] == "ok" and graph["fallback"] == "meta", graph["error"]
    assert json.loads(graph["outputs"])[:2] == [[1, 512], [1, 512]]


def test_an_hf_tower_of_unknown_type_is_an_error_not_a_download():
    cfg = {**open_clip.get_model_config("roberta-ViT-B-32")}
    cfg["text_cfg"] = {**cfg["text_cfg"], "hf_model_name": "org/unknown-model"}
    row = source._row("custom", cfg, [])
    assert row["status"] == "error" and "not read offline" in row["error"]
    with pytest.raises(NarbuildError, match="no known model type"):
        build("open_clip", json.loads(row["config"]), device="meta")
