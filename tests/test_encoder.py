"""Encoders, `narbuild embed` and `narbuild eval`: metrics, the bundled checkpoint, the protocol."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import narbuild
from narbuild import Workspace
from narbuild.encoder.bundled import bundled_path
from narbuild.encoder.checkpoint import load_checkpoint
from narbuild.encoder.data import load_records, motif_graphs, raw_graphs
from narbuild.encoder.metrics import cosine_topk, evaluate_vectors, relevance, retrieval_metrics
from narbuild.encoder.train import TrainConfig, embed_nar, train_nar
from narbuild.encoder.wl import idf_weights, wl_family_tfidf, wl_tfidf
from narbuild.preprocess import preprocess

REAL = ["timm:resnet18", "timm:resnet34", "timm:resnet50", "timm:vit_tiny_patch16_224",
        "timm:vit_small_patch16_224", "timm:deit_tiny_patch16_224", "timm:mobilenetv3_small_100",
        "timm:mobilenetv3_large_100", "torchvision:resnet18", "torchvision:vgg11",
        "torchvision:vgg13", "transformers:bert/Model"]
TINY = ["--dim", "16", "--epochs", "2", "--motif-epochs", "1"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    """Real traced models (several families) and 60 NAS networks in 3 classes, preprocessed."""
    from narbuild.nasgen import generate
    from narbuild.tracing import trace_spec

    ws = Workspace(tmp_path_factory.mktemp("enc") / "ws", create=True)
    ws.table("graphs").append([trace_spec(m) for m in REAL])
    ws.table("nas").append(generate(count=60, classes=3, seed=0, pool=200))
    preprocess(ws, "all", workers=1)
    return ws


def test_metrics_match_trec_eval_on_random_rankings():
    """MRR, NDCG and (where R <= k, so both denominators agree) MAP against trec_eval."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 12, size=300)
    vectors = rng.normal(size=(300, 8))
    queries = np.arange(0, 300, 7)
    k = 20
    ranked = cosine_topk(vectors, queries, k)
    rel, num_relevant = relevance(labels, queries, ranked)
    ours = retrieval_metrics(rel, num_relevant, ks=(k,))
    qrels = {str(q): {str(d): 1 for d in np.flatnonzero(labels == labels[q]) if d != q}
             for q in queries}
    run = {str(q): {str(d): float(k - i) for i, d in enumerate(ranked[j])}
           for j, q in enumerate(queries)}
    trec = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank", f"ndcg_cut.{k}", f"map_cut.{k}"})
    scores = trec.evaluate(run)
    assert ours[f"mrr@{k}"] == pytest.approx(np.mean([s["recip_rank"] for s in scores.values()]))
    assert ours[f"ndcg@{k}"] == pytest.approx(np.mean([s[f"ndcg_cut_{k}"]
                                                        for s in scores.values()]))
    small = num_relevant <= k  # here trec's 1/R equals the protocol's 1/min(R, k)
    ap = retrieval_metrics(rel[small], num_relevant[small], ks=(k,))[f"map@{k}"]
    trec_ap = np.mean([scores[str(q)][f"map_cut_{k}"] for q in queries[small]])
    assert ap == pytest.approx(trec_ap)


def test_map_divides_by_min_of_k_and_relevant_count():
    rel = np.array([[True, True, False, True]])
    # P@1 = 1, P@2 = 1, P@4 = 3/4; R = 10 relevant in all, k = 4 -> divide by 4, not by 10
    assert retrieval_metrics(rel, np.array([10]), ks=(4,))["map@4"] == pytest.approx(2.75 / 4)
    assert retrieval_metrics(rel, np.array([10]), ks=(4,))["mrr@4"] == 1.0


def test_wl_colour_codes_equal_numpy_unique():
    from narbuild.encoder.wl import _sorted_codes

    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64)[rng.integers(0, 900, 20000)]
    features, codes = _sorted_codes(values)
    expected_features, expected_codes = np.unique(values, return_inverse=True)
    assert np.array_equal(features, expected_features) and np.array_equal(codes, expected_codes)


