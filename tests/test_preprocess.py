"""`narbuild preprocess`: vocabulary, removal, labels, duplicates, motifs, macro graphs, split."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from narbuild import Workspace
from narbuild.errors import NarbuildError
from narbuild.preprocess import (
    OP_ID,
    PUBLISHED,
    VOCAB,
    clean_graph,
    coarse_label,
    context_graph,
    fine_label,
    graph_hash,
    name_hint,
    normalise_op,
    preprocess,
    remove_nodes,
    split_graph,
    stratified_split,
)
from narbuild.preprocess.motifs import fixed_sizes

REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/nar-operators-89.txt"


@pytest.fixture(scope="module")
def traced():
    """Graphs rows of a few real models, traced once for the module."""
    from narbuild.tracing import trace_spec

    ids = ["timm:resnet50", "timm:resnet101", "torchvision:vit_b_16", "transformers:bert/Model"]
    rows = {m: trace_spec(m) for m in ids}
    assert all(r["status"] == "ok" for r in rows.values())
    return rows


def _clean(row):
    return clean_graph(row["nodes"], row["edge_src"], row["edge_dst"])


def _multi(cut):
    """Motif keys of more than one node, with their number of instances."""
    return Counter(k for k, n in zip(cut.keys, cut.sizes) if n > 1)


# --------------------------------------------------------------------------- operators


def test_vocabulary_ids_are_the_published_order_then_extras():
    if REFERENCE.exists():
        names = [x.strip() for x in REFERENCE.read_text().splitlines()
                 if x.strip() and not x.startswith("#")]
        assert tuple(names) == PUBLISHED
    assert len(PUBLISHED) == 89 and VOCAB[0] == "unknown"
    assert OP_ID["Mean"] == 1 and OP_ID["UnsafeView"] == 89 and VOCAB[90] == "Acos"
    assert len(set(VOCAB)) == len(VOCAB)


@pytest.mark.parametrize("raw, name", [
    ("AddmmBackward0", "Addmm"), ("NativeBatchNormLegitNoTrainingBackward0", "NativeBatchNorm"),
    ("SafeSoftmaxBackward0", "Softmax"), ("LinalgVectorNormBackward0", "Norm"),
    ("TransposeBackward1", "Transpose"), ("XSoftmaxBackward", "XSoftmax"),
    ("AccumulateGrad", "AccumulateGrad"), ("UnbindBackward0", "Unbind"),
])
def test_modern_names_fold_onto_the_published_spelling(raw, name):
    assert normalise_op(raw) == name


def test_unknown_operators_keep_their_name():
    g = clean_graph(["MyOpBackward", "ReluBackward0", "UnbindBackward0"], [0, 1], [1, 2])
    assert g.op_names == ["MyOp", "Relu", "Unbind"]
    assert g.op_ids.tolist() == [0, OP_ID["Relu"], OP_ID["Unbind"]]
    assert OP_ID["Unbind"] >= 90


def test_removal_links_producers_to_consumers_like_the_tracer():
    from narbuild.tracing import OpGraph, remove_ops

    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 25)
        edges = sorted({(a, b) for a in range(n) for b in range(a + 1, n) if rng.random() < 0.2})
        nodes = [rng.choice(["A", "B", "T", "AccumulateGrad"]) for _ in range(n)]
        want = remove_ops(OpGraph(nodes, edges), {"T", "AccumulateGrad"})
        src, dst = (np.array([e[i] for e in edges], dtype=np.int64) for i in (0, 1))
        kept, s, d = remove_nodes(n, src, dst, np.isin(nodes, ["T", "AccumulateGrad"]))
        assert [nodes[i] for i in kept] == want.nodes
        assert list(zip(s.tolist(), d.tolist())) == want.edges


def test_graph_hash_ignores_node_order_but_not_structure():
    ops, src, dst = ["A", "B", "C", "D"], [0, 1, 0, 3], [1, 2, 3, 2]
    perm = [2, 0, 3, 1]
    shuffled = [""] * 4
    for old, new in enumerate(perm):
        shuffled[new] = ops[old]
    same = graph_hash(shuffled, np.take(perm, src), np.take(perm, dst))
    assert same == graph_hash(ops, np.array(src), np.array(dst))
    assert graph_hash(ops, np.array([0, 1, 0, 1]), np.array([1, 2, 3, 3])) != same


# --------------------------------------------------------------------------- labels


def test_fine_labels_from_metadata_with_aliases_and_name_hints():
    assert fine_label({"source": "timm", "module": "vision_transformer"})[0] == "vit"
    assert fine_label({"source": "torchvision", "module": "vision_transformer"})[0] == "vit"
    assert fine_label({"source": "transformers", "model_type": "vit"})[0] == "vit"
    assert fine_label({"source": "torchvision", "module": "detection.faster_rcnn"})[0] \
        == "faster_rcnn"
    assert fine_label({"source": "torchvision", "module": "quantization.resnet"})[0] == "resnet"
    assert fine_label({"source": "torchvision", "module": "video.resnet"})[0] == "resnet3d"
    assert fine_label({"source": "hf-hub", "model_id": "hf:someone/my-roberta-ft"}) \
        == ("roberta", "name-hint")
    assert name_hint("distilgpt2") == "gpt2" and name_hint("xyz") == "unknown"


def test_coarse_labels_read_off_real_graphs(traced):
    labels = {m: coarse_label(*_fields(_clean(r))) for m, r in traced.items()}
    assert labels == {"timm:resnet50": "cnn-block", "timm:resnet101": "cnn-block",
                      "torchvision:vit_b_16": "attention-block",
                      "transformers:bert/Model": "attention-block"}
    assert coarse_label(["Addmm", "Relu", "Addmm"], np.array([0, 1]), np.array([1, 2])) == "other"


def _fields(g):
    return g.op_names, g.src, g.dst


# --------------------------------------------------------------------------- motifs


def test_resnet50_and_resnet101_share_the_bottleneck_motif(traced):
    r50 = split_graph(*_fields(_clean(traced["timm:resnet50"])), steps=2)
    r101 = split_graph(*_fields(_clean(traced["timm:resnet101"])), steps=2)
    block50, count50 = _multi(r50).most_common(1)[0]
    block101, count101 = _multi(r101).most_common(1)[0]
    assert block50 == block101 and count101 > count50 >= 4
    ops = _motif_ops(_clean(traced["timm:resnet50"]), r50, block50)
    assert Counter(ops) >= Counter({"Convolution": 3, "NativeBatchNorm": 3, "Relu": 3, "Add": 1})
    assert len(set(_multi(r50)) & set(_multi(r101))) >= 2


def _motif_ops(g, cut, key):
    i = cut.keys.index(key)
    return [g.op_names[v] for v in np.flatnonzero(cut.node_motif == i)]


def test_vit_repeated_motif_covers_a_transformer_block(traced):
    g = _clean(traced["torchvision:vit_b_16"])
    cut = split_graph(*_fields(g), steps=2)
    key, count = _multi(cut).most_common(1)[0]
    ops = set(_motif_ops(g, cut, key))
    assert count >= 10  # 12 layers; the first and last differ at their borders
    assert {"NativeLayerNorm", "Softmax", "Bmm", "Gelu", "Add", "Addmm"} <= ops


def test_macro_graphs_are_much_smaller_and_connected(traced):
    for row in traced.values():
        g = _clean(row)
        cut = split_graph(*_fields(g))
        assert g.num_nodes / cut.num_motifs >= 4
        assert cut.node_motif.max() == cut.num_motifs - 1 and len(cut.macro_src) > 0
        cross = cut.node_motif[g.src] != cut.node_motif[g.dst]
        assert len(cut.macro_src) == len({(a, b) for a, b in zip(cut.node_motif[g.src][cross],
                                                                  cut.node_motif[g.dst][cross])})


def test_more_steps_see_further_and_change_labels(traced):
    g = _clean(traced["timm:resnet50"])
    one, three = split_graph(*_fields(g), steps=1), split_graph(*_fields(g), steps=3)
    assert set(one.keys) != set(three.keys)


def test_table2_baseline_splitters():
    assert fixed_sizes(35, "nodes:16").tolist() == [16, 16, 3]
    assert fixed_sizes(35, "count:4").sum() == 35 and len(fixed_sizes(35, "count:4")) == 4
    sizes = fixed_sizes(200, "random:4-8", seed=3)
    assert sizes.sum() == 200 and sizes[:-1].min() >= 4 and sizes.max() <= 8
    assert fixed_sizes(200, "random:4-8", seed=3).tolist() == sizes.tolist()
    with pytest.raises(NarbuildError, match="unknown splitter"):
        fixed_sizes(10, "blocks")


def test_context_graph_adds_k_hop_neighbours():
    src, dst = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])
    node_motif = np.array([0, 0, 1, 1, 2])
    nodes, s, d = context_graph(node_motif, src, dst, motif=1, hops=1)
    assert nodes.tolist() == [1, 2, 3, 4] and list(zip(s, d)) == [(0, 1), (1, 2), (2, 3)]


# --------------------------------------------------------------------------- split


def test_split_is_stratified_seeded_and_order_free():
    ids = [f"r{i}" for i in range(103)]
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 12 + ["solo"]
    split = dict(zip(ids, stratified_split(ids, labels, seed=7)))
    tests = Counter(lbl for i, lbl in zip(ids, labels) if split[i] == "test")
    assert tests == {"a": 6, "b": 3, "c": 1} and split["r102"] == "train"
    shuffled = list(zip(ids, labels))[::-1]
    again = stratified_split([i for i, _ in shuffled], [lbl for _, lbl in shuffled], seed=7)
    assert dict(zip([i for i, _ in shuffled], again)) == split
    assert stratified_split(ids, labels, seed=8) != stratified_split(ids, labels, seed=7)


# --------------------------------------------------------------------------- the stage


def _workspace(tmp_path, traced) -> Workspace:
    ws = Workspace(tmp_path / "ws", create=True)
    rows = [dict(r) for r in traced.values()]
    twin = dict(traced["timm:resnet50"], model_id="timm:resnet50_twin")
    broken = {"model_id": "timm:broken", "status": "error", "error": "meta: boom",
              "traced_at": twin["traced_at"]}
    ws.table("graphs").append(rows + [twin, broken])
    return ws


def test_preprocess_writes_torch_geometric_ready_records(tmp_path, traced):
    ws = _workspace(tmp_path, traced)
    summary = preprocess(ws, "real", steps=2, workers=1).as_dict()["datasets"]["real"]
    assert summary["errors"] == 1 and summary["collapsed"] == 1 and summary["records"] == 4
    assert summary["coarse_labels"] == {"cnn-block": 2, "attention-block": 2}
    assert summary["median_compression"] >= 4 and 0 <= summary["outside_published_share"] < 0.1
    rows = {r["model_id"]: r for r in ws.table("processed").read().to_pylist()}
    r50 = rows["timm:resnet50"]
    assert r50["model_ids"] == ["timm:resnet50", "timm:resnet50_twin"]
    assert r50["record_id"].startswith("real:") and r50["split"] in ("train", "test")
    assert [VOCAB[i] if i else n for i, n in zip(r50["op_ids"], r50["op_names"])] \
        == r50["op_names"]
    assert "AccumulateGrad" not in r50["op_names"] and "T" not in r50["op_names"]
    import torch
    from torch_geometric.data import Data

    data = Data(x=torch.tensor(r50["op_ids"]),
                edge_index=torch.tensor([r50["edge_src"], r50["edge_dst"]]))
    assert data.num_nodes == r50["num_nodes"] and data.num_edges == r50["num_edges"]
    assert len(r50["node_motif"]) == r50["num_nodes"]
    assert max(r50["macro_motif"]) == len(r50["motif_keys"]) - 1


def test_preprocess_is_rerunnable_without_duplicate_rows(tmp_path, traced):
    ws = _workspace(tmp_path, traced)
    preprocess(ws, "real", workers=1)
    first = ws.table("processed").read(["record_id", "split", "motif_keys"]).to_pylist()
    preprocess(ws, "real", workers=1)
    assert ws.table("processed").read(["record_id", "split", "motif_keys"]).to_pylist() == first


def test_preprocess_nas_table(tmp_path):
    from narbuild.nasgen import generate

    ws = Workspace(tmp_path / "ws", create=True)
    ws.table("nas").append(generate(count=24, classes=3, seed=0, pool=200))
    summary = preprocess(ws, "all", workers=2).as_dict()["datasets"]
    assert list(summary) == ["nas"] and summary["nas"]["records"] == 24
    rows = ws.table("processed").read().to_pylist()
    assert {r["fine_label"] for r in rows} == {"nas-0", "nas-1", "nas-2"}
    assert {r["coarse_label"] for r in rows} == {"cnn-block"}
    assert all(r["record_id"].startswith("nas:") and r["genotype"] for r in rows)
    assert summary["nas"]["median_compression"] > 2


def test_cli_preprocess_json_and_one_line_errors(tmp_path, traced, capsys):
    from narbuild.cli import cli, main
    from narbuild.preprocess.cli import preprocess as command

    cli.add_command(command)
    ws = _workspace(tmp_path, traced)
    main(["-w", str(ws.root), "--json", "preprocess", "--dataset", "real", "--workers", "1"])
    out = json.loads(capsys.readouterr().out)
    assert out["datasets"]["real"]["records"] == 4 and out["steps"] == 2
    with pytest.raises(SystemExit) as exc:
        main(["-w", str(ws.root), "preprocess", "--splitter", "blocks"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown splitter" in err
    with pytest.raises(SystemExit):
        main(["-w", str(tmp_path / "empty"), "preprocess"])
    assert "no narbuild workspace" in capsys.readouterr().err
