"""diffusers: every model class the package exports, built from its default config.

One row per subclass of ``diffusers.ModelMixin`` that ``diffusers.models`` exports, and per
model class that ``diffusers`` exports from a pipeline's module (AudioLDM2's UNet, Flux's Redux
encoder, ...): UNets, autoencoders, diffusion transformers (DiT, PixArt, SD3, Flux, Wan, ...),
ControlNets, adapters and the audio, text and protein models of a few pipelines. The id is
``diffusers:<ClassName>``.

The config is diffusers' own ``config.json`` layout: ``_class_name`` and the defaults of the
class's ``__init__`` (tuples as lists), so a build is ``cls.from_config(config)``. Where the
defaults do not build or run, :data:`_CONFIGS` sets the missing values (those of the released
checkpoint: HunyuanDiT's ``patch_size``, Latte's, HiDream's and UniDiffuser's sizes, ...),
:data:`_BLOCKS` gives a building block (``Transformer2DModel``) the config of its first use in
a default UNet, and :data:`_TABLES` fills the lookup tables RFdiffusion's autoencoder takes.

Excluded (:data:`_EXCLUDED`): the multi-model containers (``MultiControlNetModel`` and its
kin, ``MultiAdapter``), which only run listed rows side by side; the two adapters without a
forward of their own (``MotionAdapter``, ``ControlNetXSAdapter``: weights that
``UNetMotionModel`` and ``UNetControlNetXSModel`` load; those are listed); and
``DreamLiteTransformer2DModel``, a block that runs only with the attention processor its UNet
(listed) gives it.

The family is the class's module (``diffusers.models.unets.unet_2d_condition`` ->
``unet_2d_condition``; a pipeline's ``modeling_audioldm2`` -> ``audioldm2``). Tasks:
``autoencoding`` for autoencoders (image, video and audio VAEs, VQ, tokenizers, vocoders),
``protein-design`` for RFdiffusion3's transformer, ``text-to-audio`` and ``text-to-video`` by
the module's or class's name (:data:`_AUDIO`, :data:`_VIDEO`), ``image-to-image`` for the image
ControlNets and adapters, else ``text-to-image``.

Inputs are made per forward argument (:data:`~narbuild.sources.diffusers.makers._MAKERS`) from the built model: the latent's
channels come from the config's ``in_channels`` and its layout from the layer that takes it (a
``Conv2d`` -> ``(1, C, 32, 32)``, a ``Conv3d`` or a video model's ``Conv2d`` ->
``(1, C, 2, 32, 32)``, a ``Linear`` -> packed 2 x 2 tokens ``(1, 256, C)`` with Flux's
``img_ids``); autoencoders take 64 x 64 images, 9-frame videos or 4096-sample waveforms; text
is 16 tokens of the config's text width (:data:`~narbuild.sources.diffusers.makers._TEXT_KEYS`); timesteps one float. Optional
arguments are passed where a diffusion model needs them (:data:`~narbuild.sources.diffusers.makers._OPTIONAL`); classes with a
layout, sizes or arguments of their own are in
:data:`~narbuild.sources.diffusers.classes._CLASSES`, each a line or two.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from functools import cache
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, unknown_id
from narbuild.sources.diffusers.classes import _CLASSES
from narbuild.sources.diffusers.makers import (
    _ENTRIES,
    _MAKERS,
    _OPTIONAL,
    FRAMES,
    LENGTH,
    PIXEL_FRAMES,
    PIXELS,
    SAMPLES,
    SIZE,
    _Ctx,
    _torch,
)

SOURCE = Source(
    name="diffusers", title="diffusers models (UNets, VAEs, diffusion transformers, ControlNets)",
    package="diffusers", offline=True, license="Apache-2.0", extra="diffusers",
    family="the class's module in diffusers (unet_2d_condition, autoencoder_kl, "
           "transformer_flux)")

_EXCLUDED: dict[str, str] = {
    **dict.fromkeys(("MultiControlNetModel", "MultiControlNetUnionModel",
                     "FluxMultiControlNetModel", "HunyuanDiT2DMultiControlNetModel",
                     "QwenImageMultiControlNetModel", "SD3MultiControlNetModel", "MultiAdapter"),
                    "a container that runs listed models side by side"),
    "MotionAdapter": "the motion modules UNetMotionModel loads; no forward of its own",
    "DreamLiteTransformer2DModel": "a block of DreamLiteUNetModel, which gives it the attention "
                                   "processor it needs to run",
    "ControlNetXSAdapter": "the control half UNetControlNetXSModel loads; no forward of its own",
}
"""Model classes that are not listed, and why."""

_CONFIGS: dict[str, dict[str, Any]] = {
    "AudioLDM2ProjectionModel": {"text_encoder_dim": 512, "text_encoder_1_dim": 1024,
                                 "langauge_model_dim": 768},
    "AutoencoderKLHunyuanImage": {
        "in_channels": 3, "out_channels": 3, "latent_channels": 64, "layers_per_block": 2,
        "block_out_channels": [128, 256, 512, 512, 1024, 1024], "spatial_compression_ratio": 32,
        "sample_size": 384},
    "ControlNetUnionModel": {  # SDXL's UNet, as the union ControlNets for SDXL are
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "block_out_channels": [320, 640, 1280], "transformer_layers_per_block": [1, 2, 10],
        "attention_head_dim": [5, 10, 20], "cross_attention_dim": 2048,
        "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": 2816, "use_linear_projection": True,
        "conditioning_embedding_out_channels": [16, 32, 96, 256]},
    "CosmosControlNetModel": {"num_attention_heads": 16},  # 16 x 128 = its model_channels
    "EasyAnimateTransformer3DModel": {"in_channels": 16, "out_channels": 16, "patch_size": 2},
    "HunyuanVideoFramepackTransformer3DModel": {"has_image_proj": True,
                                                "has_clean_x_embedder": True},
    "HiDreamImageTransformer2DModel": {
        "patch_size": 2, "in_channels": 16, "out_channels": 16, "caption_channels": [4096, 4096],
        "axes_dims_rope": [64, 32, 32], "llama_layers": [*range(32), *[31] * 16]},
    "HunyuanDiT2DControlNetModel": {"in_channels": 4, "patch_size": 2, "hidden_size": 1408,
                                    "mlp_ratio": 4.3637, "sample_size": 128},
    "HunyuanDiT2DModel": {"in_channels": 4, "patch_size": 2, "hidden_size": 1408,
                          "num_layers": 40, "mlp_ratio": 4.3637, "sample_size": 128},
    "LatteTransformer3DModel": {
        "in_channels": 4, "out_channels": 8, "num_layers": 28, "attention_head_dim": 72,
        "cross_attention_dim": 1152, "caption_channels": 4096, "patch_size": 2,
        "num_embeds_ada_norm": 1000, "norm_type": "ada_norm_single", "attention_bias": True,
        "activation_fn": "gelu-approximate", "norm_elementwise_affine": False, "norm_eps": 1e-6},
    "LuminaNextDiT2DModel": {"num_kv_heads": 8, "num_layers": 24},
    "NucleusMoEImageTransformer2DModel": {"use_grouped_mm": True},  # its loop reads counts back
    "OmniGenTransformer2DModel": {"rope_scaling": {"type": "su", "short_factor": [1.0] * 48,
                                                   "long_factor": [1.0] * 48}},
    "StableAudioProjectionModel": {"text_encoder_dim": 768, "conditioning_dim": 768,
                                   "min_value": 0, "max_value": 512},
    "UNet1DModel": {"extra_in_channels": 64},  # its Fourier time features (2 x 32) go in too
    "UniDiffuserModel": {
        "text_dim": 64, "clip_img_dim": 512, "num_attention_heads": 24, "attention_head_dim": 64,
        "in_channels": 4, "out_channels": 4, "num_layers": 30, "sample_size": 64,
        "patch_size": 2, "activation_fn": "gelu", "num_embeds_ada_norm": 1000},
    "UniDiffuserTextDecoder": {"prefix_length": 77, "prefix_inner_dim": 768,
                               "prefix_hidden_dim": 64},
    "ZImageControlNetModel": {"control_layers_places": [0, 5, 10, 15, 20, 25],
                              "control_in_dim": 16},
}
"""Constructor values for classes whose defaults do not build or run: those of their released
checkpoint, or a consistent value (UNet1D's time-feature channels, ControlNet-Cosmos's heads,
OmniGen's neutral rope scaling, NucleusMoE's grouped-matmul expert path, which runs on meta)."""

_BLOCKS = {"Transformer2DModel": "UNet2DConditionModel",
           "TransformerTemporalModel": "UNet3DConditionModel"}
"""Building blocks whose defaults do not build -> the model whose first such block's config
they take (built on the meta device at crawl time)."""

_TABLES = {"RFD4ProteinaAutoencoder": {"atom37_mask": ("n_residue_types", 37),
                                       "allowed_residue_types": ("num_token_types",
                                                                 "n_residue_types")}}
"""Required constructor arguments that are lookup tables (rows, columns by config key or
number): every entry true (which atoms a residue has does not change the graph)."""

_AUDIO = re.compile(r"audio|music|oobleck|vocoder|ace_step|t5_film|mmaudio|unet_1d")
_VIDEO = re.compile(r"video|3d|motion|temporal|i2vgen|cogvideo|mochi|ltx|wan|allegro|latte|"
                    r"helios|skyreels|magvit|kandinsky[56]|cosmos|chronoedit|anyflow|consisid|"
                    r"easyanimate|vidtok|sparsectrl|minimax_h3|framepack|sana_wm")


@cache
def _classes() -> dict[str, type]:
    """Every listed model class by name: ``diffusers.models``'s exports, and the model classes
    ``diffusers`` exports from pipelines' modules."""
    import diffusers

    structure = getattr(diffusers, "_import_structure", {})
    exported = [*structure.get("models", ()), *structure.get("pipelines", ())] or dir(diffusers)
    found = {}
    for name in exported:
        if name.endswith(("Pipeline", "Output")) or name in _EXCLUDED:
            continue
        obj = getattr(diffusers, name, None)
        if (inspect.isclass(obj) and issubclass(obj, diffusers.ModelMixin)
                and obj is not diffusers.ModelMixin):
            found[name] = obj
    return dict(sorted(found.items()))


