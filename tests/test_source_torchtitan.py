"""The torchtitan source: listing of (model, flavor), lookup, a meta build with math-path
attention, a trace, the excluded model (every row: tests/test_source_contract.py; the
missing-package path: tests/test_sources.py)."""

from __future__ import annotations

import json

import pytest

from narbuild import sources
from narbuild.errors import NarbuildError
from narbuild.sources import torchtitan as source
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row

pytest.importorskip("torchtitan", reason="the torchtitan extra is not installed")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["name"]: r for r in source.iter_rows()}


def test_listing_has_every_flavor_of_every_supported_model_once(rows):
    from torchtitan.models import _supported_models
    from torchtitan.models.llama3 import llama3_configs
    from torchtitan.models.qwen3 import qwen3_configs

    assert {r["module"] for r in rows.values()} == set(_supported_models) - set(source.EXCLUDED)
    assert {f"llama3/{f}" for f in llama3_configs} | {f"qwen3/{f}" for f in qwen3_configs} <= set(
        rows)
    row = rows["llama3/8B"]
    assert json.loads(row["config"]) == {"model": "llama3", "flavor": "8B"}
    assert (row["module"], row["task"]) == ("llama3", "text-generation")
    assert rows["flux/flux-dev"]["task"] == "text-to-image"
    assert not any(n.startswith("qwen3_5/") for n in rows)


def test_lookup_of_one_id_an_unknown_one_and_an_excluded_one():
    assert sources.lookup("torchtitan:deepseek_v3/16B")["module"] == "deepseek_v3"
    with pytest.raises(NarbuildError, match="did you mean torchtitan:llama3/8B"):
        sources.lookup("torchtitan:llama3/8b")
    excluded = next(n for n, (m, _) in source._index().items() if m == "qwen3_5")
    with pytest.raises(NarbuildError, match="not listed: its gated-delta-rule"):
        sources.lookup(f"torchtitan:{excluded}")


def test_build_on_meta_swaps_the_compiled_attention():
    from torchtitan.models.common.attention import FlexAttention, VarlenAttention

    built = build("torchtitan", {"model": "llama3", "flavor": "405B"}, device="meta")
    assert all(p.is_meta for p in built.model.parameters())
    assert sum(p.numel() for p in built.model.parameters()) > 400e9
    kinds = {type(m).__name__ for m in built.model.modules()}
    assert "_CausalAttention" in kinds
    assert not any(isinstance(m, (FlexAttention, VarlenAttention)) for m in built.model.modules())
    assert tuple(built.inputs[0].shape) == (1, source.SEQ_LEN)


def test_trace_of_the_gpt_oss_debug_model_with_its_attention_sinks():
    graph = trace_manifest_row(sources.lookup("torchtitan:gpt_oss/debugmodel"))
    assert graph["status"] == "ok", graph["error"]
    assert graph["fallback"] == "meta" and graph["num_nodes"] > 200
    assert "LogsumexpBackward0" in graph["nodes"]  # the sinks rescale by the log-sum-exp
