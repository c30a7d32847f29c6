"""The nni source: listing read from NNI's weight table without importing nni, traces checked
against the papers' parameter counts (lookup, a meta build, every row:
tests/test_source_contract.py; the missing-package path: tests/test_sources.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from narbuild import sources
from narbuild.sources import nni as source
from narbuild.tracing.ladder import trace_manifest_row

pytest.importorskip("nni", reason="the nni extra is not installed")

PUBLISHED_MILLIONS = {"proxyless-mobile": 4.1, "proxyless-gpu": 7.1, "proxyless-cpu": 4.4,
                      "darts-v2": 3.3, "autoformer-small": 22.9}
"""Parameters in the papers (ProxylessNAS, DARTS, AutoFormer), to 0.1 M."""
MOBILENETV3_LARGE = 5_483_032
"""torchvision's published count for MobileNetV3-Large (the paper rounds it to 5.4 M)."""


def test_listing_reads_the_weight_table_without_importing_nni():
    script = ("import sys; from narbuild.sources import nni; names = nni.names(); "
              "print(len(names), 'nni' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["16", "False"]
    rows = {r["name"]: r for r in source.iter_rows()}
    assert {"darts-v2", "spos", "cream-014", "autoformer-base", "acenas-m1"} <= set(rows)
    assert not source._EXCLUDED & set(rows)  # nni's own space rejects them
    assert not any("supernet" in name or "subnet" in name for name in rows)
    assert rows["cream-287"]["module"] == "mobilenetv3" and rows["spos"]["module"] == "spos"
    assert rows["autoformer-tiny"]["module"] == "autoformer_vit"  # not the time-series Autoformer


def test_traces_count_the_papers_parameters():
    for name, millions in PUBLISHED_MILLIONS.items():
        graph = trace_manifest_row(sources.lookup(f"nni:{name}"))
        assert graph["status"] == "ok", graph["error"]
        assert round(graph["params"] / 1e6, 1) == millions, name
    graph = trace_manifest_row(sources.lookup("nni:mobilenetv3-large-100"))
    assert graph["params"] == MOBILENETV3_LARGE
