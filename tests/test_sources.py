"""The source registry: every source declared once, the missing-package path, pytorchcv."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from narbuild import NarbuildError, Workspace, crawl, sources
from narbuild.cli import main as cli_main
from narbuild.errors import SourceUnavailableError
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row

OPTIONAL = [s.name for s in sources.all_sources() if s.extra]


def test_every_source_is_declared_once():
    declared = sources.all_sources()
    assert [s.name for s in declared] == list(sources.MODULES)
    for s in declared:
        assert s.license and s.family and s.title
        assert callable(sources.get(s.name).build)
        if s.offline and s.name != "file":
            assert callable(sources.get(s.name).iter_rows) and callable(sources.get(s.name).names)
    offline = sources.offline_sources()
    assert len(offline) >= 9 and "hf-hub" not in offline and "file" not in offline


def test_the_demo_traces_a_slice_of_every_offline_source():
    from narbuild.demo import DEMO_MODELS

    sliced = {pattern.partition(":")[0] for pattern in DEMO_MODELS}
    assert set(sources.offline_sources()) <= sliced


def test_make_setup_installs_each_no_deps_pin_a_source_declares():
    from pathlib import Path

    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    installed = {pin for line in makefile.splitlines() if "--no-deps" in line
                 for pin in re.findall(r'"([^"]+==[^"]+)"', line)}
    declared = {pin for s in sources.all_sources() for pin in s.no_deps}
    assert declared and declared == installed


def _without(monkeypatch, package: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == package else real(name, *a, **k))


@pytest.mark.parametrize("name", OPTIONAL)
def test_a_missing_package_is_skipped_in_one_line(name, tmp_path, monkeypatch, capsys):
    source = sources.get(name).SOURCE
    _without(monkeypatch, source.package)
    ws = Workspace(tmp_path / "ws", create=True)
    summary = crawl(ws, [name, "torchvision"], include=["torchvision:resnet18"])
    assert summary.missing == {name: source.install_hint()} and summary.per_source == {
        "torchvision": 1}
    with pytest.raises(SourceUnavailableError, match=f"{source.package!r}, which is not installed"
                       ) as missing:
        sources.lookup(f"{name}:anything")
    assert source.install_hint() in str(missing.value)  # e.g. pip install 'narbuild[doctr]'
    with pytest.raises(SourceUnavailableError, match="no source can be crawled"):
        crawl(ws, [name])
    capsys.readouterr()
    cli_main(["--workdir", str(tmp_path / "ws"), "crawl", "-s", name, "-s", "torchvision",
              "--include", "torchvision:resnet18"])
    out = capsys.readouterr().out
    assert f"{name:<14} skipped: its package is not installed ({source.install_hint()})" in out


def test_unknown_sources_and_ids_fail_clearly(tmp_path):
    with pytest.raises(NarbuildError, match="unknown source 'nope'"):
        crawl(Workspace(tmp_path / "ws", create=True), ["nope"])
    with pytest.raises(NarbuildError, match="unknown source 'nope'"):
        sources.lookup("nope:x")
    with pytest.raises(NarbuildError, match="did you mean pytorchcv:resnet18"):
        sources.lookup("pytorchcv:resnet1")


def test_a_class_a_row_names_that_the_package_lost_is_a_clear_error():
    source = sources.get("torchvision").SOURCE
    assert source.attribute("torchvision.models", "resnet18", "builder").__name__ == "resnet18"
    with pytest.raises(NarbuildError, match="torchvision has no builder 'resnet999'") as lost:
        source.attribute("torchvision.models", "resnet999", "builder")
    assert lost.value.hint == "upgrade torchvision or re-crawl"


def test_crawl_records_its_command_lines(tmp_path):
    ws = Workspace(tmp_path / "ws", create=True)
    crawl(ws, ["pytorchcv"], include=["pytorchcv:resnet18*"], limit=2)
    crawl(ws, ["pytorchcv"], include=["pytorchcv:resnet18*"], limit=2)  # recorded once
    assert ws.commands() == {
        "crawl": ["narbuild crawl -s pytorchcv --include 'pytorchcv:resnet18*' --limit 2"]}


# ------------------------------------------------------------------------------ pytorchcv

def test_pytorchcv_lists_every_builder_with_its_family():
    from pytorchcv.model_provider import _models

    rows = {r["model_id"]: r for r in sources.get("pytorchcv").iter_rows()}
    assert len(rows) == len(_models) >= 800
    r = rows["pytorchcv:resnet20_cifar10"]
    assert r["module"] == "resnet" and json.loads(r["metadata"])["dataset"] == "cifar10"
    assert rows["pytorchcv:deeplabv3_resnetd50b_voc"]["task"] == "image-segmentation"
    assert rows["pytorchcv:inceptionv3"]["module"] == "inceptionv3"  # aliased in preprocess


def test_pytorchcv_lookup_build_and_trace():
    row = sources.lookup("pytorchcv:resnet20_cifar10")
    built = build("pytorchcv", json.loads(row["config"]), device="meta")
    assert built.inputs[0].shape == (1, 3, 32, 32) and built.inputs[0].is_meta
    graph = trace_manifest_row(row)
    assert graph["status"] == "ok" and graph["fallback"] == "meta"
    assert graph["params"] == 272474  # pytorchcv's own table for resnet20_cifar10: 0.27M


def test_pytorchcv_speech_models_start_at_the_mel_features():
    row = sources.lookup("pytorchcv:quartznet5x5_en_ls")
    assert json.loads(row["config"])["kwargs"] == {"from_audio": False}
    built = build("pytorchcv", json.loads(row["config"]), device="meta")
    assert built.inputs[0].shape == (1, 64, 128) and built.inputs[1].shape == (1,)


# ------------------------------------------------------------------------------ pyg, keras

def test_pyg_lists_whole_networks_and_traces_one():
    rows = {r["name"]: r for r in sources.get("pyg").iter_rows()}
    assert {"GCN", "GAT", "GIN", "GraphSAGE", "PNA", "AttentiveFP"} <= set(rows)
    assert not {"GAE", "JumpingKnowledge", "Node2Vec"} & set(rows)  # wrappers, layers, embeddings
    assert rows["GCN"]["module"] == "gcn" and rows["GCN"]["task"] == "graph-ml"
    graph = trace_manifest_row(sources.lookup("pyg:GraphSAGE"))
    assert graph["status"] == "ok" and json.loads(graph["inputs"])["x"]["shape"] == [12, 16]


def test_keras_applications_trace_on_the_torch_backend():
    rows = {r["name"]: r for r in sources.get("keras").iter_rows()}
    assert len(rows) >= 35 and "NASNetMobile" not in rows  # Keras refuses NASNet on torch
    assert rows["ResNet50V2"]["module"] == "resnetv2"
    row = sources.lookup("keras:MobileNetV3Small")
    graph = trace_manifest_row(row)
    assert graph["status"] == "ok"
    model = build("keras", json.loads(row["config"])).model
    seed_state = sum(v.numpy().size for v in model.variables if "seed_generator" in v.path)
    assert seed_state == 2  # the dropout's RNG state: a Keras variable, not a weight
    assert graph["params"] == model.count_params() + seed_state


def test_neuralforecast_lists_without_importing_and_traces_a_window():
    import sys

    rows = {r["name"]: r for r in sources.get("neuralforecast").iter_rows()}
    assert {"NHITS", "NBEATS", "PatchTST", "TSMixer", "iTransformer"} <= set(rows)
    assert not {"HINT", "TimeLLM", "xLSTM"} & set(rows)
    assert rows["NHITS"]["task"] == "time-series-forecasting"
    graph = trace_manifest_row(rows["TSMixer"])  # multivariate: 4 series
    assert graph["status"] == "ok" and "neuralforecast.models" in sys.modules


# ------------------------------------------------------------------------------ litgpt

def test_litgpt_lists_published_configs_without_importing_lightning():
    import subprocess
    import sys

    code = ("import sys; from narbuild.sources import litgpt as s; rows = list(s.iter_rows());"
            "print(len(rows), 'lightning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, imported = out.stdout.split()
    assert int(count) >= 200 and imported == "False"  # the config file alone, not the package
    rows = {r["name"]: r for r in sources.get("litgpt").iter_rows()}
    assert rows["Llama-3.1-8B-Instruct"]["module"] == "llama-3.1"
    assert rows["Qwen2.5-Coder-7B"]["module"] == "qwen2.5-coder"
    assert rows["pythia-70m-deduped"]["module"] == rows["pythia-12b"]["module"] == "pythia"
    assert rows["Mixtral-8x7B-v0.1"]["module"] == "mixtral"
    assert json.loads(rows["Llama-3.1-8B"]["metadata"])["n_layer"] == 32
    with pytest.raises(NarbuildError, match="did you mean litgpt:pythia-70m"):
        sources.lookup("litgpt:pythia-70")


def test_litgpt_traces_a_published_size_with_its_published_parameter_count():
    row = sources.lookup("litgpt:pythia-70m")
    built = build("litgpt", json.loads(row["config"]), device="meta")
    assert built.inputs[0].shape == (1, 32)
    graph = trace_manifest_row(row)
    assert graph["status"] == "ok" and graph["fallback"] == "meta"
    assert graph["params"] == 70_426_624  # Pythia's model card: 70,426,624 total parameters


# ------------------------------------------------------------------------------ torchtune

def test_torchtune_lists_its_published_builders_and_traces_one():
    rows = {r["name"]: r for r in sources.get("torchtune").iter_rows()}
    assert {"llama3_2_1b", "qwen2_5_7b_instruct", "gemma2_2b", "t5_v1_1_xxl_encoder"} <= set(rows)
    assert not [n for n in rows if n.startswith(("lora_", "qlora_"))]  # adapters need choosing
    assert rows["qwen2_5_0_5b"]["module"] == "qwen2_5"
    with pytest.raises(NarbuildError, match="did you mean torchtune:llama3_2_1b"):
        sources.lookup("torchtune:llama3_2_1")
    row = sources.lookup("torchtune:qwen2_5_0_5b")
    graph = trace_manifest_row(row)
    assert graph["status"] == "ok" and graph["fallback"] == "meta"
    assert graph["params"] == 494_032_768  # Qwen2.5-0.5B: 0.49B parameters, tied embeddings


def test_torchtune_llama3_1_builds_its_scaled_rope_cache_on_meta():
    row = sources.lookup("torchtune:llama3_2_1b")  # Llama 3.1's scaled RoPE, 16 layers
    built = build("torchtune", json.loads(row["config"]), device="meta")
    rope = next(m for m in built.model.modules() if hasattr(m, "rope_init"))
    assert rope.is_cache_built and rope.cache.is_meta