def test_wl_tfidf_scores_isomorphic_graphs_one(workspace):
    records = load_records(workspace, "real")
    vectors = wl_tfidf(raw_graphs(records))
    sims = (vectors @ vectors.T).toarray()
    assert np.allclose(np.diag(sims), 1)
    names = records.table["model_ids"].to_pylist()
    r18, r34, vit = (next(i for i, ids in enumerate(names) if m in ids)
                     for m in ("timm:resnet18", "timm:resnet34", "timm:vit_tiny_patch16_224"))
    assert sims[r18, r34] > sims[r18, vit]


def test_family_idf_counts_families_not_records():
    import scipy.sparse as sp

    counts = sp.csr_matrix(np.array([[2, 1, 0], [1, 0, 0], [1, 0, 0], [0, 1, 1]]))
    # column 0: 3 of 4 records but 1 of 2 families; column 1: 2 records in 2 families
    by_family = idf_weights(counts, np.array([7, 7, 7, 9]))
    assert np.allclose(by_family, np.log(3 / np.array([2, 3, 2])) + 1)
    assert np.allclose(idf_weights(counts), np.log(5 / np.array([4, 3, 2])) + 1)


def test_wl_fam_reads_the_training_families_only(workspace):
    records = load_records(workspace, "real")
    raw, labels, train = raw_graphs(records), records.labels.copy(), records.train
    assert len(records.test) and len(train)
    fitted = wl_family_tfidf(raw, labels, train)
    assert np.allclose(np.asarray(fitted.multiply(fitted).sum(1)).ravel(), 1)
    relabelled = labels.copy()
    relabelled[records.test] = labels.max() + 1 + np.arange(len(records.test))
    assert (wl_family_tfidf(raw, relabelled, train) != fitted).nnz == 0
    merged = np.zeros_like(labels)  # one family: the idf (and so the vectors) change
    assert (wl_family_tfidf(raw, merged, train) != fitted).nnz > 0


def test_bundled_checkpoints_load_weights_only_and_embed_deterministically(workspace):
    for method, encoder in (("wl-metric", "wlm"), ("nar", "nar")):
        for dataset in ("real", "nas"):
            path = bundled_path(method, dataset)
            assert path.stat().st_size < 20e6
            payload = torch.load(path, weights_only=True)
            assert payload["method"] == encoder and payload["dataset"] == dataset
    model, meta = load_checkpoint(bundled_path("nar", "real"))
    records = load_records(workspace, "real")
    motifs = motif_graphs(records)
    cpu = torch.device("cpu")
    full = embed_nar(model, motifs, cpu)
    assert full.shape == (len(records), meta["config"]["dim"]) and np.isfinite(full).all()
    assert np.allclose(embed_nar(model, motifs, cpu), full, atol=1e-5)


def test_embed_cli_bundled_writes_one_row_per_record(workspace, run_cli):
    """The default is the bundled wl-metric encoder; --method nar takes the bundled NAR one."""
    code, out, _ = run_cli(["-w", str(workspace.root), "--json", "embed"])
    assert code == 0
    summary = json.loads(out)["datasets"]
    rows = workspace.table("embeddings").read().to_pylist()
    processed = workspace.table("processed").read()
    assert len(rows) == processed.num_rows == sum(d["records"] for d in summary.values())
    assert {r["record_id"] for r in rows} == set(processed["record_id"].to_pylist())
    assert all(r["method"] == "wl-metric" and r["encoder_id"].startswith("wl-metric@")
               and r["encoder_id"].endswith("(bundled)") and len(r["vector"]) == r["dim"]
               for r in rows)
    run_cli(["-w", str(workspace.root), "-q", "embed", "--dataset", "real"])
    assert workspace.table("embeddings").read().num_rows == len(rows)  # replaced, not added
    assert run_cli(["-w", str(workspace.root), "-q", "embed", "--method", "nar"])[0] == 0
    nar = [r for r in workspace.table("embeddings").read().to_pylist() if r["method"] == "nar"]
    assert len(nar) == len(rows) and all(r["dim"] == 512 and "bundled" in r["encoder_id"]
                                         for r in nar)


