"""`narbuild search` and `narbuild.search`: relatives of unseen models, caching, bad input."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from query_models import QUERIES

import narbuild
from narbuild import Workspace
from narbuild.retrieval import VectorIndex
from narbuild.retrieval.query import QueryGraph

TESTED = ["resnet_deep_stage", "resnet_basic_shallow", "vit_narrow_shallow", "vit_patch32_tiny",
          "convnext_custom", "densenet_small", "vgg_short", "bert_small", "gpt2_small", "t5_small"]


@pytest.mark.parametrize("name", TESTED)
def test_unseen_models_land_among_their_relatives(catalog, name):
    factory, families = QUERIES[name]
    result = narbuild.search(factory(), k=5, workspace=catalog)
    right = [bool(families & set(hit.families)) for hit in result.hits]
    assert sum(right) >= 3, [(h.model_id, h.families, h.score) for h in result.hits]


def test_wl_fam_orders_depth_ties_by_wl(catalog):
    """VGGs differ only in depth, so colour presence ties them at 1.0; the wl cosine puts the
    query itself first anyway."""
    tied = 0
    for name in ("timm:vgg11", "timm:vgg13", "timm:vgg16", "timm:vgg19"):
        hits = narbuild.search(name, k=2, workspace=catalog, method="wl-fam").hits
        assert name in hits[0].model_ids, [(h.model_id, h.score) for h in hits]
        tied += hits[1].score == pytest.approx(1.0, abs=1e-6)
    assert tied >= 2


METHODS = ["wl", "wl-fam", "wl-metric", "wl-metric+wl-fam", "nar", "nar+wl-fam"]


@pytest.mark.parametrize("method", METHODS)
def test_a_catalog_model_finds_itself_first(catalog, method):
    result = narbuild.search("timm:resnet26", k=3, workspace=catalog, method=method)
    assert result.query["origin"] == "workspace"
    top = result.hits[0]
    assert "timm:resnet26" in top.model_ids and top.score == pytest.approx(1.0, abs=1e-4)
    assert top.shared_motifs == result.query["distinct_motifs"]
    assert [h.rank for h in result.hits] == [1, 2, 3]


@pytest.mark.parametrize("method", METHODS)
def test_all_datasets_are_ranked_together(catalog, method):
    result = narbuild.search("timm:resnet26", k=70, dataset="all", workspace=catalog,
                             method=method)
    assert result.searched["nas"] == 60 and result.searched["real"] > 40
    assert {h.dataset for h in result.hits} == {"real", "nas"}
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True) and [h.rank for h in result.hits] == list(
        range(1, 71))


@pytest.mark.parametrize("learned", ["wl-metric", "nar"])
@pytest.mark.parametrize("dataset", ["real", "nas"])
def test_a_fusion_weighs_the_two_cosines_per_dataset_and_method(catalog, dataset, learned):
    from narbuild.encoder.wl import fusion_weight

    fused = f"{learned}+wl-fam"
    runs = {m: narbuild.search("timm:vit_tiny_patch16_224", k=500, workspace=catalog, method=m,
                               dataset=dataset) for m in (learned, "wl-fam", fused)}
    score = {m: {h.record_id: h.score for h in r.hits} for m, r in runs.items()}
    assert len(score[fused]) == len(score[learned]) > (40 if dataset == "real" else 20)
    w = fusion_weight(dataset, "wl-fam", learned)
    for record_id, value in score[fused].items():
        expected = w * score[learned][record_id] + (1 - w) * score["wl-fam"][record_id]
        assert value == pytest.approx(expected, abs=2e-3)
    assert f"weighted {w:g}:{1 - w:g}" in runs[fused].encoders[dataset]
    assert "wl-fam" in runs[fused].encoders[dataset]
    assert runs[fused].encoders[dataset].startswith(f"{learned}@")


def test_the_default_is_wl_metric_fused_with_wl_fam_at_its_validated_weight(catalog, run_cli):
    from narbuild.encoder.wl import FUSION_WEIGHTS
    from narbuild.retrieval.cli import search as command
    from narbuild.retrieval.rankers import DEFAULT_METHOD

    assert DEFAULT_METHOD == "wl-metric+wl-fam"
    assert next(p for p in command.params if p.name == "method").default == DEFAULT_METHOD
    result = narbuild.search("timm:vgg11", k=3, workspace=catalog)
    w = FUSION_WEIGHTS[("real", "wl-metric", "wl-fam")]
    assert result.encoders["real"].startswith("wl-metric@")
    assert result.encoders["real"].endswith(f"weighted {w:g}:{1 - w:g}")


def test_a_short_transformers_id_reads_its_base_model_from_the_workspace(catalog):
    result = narbuild.search("transformers:bert", k=1, workspace=catalog)
    assert result.query["origin"] == "workspace"
    assert result.query["model_id"] == "transformers:bert/Model"
    assert "transformers:bert/Model" in result.hits[0].model_ids


def test_nar_embeds_the_query_as_embed_embedded_the_catalog(catalog, tmp_path):
    """A file query rebuilding a catalog model gets that model's stored vector (cosine 1)."""
    src = tmp_path / "rebuilt.py"
    src.write_text("import timm\ndef build():\n    return timm.create_model('resnet18d')\n")
    result = narbuild.search(f"{src}:build", k=1, workspace=catalog, method="nar")
    assert result.query["origin"] == "traced"
    assert "timm:resnet18d" in result.hits[0].model_ids
    assert result.hits[0].score == pytest.approx(1.0, abs=1e-4)


