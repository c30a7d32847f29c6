"""arch2vec, arch2vec-io and the io protocol (`narbuild eval --protocol io`), on a tiny scale."""

from __future__ import annotations

import json

import numpy as np
import pytest

from narbuild import Workspace
from narbuild.encoder.data import load_records
from narbuild.nasio.arch2vec import load_io
from narbuild.nasio.evaluate import regret_curve, reinforce, relevance_threshold

NAS_IO = ["nas-io", "--train", "6", "--val", "2", "--epochs", "1", "--width", "2", "--seed", "3"]


@pytest.fixture(scope="module")
def io_ws(tmp_path_factory):
    """gen-nas (40 networks), preprocess, nas-io (6 + 2 networks) and the io protocol."""
    from narbuild.cli import main

    path = tmp_path_factory.mktemp("nasio-eval") / "ws"
    for args in (["-q", "-w", str(path), "gen-nas", "--count", "40", "--classes", "4",
                  "--depth", "3", "--pool", "200"],
                 ["-q", "-w", str(path), "preprocess", "--dataset", "nas", "--workers", "1"],
                 ["-q", "-w", str(path), *NAS_IO],
                 ["-q", "-w", str(path), "eval", "--protocol", "io", "--seeds", "0",
                  "--epochs", "2", "--device", "cpu"]):
        with pytest.raises(SystemExit) as exc:
            main(args)
            raise SystemExit(0)
        assert exc.value.code == 0, args
    return Workspace(path)


def test_io_protocol_reports_a_to_d(io_ws):
    reports = io_ws.root / "reports"
    report = json.loads((reports / "eval-io.json").read_text())
    assert report["protocol"]["networks"] == {"train": 6, "val": 2}
    assert report["protocol"]["recipe"]["epochs"] == 2 and report["protocol"]["data_hash"]
    # (a): one row per epoch, both validation sets, model and baseline with intervals
    assert [c["epoch"] for c in report["losses"]] == [1, 2]
    for name in ("unseen_networks", "unseen_images"):
        v = report["losses"][-1][name]
        assert v["l1_lo"] <= v["l1"] <= v["l1_hi"] and v["baseline"] > 0
    # (b): the five feature sets
    assert set(report["prediction"]) == {"arch2vec", "arch2vec-io", "nar", "wl", "params"}
    assert -1 <= report["accuracy_retest"] <= 1
    # (c): regret curves over all 8 networks; the validation regret never rises
    assert set(report["search"]) == {"arch2vec", "arch2vec-io", "random"}
    for method in report["search"].values():
        val = np.array(method["val"]["mean"])
        assert len(val) == 8 and (np.diff(val) <= 1e-9).all() and val[-1] == pytest.approx(0)
        assert (np.array(method["test"]["mean"]) >= -1e-9).all()
    # (d): every method scored on the unseen networks
    assert set(report["retrieval"]["methods"]) == {"arch2vec", "arch2vec-io", "nar", "wl",
                                                   "params", "random"}
    assert "(d) Functional retrieval" in (reports / "eval-io.md").read_text()
    for figure in ("eval-io-regret.png", "eval-io-losses.png"):
        assert (reports / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_io_data_lines_up_the_table_with_the_records(io_ws):
    records = load_records(io_ws, "nas")
    io = load_io(io_ws, records)
    assert len(io.train) == 6 and len(io.val) == 2
    assert io.val_io.shape == (8, 300, 16 * 2 + 1) and io.val_images.shape[1:] == (1, 8, 8)
    for model_id, row in zip(io.model_ids, io.rows):
        assert model_id in records.table["model_ids"][int(row)].as_py()


def test_embed_trains_arch2vec_io_on_the_nas_set(io_ws, run_cli):
    code, out, err = run_cli(["--json", "-w", str(io_ws.root), "embed", "--train", "--method",
                              "arch2vec-io", "--dataset", "nas", "--device", "cpu"])
    assert code == 0, err
    summary = json.loads(out)["datasets"]["nas"]
    assert summary["dim"] == 16 and summary["encoder_id"].startswith("arch2vec-io@")
    rows = io_ws.table("embeddings").read(["method", "dim"], subdir="nas")
    assert set(rows["method"].to_pylist()) == {"arch2vec-io"}


def test_paper_eval_runs_arch2vec_io_on_nas_only(io_ws, run_cli):
    code, out, err = run_cli(["--json", "-w", str(io_ws.root), "eval", "--dataset", "nas",
                              "--methods", "arch2vec,arch2vec-io", "--seeds", "0", "--epochs",
                              "1", "--device", "cpu"])
    assert code == 0, err
    assert set(json.loads(out)) == {"nas"}  # arch2vec-io needs nas_io: no real rows
    assert set(json.loads(out)["nas"]) == {"arch2vec", "arch2vec-io"}


@pytest.mark.parametrize("args, message", [
    (["embed", "--train", "--method", "arch2vec-io", "--dataset", "real"], "only the nas set"),
    (["embed", "--method", "arch2vec"], "train it"),
])
def test_arch2vec_errors_are_one_line(io_ws, run_cli, args, message):
    code, _, err = run_cli(["-w", str(io_ws.root), *args])
    assert code != 0 and message in err and "Traceback" not in err


def test_io_protocol_without_nas_io_says_to_run_it(tmp_path, run_cli):
    ws = tmp_path / "ws"
    for args in (["gen-nas", "--count", "20", "--classes", "2", "--depth", "3", "--pool", "50"],
                 ["preprocess", "--dataset", "nas", "--workers", "1"]):
        assert run_cli(["-q", "-w", str(ws), *args])[0] == 0
    code, _, err = run_cli(["-w", str(ws), "eval", "--protocol", "io", "--seeds", "0"])
    assert code != 0 and "narbuild nas-io" in err


def test_regret_follows_the_first_network_with_the_best_accuracy():
    accuracy = np.array([0.5, 0.9, 0.7, 0.9])
    test = np.array([0.4, 0.6, 0.8, 0.95])
    curve = regret_curve(np.array([[0, 2, 1, 3]]), accuracy, test)
    assert curve["val"][0].tolist() == pytest.approx([0.4, 0.2, 0.0, 0.0])
    # the best validation accuracy is first reached by network 1 (test 0.6): a tie does not
    # switch to network 3
    assert curve["test"][0].tolist() == pytest.approx([0.55, 0.15, 0.35, 0.35])


def test_reinforce_queries_each_network_once_and_is_seeded():
    emb = np.random.default_rng(0).standard_normal((30, 4)).astype(np.float32)
    acc = np.random.default_rng(1).random(30)
    order = reinforce(emb, acc, 20, seed=7)
    assert len(order) == 20 and len(set(order.tolist())) == 20
    assert (reinforce(emb, acc, 20, seed=7) == order).all()


def test_relevance_threshold_gives_the_asked_mean_count():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cos = x @ x.T
    queries = np.arange(20)
    tau = relevance_threshold(cos, queries, relevant=5)
    counts = (cos[queries] >= tau).sum(1) - 1  # itself excluded
    assert counts.mean() == pytest.approx(5, abs=0.05)


def test_the_card_summarises_the_io_report(io_ws, tmp_path):
    from narbuild.cards.release import stage_release

    stage_release(io_ws, tmp_path / "rel")
    card = (tmp_path / "rel" / "README.md").read_text()
    assert "**What the outputs add** (`narbuild eval --protocol io`" in card
    assert "| #params (log10) |" in card and "narbuild eval --protocol io" in card
