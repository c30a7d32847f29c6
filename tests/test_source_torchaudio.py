"""The torchaudio source: listing, lookup, a trace (a meta build and every row:
tests/test_source_contract.py; the missing-package path: tests/test_sources.py)."""

from __future__ import annotations

import json

import pytest

from narbuild import sources
from narbuild.sources import torchaudio as source
from narbuild.tracing.ladder import trace_manifest_row

pytest.importorskip("torchaudio", reason="the torchaudio extra is not installed")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["name"]: r for r in source.iter_rows()}


def test_listing_has_every_published_builder_once(rows):
    import torchaudio.models

    assert len(rows) == len(source.ROWS)
    builders = {n for n in dir(torchaudio.models) if n.endswith(("_base", "_large", "_xlarge"))
                or n.startswith(("wav2vec2_", "hdemucs_"))}
    skipped = {n for n in builders if n.startswith("hubert_pretrain_")}  # need frame labels
    assert builders - skipped - {"wav2vec2_model", "wavlm_model"} <= set(rows)
    for name, row in rows.items():
        config = json.loads(row["config"])
        assert callable(getattr(torchaudio.models, config["builder"])), name
    assert (rows["hubert_large"]["module"], rows["hubert_large"]["task"]) == (
        "hubert", "feature-extraction")
    assert rows["hdemucs_high"]["module"] == "hdemucs"


def test_lookup_of_a_separation_model():
    assert sources.lookup("torchaudio:conv_tasnet_base")["task"] == "audio-source-separation"


def test_trace_of_conv_tasnet():
    graph = trace_manifest_row(sources.lookup("torchaudio:conv_tasnet_base"))
    assert graph["status"] == "ok", graph["error"]
    assert graph["num_nodes"] > 50
    assert json.loads(graph["outputs"]) == [[1, 2, source.SAMPLE_RATE]]  # two separated sources