def test_a_second_search_reads_the_query_cache(catalog, tmp_path):
    src = tmp_path / "net.py"
    src.write_text(
        "import torch\n"
        "def build():\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),\n"
        "                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(4))\n"
        "def example_inputs():\n"
        "    return (torch.randn(1, 3, 16, 16),)\n")
    first = narbuild.search(f"{src}:build", k=2, workspace=catalog)
    again = narbuild.search(f"{src}:build", k=2, workspace=catalog)
    assert (first.query["origin"], again.query["origin"]) == ("traced", "cache")
    assert [h.record_id for h in first.hits] == [h.record_id for h in again.hits]
    src.write_text(src.read_text().replace("ReLU()", "GELU()"))  # new content, new key
    changed = narbuild.search(f"{src}:build", k=2, workspace=catalog)
    assert changed.query["origin"] == "traced"


def test_a_torn_cache_file_or_an_unwritable_cache_still_searches(catalog, tmp_path):
    src = tmp_path / "tiny.py"
    src.write_text("import torch\ndef build():\n    return torch.nn.Sequential(torch.nn.Linear(8, 8),"
                   " torch.nn.ReLU(), torch.nn.Linear(8, 2))\n"
                   "def example_inputs():\n    return (torch.randn(1, 8),)\n")
    first = narbuild.search(f"{src}:build", k=1, workspace=catalog)
    cached = list((catalog.root / "cache" / "queries").glob("*.json"))
    for path in cached:
        path.write_text('{"model_id": "torn"')
    again = narbuild.search(f"{src}:build", k=1, workspace=catalog)
    assert again.query["origin"] == "traced" and again.hits[0].record_id == first.hits[0].record_id
    # a workspace whose cache cannot be written (root ignores permission bits, so the cache
    # path is a file): searches still answer, they only cannot keep what they built
    unwritable = tmp_path / "unwritable"
    shutil.copytree(catalog.root, unwritable, ignore=shutil.ignore_patterns("cache"))
    (unwritable / "cache").write_text("not a folder")
    result = narbuild.search(f"{src}:build", k=1, workspace=unwritable)
    assert result.hits[0].record_id == first.hits[0].record_id


