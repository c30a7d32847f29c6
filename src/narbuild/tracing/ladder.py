"""Trace one manifest row, walking down a fallback ladder until a step succeeds.

:data:`LADDER` lists the steps in order. Each :class:`Step` says how it builds the model
(device, dtype, build step), what it is for (``doc``), and when it applies (``applies``, a
predicate over the failures so far): a step that cannot help with the failure seen is skipped
(a missing forward argument is not fixed by real tensors), so a failing model costs a build or
two, not twelve. Every graphs row records the step that produced it (``fallback``), so a figure
can be reproduced. A new step is one entry of :data:`LADDER`.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from narbuild.errors import one_line
from narbuild.sources.base import Built
from narbuild.tracing.alt_inputs import alternative_inputs
from narbuild.tracing.build import build
from narbuild.tracing.core import (
    NEEDS_BF16,
    TraceResult,
    count_params,
    trace_all_selected,
    trace_module,
)
from narbuild.tracing.devices import literals_on_host
from narbuild.tracing.inputs import NotApplicable
from narbuild.tracing.rows import graphs_row

CPU_PARAM_BUDGET = 200_000_000
"""Largest model (parameters) traced on real CPU tensors; 0.8 GB of float32 weights."""
CPU_BF16_PARAM_BUDGET = 700_000_000
"""Largest model traced on real bfloat16 CPU tensors; 1.4 GB of weights."""

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


@dataclass
class Failures:
    """What the steps tried so far say about a model."""

    source: str
    moe: bool = False
    errors: list[str] = field(default_factory=list)
    build_failed: bool = False
    """A constructor failed for want of values (meta-init can help)."""
    params: int | None = None
    """The parameter count, once a build succeeded."""

    def any(self, pattern: re.Pattern[str] | str) -> bool:
        if isinstance(pattern, str):
            return any(pattern in e for e in self.errors)
        return any(pattern.search(e) for e in self.errors)

    @property
    def built(self) -> bool:
        return self.params is not None

    @property
    def needs_values(self) -> bool:
        """A built model failed where meta tensors have no values."""
        return self.built and self.any(_NEEDS_VALUES)

    @property
    def fits_cpu(self) -> bool:
        """It needs values and is small enough for real float32 CPU tensors."""
        return self.needs_values and self.params <= CPU_PARAM_BUDGET

    @property
    def builds_only_with_values(self) -> bool:
        """No meta step could build it: its constructor needs values (the CPU build is then
        checked against the budget before it runs)."""
        return self.build_failed and not self.built

    @property
    def text_steps(self) -> bool:
        return _text_steps(self.source)


@dataclass(frozen=True)
class Step:
    """One way to build and trace a model."""

    name: str
    device: str
    dtype: torch.dtype
    build_step: str
    """What the source's builder is asked for (see :func:`narbuild.tracing.build.build`)."""
    applies: Callable[[Failures], bool]
    doc: str


def _text_only_applies(f: Failures, on_cpu: bool = False) -> bool:
    """Only for a model that could be built, or whose inputs were the problem."""
    text = f.text_steps and (f.built or f.any("input"))
    return text and (f.fits_cpu if on_cpu else True)


