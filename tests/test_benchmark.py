"""Benchmark v2 (`narbuild eval --protocol`): units, relevance, the protocols' contracts, the
variants, and the command end to end on real traced models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from narbuild.benchmark import variants as variants_module
from narbuild.benchmark.protocols import Catalogue, protocol_tasks, unit_key
from narbuild.benchmark.run import bootstrap_ci, score, task_records
from narbuild.benchmark.variants import timm_knobs, variant_rows
from narbuild.encoder.data import Records


def _catalogue(seed: int = 0):
    """A catalogue shaped like the real one: transformers heads of one backbone, clone
    families sharing records, timm architectures alone, families of 1 to 9 records."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for f in range(40):
        family = f"fam{f}"
        for r in range(int(rng.integers(1, 10))):
            if f % 3 == 0:  # a transformers type: heads of a few backbones
                ids.append([f"transformers:{family}-{r % 2}/Head{r}"])
            else:
                ids.append([f"timm:{family}_{r}"])
            labels.append([family])
    ids.append(["transformers:clone-a/Model", "transformers:clone-b/Model"])
    labels.append(["clone_a", "clone_b"])
    ids += [["transformers:clone-a/ForX"], ["transformers:clone-b/ForY"], ["timm:clone_b2"]]
    labels += [["clone_a"], ["clone_b"], ["clone_b"]]
    return ids, labels, Catalogue.build(ids, labels)


def _split_and_labels(labels):
    firsts = [f[0] for f in labels]
    names = sorted(set(firsts))
    index = np.array([names.index(f) for f in firsts])
    split = np.array(["test" if i % 7 == 0 else "train" for i in range(len(labels))])
    return split, index


def test_units_join_heads_of_one_backbone_and_clones():
    assert unit_key("transformers:bert/ForMaskedLM@pretraining") == "transformers:bert"
    assert unit_key("timm:resnet50") == "timm:resnet50"
    ids, _, cat = _catalogue()
    units = {tuple(i): u for i, u in zip(ids, cat.units)}
    assert units[("transformers:clone-a/ForX",)] == units[("transformers:clone-b/ForY",)]
    assert units[("timm:clone_b2",)] != units[("transformers:clone-b/ForY",)]
    # relevance by family intersection: the clone record is relevant to both families
    clone = ids.index(["transformers:clone-a/Model", "transformers:clone-b/Model"])
    relevant = cat.relevant(np.array([clone]))[0]
    assert relevant[ids.index(["timm:clone_b2"])] and relevant[ids.index(
        ["transformers:clone-a/ForX"])]


def test_no_sibling_is_ranked_or_relevant():
    ids, labels, cat = _catalogue()
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(len(ids), 8))
    vectors[cat.units == cat.units[0]] = vectors[0]  # siblings would rank first if allowed
    split, index = _split_and_labels(labels)
    for task in protocol_tasks(cat, ["closed", "loo", "open"], split, index, folds=3):
        q = task.queries
        excluded, relevant = cat.excluded(q), cat.relevant(q)
        assert excluded[np.arange(len(q)), q].all()
        counts = (relevant & ~excluded).sum(1)
        assert (counts > 0).all()
        for row, query in enumerate(q):  # R never counts a sibling
            siblings = np.flatnonzero(cat.units == cat.units[query])
            assert counts[row] == (relevant[row] & (cat.units != cat.units[query])).sum()
            assert excluded[row, siblings].all()
        metrics = score(vectors, cat, q, ks=(5,))
        assert len(metrics["map@5"]) == len(q) and np.all(metrics["map@5"] <= 1)


def test_loo_queries_every_record_of_every_family_with_two_units_once():
    _ids, labels, cat = _catalogue()
    split, index = _split_and_labels(labels)
    tasks = protocol_tasks(cat, ["loo"], split, index, folds=4)
    queried = np.concatenate([t.queries for t in tasks])
    assert len(queried) == len(set(queried.tolist()))
    for family in {f for fams in labels for f in fams}:
        rows = [i for i, fams in enumerate(labels) if family in fams]
        if len({cat.units[i] for i in rows}) >= 2:
            assert set(rows) <= set(queried.tolist()), family
    for t in tasks:  # a query's unit is never fitted on
        assert not set(cat.units[t.queries]) & set(cat.units[t.fit])


def test_open_never_fits_or_selects_on_a_test_family():
    ids, labels, cat = _catalogue()
    split, index = _split_and_labels(labels)
    tasks = protocol_tasks(cat, ["open"], split, index, folds=5)
    assert len(tasks) == 5 and sum(len(t.queries) for t in tasks) > 0

    def families(rows):
        return {f for r in rows for f in labels[r]}

    for t in tasks:
        assert not families(t.queries) & families(t.fit), t.name
        assert not families(t.queries) & families(t.validation), t.name
        assert not families(t.validation) & families(t.fit), t.name
        # what a learned method trains on holds no held-out family, not even as a class
        records = Records(None, [str(i) for i in range(len(ids))], index,
                          sorted({f[0] for f in labels}), split)
        seen = task_records(records, t.fit)
        assert set(seen.label_names) == {labels[r][0] for r in t.fit}
        assert (seen.labels[t.queries] == -1).all()


def test_cli_default_methods_are_the_api_defaults():
    from narbuild.benchmark.run import DEFAULT_METHODS
    from narbuild.encoder.cli import DEFAULT_PROTOCOL_METHODS

    assert tuple(DEFAULT_PROTOCOL_METHODS.split(",")) == DEFAULT_METHODS