def test_embeddings_are_stored_per_dataset_and_an_old_workspace_moves(workspace, run_cli,
                                                                      tmp_path):
    """A search of one dataset reads only its vectors; a workspace embedded before (all
    vectors in one folder) still searches, and its next embed moves them."""
    ws = Workspace(shutil.copytree(workspace.root, tmp_path / "ws"))
    assert run_cli(["-w", str(ws.root), "-q", "embed"])[0] == 0
    table = ws.table("embeddings")
    every = table.read()
    for name in ("real", "nas"):
        assert set(table.read(subdir=name)["dataset"].to_pylist()) == {name}
    shutil.rmtree(table.path)
    table.append(every)  # the old layout: one part holding both datasets
    assert narbuild.search("timm:resnet18", workspace=ws, method="nar", k=1).hits
    assert run_cli(["-w", str(ws.root), "-q", "embed", "--dataset", "real"])[0] == 0
    assert not list(table.path.glob("*.parquet")) and table.read().num_rows == every.num_rows
    for name in ("real", "nas"):
        assert set(table.read(subdir=name)["dataset"].to_pylist()) == {name}


def test_embed_train_saves_a_checkpoint_that_reproduces_its_vectors(workspace, run_cli,
                                                                   tmp_path):
    ckpt = tmp_path / "gcn.pt"
    code, _, err = run_cli(["-w", str(workspace.root), "-q", "embed", "--dataset", "nas",
                            "--method", "gcn", "--train", *TINY, "--save-checkpoint", str(ckpt)])
    assert code == 0, err
    first = {r["record_id"]: r["vector"] for r in workspace.table("embeddings").read().to_pylist()
             if r["method"] == "gcn"}
    run_cli(["-w", str(workspace.root), "-q", "embed", "--dataset", "nas", "--method", "gcn",
             "--checkpoint", str(ckpt)])
    again = {r["record_id"]: r["vector"] for r in workspace.table("embeddings").read().to_pylist()
             if r["method"] == "gcn"}
    assert first.keys() == again.keys()
    assert all(np.allclose(first[k], again[k], atol=1e-5) for k in first)


def test_nar_training_separates_nas_classes(workspace):
    records = load_records(workspace, "nas")
    motifs = motif_graphs(records)
    cfg = TrainConfig(dim=32, epochs=30, motif_epochs=2, batch=64, loss="cl")
    model, stats = train_nar(records, motifs, cfg, torch.device("cpu"))
    assert len(stats.epoch_seconds["motif"]) == 2 and len(stats.epoch_seconds["graph"]) == 30
    vectors = embed_nar(model, motifs, torch.device("cpu"))
    queries = np.arange(len(records))  # every record: 3 classes of 20, chance MAP@10 ~ 0.32
    assert evaluate_vectors(vectors, records.labels, queries, ks=(10,))["map@10"] > 0.45


def test_eval_cli_reports_every_method_on_both_datasets(workspace, run_cli):
    code, out, err = run_cli(["-w", str(workspace.root), "--json", "eval", "--seeds", "0,1",
                              *TINY])
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"real", "nas"}
    for methods in report.values():
        assert set(methods) == {"nar", "nar-cl", "nar-cl+wl-fam", "gcn", "gat", "wl", "wl-fam",
                                "vae"}
        for metrics in methods.values():
            assert len(metrics) == 9 and all(0 <= v <= 1 for v in metrics.values())
    folder = workspace.root / "reports"
    assert json.loads((folder / "eval.json").read_text()) == report
    details = json.loads((folder / "eval-details.json").read_text())
    assert details["datasets"]["real"]["methods"]["gcn"]["seeds"] == 2
    assert "| real | wl |" in (folder / "eval.md").read_text()