F32, BF16 = torch.float32, torch.bfloat16
LADDER: list[Step] = [
    Step("meta", "meta", F32, "default", lambda f: True,
         "weightless build on the meta device, float32 (the default)"),
    Step("meta-bf16", "meta", BF16, "default",
         lambda f: f.moe or f.any(NEEDS_BF16),
         "the same in bfloat16, when a step failed on a dtype (mixture-of-experts grouped "
         "matmul wants bfloat16 on meta)"),
    Step("meta-init", "meta", F32, "meta-init", lambda f: f.build_failed,
         "the constructor runs on the CPU with every parameter and buffer on meta, when "
         "building on meta failed (builders that compute layer sizes with tensor ops, e.g. "
         "torchvision's RegNet); traced on meta"),
    Step("alt-inputs", "meta", F32, "default",
         lambda f: f.built and f.any(_SHAPE_MISMATCH),
         "the same modality in another layout (a waveform with a channel axis, audio features "
         "transposed, images at a sub-config's size, text with decoder ids, ...: "
         ":func:`narbuild.tracing.inputs.alternative_inputs`), when a meta step failed on a "
         "shape, on an optional input it was not given or on two it refuses together; the "
         "row's ``inputs`` say which layout fitted"),
    Step("meta-constants", "meta", F32, "meta-constants", lambda f: f.needs_values,
         "parameters and activations on meta, but buffers and tensors made from Python "
         "numbers real on the CPU, when a meta step failed for want of values: a model that "
         "reads a buffer (``if self.probs[i] > 0``) or a size it put in a tensor then runs at "
         "meta's cost"),
    Step("cpu", "cpu", F32, "default",
         lambda f: f.fits_cpu or f.builds_only_with_values,
         "real CPU tensors, for models under CPU_PARAM_BUDGET parameters, when a meta step "
         "failed for want of values (``.item()``, NMS, ``nonzero``) or no meta step could build "
         "the model (a constructor that reads values: a random kernel's length, a probe "
         "forward); weights are not randomly initialised "
         "(:func:`narbuild.tracing.devices.cheap_init`)"),
    Step("cpu-bf16", "cpu", BF16, "default",
         lambda f: f.needs_values and CPU_PARAM_BUDGET < f.params <= CPU_BF16_PARAM_BUDGET,
         "the same in bfloat16 (half the memory), up to CPU_BF16_PARAM_BUDGET parameters"),
    Step("shared-weights", "cpu", F32, "shared-weights",
         lambda f: f.needs_values and f.params > CPU_BF16_PARAM_BUDGET,
         "real CPU tensors for larger models that need values: every weight is one zero "
         "broadcast to its shape, activations are real; FLOPs are those of the run, every "
         "token taking the first k experts where routing ties "
         "(:func:`narbuild.tracing.devices.share_zero_weights`)"),
    Step("meta-nonzero", "meta", F32, "default", lambda f: f.built and f.any("nonzero"),
         "meta again, with ``nonzero``/``where`` assumed true everywhere, for models over the "
         "real-tensor budget that select by value (mixture-of-experts routing); the operators "
         "and edges are those of a run where every selection is taken, and the row stores no "
         "FLOPs"),
    Step("text-only", "meta", F32, "text-only", _text_only_applies,
         "transformers: text inputs alone (vision-language models whose image placeholders "
         "cannot be checked on meta)"),
    Step("text-only-cpu", "cpu", F32, "text-only",
         lambda f: _text_only_applies(f, on_cpu=True), "the same on real CPU tensors"),
    Step("text-model", "meta", F32, "text-model",
         lambda f: f.text_steps and not f.any("has no class"),
         "transformers: the language model alone, built from the text sub-config of a "
         "multimodal model whose whole model cannot be built or run (its default vision or "
         "audio config is incomplete)"),
]


def ladder_for(config: dict[str, Any]) -> list[Step]:
    """The ladder; for mixture-of-experts models bfloat16 first (saves a failed build) and
    bfloat16 in the later steps too, but for shared weights (float32 arithmetic is the fast
    one on a CPU, and such weights take no memory)."""
    if not is_moe(config):
        return LADDER
    later = [s if s.build_step == "shared-weights" else replace(s, dtype=BF16)
             for s in LADDER[2:]]
    return [LADDER[1], LADDER[0], *later]


def _text_steps(source: str) -> bool:
    from narbuild import sources

    return sources.get(source).SOURCE.text_steps


def trace_config(source: str, config: dict[str, Any]) -> tuple[TraceResult, str, str]:
    """Trace a model by source and config; returns (result, step name, attention path)."""
    f = Failures(source, is_moe(config))
    for s in ladder_for(config):
        if not s.applies(f):
            continue
        name, device, dtype, step = s.name, s.device, s.dtype, s.build_step
        built = None
        torch.manual_seed(0)  # models that draw noise (VITS's durations) trace the same each time
        try:
            try:
                built = build(source, config, device=device, dtype=dtype, step=step)
            except NotApplicable:
                raise
            except Exception as exc:
                f.build_failed = f.build_failed or bool(_NEEDS_VALUES.search(one_line(exc)))
                raise
            f.params = count_params(built.model) if f.params is None else f.params
            if device == "cpu" and step != "shared-weights" and f.params > _budget(dtype):
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
            f.errors.append(f"{name}: {one_line(exc)}")
        finally:
            built = None
    raise TraceFailed(f.errors)


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