def test_bootstrap_interval_brackets_the_mean():
    values = np.random.default_rng(0).random(200)
    lo, hi = bootstrap_ci(values)
    assert lo < values.mean() < hi and hi - lo < 0.2
    assert bootstrap_ci(values) == [lo, hi]  # seeded


@pytest.fixture(scope="module")
def manifest_rows():
    from narbuild.sources import timm, transformers

    rows = list(transformers.iter_rows(["bert", "gpt2"]))
    return rows + list(timm.iter_rows(["resnet18", "resnet34", "vit_tiny_patch16_224"]))


def test_variants_are_deterministic_and_versioned(manifest_rows):
    traced = {r["model_id"] for r in manifest_rows}
    first = list(variant_rows(manifest_rows, traced))
    again = list(variant_rows(list(reversed(manifest_rows)), traced))
    assert [(r["model_id"], r["config_hash"]) for r in first] == \
        [(r["model_id"], r["config_hash"]) for r in again]
    ids = [r["model_id"] for r in first]
    assert len(ids) == len(set(ids))
    assert {"transformers:bert/Model#layers=2", "transformers:gpt2/Model#hidden=1536",
            "timm:resnet18#layers=1,1,1,1", "timm:vit_tiny_patch16_224#depth=24"} <= set(ids)
    assert not any("ForMaskedLM" in i for i in ids)  # one base model per type
    meta = json.loads(first[0]["metadata"])
    assert meta["variants_version"] == variants_module.VARIANTS_VERSION
    assert timm_knobs("resnet18") == {"layers": (2, 2, 2, 2)}
    bert = json.loads(next(r["config"] for r in first
                           if r["model_id"] == "transformers:bert/Model#layers=2"))
    assert bert["config"]["num_hidden_layers"] == 2 and bert["model_type"] == "bert"


def test_eval_protocol_all_end_to_end(tmp_path, run_cli, monkeypatch):
    """crawl -> trace -> preprocess -> eval --protocol all on real models: every protocol
    reported with intervals and slices; the variants are traced, labelled by family and never
    in the gallery."""
    monkeypatch.setattr(variants_module, "DEPTHS", (2,))
    monkeypatch.setattr(variants_module, "WIDTH_SCALES", ())
    ws = str(tmp_path / "ws")
    models = ["timm:resnet18", "timm:resnet34", "timm:resnet50", "timm:vit_tiny_patch16_224",
              "timm:vit_small_patch16_224", "timm:vit_base_patch16_224",
              "transformers:bert/Model", "transformers:bert/ForMaskedLM",
              "transformers:gpt2/Model", "transformers:gpt2/LMHeadModel",
              "torchvision:resnet18", "torchvision:resnet34"]
    include = [f"--include={m}" for m in models]
    assert run_cli(["-q", "-w", ws, "crawl", "--source", "timm", "--source", "torchvision",
                    "--source", "transformers", *include])[0] == 0
    assert run_cli(["-q", "-w", ws, "trace", "--workers", "2"])[0] == 0
    assert run_cli(["-q", "-w", ws, "gen-nas", "--count", "60", "--classes", "3"])[0] == 0
    assert run_cli(["-q", "-w", ws, "preprocess", "--workers", "1"])[0] == 0
    code, out, err = run_cli(["-q", "-w", ws, "--json", "eval", "--protocol", "all",
                              "--methods", "wl,wl-fam,nar-cl,nar-nas,nar-cl+wl-fam,wl-metric",
                              "--seeds", "0",
                              "--folds", "2", "--dim", "16", "--epochs", "1",
                              "--motif-epochs", "1"])
    assert code == 0, err
    summary = json.loads(out)["v2"]
    assert set(summary["real"]) == {"closed", "loo", "open", "variants"}
    assert set(summary["nas"]) == {"closed", "open"}
    assert "nar-nas" in summary["real"]["open"] and "nar-nas" not in summary["nas"]["open"]
    report = json.loads((tmp_path / "ws" / "reports" / "eval-protocols.json").read_text())
    real = report["datasets"]["real"]
    assert real["kept"] > 0 and real["variants_version"] == variants_module.VARIANTS_VERSION
    row = real["protocols"]["variants"]["methods"]["nar-cl+wl-fam"]
    lo, hi = row["ci95"]["map@20"]
    assert lo <= row["mean"]["map@20"] <= hi
    assert "weight" in next(iter(row["choices"]))
    assert "timm" in row["slices"]["source"]
    assert "### variants" in (tmp_path / "ws" / "reports" / "eval-protocols.md").read_text()
    assert run_cli(["-q", "-w", ws, "embed"])[0] == 0  # the published vectors: wl-metric's
    release = tmp_path / "release"
    assert run_cli(["-q", "-w", ws, "push", "--local-dir", str(release)])[0] == 0
    card = (release / "README.md").read_text()
    assert "**Benchmark v2**" in card and "*real / variants*" in card
    assert real["catalogue_hash"] in card
    embeddings = card.split("## Embeddings")[1].split("\n## ")[0]  # what the vectors are
    assert "`wl-metric`: a learned linear metric" in embeddings
    assert f"- real / open ({real['protocols']['open']['queries']} queries" in embeddings
    assert "wl-metric MAP@20" in embeddings and "; wl-fam MAP@20" in embeddings