def test_embed_and_eval_errors_are_one_line(workspace, run_cli, tmp_path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    cases = [
        (["embed", "--checkpoint", str(bogus)], "not a loadable checkpoint"),
        (["embed", "--checkpoint", str(tmp_path / "missing.pt")], "no checkpoint at"),
        (["embed", "--method", "gcn"], "no bundled gcn encoder"),
        (["embed", "--save-checkpoint", str(tmp_path / "x.pt")], "needs --train"),
        (["eval", "--methods", "nar,transformer"], "unknown method(s) transformer"),
        (["eval", "--seeds", "a,b"], "--seeds must be integers"),
    ]
    if not torch.cuda.is_available():
        cases.append((["embed", "--device", "cuda"], "no CUDA GPU is available"))
    for args, message in cases:
        code, _, err = run_cli(["-w", str(workspace.root), *args])
        assert code != 0 and message in err and err.count("\n") == 1, (args, err)
    empty = Workspace(tmp_path / "empty", create=True)
    code, _, err = run_cli(["-w", str(empty.root), "embed"])
    assert code != 0 and "processed" in err and "Traceback" not in err


@pytest.mark.parametrize("directed", [False, True])
def test_fast_gcn_inference_equals_pyg_message_passing(directed):
    """GNN.pool in eval mode (table-row projections, one sparse adjacency) gives GCNConv's
    numbers, for id inputs (operators) and table inputs (motif embeddings)."""
    from narbuild.encoder.graphs import GraphStore
    from narbuild.encoder.models import GNN

    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 40, size=25)
    xs = [rng.integers(0, 30, size=n) for n in sizes]
    srcs = [rng.integers(0, n, size=2 * n) for n in sizes]
    dsts = [rng.integers(0, n, size=2 * n) for n in sizes]
    chain = np.arange(11)  # a block repeated 12 times: many nodes share one state
    xs.append(np.tile([3, 7, 7], 12))
    srcs.append(np.concatenate([3 * chain, 3 * chain + 1, 3 * chain + 2]))
    dsts.append(np.concatenate([3 * chain + 1, 3 * chain + 2, 3 * chain + 3]))
    store = GraphStore.from_lists(xs, srcs, dsts)
    ids = np.concatenate([np.arange(26), [0, 25, 4, 25]])  # and graphs repeated in a batch
    g = store.batch(ids, undirected=not directed)
    table = torch.randn(30, 16)
    torch.manual_seed(0)
    for gnn, tab in ((GNN("gcn", 16, 3, num_ids=30), None), (GNN("gcn", 16, 3, in_dim=16), table),
                     (GNN("gcn", 16, 2, num_ids=30), None), (GNN("gcn", 16, 1, in_dim=16), table)):
        gnn.eval()
        with torch.no_grad():
            fast = gnn.pool(g, tab)
            gnn.kind = "reference"  # the plain message-passing path
            slow = gnn.pool(g, tab)
        assert fast.shape == (len(ids), 16) and torch.allclose(fast, slow, atol=1e-5, rtol=1e-4)


def test_fast_gcn_inference_computes_each_distinct_node_state_once():
    from narbuild.encoder.graphs import GraphStore
    from narbuild.encoder.models import _propagate_distinct, normalised_adjacency

    chain = GraphStore.from_lists([np.array([1, 2, 2, 2, 2, 1])], [np.arange(5)],
                                  [np.arange(1, 6)]).batch([0, 0, 0])
    adj = normalised_adjacency(chain.edge_index, len(chain.x), torch.float32)
    states = torch.randn(3, 4, dtype=torch.float32)
    rows, node_row = _propagate_distinct(adj, chain.x, states)
    # per chain: the two ends, the nodes next to them, the two middle nodes: 3 states
    one = node_row[:6].tolist()
    assert len(rows) == 3 and one == one[::-1] and len(set(one)) == 3
    assert node_row.tolist() == one * 3
    assert torch.allclose(rows[node_row], torch.sparse.mm(adj, states[chain.x]), atol=1e-6)