def names() -> list[str]:
    return list(_classes())


def _class(name: str) -> type:
    classes = _classes()
    if name not in classes:
        raise unknown_id(f"diffusers:{name}", [f"diffusers:{n}" for n in classes],
                         "list them with `narbuild crawl -s diffusers`")
    return classes[name]


def lookup(name: str) -> dict[str, Any]:
    """The row of one class, with a clear error for a class diffusers does not export."""
    _class(name)
    return next(iter_rows([name]))


def family_of(cls: type) -> str:
    """The class's module: ``...unets.unet_2d_condition`` -> ``unet_2d_condition``, a
    pipeline's ``modeling_audioldm2`` -> ``audioldm2``."""
    return cls.__module__.rsplit(".", 1)[-1].removeprefix("modeling_")


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}".lower()


def task_of(cls: type) -> str:
    where = _where(cls)
    if ".autoencoders." in where:
        return "autoencoding"
    if "proteina" in where:
        return "protein-design"
    if _AUDIO.search(where):
        return "text-to-audio"
    if _VIDEO.search(where):
        return "text-to-video"
    if ".controlnets." in where or "adapter" in where:
        return "image-to-image"
    return "text-to-image"


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per model class (all, or ``names``)."""
    for name in names if names is not None else _classes():
        cls = _class(name)
        config, missing = default_config(cls)
        error = (f"{name} has no default for {', '.join(missing)} and no reference value"
                 if missing else None)
        yield manifest_row(
            "diffusers", name, config, task=task_of(cls), library="diffusers",
            module=family_of(cls), architectures=[name],
            metadata={"module": cls.__module__, "class": name}, error=error)


def default_config(cls: type) -> tuple[dict[str, Any], list[str]]:
    """The class's config (``_class_name`` and its constructor defaults, as JSON values, with
    :data:`_CONFIGS` over them) and the required arguments still without a value."""
    config: dict[str, Any] = {"_class_name": cls.__name__}
    missing = []
    fixes = _CONFIGS.get(cls.__name__) or _block_config(cls)
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name in fixes:
            config[param.name] = fixes[param.name]
        elif param.default is param.empty:
            missing.append(param.name)
        elif _is_json(param.default):
            config[param.name] = _json(param.default)
    for arg, dims in _TABLES.get(cls.__name__, {}).items():
        rows, cols = (config.get(d, d) for d in dims)
        config[arg] = [[True] * cols for _ in range(rows)]
        missing.remove(arg)
    return config, missing


def _block_config(cls: type) -> dict[str, Any]:
    """The config of the first ``cls`` block in the default model of :data:`_BLOCKS`."""
    if cls.__name__ not in _BLOCKS:
        return {}
    from narbuild.tracing.devices import meta_context

    with meta_context():
        parent = _class(_BLOCKS[cls.__name__]).from_config({})
    block = next(m for m in parent.modules() if type(m) is cls)
    return {k: _json(v) for k, v in block.config.items() if not k.startswith("_")}


def _is_json(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float, str))


def _json(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def build(config: dict[str, Any], step: str) -> Built:
    name = config["_class_name"]
    model = _class(name).from_config(dict(config))
    setup = _CLASSES.get(name, {}).get("setup")
    if setup is not None:
        model = setup(model)
    inputs = example_inputs(model)
    host = {arg: inputs.pop(arg) for arg in _CLASSES.get(name, {}).get("host", ())}
    if host:
        model.register_forward_pre_hook(_add_kwargs(host), with_kwargs=True)
    if _CLASSES.get(name, {}).get("all_selected"):
        _select_all(model)
    return Built(model, inputs)


def _select_all(model: Any) -> None:
    """While ``model`` runs, ``nonzero`` on the meta device answers "every element": for a
    model that selects the valid tokens of its all-true masks (``image[image_mask]``) that is
    the exact answer, so the trace and its FLOPs are those of a real run."""
    from torch.fx.experimental import _config

    previous: list[bool] = []

    def enter(*_: Any) -> None:
        previous.append(_config.meta_nonzero_assume_all_nonzero)
        _config.meta_nonzero_assume_all_nonzero = True

    def leave(*_: Any) -> None:
        _config.meta_nonzero_assume_all_nonzero = previous.pop()

    model.register_forward_pre_hook(enter)
    model.register_forward_hook(leave, always_call=True)


def _add_kwargs(host: dict[str, Any]) -> Callable[..., tuple[tuple, dict[str, Any]]]:
    """A forward pre-hook that passes ``host``'s inputs, which stay real on the CPU while the
    tracer moves the others to the meta device: a mask or a grid the model reads back as Python
    numbers (``mask.sum().tolist()``, ``torch.nonzero(mask)``). An op that mixes them with meta
    tensors runs on meta (the tracer's ``_HostToMeta``)."""
    def hook(module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        return args, {**kwargs, **host}
    return hook


def example_inputs(model: Any) -> dict[str, Any]:
    """The forward's keyword arguments for one example (see the module docstring)."""
    name = type(model).__name__
    settings = _CLASSES.get(name, {})
    ctx = _context(model, settings)
    makers = {**_MAKERS, **settings.get("args", {})}
    params = inspect.signature(model.forward).parameters
    if "inputs" in settings:
        ctx.made.update((arg, make(ctx)) for arg, make in settings.get("args", {}).items())
        made = settings["inputs"](ctx)
    else:
        made = {}
        for arg, param in params.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            required = param.default is param.empty
            wanted = required or arg in _OPTIONAL or arg in settings.get("args", {})
            if arg in makers and wanted and arg not in settings.get("skip", ()):
                with _torch().device("cpu") if arg in settings.get("host", ()) else nullcontext():
                    value = makers[arg](ctx)
                if value is not None or required:
                    made[arg] = ctx.made[arg] = value
            elif required:
                raise NarbuildError(f"{name}.forward takes {arg!r}, which this source cannot make",
                                    "add a maker for it in narbuild/sources/diffusers/classes.py")
    if "return_dict" in params:
        made["return_dict"] = False
    return made


def _context(model: Any, settings: dict[str, Any]) -> _Ctx:
    """The latent's layout, channels and sizes: the class's settings, else the config's
    ``in_channels`` and the layer that takes the latent (:func:`_entry`)."""
    ctx = _Ctx(model, dict(model.config))
    autoencoder = ".autoencoders." in type(model).__module__
    ctx.size = PIXELS if autoencoder else SIZE
    ctx.frames = PIXEL_FRAMES if autoencoder else FRAMES
    ctx.length = SAMPLES if autoencoder else LENGTH
    for key in ("size", "frames", "length", "text"):
        if key in settings:
            setattr(ctx, key, ctx.dim(settings[key]))
    layout, channels = _entry(model)
    ctx.layout = settings.get("layout") or layout or "image"
    if "channels" in settings:
        channels = ctx.dim(settings["channels"])
    elif isinstance(ctx.config.get("in_channels"), int):
        channels = ctx.config["in_channels"]
    ctx.channels = channels or 4
    return ctx


def _entry(model: Any) -> tuple[str | None, int | None]:
    """The latent's layout and channels, from the first conv or linear layer of the submodule
    that takes it (:data:`_ENTRIES`, else the model's first such layer); a video model's 2-D
    layer takes frames too."""
    torch = _torch()
    kinds = ((torch.nn.Conv3d, "video"), (torch.nn.Conv2d, "image"), (torch.nn.Conv1d, "audio"),
             (torch.nn.Linear, "tokens"))
    subs = [getattr(model, attr) for attr in _ENTRIES
            if isinstance(getattr(model, attr, None), torch.nn.Module)]
    for sub in (*subs, model):
        for module in sub.modules():
            kind = next((k for t, k in kinds if isinstance(module, t)), None)
            if kind:
                channels = module.in_features if kind == "tokens" else module.in_channels
                if kind == "image" and _VIDEO.search(_where(type(model))):
                    kind = "video"
                return kind, int(channels)
    return None, None
