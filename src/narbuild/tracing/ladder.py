"""Trace one manifest row, walking down a fallback ladder until a step succeeds.

Every graphs row records the step that produced it, so a figure can be reproduced:

1. ``meta``          weightless build on the meta device, float32 (the default)
2. ``meta-bf16``     the same in bfloat16, tried only when a step failed on a dtype
                     (mixture-of-experts grouped matmul wants bfloat16 on meta)
3. ``meta-init``     the constructor runs on the CPU with every parameter and buffer on meta,
                     tried only when building on meta failed (builders that compute layer
                     sizes with tensor ops, e.g. torchvision's RegNet); traced on meta
   ``alt-inputs``    the same modality in another layout (a waveform with a channel axis,
                     audio features transposed, as a one-channel image, longer or as wide
                     as the model takes them, ``input_values`` as a spectrogram, one token
                     id per codebook, images at a sub-config's size or fitting the backbone's
                     windows, patches as small images or as wide as the model takes them,
                     audio with its frame mask, text with decoder ids or a mask, one of two
                     audio inputs), tried only when a meta step failed on a shape, on an
                     optional input it was not given or on two it refuses together;
                     the row's ``inputs`` say which layout fitted
   ``meta-constants`` parameters and activations on meta, but buffers and tensors made from
                     Python numbers real on the CPU, tried only when a meta step failed for
                     want of values: a model that reads a buffer (``if self.probs[i] > 0``)
                     or a size it put in a tensor (``torch.tensor(spatial_shapes)``, read
                     back with ``.item()``) then runs at meta's cost
4. ``cpu``           real CPU tensors, for models under :data:`CPU_PARAM_BUDGET` parameters,
                     tried only when a meta step failed for want of values (``.item()``, NMS,
                     ``nonzero``, masks built from values); weights are not randomly
                     initialised (see :func:`narbuild.tracing.build.cheap_init`)
   ``cpu-bf16``      the same in bfloat16 (half the memory) for larger models, up to
                     :data:`CPU_BF16_PARAM_BUDGET` parameters
   ``shared-weights`` real CPU tensors for larger models that need values: every weight is
                     one zero broadcast to its shape (no memory for weights), activations are
                     real; FLOPs are those of the run, every token taking the first k experts
                     where routing ties (see :func:`narbuild.tracing.build.share_zero_weights`)
   ``meta-nonzero``  meta again, with ``nonzero``/``where`` assumed true everywhere (torch's
                     ``meta_nonzero_assume_all_nonzero``), for models over the real-tensor
                     budget that select by value (mixture-of-experts routing, global-attention
                     indices). The operators and edges are those of a run where every selection
                     is taken; FLOPs would count every expert for every token, so the row
                     stores no FLOPs
5. ``text-only``     transformers: text inputs alone (vision-language models whose image
                     placeholders cannot be checked on meta), on meta then CPU
6. ``text-model``    transformers: the language model alone, built from the text sub-config of
                     a multimodal generative model whose whole model cannot be built or run
                     (its default vision or audio config is incomplete); on meta

Steps that cannot help with the failure seen are skipped (a missing forward argument is not
fixed by real tensors), so a failing model costs a build or two, not six.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import time
from typing import Any

import torch

from narbuild._version import __version__
from narbuild.errors import one_line
from narbuild.sources.base import Built
from narbuild.tracing.build import build, literals_on_host
from narbuild.tracing.core import (
    NEEDS_BF16,
    TraceResult,
    count_params,
    trace_all_selected,
    trace_module,
)
from narbuild.tracing.inputs import NotApplicable, alternative_inputs

CPU_PARAM_BUDGET = 200_000_000
"""Largest model (parameters) traced on real CPU tensors; 0.8 GB of float32 weights."""
CPU_BF16_PARAM_BUDGET = 700_000_000
"""Largest model traced on real bfloat16 CPU tensors; 1.4 GB of weights."""

Step = tuple[str, str, torch.dtype, str]  # (name, device, dtype, build step)
LADDER: list[Step] = [
    ("meta", "meta", torch.float32, "default"),
    ("meta-bf16", "meta", torch.bfloat16, "default"),
    ("meta-init", "meta", torch.float32, "meta-init"),
    ("alt-inputs", "meta", torch.float32, "default"),
    ("meta-constants", "meta", torch.float32, "meta-constants"),
    ("cpu", "cpu", torch.float32, "default"),
    ("cpu-bf16", "cpu", torch.bfloat16, "default"),
    ("shared-weights", "cpu", torch.float32, "shared-weights"),
    ("meta-nonzero", "meta", torch.float32, "default"),
    ("text-only", "meta", torch.float32, "text-only"),
    ("text-only-cpu", "cpu", torch.float32, "text-only"),
    ("text-model", "meta", torch.float32, "text-model"),
]

# Failures that a step on real tensors can fix: the meta device has no values.
_NEEDS_VALUES = re.compile(
    r"meta tensor|on meta|[Mm]eta device|\.item\(\)|nonzero|data-dependent|Cannot copy out of meta|"
    r"_local_scalar_dense|tolist|is not implemented for|NotImplementedError|"
    r"expected .*device|same device|Expected all tensors")
# Failures that other input layouts can fix: the inputs' shapes did not fit the model, or it
# read an optional input it was not given ('NoneType' object has no attribute 'sum', "Either
# `decoder_input_ids` or `labels` should be passed"), or refused two it was given ("You cannot
# specify both input_values and input_features at the same time").
_SHAPE_MISMATCH = re.compile(
    r"shape|size|[Dd]imension|broadcast|reduction dim|unpack|channel|Expected \d+D|"
    r"normalized_shape|too small|'NoneType' object|decoder_input_ids|both .* at the same time|"
    r"must be mono")


_MOE_KEYS = {"num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts"}


def is_moe(config: Any) -> bool:
    """A mixture-of-experts config: its grouped matmul kernels want bfloat16."""
    if isinstance(config, dict):
        return any((k in _MOE_KEYS and isinstance(v, int) and v > 1) or is_moe(v)
                   for k, v in config.items())
    return isinstance(config, list) and any(is_moe(v) for v in config)


def ladder_for(config: dict[str, Any]) -> list[Step]:
    """The ladder; for mixture-of-experts models bfloat16 first (saves a failed build) and
    bfloat16 in the later steps too, but for shared weights (float32 arithmetic is the fast
    one on a CPU, and such weights take no memory)."""
    if not is_moe(config):
        return LADDER
    later = [(n, dev, dtype if step == "shared-weights" else torch.bfloat16, step)
             for n, dev, dtype, step in LADDER[2:]]
    return [LADDER[1], LADDER[0], *later]


def _applies(name: str, source: str, errors: list[str], build_failed: bool,
             params: int | None, moe: bool = False) -> bool:
    """Whether a ladder step can help, given the failures so far."""
    if name == "meta":
        return True
    if name == "meta-bf16":
        return moe or any(NEEDS_BF16.search(e) for e in errors)
    if name == "meta-init":
        return build_failed  # the constructor itself needed values
    if name == "alt-inputs":
        return params is not None and any(_SHAPE_MISMATCH.search(e) for e in errors)
    needs_values = params is not None and any(_NEEDS_VALUES.search(e) for e in errors)
    real = needs_values and params <= CPU_PARAM_BUDGET
    if name == "meta-constants":
        return needs_values
    if name == "cpu":
        return real
    if name == "cpu-bf16":
        return needs_values and CPU_PARAM_BUDGET < params <= CPU_BF16_PARAM_BUDGET
    if name == "shared-weights":
        return needs_values and params > CPU_BF16_PARAM_BUDGET
    if name == "meta-nonzero":
        return params is not None and any("nonzero" in e for e in errors)
    if name == "text-model":  # not for a class this transformers lacks
        return _text_steps(source) and not any("has no class" in e for e in errors)
    if name.startswith("text-only"):
        # only for a model that could be built, or whose inputs were the problem
        text = _text_steps(source) and (
            params is not None or any("input" in e for e in errors))
        return text and (real if name == "text-only-cpu" else True)
    return True


def _text_steps(source: str) -> bool:
    from narbuild import sources

    return sources.get(source).SOURCE.text_steps


def trace_config(source: str, config: dict[str, Any]) -> tuple[TraceResult, str, str]:
    """Trace a model by source and config; returns (result, step name, attention path)."""
    errors: list[str] = []
    params: int | None = None
    build_failed = False
    moe = is_moe(config)
    for name, device, dtype, step in ladder_for(config):
        if not _applies(name, source, errors, build_failed, params, moe):
            continue
        built = None
        torch.manual_seed(0)  # models that draw noise (VITS's durations) trace the same each time
        try:
            try:
                built = build(source, config, device=device, dtype=dtype, step=step)
            except NotApplicable:
                raise
            except Exception as exc:
                build_failed = build_failed or bool(_NEEDS_VALUES.search(one_line(exc)))
                raise
            params = count_params(built.model) if params is None else params
            if device == "cpu" and step != "shared-weights" and params > _budget(dtype):
                continue
            if name == "alt-inputs":
                return _trace_alternatives(built), name, built.attention
            if name == "meta-nonzero":
                return trace_all_selected(built.model, built.inputs), name, built.attention
            with literals_on_host() if step == "meta-constants" else contextlib.nullcontext():
                result = trace_module(built.model, built.inputs, fallbacks=False)
            return result, name, built.attention
        except NotApplicable:
            continue
        except Exception as exc:  # noqa: BLE001 - each failure moves one step down
            errors.append(f"{name}: {one_line(exc)}")
        finally:
            built = None
    raise TraceFailed(errors)


def _trace_alternatives(built: Built) -> TraceResult:
    """The first alternative input layout the model runs on."""
    failures = []
    config = getattr(built.model, "config", None)
    for layout, inputs in alternative_inputs(built.inputs, config, built.model):
        try:
            return trace_module(built.model, inputs, fallbacks=False)
        except Exception as exc:  # noqa: BLE001 - try the next layout
            failures.append(f"{layout}: {one_line(exc, 120)}")
    if not failures:
        raise NotApplicable("no alternative layout for these inputs")
    raise RuntimeError("no alternative layout fits: " + "; ".join(failures))


def _budget(dtype: torch.dtype) -> int:
    return CPU_PARAM_BUDGET if dtype == torch.float32 else CPU_BF16_PARAM_BUDGET


def _last_step(errors: list[str]) -> str | None:
    return errors[-1].split(":", 1)[0] if errors else None


class TraceFailed(RuntimeError):
    """Every step of the ladder failed; ``errors`` says why, step by step."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(errors[0] if errors else "nothing to try")

    def summary(self) -> str:
        """The first failure (the one on the default path) and the last one."""
        if len(self.errors) <= 1:
            return self.errors[0] if self.errors else "no applicable trace step"
        return f"{self.errors[0]} | last: {self.errors[-1]}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def graphs_row(model_id: str, config_hash: str | None, result: TraceResult | None = None,
               step: str | None = None, attention: str | None = None,
               error: str | None = None, seconds: float = 0.0,
               peak_rss_mb: float | None = None) -> dict[str, Any]:
    """A row of the graphs table, for a success (``result``) or a failure (``error``)."""
    row: dict[str, Any] = {
        "model_id": model_id, "status": "error" if error else "ok", "error": error,
        "config_hash": config_hash, "fallback": step, "attention": attention,
        "wall_time_s": round(seconds, 4), "peak_rss_mb": peak_rss_mb,
        "torch_version": torch.__version__, "narbuild_version": __version__, "traced_at": now(),
    }
    if result is not None:
        g = result.graph
        row.update(
            nodes=g.nodes, edge_src=[s for s, _ in g.edges], edge_dst=[d for _, d in g.edges],
            num_nodes=len(g.nodes), num_edges=len(g.edges), graph_hash=g.graph_hash(),
            flops=result.flops, macs=result.macs, params=result.params,
            inputs=json.dumps(result.inputs), outputs=json.dumps(result.outputs),
            device=result.device, dtype=result.dtype,
        )
    return row


def trace_manifest_row(row: dict[str, Any]) -> dict[str, Any]:
    """Trace a manifest row into a graphs row; failures become error rows, never raise."""
    start = time.perf_counter()
    try:
        config = json.loads(row["config"])
        result, step, attention = trace_config(row["source"], config)
    except TraceFailed as exc:
        return graphs_row(row["model_id"], row["config_hash"], error=exc.summary(),
                          step=_last_step(exc.errors), seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a bad row must not stop the run
        return graphs_row(row["model_id"], row["config_hash"], error=one_line(exc),
                          seconds=time.perf_counter() - start)
    return graphs_row(row["model_id"], row["config_hash"], result, step, attention,
                      seconds=time.perf_counter() - start)
