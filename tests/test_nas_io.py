"""`narbuild nas-io`: the IO-dataset of trained NAS networks (arch2vec-IO), on a tiny scale."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from narbuild import NarbuildError, Workspace
from narbuild.nasgen import generate
from narbuild.nasio import TrainSettings, build, sample_networks
from narbuild.nasio.data import UNSEEN_IMAGES, VAL_IMAGES, load_images
from narbuild.nasio.preprocess import sort_by_weights
from narbuild.nasio.train import build_network

ARGS = ["nas-io", "--train", "6", "--val", "2", "--epochs", "1", "--width", "2", "--seed", "5"]
F = 16 * 2  # pooled features at width 2


def nas_workspace(path, run_cli) -> Workspace:
    code, _, err = run_cli(["-q", "-w", str(path), "gen-nas", "--count", "40", "--classes", "4",
                            "--depth", "3", "--pool", "200"])
    assert code == 0, err
    return Workspace(path)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A nas workspace and a nas-io run of 6 + 2 networks, one epoch each."""
    from narbuild.cli import main

    path = tmp_path_factory.mktemp("nasio") / "ws"
    for args in (["-q", "-w", str(path), "gen-nas", "--count", "40", "--classes", "4",
                  "--depth", "3", "--pool", "200"], ["--json", "-w", str(path), *ARGS]):
        with pytest.raises(SystemExit) as exc:
            main(args)
            raise SystemExit(0)
        assert exc.value.code == 0
    ws = Workspace(path)
    return ws, ws.table("nas_io").read()


def matrix(column: pa.ChunkedArray, images: int, f: int) -> np.ndarray:
    return np.array(column.to_pylist(), dtype=np.float32).reshape(len(column), images, f)


def test_rows_hold_accuracy_outputs_and_dense_layer(built):
    ws, rows = built
    assert rows.num_rows == 8
    assert sorted(rows.column("split").to_pylist()) == ["train"] * 6 + ["val"] * 2
    nas = {r["model_id"]: r for r in ws.table("nas").read(["model_id", "genotype", "cluster"])
           .to_pylist()}
    for r in rows.to_pylist():
        assert nas[r["model_id"]]["genotype"] == r["genotype"]
        assert nas[r["model_id"]]["cluster"] == r["cluster"]
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["unseen_accuracy"] <= 1.0
        assert r["features"] == F and r["seconds"] > 0 and r["params"] > 0
        assert len(r["val_outputs"]) == VAL_IMAGES * F
        assert len(r["unseen_outputs"]) == UNSEEN_IMAGES * F
        assert len(r["dense_weight"]) == 10 * F and len(r["dense_bias"]) == 10
        assert len(r["val_io"]) == VAL_IMAGES * (F + 1)
        assert len(r["unseen_io"]) == UNSEEN_IMAGES * (F + 1)
        settings = json.loads(r["settings"])
        assert settings["epochs"] == 1 and settings["width"] == 2 and settings["seed"] == 5
        assert len(settings["val_images"]) == VAL_IMAGES
    assert len(set(rows.column("cluster").to_pylist())) == 4  # drawn across the classes
    # trained, not random: better than chance, and networks differ
    assert max(rows.column("accuracy").to_pylist()) > 0.2
    assert len(set(rows.column("accuracy").to_pylist())) > 1


def test_outputs_are_the_networks_pooled_features(built):
    """The stored raw outputs are the input of the network's last dense layer: the logits
    they give with the stored dense layer reproduce the stored accuracy."""
    _, rows = built
    images = load_images(5)
    raw = matrix(rows.column("val_outputs"), VAL_IMAGES, F)
    weight = matrix(rows.column("dense_weight"), 10, F)
    bias = np.array(rows.column("dense_bias").to_pylist(), dtype=np.float32)
    logits = np.einsum("nif,ncf->nic", raw, weight) + bias[:, None, :]
    accuracy = (logits.argmax(-1) == images.val_y).mean(axis=1)
    assert np.allclose(accuracy, rows.column("accuracy").to_numpy())


def reference(raw: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray,
              scale: np.ndarray) -> np.ndarray:
    """The paper's steps 1-3 for one network, image by image."""
    out = []
    for x, c in zip((raw - scale.mean()) / scale.std(), labels):
        w = np.append(weight[c], bias[c])
        order = sorted(range(len(w)), key=lambda i: -w[i])
        out.append([np.append(x, 1.0)[i] * w[i] for i in order])
    return np.array(out)


def test_preprocessing_sorts_multiplies_and_normalises(built):
    _, rows = built
    images = load_images(5)
    is_train = np.array(rows.column("split").to_pylist()) == "train"
    io = {name: matrix(rows.column(f"{name}_io"), n, F + 1)
          for name, n in (("val", VAL_IMAGES), ("unseen", UNSEEN_IMAGES))}
    train = io["val"][is_train].reshape(-1, F + 1)
    assert np.allclose(train.mean(axis=0), 0, atol=1e-4)
    assert np.allclose(train.std(axis=0), 1, atol=1e-3)
    # the stored columns are the reference steps 1-3, scaled by the training set's statistics
    raw = {"val": matrix(rows.column("val_outputs"), VAL_IMAGES, F),
           "unseen": matrix(rows.column("unseen_outputs"), UNSEEN_IMAGES, F)}
    weight = matrix(rows.column("dense_weight"), 10, F)
    bias = np.array(rows.column("dense_bias").to_pylist(), dtype=np.float32)
    labels = {"val": images.val_y, "unseen": images.unseen_y}
    steps = {name: np.stack([reference(raw[name][i], labels[name], weight[i], bias[i],
                                       raw["val"][i]) for i in range(len(bias))])
             for name in raw}
    flat = steps["val"][is_train].reshape(-1, F + 1)
    for name in raw:
        again = (steps[name] - flat.mean(axis=0)) / flat.std(axis=0)
        assert np.allclose(again, io[name], atol=1e-3), name