def test_cli_prints_a_table_and_a_json_list(catalog, run_cli):
    code, out, err = run_cli(["-w", str(catalog.root), "search", "timm:vgg11", "-k", "3"])
    assert code == 0, err
    assert out.startswith("query  timm:vgg11") and "shares" in out and "vgg" in out
    code, out, _ = run_cli(["-w", str(catalog.root), "search", "timm:vgg11", "-k", "3", "--json"])
    hits = json.loads(out)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert {"rank", "model_id", "family", "score", "model_ids", "params", "flops"} <= set(hits[0])
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_bad_input_is_one_line(catalog, run_cli, tmp_path):
    py = tmp_path / "nets.py"
    py.write_text("import torch\n"
                  "def boom():\n    return 1 / 0\n"
                  "class Bad(torch.nn.Module):\n"
                  "    def forward(self, x):\n        raise RuntimeError('shape mismatch')\n"
                  "def bad():\n    return Bad()\n")
    empty = Workspace(tmp_path / "empty", create=True)
    unembedded = Workspace(tmp_path / "unembedded", create=True)
    shutil.copytree(catalog.root / "processed", unembedded.root / "processed")
    ws = str(catalog.root)
    cases = [
        (["-w", ws, "search", "timm:no_such_net"], "unknown model id"),
        (["-w", ws, "search", "hf:org/name"], "needs the Hugging Face Hub"),
        (["-w", ws, "search", f"{py}:build"], "defines no function"),
        (["-w", ws, "search", f"{py}:boom"], "raised ZeroDivisionError"),
        (["-w", ws, "search", f"{py}:bad"], "tracing file:nets.bad failed"),
        (["-w", str(tmp_path / "missing"), "search", "timm:vgg11"], "no narbuild workspace"),
        (["-w", str(empty.root), "search", "timm:vgg11"], "no processed table"),
        (["-w", ws, "search", "timm:vgg11", "--method", "gcn"], "no gcn embeddings"),
        (["-w", ws, "search", "timm:vgg11", "--method", "nar+gat"], "unknown method 'nar+gat'"),
        (["-w", str(unembedded.root), "search", "timm:vgg11", "--method", "gcn"],
         "no gcn embeddings"),
    ]
    for args, needle in cases:
        code, out, err = run_cli(args)
        assert code != 0 and needle in err and "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and not out, (args, err)


def test_a_workspace_without_embeddings_is_searched_with_the_bundled_encoder(catalog, tmp_path):
    """Right after preprocess, the default search embeds the records with the bundled wl-metric
    checkpoint once (what `narbuild embed` would store) and reads them from the cache after."""
    from narbuild.retrieval.embedded import stored_embeddings

    fresh = Workspace(tmp_path / "fresh", create=True)
    shutil.copytree(catalog.root / "processed", fresh.root / "processed")
    shutil.copytree(catalog.root / "graphs", fresh.root / "graphs")
    heard: list[str] = []
    first = narbuild.search("timm:resnet26d", k=5, workspace=fresh, on_progress=heard.append)
    assert sum("embedding the" in line for line in heard) == 1, heard
    assert first.encoders["real"].startswith("wl-metric@") and "(bundled)" in first.encoders["real"]
    ours = narbuild.search("timm:resnet26d", k=5, workspace=catalog)  # embedded by `embed`
    assert [(h.record_id, round(h.score, 4)) for h in first.hits] == \
        [(h.record_id, round(h.score, 4)) for h in ours.hits]
    heard.clear()
    again = narbuild.search("timm:resnet26d", k=5, workspace=fresh, on_progress=heard.append)
    assert not heard and [h.record_id for h in again.hits] == [h.record_id for h in first.hits]
    assert stored_embeddings(fresh, "real", "wl-metric") is None  # the table stays untouched
    assert list((fresh.root / "cache" / "search").glob("embedded-wl-metric-real-*.npz"))


def test_a_given_checkpoint_embeds_a_workspace_without_embeddings(catalog, tmp_path):
    from narbuild.encoder.bundled import bundled_path

    fresh = Workspace(tmp_path / "fresh", create=True)
    shutil.copytree(catalog.root / "processed", fresh.root / "processed")
    shutil.copytree(catalog.root / "graphs", fresh.root / "graphs")
    copy = tmp_path / "my-wl-metric.pt"
    shutil.copy(bundled_path("wl-metric", "real"), copy)
    result = narbuild.search("timm:resnet26d", k=3, workspace=fresh, method="wl-metric",
                             checkpoint=copy)
    encoder = result.encoders["real"]
    assert encoder.startswith("wl-metric@") and "bundled" not in encoder
    assert "timm:resnet26d" in result.hits[0].model_ids
    with pytest.raises(narbuild.NarbuildError, match="no checkpoint at"):
        narbuild.search("timm:resnet26d", workspace=fresh, method="wl-metric",
                        checkpoint=tmp_path / "missing.pt")


