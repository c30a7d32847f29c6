"""The holocron source: listing from holocron.models, traces checked against the parameter
counts Holocron publishes (lookup, a meta build, every row: tests/test_source_contract.py; the
missing-package path: tests/test_sources.py)."""

from __future__ import annotations

import enum
import inspect
import json

import pytest

from narbuild import sources
from narbuild.preprocess.labels import fine_label
from narbuild.sources import holocron as source
from narbuild.tracing.ladder import trace_manifest_row

models = pytest.importorskip("holocron.models", reason="the holocron extra is not installed")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["name"]: r for r in source.iter_rows()}


def published_params() -> dict[str, int]:
    """``{builder: parameters}`` of each builder's default checkpoint (Holocron's model zoo)."""
    out = {}
    for package in source.TASKS:
        for value in vars(getattr(models, package)).values():
            if inspect.isclass(value) and issubclass(value, enum.Enum) and "DEFAULT" in value.__members__:
                meta = value.DEFAULT.value.meta
                out[meta.arch] = meta.num_params
    return out


def test_listing_has_every_builder_with_its_task_and_family(rows):
    assert len(rows) >= 59
    assert {"resnet50", "rexnet1_0x", "repvgg_b3", "unet3p", "unet_tvvgg11", "yolov4"} <= set(rows)
    rexnet = rows["rexnet1_0x"]
    assert (rexnet["module"], rexnet["task"]) == ("rexnet", "image-classification")
    assert json.loads(rows["unetpp"]["config"])["image_size"] == 256
    assert rows["yolov1"]["task"] == "object-detection"
    # families merge with the other sources' names
    assert fine_label(rows["darknet53"])[0] == "darknet"
    assert fine_label(rows["cspdarknet53"])[0] == "cspnet"
    assert fine_label(rows["unetpp"])[0] == "unetplusplus"




HEAD_GAP = {"rexnet2_2x": (1000 - 10) * (2816 + 1)}
"""Builders whose default checkpoint is Imagenette's (10 classes) while the builder's head has
ImageNet's 1000: the gap is that head's weights and biases (ReXNet-2.2x: 2,816 features)."""


def test_traces_count_the_published_parameters(rows):
    published = published_params()
    assert len(published) >= 25
    for name, params in published.items():
        graph = trace_manifest_row(rows[name])
        assert graph["status"] == "ok", graph["error"]
        assert graph["params"] == params + HEAD_GAP.get(name, 0), name


def test_a_detector_traces_on_the_cpu_step():
    graph = trace_manifest_row(sources.lookup("holocron:yolov2"))  # NMS in its forward
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] == "cpu" and graph["params"] == 50_655_389