def test_sort_by_weights_appends_the_bias_and_sorts_by_the_class_weights():
    outputs = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    weight = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, 1.0]], dtype=np.float32)
    bias = np.array([1.5, -2.0], dtype=np.float32)
    got = sort_by_weights(outputs, np.array([0, 1]), weight, bias)
    # class 0: weights (0.5, -1, 2, bias 1.5) sorted: 2 (x3), 1.5 (the 1), 0.5 (x1), -1 (x2)
    assert got[0].tolist() == [6.0, 1.5, 0.5, -2.0]
    # class 1: weights (3, 0, 1, bias -2) sorted: 3 (x1), 1 (x3), 0 (x2), -2 (the 1)
    assert got[1].tolist() == [3.0, 3.0, 0.0, -2.0]


def test_a_rerun_trains_nothing_and_changes_nothing(built, run_cli):
    ws, rows = built
    parts = [(p.name, p.stat().st_mtime_ns) for p in ws.table("nas_io").parts()]
    code, out, err = run_cli(["--json", "-w", str(ws.root), *ARGS])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["trained"] == 0 and summary["skipped"] == 8 and summary["preprocessed"]
    assert [(p.name, p.stat().st_mtime_ns) for p in ws.table("nas_io").parts()] == parts
    assert ws.table("nas_io").read().equals(rows)


def test_an_interrupted_run_resumes_to_the_same_table(built, tmp_path, run_cli):
    """Killed after three networks, the rows written are complete and valid (preprocessed
    columns null); the re-run trains only the rest, and the result equals the first run's
    (seeded: same networks, same weights, same outputs)."""
    ws = nas_workspace(tmp_path / "ws", run_cli)
    calls = []

    def stop_after_three(info):
        calls.append(info)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(ws, train=6, val=2, seed=5, settings=TrainSettings(epochs=1, width=2),
              on_network=stop_after_three)
    partial = ws.table("nas_io").read()
    assert partial.num_rows == 3 and partial.column("val_io").null_count == 3
    assert partial.column("val_outputs").null_count == 0
    summary = build(ws, train=6, val=2, seed=5, settings=TrainSettings(epochs=1, width=2))
    assert summary["trained"] == 5 and summary["skipped"] == 3 and summary["rows"] == 8
    first, second = built[1], ws.table("nas_io").read()
    by_id = sorted(range(8), key=lambda i: first.column("model_id")[i].as_py())
    first = first.take(by_id)
    second = second.take(sorted(range(8), key=lambda i: second.column("model_id")[i].as_py()))
    for name in ("model_id", "split", "genotype", "params", "accuracy", "unseen_accuracy",
                 "train_loss", "val_outputs", "unseen_outputs", "dense_weight", "dense_bias",
                 "val_io", "unseen_io", "seed", "settings"):
        assert second.column(name).equals(first.column(name)), name


def test_sampling_is_stratified_seeded_and_disjoint():
    nas = generate(count=40, classes=4, seed=0, depth=3, pool=200)
    picked = sample_networks(nas, train=20, val=8, seed=1)
    assert picked.num_rows == 28 and len(set(picked.column("model_id").to_pylist())) == 28
    rows = picked.to_pylist()
    for c in range(4):
        assert sum(r["cluster"] == c and r["split"] == "train" for r in rows) == 5
        assert sum(r["cluster"] == c and r["split"] == "val" for r in rows) == 2
    assert sample_networks(nas, 20, 8, seed=1).equals(picked)
    assert not sample_networks(nas, 20, 8, seed=2).equals(picked)
    assert sample_networks(nas, 40, 0, seed=1).num_rows == 40


def test_the_network_takes_digit_images():
    images = load_images(0)
    assert images.train_x.shape[1:] == (1, 8, 8)
    assert len(images.train_y) + VAL_IMAGES + UNSEEN_IMAGES == 1797
    assert not set(images.val_index) & set(images.unseen_index)
    nas = generate(count=4, classes=1, seed=0, depth=3, pool=50)
    net = build_network(nas.column("genotype")[0].as_py(), TrainSettings(width=2))
    import torch

    assert net(torch.from_numpy(images.val_x[:3])).shape == (3, 10)


@pytest.mark.parametrize("args, message", [
    (["--train", "40", "--val", "1"], "asked for 40 + 1 networks but the nas table has 40"),
    (["--width", "3"], "width 3 is not an even number"),
    (["--train", "0"], "Invalid value for '--train'"),
    ([*ARGS[1:-1], "6"], "built with other options (seed 5 now 6)"),
])
def test_bad_options_are_one_line_errors(built, run_cli, args, message):
    ws, _ = built
    code, _, err = run_cli(["-w", str(ws.root), "nas-io", *args])
    assert code != 0 and message in err and "Traceback" not in err


def test_no_nas_table_says_to_run_gen_nas(tmp_path, run_cli):
    code, _, err = run_cli(["-w", str(tmp_path / "none"), "nas-io"])
    assert code == 2 and "run `narbuild gen-nas` first" in err
    Workspace(tmp_path / "empty", create=True)
    code, _, err = run_cli(["-w", str(tmp_path / "empty"), "nas-io"])
    assert code == 2 and "no nas table" in err and "run `narbuild gen-nas` first" in err
    with pytest.raises(NarbuildError, match="gen-nas"):
        build(Workspace(tmp_path / "empty"), train=2, val=0)