def test_motif_graphs_cut_each_distinct_motifs_first_instance(workspace):
    """The vectorised motif_graphs against its definition, one motif instance at a time."""
    from narbuild.preprocess.motifs import context_graph

    records = load_records(workspace, "real")
    data = motif_graphs(records)
    t = records.table
    assert len(data.keys) == len(set(data.keys)) == len(data.motifs) == len(data.first)
    for k, (r, instance) in enumerate(data.first):
        keys, macro = t["motif_keys"][r].as_py(), np.array(t["macro_motif"][r].as_py())
        assert keys[macro[instance]] == data.keys[k] and instance == np.argmax(macro == macro[instance])
        assert data.keys[k] not in {key for row in t["motif_keys"][:r].to_pylist() for key in row}
        nodes, src, dst = context_graph(np.array(t["node_motif"][r].as_py()),
                                        t["edge_src"][r].as_py(), t["edge_dst"][r].as_py(),
                                        instance, hops=0)
        one = data.motifs.batch([k], undirected=False)
        assert one.x.tolist() == np.array(t["op_ids"][r].as_py())[nodes].tolist()
        assert one.edge_index.tolist() == [src.tolist(), dst.tolist()]
    for r in range(len(records)):
        keys = t["motif_keys"][r].as_py()
        macro = data.macro.batch([r], undirected=False)
        assert [data.keys[i] for i in macro.x] == [keys[j] for j in t["macro_motif"][r].as_py()]
        assert macro.edge_index.tolist() == [t["macro_edge_src"][r].as_py(),
                                             t["macro_edge_dst"][r].as_py()]


def test_fusion_averages_the_two_cosines():
    import scipy.sparse as sp

    from narbuild.encoder.wl import fuse_with_wl

    rng = np.random.default_rng(1)
    dense = rng.normal(size=(6, 8))
    wl = sp.csr_matrix(np.abs(rng.normal(size=(6, 20))) * (rng.random((6, 20)) < 0.4) + 1e-3)
    wl = sp.diags(1 / np.sqrt(np.asarray(wl.multiply(wl).sum(1)).ravel())) @ wl
    fused = fuse_with_wl(dense, wl, weight=0.3)
    unit = dense / np.linalg.norm(dense, axis=1, keepdims=True)
    expected = 0.3 * unit @ unit.T + 0.7 * (wl @ wl.T).toarray()
    assert np.allclose((fused @ fused.T).toarray(), expected)


def test_distinct_readout_ignores_how_often_a_motif_repeats():
    from narbuild.encoder.models import distinct_mean_pool

    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [2.0, 2.0]])
    ids = torch.tensor([7, 3, 3, 3, 7])  # graph 0: motif 7 once, motif 3 three times
    batch = torch.tensor([0, 0, 0, 0, 1])
    pooled = distinct_mean_pool(h, ids, batch, 2)
    assert torch.allclose(pooled, torch.tensor([[0.5, 0.5], [2.0, 2.0]]))  # mean: [0.25, 0.75]


def test_method_registry_drives_training_and_checkpoints(workspace, tmp_path):
    from narbuild.encoder.checkpoint import save_checkpoint
    from narbuild.encoder.methods import LEARNED, learned

    assert {"nar", "nar-cl", "nar-set", "gcn", "gat", "vae"} <= set(LEARNED)
    with pytest.raises(Exception, match="unknown learned method 'nar-x'"):
        learned("nar-x")
    spec = learned("nar-set")
    cfg = spec.config(TrainConfig(dim=16, epochs=2, motif_epochs=1))
    assert (cfg.loss, cfg.readout) == ("cl", "distinct")
    records = load_records(workspace, "real")
    motifs = motif_graphs(records)
    model, _ = train_nar(records, motifs, cfg, torch.device("cpu"))
    assert model.macro.readout == "distinct"
    save_checkpoint(model, "nar", "real", cfg, records.label_names, tmp_path / "set.pt")
    loaded, meta = load_checkpoint(tmp_path / "set.pt")
    assert loaded.macro.readout == "distinct" and meta["config"]["readout"] == "distinct"
    assert np.allclose(embed_nar(model, motifs, torch.device("cpu")),
                       embed_nar(loaded, motifs, torch.device("cpu")), atol=1e-5)


