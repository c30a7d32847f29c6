"""The tsai source: listing read from tsai's learner without importing it, traces (lookup, a
meta build, every row: tests/test_source_contract.py; the missing-package path:
tests/test_sources.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from narbuild import sources
from narbuild.sources import tsai as source
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




def test_traces_on_meta_and_of_a_random_kernel_transform_on_the_cpu():
    graph = trace_manifest_row(sources.lookup("tsai:xresnet1d18"))  # built as arch(c_in, c_out)
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] == "meta" and graph["params"] == 3_855_653
    # MiniRocket draws its kernels' dilations with .item() in its constructor: no meta build
    rocket = trace_manifest_row(sources.lookup("tsai:MiniRocket"))
    assert rocket["status"] == "ok", rocket["error"]
    assert rocket["fallback"] == "cpu"
