"""The doctr source: listing from docTR's default configs, lookup, a meta build without downloads,
a trace (every row: tests/test_source_contract.py; the missing-package path:
tests/test_sources.py)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys

import pytest

from narbuild import sources
from narbuild.errors import NarbuildError
from narbuild.sources import doctr as source
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row

pytest.importorskip("doctr", reason="the doctr extra is not installed")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["name"]: r for r in source.iter_rows()}


def test_listing_reads_the_default_configs_without_importing_doctr():
    code = ("import sys; from narbuild.sources import doctr as s; rows = list(s.iter_rows());"
            "print(len(rows), 'doctr' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, doctr, torch = out.stdout.split()
    assert int(count) >= 40 and doctr == torch == "False"


def test_listing_has_every_builder_of_every_task_zoo_once(rows):
    from doctr.models.classification import zoo as classification
    from doctr.models.detection import zoo as detection
    from doctr.models.layout import zoo as layout
    from doctr.models.recognition import zoo as recognition
    from doctr.models.table_structure import zoo as table

    archs = {*classification.ARCHS, *classification.ORIENTATION_ARCHS, *detection.ARCHS,
             *recognition.ARCHS, *layout.ARCHS, *table.ARCHS}
    assert archs <= set(rows)  # every predictor architecture docTR offers
    for name, row in rows.items():
        config = json.loads(row["config"])
        module = importlib.import_module(config["module"])
        assert callable(getattr(module, config["builder"])), name
        assert tuple(config["input_shape"]) == module.default_cfgs[name]["input_shape"], name
    db = rows["db_resnet50"]
    assert (db["module"], db["task"]) == ("differentiable_binarization", "text-detection")
    assert json.loads(db["config"])["kwargs"] == {
        "pretrained": False, "pretrained_backbone": False, "exportable": True}
    assert rows["parseq"]["task"] == "text-recognition"
    assert json.loads(rows["resnet31"]["config"])["kwargs"] == {"pretrained": False}


def test_lookup_of_one_id_and_of_an_unknown_one():
    assert sources.lookup("doctr:crnn_vgg16_bn")["module"] == "crnn"
    with pytest.raises(NarbuildError, match="did you mean doctr:crnn_vgg16_bn"):
        sources.lookup("doctr:crnn_vgg16")


def test_build_on_meta_downloads_nothing(monkeypatch):
    doctr_utils = importlib.import_module("doctr.models.utils.pytorch")  # its load_pretrained_params

    def no_download(*args, **kwargs):
        raise AssertionError(f"a download: {args}")

    monkeypatch.setattr(doctr_utils, "download_from_url", no_download)
    config = json.loads(sources.lookup("doctr:db_resnet50")["config"])
    built = build("doctr", config, device="meta")
    assert all(p.is_meta for p in built.model.parameters())
    assert tuple(built.inputs[0].shape) == (1, 3, 1024, 1024)


def test_a_constructor_that_probes_its_backbone_builds_with_meta_init():
    # VIPTR runs a dummy image through its ViP backbone, whose drop-path rates need .item()
    graph = trace_manifest_row(sources.lookup("doctr:viptr_tiny"))
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] == "meta-init"


def test_trace_of_a_crnn():
    graph = trace_manifest_row(sources.lookup("doctr:crnn_mobilenet_v3_small"))
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] == "meta" and graph["num_nodes"] > 100
    assert graph["params"] == 2_077_855  # docTR's crnn_mobilenet_v3_small, French vocab
