"""The mmpretrain source: listing from the model index, lookup, a meta build, a trace, the two
released configs that need help (the missing-package path: tests/test_sources.py, for every
optional source)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from narbuild import sources
from narbuild.errors import NarbuildError
from narbuild.sources import mmpretrain as source
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row

pytest.importorskip("mmpretrain", reason="the mmpretrain extra is not installed")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["name"]: r for r in source.iter_rows()}


def test_listing_reads_the_model_index_without_importing_mmpretrain():
    code = ("import sys; from narbuild.sources import mmpretrain as s; rows = list(s.iter_rows());"
            "print(len(rows), 'mmpretrain' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, mmpretrain, torch = out.stdout.split()
    assert int(count) >= 500 and mmpretrain == torch == "False"


def test_listing_has_every_image_model_once_with_its_collection(rows):
    from mmpretrain import list_models

    ids = [r["model_id"] for r in rows.values()]
    assert len(ids) == len(set(ids))
    excluded = {n for n, m in source._index().items() if m.in_collection in source._EXCLUDED}
    assert set(rows) | excluded == set(list_models()) and not set(rows) & excluded
    assert {"blip-base_3rdparty_caption", "llava-7b-v1.5_vqa"} <= excluded
    resnet = rows["resnet50_8xb32_in1k"]
    assert (resnet["module"], resnet["task"]) == ("resnet", "image-classification")
    assert json.loads(resnet["config"]) == {"name": "resnet50_8xb32_in1k"}
    assert json.loads(resnet["metadata"])["published_params"] == 25_560_000  # as it publishes
    assert rows["mobilenet-v2_8xb32_in1k"]["module"] == "mobilenet-v2"
    mae = rows["mae_vit-base-p16_8xb512-amp-coslr-300e_in1k"]
    assert (mae["module"], mae["task"]) == ("mae", "image-feature-extraction")


def test_lookup_of_one_id_an_unknown_one_and_an_excluded_one():
    assert sources.lookup("mmpretrain:resnet18_8xb16_cifar10")["module"] == "resnet"
    with pytest.raises(NarbuildError, match="did you mean mmpretrain:resnet18_8xb16_cifar10"):
        sources.lookup("mmpretrain:resnet18_8xb16_cifar1")
    with pytest.raises(NarbuildError, match="not listed: a vision-language model"):
        sources.lookup("mmpretrain:blip-base_3rdparty_caption")


def test_build_on_meta_with_the_test_pipeline_image_size():
    built = build("mmpretrain", {"name": "vit-base-p16_32xb128-mae_in1k"}, device="meta")
    assert all(p.is_meta for p in built.model.parameters())
    assert tuple(built.inputs[0].shape) == (1, 3, 224, 224)
    cifar = source.image_size(source.load_config("resnet18_8xb16_cifar10"))
    assert cifar == (32, 32)  # no resize in the CIFAR pipeline


def test_two_released_configs_that_need_help_load():
    replknet = source.load_config("replknet-31b_3rdparty_in1k-384px")  # a stray import in its base
    assert replknet.model.backbone.type == "RepLKNet" and source.image_size(replknet) == (384, 384)
    swinv2 = source.load_config("swinv2-base-w12_3rdparty_in21k-192px")  # edits a missing pipeline
    assert source.image_size(swinv2) == (192, 192)


def test_trace_of_a_cifar_resnet_matches_its_published_parameter_count(rows):
    row = rows["resnet18_8xb16_cifar10"]
    graph = trace_manifest_row(row)
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] in ("meta", "meta-init") and graph["num_nodes"] > 50
    assert graph["params"] == 11_173_962  # ResNet-18 for CIFAR-10
    assert json.loads(row["metadata"])["published_params"] == 11_170_000  # rounded to 0.01M
    assert json.loads(graph["outputs"]) == [[1, 10]]



@pytest.mark.slow
def test_most_models_trace(rows):
    graphs = [trace_manifest_row(row) for row in rows.values()]
    failed = {g["model_id"]: g["error"] for g in graphs if g["status"] != "ok"}
    assert len(failed) <= 0.05 * len(rows), failed
