"""Build a manifest row's model without weights, with example inputs, on a given device."""

from __future__ import annotations

import contextlib
import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from narbuild.errors import NarbuildError
from narbuild.tracing import inputs as make
from narbuild.tracing.core import cast_inputs


@dataclass
class Built:
    """A model ready to trace, and how it was made."""

    model: torch.nn.Module
    inputs: tuple | dict
    attention: str = "math"


def build(source: str, config: dict[str, Any], device: str = "meta",
          dtype: torch.dtype = torch.float32, step: str = "default") -> Built:
    """Build the model of a manifest row (its ``source`` and parsed ``config``).

    ``device="meta"`` builds without memory for weights. ``step="meta-init"`` runs the
    constructor on the CPU (for builders that compute sizes with tensor ops, e.g. torchvision's
    RegNet) while every parameter and buffer is placed on the meta device.
    ``step="meta-constants"`` does the same but keeps buffers real on the CPU, so a model that
    reads a buffer's values (``if self.probs[i] > 0``) runs on meta; trace it inside
    :func:`literals_on_host`. ``step="shared-weights"`` builds a real CPU model whose every
    weight is one zero broadcast to its shape (:func:`share_zero_weights`): no memory for
    weights, real values everywhere else. On the CPU, random
    initialisers are replaced by their expected value (:func:`cheap_init`): the values of weights
    do not shape the graph, and a real-tensor build then costs little more than its allocation.
    """
    builder = _BUILDERS.get(source)
    if builder is None:
        raise NarbuildError(f"cannot build models of source {source!r}",
                            "this source's models are listed only")
    if step == "meta-init":
        device, context = "meta", _params_on_meta()
    elif step == "shared-weights":
        device, context = "cpu", _params_on_meta(buffers=False)
    elif step == "meta-constants":
        device, context = "meta", _params_on_meta(buffers=False)
    elif device == "meta":
        context = meta_context()
    else:
        context = cpu_context(device)
    with context, _default_dtype(dtype if device != "meta" else torch.float32):
        built = builder(config, step)  # real tensors are made in their final dtype: no fp32 peak
    if step == "shared-weights":
        share_zero_weights(built.model)
    built.model.eval()
    if dtype != torch.float32:
        built.model.to(dtype)
        built.inputs = cast_inputs(built.inputs, dtype)
    if device == "meta":
        built.inputs = to_device(built.inputs, "meta")
    return built


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype):
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
def _params_on_meta(buffers: bool = True):
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
                         "spatial_shapes"})
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


def check_local_architecture(name: Any) -> str:
    """A timm architecture name that builds from this machine alone; ``hf-hub:`` and
    ``local-dir:`` names (timm would fetch or read a config, sending the Hub token) are
    refused."""
    if not isinstance(name, str) or not name:
        raise NarbuildError(f"invalid timm architecture {name!r}",
                            "name a timm architecture, e.g. resnet50")
    prefix = name.split(":", 1)[0] if ":" in name else ""
    if prefix:
        raise NarbuildError(f"the config names the timm architecture {name!r}, which timm "
                            f"would load through {prefix}: (the Hub or another folder)",
                            "name a timm architecture such as resnet50, or trace the Hub "
                            f"model by id, hf:{name.split(':', 1)[1]} (needs the network)")
    return name


