"""Where a model is built: the meta device (no memory for weights), the CPU with cheap
initialisers, parameters on meta with the constructor's arithmetic on the CPU, and the helpers
that move example inputs and keep host literals real. :func:`narbuild.tracing.build.build`
chooses one per ladder step."""

from __future__ import annotations

import contextlib
import math

import torch
from torch.overrides import TorchFunctionMode


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


# In-place ops that only write values: on a meta tensor there are none to write, so a meta
# build skips them (weight initialisation is half of a build's time otherwise).
_VALUE_WRITES = frozenset({
    "uniform_", "normal_", "erfinv_", "fill_", "zero_", "copy_", "mul_", "add_", "sub_", "div_",
    "clamp_", "clamp_min_", "clamp_max_", "exponential_", "bernoulli_", "random_", "log_normal_",
    "cauchy_", "geometric_", "abs_", "sqrt_", "exp_", "log_", "neg_", "fill_diagonal_",
    "masked_fill_", "index_fill_", "addcmul_", "addcdiv_", "lerp_", "sign_", "floor_", "ceil_",
    "round_", "fmod_", "remainder_", "pow_", "reciprocal_", "tanh_", "sigmoid_", "relu_",
})


class _SkipMetaValueWrites(torch.overrides.TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if (getattr(func, "__name__", "") in _VALUE_WRITES and args
                and isinstance(args[0], torch.Tensor) and args[0].is_meta):
            return args[0]
        return func(*args, **(kwargs or {}))


class literals_on_host(TorchFunctionMode):
    """Tensors made from Python numbers for the meta device (``torch.tensor(shapes,
    device=x.device)``, ``torch.arange(n, device=x.device)``) are made on the CPU instead, so a
    model can read them back (``.item()``, ``mask.max() + 1``). They are constants outside the
    autograd graph, and an op that mixes them with meta tensors runs on meta
    (``core._HostToMeta``)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if (func in _LITERALS and args and torch.device(kwargs.get("device") or "cpu").type == "meta"
                and not any(isinstance(a, torch.Tensor) and a.is_meta for a in args)
                and (func is torch.arange or not isinstance(args[0], torch.Tensor))):
            kwargs = {**kwargs, "device": "cpu"}
        return func(*args, **kwargs)


_LITERALS = (torch.tensor, torch.as_tensor, torch.arange)


@contextlib.contextmanager
def meta_context():
    """Build on the meta device, skipping value writes (initialisers) on meta tensors."""
    with torch.device("meta"), _SkipMetaValueWrites():
        yield


@contextlib.contextmanager
def cpu_context(device: str):
    with torch.device(device), cheap_init():
        yield


_BIG = 1 << 20


def _arg(args, kwargs, index, names, default=None):
    if len(args) > index:
        return args[index]
    for name in names:
        if name in kwargs:
            return kwargs[name]
    return default


def _expected_value(name: str, args: tuple, kwargs: dict) -> float | None:
    """The expected value of a random initialiser's draw (None: not a random initialiser)."""
    if name == "uniform_":  # Tensor.uniform_(from, to) and nn.init.uniform_(tensor, a, b)
        return (float(_arg(args, kwargs, 1, ("from", "a"), 0.0))
                + float(_arg(args, kwargs, 2, ("to", "b"), 1.0))) / 2
    if name in ("normal_", "log_normal_"):
        return float(_arg(args, kwargs, 1, ("mean",), 0.0))
    if name == "trunc_normal_":
        mean = float(_arg(args, kwargs, 1, ("mean",), 0.0))
        lo, hi = float(_arg(args, kwargs, 3, ("a",), -2.0)), float(_arg(args, kwargs, 4, ("b",), 2.0))
        return min(max(mean, lo), hi)
    if name in ("kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
                "orthogonal_", "sparse_", "cauchy_"):
        return 0.0
    if name in ("exponential_", "geometric_"):
        return 1.0
    return None


class _ExpectedValueInit(TorchFunctionMode):
    """Random initialisers fill their expected value instead of drawing numbers.

    Drawing 100M random floats costs seconds on one CPU core; a fill costs a fraction of that.
    Every tensor is filled, large ones too: an allocation may reuse freed memory, so a tensor left
    as allocated holds whatever was there, and an initialiser that loops until its values are in
    range (``trunc_normal_``'s rejection sampling in torch 2.14) can then loop forever.
    ``uniform_(a, b)`` fills ``(a + b) / 2``, ``normal_(mean, std)`` fills ``mean``, the
    ``torch.nn.init`` schemes (kaiming, xavier, orthogonal) fill 0. Factories (``torch.randn``)
    and integer draws used as indices (``randint``, ``randperm``) are left alone: they are
    small, and example inputs use them.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name.endswith("_") and name != "fill_":
            t = _arg(args, kwargs, 0, ("tensor", "self"))
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                value = _expected_value(name, args, kwargs)
                if value is not None:
                    with torch.no_grad(), torch._C.DisableTorchFunction():
                        return t.fill_(value)
        return func(*args, **kwargs)


@contextlib.contextmanager
def cheap_init():
    """Construct real-tensor models without drawing random weights (see :class:`_ExpectedValueInit`)."""
    with _ExpectedValueInit():
        yield


class _LargeEmptyOnMeta(TorchFunctionMode):
    """``torch.empty`` of a large tensor (a weight about to be registered) goes to meta."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.empty and kwargs.get("device") is None:
            size = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)) \
                else args
            try:
                numel = math.prod(int(s) for s in size)
            except (TypeError, ValueError):
                numel = 0
            if numel > _BIG:
                kwargs = {**kwargs, "device": "meta"}
        return func(*args, **kwargs)


