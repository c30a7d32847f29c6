"""Trace one module: a forward pass under the FLOP counter, then the autograd walk."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from narbuild.tracing.flops import flop_counter
from narbuild.tracing.graph import OpGraph, walk_autograd
from narbuild.tracing.inputs import describe
from narbuild.tracing.metakernels import native_meta_kernels


@dataclass
class TraceResult:
    """A traced model: its operator graph and the figures measured on the way."""

    graph: OpGraph
    flops: int | None  # None: not measured (see the ladder's meta-nonzero step)
    params: int
    inputs: dict[str, Any]
    outputs: list[list[int]]
    device: str
    dtype: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def macs(self) -> int | None:
        return None if self.flops is None else self.flops // 2


def count_params(model: torch.nn.Module) -> int:
    """Parameters, each shared/tied parameter counted once (works on meta tensors)."""
    return sum(p.numel() for p in model.parameters())  # parameters() yields each once


def output_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a (nested) model output: tensors, tuples, lists, dicts, ModelOutputs."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict) or hasattr(obj, "to_tuple"):
        for value in (obj.values() if isinstance(obj, dict) else obj.to_tuple()):
            yield from output_tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from output_tensors(value)


class _HostToMeta(TorchDispatchMode):
    """An op that mixes meta tensors with CPU tensors runs on meta.

    A model on meta may be given size-describing inputs on the CPU (a patch grid it reads back
    with ``.tolist()``); what it computes from them (position ids) then meets meta activations.
    Some models also keep constants as plain tensor attributes, which a meta build leaves on the
    CPU. On meta, such an op would have given a meta tensor anyway; the move happens below
    autograd, so the graph is unchanged.
    """

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _mixes_cpu_and_meta(args, kwargs):
            flat, spec = tree_flatten((args, kwargs))
            flat = [t.to("meta") if isinstance(t, torch.Tensor) and t.device.type == "cpu" else t
                    for t in flat]
            args, kwargs = tree_unflatten(flat, spec)
        return func(*args, **kwargs)


def _mixes_cpu_and_meta(args: tuple, kwargs: dict) -> bool:
    """Whether an operator's arguments (tensors, or lists of them) hold both a meta tensor and
    a CPU tensor, neither a scalar."""
    meta = cpu = False
    for arg in (*args, *kwargs.values()):
        for t in arg if isinstance(arg, (list, tuple)) else (arg,):
            if isinstance(t, torch.Tensor) and t.dim() > 0:
                meta = meta or t.is_meta
                cpu = cpu or t.device.type == "cpu"
    return meta and cpu


def _on_meta(model: torch.nn.Module) -> bool:
    first = next(model.parameters(), None)
    return first is not None and first.is_meta


NEEDS_BF16 = re.compile(r"BFloat16|bfloat16|Float16|Half")
"""Failures that a bfloat16 build fixes (mixture-of-experts grouped matmul on meta)."""


def trace_module(model: torch.nn.Module, inputs: tuple | dict, *,
                 fallbacks: bool = True) -> TraceResult:
    """Run ``model`` once on ``inputs`` and return its autograd operator graph and figures.

    The model and inputs may live on the meta device (no memory for weights) or the CPU; the
    graph is the same either way because attention runs on PyTorch's math path everywhere.
    ``inputs`` is a tuple of positional arguments or a dict of keyword arguments.

    With ``fallbacks``, a meta model that fails takes the catalog ladder's meta steps that
    apply to a module already built: ``meta-bf16`` when a kernel wants bfloat16 (the module is
    cast for the run and cast back after), then ``meta-nonzero`` when it selects by value
    (every selection taken; FLOPs left None). ``result.extra["step"]`` names the step taken.
    """
    try:
        return _trace_once(model, inputs)
    except Exception as exc:
        if not fallbacks or not _on_meta(model):
            raise
        error = exc
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    if NEEDS_BF16.search(str(error)) and dtype == torch.float32:
        model.to(torch.bfloat16)
        try:
            return _meta_steps(model, cast_inputs(inputs, torch.bfloat16))
        finally:
            model.to(dtype)  # free on meta: no values to lose
    if "nonzero" in str(error):
        return _stepped(trace_all_selected(model, inputs), "meta-nonzero")
    raise error


def _meta_steps(model: torch.nn.Module, inputs: tuple | dict) -> TraceResult:
    """``meta-bf16`` on a module already cast, then ``meta-nonzero`` when it selects by value."""
    try:
        return _stepped(_trace_once(model, inputs), "meta-bf16")
    except Exception as exc:
        if "nonzero" not in str(exc):
            raise
    return _stepped(trace_all_selected(model, inputs), "meta-nonzero")


def _stepped(result: TraceResult, step: str) -> TraceResult:
    result.extra["step"] = step
    return result


def trace_all_selected(model: torch.nn.Module, inputs: tuple | dict) -> TraceResult:
    """Trace on meta with every ``nonzero`` answered "all of them" (the ladder's
    ``meta-nonzero``); FLOPs are left unknown, since every expert would count for every
    token."""
    from torch.fx.experimental import _config

    with _config.patch(meta_nonzero_assume_all_nonzero=True):
        result = _trace_once(model, inputs)
    result.flops = None
    return result


def cast_inputs(inputs: tuple | dict, dtype: torch.dtype) -> tuple | dict:
    """``inputs`` with every floating tensor cast to ``dtype``."""
    def cast(v):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.detach().to(dtype).requires_grad_(v.requires_grad)
        return v
    if isinstance(inputs, dict):
        return {k: cast(v) for k, v in inputs.items()}
    return tuple(cast(v) for v in inputs)


@contextlib.contextmanager
def meta_autocast_is_noop() -> Iterator[None]:
    """While a meta forward runs, ``torch.autocast(device_type="meta")`` is the no-op it is
    (meta tensors hold no values to cast) instead of an error: models that switch autocast off
    for their input's device (diffusers' rotary embeddings) name "meta" on a meta trace."""
    from torch.amp import autocast_mode

    init = autocast_mode.autocast.__init__

    def meta_off(self: Any, device_type: str, *args: Any, **kwargs: Any) -> None:
        if device_type == "meta":
            device_type, kwargs["enabled"] = "cpu", False
            args = args[:1]  # dtype only; enabled is set above
        init(self, device_type, *args, **kwargs)

    autocast_mode.autocast.__init__ = meta_off
    try:
        yield
    finally:
        autocast_mode.autocast.__init__ = init


def no_saved_activations() -> torch.autograd.graph.saved_tensors_hooks:
    """Autograd keeps no tensor for a backward pass: the trace walks the graph and never runs
    backward, so a real-tensor forward holds only the activations it still needs (on the CPU
    this is most of its memory; the graph is unchanged)."""
    return torch.autograd.graph.saved_tensors_hooks(_dropped, _never_unpacked)


def _dropped(tensor: torch.Tensor) -> None:
    return None


def _never_unpacked(_: None) -> torch.Tensor:
    raise RuntimeError("narbuild traces keep no saved tensors: backward is not available")


def _trace_once(model: torch.nn.Module, inputs: tuple | dict) -> TraceResult:
    start = time.perf_counter()
    counter = flop_counter()
    on_meta = _on_meta(model)
    promote = _HostToMeta() if on_meta else contextlib.nullcontext()
    kernels = native_meta_kernels() if on_meta else contextlib.nullcontext()
    keep = meta_autocast_is_noop() if on_meta else no_saved_activations()
    with kernels, sdpa_kernel([SDPBackend.MATH]), promote, counter, keep, torch.enable_grad():
        out = model(**inputs) if isinstance(inputs, dict) else model(*inputs)
    tensors = [t for t in output_tensors(out) if t.grad_fn is not None]
    if not tensors:
        raise RuntimeError("no output tensor has a grad_fn (the model's outputs are detached)")
    graph = walk_autograd(tensors)
    first = max(model.parameters(), key=lambda p: p.numel(), default=None)
    return TraceResult(
        graph=graph,
        flops=int(counter.get_total_flops()),
        params=count_params(model),
        inputs=describe(inputs),
        outputs=[list(t.shape) for t in tensors][:16],
        device=str(first.device) if first is not None else "cpu",
        dtype=str(first.dtype).removeprefix("torch.") if first is not None else "float32",
        seconds=time.perf_counter() - start,
    )