def test_wl_metric_is_a_learned_map_of_wl_fams_bag(workspace):
    """wl-metric (encoder wlm): its input rows are wl-fam's over the training colours, colours
    a new graph brings are dropped, and it embeds unit vectors through the method registry."""
    from narbuild.encoder.data import Inputs
    from narbuild.encoder.methods import learned
    from narbuild.encoder.train import vectors_of
    from narbuild.encoder.wl import FAMILY_ROUNDS, family_rows, wl_counts
    from narbuild.encoder.wlmetric import train_wl_metric

    records = load_records(workspace, "real")
    inputs = Inputs(records)
    spec = learned("wl-metric")
    cfg = TrainConfig(dim=32, epochs=2, batch=64)
    model, stats = train_wl_metric(records, *inputs.wl_counts(FAMILY_ROUNDS), cfg,
                                   torch.device("cpu"))
    assert len(stats.epoch_seconds["graph"]) == 3  # the untrained block 0, then 2 epochs
    vectors = vectors_of(spec.encoder, model, inputs, torch.device("cpu"))
    assert vectors.shape == (len(records), 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    counts, _ = wl_counts(inputs.raw, FAMILY_ROUNDS)
    seen = np.flatnonzero(np.asarray((counts[records.train] > 0).sum(0)).ravel())
    expected, _ = family_rows(counts[:, seen].tocsr(), records.labels, records.train)
    assert abs(model.rows(*inputs.wl_counts(FAMILY_ROUNDS)) - expected).max() < 1e-6
    test = records.test  # their colours outside the training records count for nothing
    unseen = np.setdiff1d(np.flatnonzero(np.asarray((counts[test] > 0).sum(0)).ravel()), seen)
    assert len(unseen) and model.rows(*inputs.wl_counts(FAMILY_ROUNDS)).shape[1] == len(seen)


def test_wl_metric_trains_saves_embeds_and_searches(workspace, run_cli, tmp_path):
    """embed --train --method wl-metric writes a checkpoint (its colours in it) that loads
    weights-only and reproduces its vectors; search embeds a new model's query with it."""
    from narbuild.encoder.data import Inputs
    from narbuild.encoder.train import vectors_of

    ws = Workspace(shutil.copytree(workspace.root, tmp_path / "ws"))
    code, out, err = run_cli(["-w", str(ws.root), "--json", "embed", "--dataset", "real",
                              "--method", "wl-metric", "--train"])
    ckpt = ws.root / "checkpoints" / "wl-metric-real.pt"  # where search finds it
    assert code == 0, err
    assert json.loads(out)["datasets"]["real"]["encoder_id"].startswith("wl-metric@")
    payload = torch.load(ckpt, weights_only=True)
    assert payload["method"] == "wlm" and payload["extra"]["colours"] > 0
    assert payload["state_dict"]["proj"].dtype == torch.int8  # a quarter of float32's size
    model, _ = load_checkpoint(ckpt)
    records = load_records(ws, "real")
    stored = {r["record_id"]: r["vector"] for r in ws.table("embeddings").read(
        subdir="real").to_pylist() if r["method"] == "wl-metric"}
    again = vectors_of("wlm", model, Inputs(records), torch.device("cpu"))
    assert all(np.allclose(stored[r], v, atol=1e-5) for r, v in zip(records.record_ids, again))
    hits = narbuild.search("timm:resnet26", workspace=ws, method="wl-metric", k=3).hits
    assert len(hits) == 3 and hits[0].model_id.startswith("timm:resnet")
    scale, payload["state_dict"]["proj_scale"] = payload["state_dict"]["proj_scale"], torch.ones(3, 1)
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(Exception, match="int8 map and row scales do not fit"):
        load_checkpoint(tmp_path / "bad.pt")
    payload["state_dict"]["proj_scale"], payload["extra"]["colours"] = scale, -1
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(Exception, match="number of WL colours"):
        load_checkpoint(tmp_path / "bad.pt")