def _timm(config: dict[str, Any], step: str) -> Built:
    import timm

    check_local_architecture(config["architecture"])
    cfg = config.get("pretrained_cfg", {})
    model = timm.create_model(config["architecture"], pretrained=False,
                              num_classes=cfg.get("num_classes", 1000), **config.get("kwargs", {}))
    size = cfg.get("input_size")
    if step == "small-input" and size:
        size = [size[0], *[max(s // 2, 32) for s in size[1:]]]
    return Built(model, make.vision_inputs(size))


def _torchvision(config: dict[str, Any], step: str) -> Built:
    from torchvision.models import get_model, get_model_builder

    name = config["builder"]
    module = get_model_builder(name).__module__
    kwargs: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(get_model_builder(name)).parameters:
        kwargs["weights_backbone"] = None  # never download a backbone
    if "num_classes" in config:
        kwargs["num_classes"] = config["num_classes"]
    if ".quantization." in module:
        kwargs["quantize"] = False
    model = get_model(name, **kwargs, **config.get("builder_kwargs", {}))
    size = config.get("image_size") or make.DEFAULT_IMAGE
    h, w = make.image_hw(size)
    if ".video." in module:
        frames = config.get("num_frames", 16)
        return Built(model, (torch.randn(1, 3, frames, h, w, requires_grad=True),))
    if ".optical_flow." in module:
        return Built(model, (make.image_batch(3, 128, 128), make.image_batch(3, 128, 128)))
    if ".detection." in module:
        return Built(model, ([make.image_batch(3, h, w)[0]],))
    return Built(model, (make.image_batch(3, h, w),))


def _transformers(config: dict[str, Any], step: str) -> Built:
    import transformers

    cls = getattr(transformers, config["class"], None)
    if cls is None:
        raise NarbuildError(f"transformers has no class {config['class']}",
                            "upgrade transformers or re-crawl")
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from narbuild.tracing.hf_patches import patch_masking_utils

    patch_masking_utils()
    hf_config = _config_for(cls, CONFIG_MAPPING[config["model_type"]].from_dict(config["config"]))
    if step == "text-model":
        cls, hf_config = language_model_of(cls, hf_config)
    _complete_attention_defaults(hf_config)
    _complete_image_token(hf_config)
    model = cls._from_config(hf_config, attn_implementation="eager")
    if _fit_mrope_sections(model):
        model = cls._from_config(hf_config, attn_implementation="eager")
    if callable(getattr(model, "set_default_language", None)):  # X-MOD: one adapter per language
        languages = getattr(hf_config, "languages", None) or [None]
        model.set_default_language(getattr(hf_config, "default_language", None) or languages[0])
    return Built(model, make.transformers_inputs(model, hf_config, text_only=step == "text-only"),
                 attention="eager")


def _config_for(cls: type, hf_config: Any) -> Any:
    """The config the class is built from: a composite config's sub-config of the class's own
    ``config_class`` (``Llama4ForCausalLM`` takes ``Llama4Config.text_config``, ``MusicgenModel``
    its ``decoder``), as ``AutoModel.from_config`` does for text sub-configs."""
    wanted = getattr(cls, "config_class", None)
    if wanted is None or isinstance(hf_config, wanted):
        return hf_config
    for name in getattr(hf_config, "sub_configs", {}):
        sub = getattr(hf_config, name, None)
        if isinstance(sub, wanted):
            return sub
    return hf_config


def _complete_attention_defaults(hf_config: Any) -> None:
    """Fill what a default config leaves None but its modeling code computes with, by the
    documented convention: ``head_dim = hidden_size // num_attention_heads`` (ministral,
    hunyuan), ``num_key_value_heads = num_attention_heads`` where None or missing (nemotron,
    Moonshine Streaming: no grouping), the default RoPE per layer type where the rotary
    parameters are empty, and a forecaster's ``prediction_length`` (required; 24 steps,
    PatchTST's default) with ``context_length`` defaulting to it (Informer, Autoformer)."""
    if getattr(hf_config, "prediction_length", 0) is None:
        hf_config.prediction_length = 24
        hf_config.context_length = hf_config.context_length or 24
    for holder in make.config_holders(hf_config):
        _complete_rope_per_layer_type(holder)
        hidden, heads = _read(holder, "hidden_size"), _read(holder, "num_attention_heads")
        if not isinstance(heads, int) or heads <= 0:
            continue
        if _read(holder, "head_dim") is None and isinstance(hidden, int):
            holder.head_dim = hidden // heads
        if _read(holder, "num_key_value_heads") in (None, _MISSING):
            holder.num_key_value_heads = heads


DEFAULT_ROPE = {"rope_type": "default", "rope_theta": 10000.0}
"""transformers' default rotary embedding."""


def _complete_rope_per_layer_type(holder: Any) -> None:
    """A config whose rotary parameters are keyed by layer type but empty (Cohere Compass's
    default: the modeling code looks up ``rope_parameters[layer_type]``) gets the default
    rotary embedding for each of its layer types."""
    rope, types = _read(holder, "rope_parameters"), _read(holder, "layer_types")
    if rope == {} and isinstance(types, list) and types:
        holder.rope_parameters = {t: dict(DEFAULT_ROPE) for t in dict.fromkeys(types)}


def _fit_mrope_sections(model: torch.nn.Module) -> bool:
    """Fit multimodal RoPE to its sections, by the convention that sections cover half the
    rotary width. A default config may leave out ``partial_rotary_factor`` while its modeling
    code's sections ([8, 12, 12] in GLM-4V) assume one: the rotary width is then
    2 x sum(sections), taken as a fraction of the head width. True when the config changed
    (build again)."""
    for module in model.modules():
        sections, inv_freq = getattr(module, "mrope_section", None), getattr(module, "inv_freq", None)
        config = getattr(module, "config", None)
        rope = getattr(config, "rope_parameters", None)
        if (not isinstance(sections, list) or not isinstance(inv_freq, torch.Tensor)
                or not isinstance(rope, dict) or "partial_rotary_factor" in rope
                or sum(sections) == inv_freq.shape[-1]):
            continue
        head_dim = _read(config, "head_dim")
        if not isinstance(head_dim, int):
            head_dim = config.hidden_size // config.num_attention_heads
        factor = 2 * sum(sections) / head_dim
        if 0 < factor <= 1:
            rope["partial_rotary_factor"] = factor
            return True
    return False


def _complete_image_token(hf_config: Any) -> None:
    """A vision-language default config may leave its image placeholder id None (the tokenizer
    adds that token, e.g. BLIP-2, InstructBLIP); it gets the last id of the text vocabulary,
    which the example text never uses otherwise. The id chooses where image features go in the
    text, as the other token ids do: it does not change the graph."""
    if getattr(hf_config, "vision_config", None) is None:
        return
    fields = hf_config.to_dict()  # serialises every sub-config: once per build, not per name
    for name in make.IMAGE_TOKEN_FIELDS:
        if name in fields and _read(hf_config, name) is None:
            vocab = _read(hf_config.get_text_config(), "vocab_size")
            if isinstance(vocab, int) and vocab > 1:
                setattr(hf_config, name, vocab - 1)
            return


_GENERATIVE = ("ForConditionalGeneration", "ForCausalLM")


def language_model_of(cls: type, hf_config: Any) -> tuple[type, Any]:
    """The language model inside a multimodal generative model: the base model class of its
    text sub-config. For the ``text-model`` step, when the whole model cannot be built or run
    (its default vision or audio config is incomplete); the graph is then the language model's,
    as the ``text-only`` step's graph is. Raises :class:`NotApplicable` for anything else."""
    import importlib

    text = hf_config.get_text_config(decoder=True)
    takes_text = "input_ids" in inspect.signature(cls.forward).parameters
    generative = cls.__name__.endswith(_GENERATIVE)
    base_model = cls.__name__.endswith("Model") and getattr(cls, "config_class", None) is type(
        hf_config)  # the base model of a composite: its text tower must be a decoder
    if text is hf_config or not takes_text or not (generative or base_model):
        raise make.NotApplicable("not a multimodal language model")
    module = importlib.import_module(type(text).__module__.replace(".configuration_", ".modeling_"))
    classes = {n: c for n, c in vars(module).items()
               if inspect.isclass(c) and getattr(c, "config_class", None) is type(text)}
    base = sorted((n for n in classes if n.endswith("Model") and "PreTrained" not in n), key=len)
    decoder = generative or any(n.endswith("ForCausalLM") for n in classes)
    if not base or not decoder:
        raise make.NotApplicable(f"{type(text).__name__} has no language model class")
    return classes[base[0]], text


_ABSENT, _MISSING = object(), object()


def _read(holder: Any, name: str) -> Any:
    """``holder.name``; ``_MISSING`` when it has none, ``_ABSENT`` when it refuses a global read
    (transformers' per-layer attributes of heterogeneous configs raise on ``config.head_dim``)."""
    try:
        return getattr(holder, name, _MISSING)
    except Exception:  # noqa: BLE001 - AmbiguousGlobalPerLayerAttributeError is no AttributeError
        return _ABSENT


def _hf_hub(config: dict[str, Any], step: str) -> Built:
    cfg = config.get("config", {})
    if config.get("library") == "timm" or "architecture" in cfg:
        return _timm({"architecture": cfg["architecture"],
                      "pretrained_cfg": cfg.get("pretrained_cfg", {})}, step)
    model_type = cfg.get("model_type")
    archs = cfg.get("architectures") or []
    if not model_type or not archs:
        raise NarbuildError("config.json has no model_type/architectures",
                            "only transformers and timm Hub models are built")
    return _transformers({"model_type": model_type, "class": archs[0], "config": cfg}, step)


def _file(config: dict[str, Any], step: str) -> Built:
    """A user's ``file.py:factory`` (with its ``example_inputs()`` when defined)."""
    from narbuild.tracing.spec import load_factory

    _, model, inputs = load_factory(f"{config['path']}:{config['factory']}")
    return Built(model, tuple(inputs) if isinstance(inputs, list) else inputs)


_BUILDERS = {"timm": _timm, "torchvision": _torchvision, "transformers": _transformers,
             "hf-hub": _hf_hub, "file": _file}
