"""The tsai source: listing read from tsai's learner without importing it, lookup, a meta build,
traces (the missing-package path: tests/test_sources.py, for every optional source)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from narbuild import sources
from narbuild.errors import NarbuildError
from narbuild.sources import tsai as source
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row

pytest.importorskip("tsai", reason="the tsai extra is not installed")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["name"]: r for r in source.iter_rows()}


def test_listing_reads_the_learner_without_importing_it(rows):
    script = ("import sys; from narbuild.sources import tsai; n = len(tsai.names()); "
              "print(n, 'fastai' in sys.modules, 'tsai.learner' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(rows)), "False", "False"]
    assert len(rows) >= 90
    assert {"InceptionTimePlus", "MiniRocket", "PatchTST", "xresnet1d50_deeper", "TSiT"} <= set(rows)
    assert not source._EXCLUDED & set(rows) and "ConvTran" not in rows  # = ConvTranPlus
    config = json.loads(rows["InceptionTimePlus"]["config"])
    assert config == {"module": "tsai.models.InceptionTimePlus", "arch": "InceptionTimePlus",
                      "c_in": 3, "c_out": 5, "seq_len": 128}
    families = {name: row["module"] for name, row in rows.items()}
    assert families["InceptionTimePlus"] == families["InceptionTime"] == "inceptiontime"
    assert families["MiniRocketPlus"] == "minirocket" and families["ResNet"] == "resnet_ts"
    assert rows["FCN"]["task"] == "time-series-classification"


def test_lookup_of_one_id_and_of_an_unknown_one():
    assert sources.lookup("tsai:XceptionTime")["module"] == "xceptiontime"
    with pytest.raises(NarbuildError, match="did you mean tsai:XceptionTime"):
        sources.lookup("tsai:XceptionTim")


def test_build_on_meta():
    config = json.loads(sources.lookup("tsai:InceptionTimePlus")["config"])
    built = build("tsai", config, device="meta")
    assert all(p.is_meta for p in built.model.parameters())
    assert tuple(built.inputs[0].shape) == (1, 3, 128)


def test_traces_on_meta_and_of_a_random_kernel_transform_on_the_cpu():
    graph = trace_manifest_row(sources.lookup("tsai:xresnet1d18"))  # built as arch(c_in, c_out)
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] == "meta" and graph["params"] == 3_855_653
    # MiniRocket draws its kernels' dilations with .item() in its constructor: no meta build
    rocket = trace_manifest_row(sources.lookup("tsai:MiniRocket"))
    assert rocket["status"] == "ok", rocket["error"]
    assert rocket["fallback"] == "cpu"


@pytest.mark.slow
def test_every_model_traces(rows):
    graphs = [trace_manifest_row(row) for row in rows.values()]
    failed = {g["model_id"]: g["error"] for g in graphs if g["status"] != "ok"}
    assert len(failed) <= 0.05 * len(rows), failed