def test_exact_ranking_matches_float32_brute_force():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5000, 64)).astype(np.float32)
    vectors[17] = vectors[3]  # a tie: row order decides
    index = VectorIndex([str(i) for i in range(5000)], vectors)
    for q in [vectors[3], *rng.standard_normal((20, 64)).astype(np.float32)]:
        scores, rows = index.search(q, 10)
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        exact = unit @ (q / np.linalg.norm(q))
        assert rows.tolist() == np.lexsort((np.arange(5000), -exact))[:10].tolist()
        np.testing.assert_allclose(scores, exact[rows], rtol=1e-5)
    assert index.search(vectors[3], 2)[1].tolist() == [3, 17]


SMALL_NET = '''import time
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4))


def stalls():
    time.sleep(60)
'''


def test_a_traced_query_loads_no_torch_in_the_searching_process(catalog, tmp_path):
    """The worker imports the tracer; the search only reads its row (a torch type in the row
    once made every cold search import torch twice, in the worker and again here)."""
    net = tmp_path / "net.py"
    net.write_text(SMALL_NET)
    narbuild.search(f"{net}:build", workspace=catalog, k=1)  # the WL index is built (once)
    net.write_text(f"# another file\n{SMALL_NET}")  # not in the query cache: traced again
    code = ("import sys; from narbuild.retrieval.search import search; "
            f"r = search('{net}:build', workspace='{catalog.root}', k=1); "
            "print(r.query['origin'], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.split()[-2:] == ["traced", "False"], out.stderr


def test_a_query_trace_runs_while_the_search_loads_and_can_be_cancelled(catalog, tmp_path):
    net = tmp_path / "net.py"
    net.write_text(SMALL_NET)
    before = set(mp.active_children())
    pending = QueryGraph(catalog, f"{net}:stalls")
    assert len(set(mp.active_children()) - before) == 1  # the worker started at once
    start = time.monotonic()
    pending.cancel()
    assert time.monotonic() - start < 5 and set(mp.active_children()) == before
    with pytest.raises(narbuild.NarbuildError, match="cancelled"):
        pending.result()
    empty = Workspace(tmp_path / "empty", create=True)
    with pytest.raises(narbuild.NarbuildError, match="no processed table"):
        narbuild.search(f"{net}:stalls", workspace=empty)  # fails before the trace ends ...
    assert set(mp.active_children()) == before  # ... and stops it


@pytest.mark.parametrize("method", ["nar", "wl-metric"])
def test_a_workspace_model_ranks_by_its_stored_vector_without_loading_torch(catalog, method):
    """A query that is one of the workspace's records takes that record's vector, which is
    the one its encoder gives: no encoder (and no torch) is loaded for it."""
    from narbuild.retrieval.embedded import QueryEncoder
    from narbuild.retrieval.search import Searcher

    searcher = Searcher(catalog, "real", method)
    result = searcher.search("timm:resnet26d", k=3)
    ranker, record = searcher._datasets[0].ranker, result.records["real"]
    stored = ranker.vector(record)
    assert ranker._encoder is None  # no encoder was loaded
    computed = QueryEncoder(catalog, "real", ranker.encoder_id, None).embed(record)
    assert float(stored @ computed / np.linalg.norm(computed)) > 0.9999
    assert result.hits[0].score == pytest.approx(1.0, abs=1e-5)
    code = ("import sys, narbuild; "
            f"r = narbuild.search('timm:resnet26d', workspace='{catalog.root}', method='{method}'); "
            "print(r.hits[0].model_id, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.stdout.split()[-1] == "False", out.stderr


def test_a_bundled_checkpoint_is_found_by_its_hash_whatever_the_label_says(tmp_path):
    """The bundled files were trained in a workspace, whose embeddings name them without
    "(bundled)": the query encoder is still found."""
    import hashlib

    from narbuild.encoder.bundled import bundled_path
    from narbuild.encoder.checkpoint import find_checkpoint

    path = bundled_path("wl-metric", "real")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert find_checkpoint(f"wl-metric@{digest}", "real", tmp_path) == path
    assert find_checkpoint(f"wl-metric@{digest} (bundled)", "real", tmp_path) == path
    with pytest.raises(narbuild.NarbuildError, match="not in"):
        find_checkpoint("wl-metric@0000000000000000", "real", tmp_path)