@contextlib.contextmanager
def params_on_meta(buffers: bool = True):
    """Run a constructor on the CPU but keep every parameter (and buffer, unless ``buffers`` is
    False) on the meta device.

    For builders that compute layer sizes with tensor ops (``.item()``/``.tolist()``), which the
    meta device cannot answer. Large ``torch.empty`` calls are sent to meta directly, so even a
    large model allocates no weights.
    """
    module = torch.nn.Module
    register_parameter, register_buffer = module.register_parameter, module.register_buffer

    def on_meta_parameter(self, name, param):
        if param is not None and param.device.type != "meta":
            param = type(param)(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def on_meta_buffer(self, name, tensor, persistent=True):
        if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
            tensor = tensor.to("meta")
        register_buffer(self, name, tensor, persistent)

    module.register_parameter = on_meta_parameter
    if buffers:
        module.register_buffer = on_meta_buffer
    try:
        with torch.device("cpu"), _LargeEmptyOnMeta(), cheap_init():
            yield
    finally:
        module.register_parameter, module.register_buffer = register_parameter, register_buffer


def share_zero_weights(model: torch.nn.Module) -> None:
    """Replace every meta parameter and buffer by a zero broadcast to its shape (one element of
    memory, any size); a tied parameter stays one parameter. The model then runs on real CPU
    tensors, so code that reads values (mixture-of-experts routing, ``.item()``) runs, at the
    cost of the real arithmetic. Equal weights give equal router scores: every token takes the
    first k experts, so FLOPs count k experts per token, as a trained router's would."""
    shared: dict[int, torch.Tensor] = {}

    def zero(t: torch.Tensor, parameter: bool) -> torch.Tensor:
        if id(t) not in shared:
            data = torch.zeros((), dtype=t.dtype).expand(t.shape)
            shared[id(t)] = torch.nn.Parameter(data, t.requires_grad) if parameter else data
        return shared[id(t)]

    for module in model.modules():
        for table, parameter in ((module._parameters, True), (module._buffers, False)):
            for name, t in table.items():
                if t is not None and t.is_meta:
                    table[name] = zero(t, parameter)


HOST_INPUTS = frozenset({"grid_thw", "image_grid_thw", "video_grid_thw", "mm_token_type_ids",
                         "spatial_shapes", "merge_sizes"})
"""Inputs that describe sizes and layout (a patch grid, which tokens are image tokens), which
models read back as Python numbers (``grid_thw.tolist()``): they stay on the CPU when the model
runs on meta."""


def to_device(inputs, device):
    def move(v):
        if isinstance(v, torch.Tensor) and v.device.type != device:
            return v.detach().to(device).requires_grad_(v.requires_grad)
        if isinstance(v, list):
            return [move(x) for x in v]
        return v
    if isinstance(inputs, dict):
        return {k: v if k in HOST_INPUTS else move(v) for k, v in inputs.items()}
    return tuple(move(v) for v in inputs)
