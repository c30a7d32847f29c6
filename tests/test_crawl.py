"""`narbuild crawl` over the real offline registries."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from narbuild import NarbuildError, Workspace, crawl, sources
from narbuild.sources.transformers import head_of


def test_offline_catalog_counts(offline_manifest):
    import timm
    import torchvision

    rows = offline_manifest.table("manifest").read_rows()
    per_source = Counter(r["source"] for r in rows)
    assert per_source["timm"] == len(timm.list_models())
    assert per_source["torchvision"] == len(torchvision.models.list_models())
    assert per_source["transformers"] >= 1500
    assert set(per_source) == set(sources.offline_sources())  # every offline source, by default
    assert per_source["pytorchcv"] >= 800 and per_source["ultralytics"] >= 200
    assert len({r["model_id"] for r in rows}) == len(rows) >= 5000


def test_rows_carry_family_hints_and_buildable_configs(offline_manifest):
    rows = {r["model_id"]: r for r in offline_manifest.table("manifest").read_rows()}
    r50 = rows["timm:resnet50"]
    assert r50["module"] == "resnet" and r50["task"] == "image-classification"
    assert json.loads(r50["config"])["pretrained_cfg"]["input_size"] == [3, 224, 224]
    vit = rows["torchvision:vit_b_16"]
    assert vit["module"] == "vision_transformer"
    assert json.loads(vit["metadata"])["reference"]["num_params"] == 86567656
    assert rows["torchvision:fasterrcnn_resnet50_fpn"]["task"] == "object-detection"
    assert rows["torchvision:raft_small"]["task"] == "optical-flow"
    bert = rows["transformers:bert/ForSequenceClassification"]
    assert bert["model_type"] == "bert" and bert["architectures"] == ["BertForSequenceClassification"]
    assert json.loads(bert["config"])["config"]["hidden_size"] == 768
    assert rows["transformers:bert/Model"]["task"] == "feature-extraction"
    # A class listed under two mappings is one architecture: same config hash.
    aliases = [r for r in rows.values() if "@" in r["model_id"]]
    assert len(aliases) > 100
    for alias in aliases:
        base = rows[alias["model_id"].split("@")[0]]
        assert base["architectures"] == alias["architectures"]
        assert base["config_hash"] == alias["config_hash"]
    assert all(len(r["config_hash"]) == 64 for r in rows.values())


def test_recrawl_updates_in_place(tmp_path):
    ws = Workspace(tmp_path / "w", create=True)
    crawl(ws, ["torchvision"])
    first = ws.table("manifest").read()
    summary = crawl(ws, ["torchvision"])
    again = ws.table("manifest").read()
    assert again.num_rows == first.num_rows == summary.total_rows
    assert len(ws.table("manifest").parts()) == 1


def test_filters(tmp_path):
    ws = Workspace(tmp_path / "w", create=True)
    summary = crawl(ws, ["timm"], include=["timm:resnet*"], exclude=["*resnet50*"], limit=5)
    ids = ws.table("manifest").keys()
    assert summary.per_source == {"timm": 5} and len(ids) == 5
    assert all(i.startswith("timm:resnet") and "resnet50" not in i for i in ids)


def test_head_names():
    assert head_of("BertForMaskedLM", "BertModel") == "ForMaskedLM"
    assert head_of("GPT2LMHeadModel", "GPT2Model") == "LMHeadModel"
    assert head_of("Llama4TextModel", "Llama4ForConditionalGeneration") == "Llama4TextModel"


def test_cli_json_summary(tmp_path, run_cli):
    code, out, err = run_cli(["-w", str(tmp_path / "w"), "--json", "crawl", "-s", "torchvision",
                              "--include", "torchvision:resnet*"])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["per_source"] == {"torchvision": 5} and summary["total_rows"] == 5


@pytest.mark.parametrize("args, needle", [
    (["crawl", "-s", "nope"], "Invalid value for '--source'"),
    (["crawl", "-s", "timm", "--include", "zzz:*"], "no model matched"),
    (["push"], "needs --local-dir"),
    (["gen-nas", "--count", "0"], "Invalid value for '--count'"),
    (["trace", "--model", "timm:resnet5O"], "unknown model id"),
    (["trace"], "no narbuild workspace"),
])
def test_cli_bad_input_is_one_line(tmp_path, run_cli, args, needle):
    code, _, err = run_cli(["-w", str(tmp_path / "w"), *args])
    assert code != 0 and needle in err and "Traceback" not in err


def test_foreign_workspace_is_refused_and_untouched(tmp_path, run_cli):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    code, _, err = run_cli(["-w", str(foreign), "crawl", "-s", "torchvision"])
    assert code != 0 and "not a narbuild workspace" in err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_corrupt_and_foreign_parquet_are_named(tmp_path, run_cli):
    ws = Workspace(tmp_path / "w", create=True)
    crawl(ws, ["torchvision"], include=["torchvision:resnet18"])
    good = ws.table("manifest").parts()[0]
    bad = good.with_name("part-99999999999999999999-corrupt.parquet")
    bad.write_bytes(b"PAR1 not really")
    code, _, err = run_cli(["-w", str(ws.root), "crawl", "-s", "torchvision"])
    assert code != 0 and "not a readable Parquet file" in err and bad.name in err
    assert good.exists()
    bad.unlink()
    import pyarrow as pa
    pq.write_table(pa.table({"x": [1]}), bad)
    with pytest.raises(NarbuildError, match="foreign Parquet"):
        ws.table("manifest").read()
    assert good.exists()
