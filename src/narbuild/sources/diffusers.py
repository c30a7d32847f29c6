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

Inputs are made per forward argument (:data:`_MAKERS`) from the built model: the latent's
channels come from the config's ``in_channels`` and its layout from the layer that takes it (a
``Conv2d`` -> ``(1, C, 32, 32)``, a ``Conv3d`` or a video model's ``Conv2d`` ->
``(1, C, 2, 32, 32)``, a ``Linear`` -> packed 2 x 2 tokens ``(1, 256, C)`` with Flux's
``img_ids``); autoencoders take 64 x 64 images, 9-frame videos or 4096-sample waveforms; text
is 16 tokens of the config's text width (:data:`_TEXT_KEYS`); timesteps one float. Optional
arguments are passed where a diffusion model needs them (:data:`_OPTIONAL`); classes with a
layout, sizes or arguments of their own are in :data:`_CLASSES`, each a line or two.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, unknown_id

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
    from narbuild.tracing.build import meta_context

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


# --------------------------------------------------------------------------------- inputs

SIZE = 32
"""Height and width of a latent (a 256 x 256 image in an 8x VAE's latent space)."""
PIXELS = 64
"""Height and width of an autoencoder's image."""
FRAMES = 2
"""Frames of a video latent."""
PIXEL_FRAMES = 9
"""Frames of an autoencoder's video (1 + 8k: every temporal compression of 1, 2, 4 or 8)."""
SAMPLES = 4096
"""Samples of an autoencoder's waveform."""
LENGTH = 64
"""Length of an audio latent or other sequence."""
TEXT = 16
"""Tokens of the text conditioning."""

Maker = Callable[["_Ctx"], Any]


@dataclass
class _Ctx:
    """What the makers of one model's inputs read: the model, its config and the latent's
    layout, channels and sizes."""

    model: Any
    config: dict[str, Any]
    layout: str = "image"
    channels: int = 4
    size: int = SIZE
    frames: int = FRAMES
    length: int = LENGTH
    text: int = TEXT
    made: dict[str, Any] = field(default_factory=dict)

    def get(self, *keys: str, default: Any = None) -> Any:
        """The first of ``keys`` the config sets (a per-block list gives its first value)."""
        for key in keys:
            value = self.config.get(key)
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], (int, float)):
                value = value[0]
            if value is not None:
                return value
        return default

    @property
    def tokens(self) -> int:
        """Latent tokens: a 2 x 2-patched ``size`` x ``size`` grid, or a video's unpatched
        frames x ``size`` x ``size`` (LTX-style)."""
        if self.layout == "video-tokens":
            return self.frames * self.size * self.size
        return (self.size // 2) ** 2

    def dim(self, d: int | str | Callable[[_Ctx], int]) -> int:
        """A size: a number, a config key, a function of the context, or a letter: ``T`` text
        tokens, ``N`` latent tokens, ``C`` channels, ``F`` frames, ``S`` size, ``L`` length."""
        if callable(d):
            return int(d(self))
        if isinstance(d, int):
            return d
        letters = {"T": self.text, "C": self.channels, "F": self.frames, "S": self.size,
                   "L": self.length}
        if d == "N":
            return self.tokens
        return letters[d] if d in letters else int(self.get(d))

    def shape(self) -> tuple[int, ...]:
        c, f, s = self.channels, self.frames, self.size
        return {"image": (1, c, s, s), "video": (1, c, f, s, s), "frames": (1, f, c, s, s),
                "video-last": (1, f, s, s, c), "audio": (1, c, self.length),
                "sequence": (1, self.length, c), "tokens": (1, self.tokens, c),
                "video-tokens": (1, self.tokens, c), "vector": (1, c)}[self.layout]


def _torch() -> Any:
    import torch

    return torch


def _randn(*shape: int) -> Any:
    return _torch().randn(*shape, requires_grad=True)


_DTYPES = {"float": "float32", "long": "int64", "bool": "bool"}


def _rand(*dims: Any) -> Maker:
    return lambda c: _randn(*(c.dim(d) for d in dims))


def _full(value: float, *dims: Any, dtype: str = "float") -> Maker:
    def make(c: _Ctx) -> Any:
        torch = _torch()
        return torch.full([c.dim(d) for d in dims], value, dtype=getattr(torch, _DTYPES[dtype]))
    return make


def _ones(*dims: Any, dtype: str = "long") -> Maker:
    return _full(1, *dims, dtype=dtype)


def _zeros(*dims: Any, dtype: str = "long") -> Maker:
    return _full(0, *dims, dtype=dtype)


def _value(value: Any) -> Maker:
    return lambda c: value


def _arange(d: Any) -> Maker:
    return lambda c: _torch().arange(c.dim(d))


def _text_of(*keys: str, tokens: int | str = "T") -> Maker:
    return lambda c: _randn(1, c.dim(tokens), int(c.get(*keys)))


def _list(maker: Maker, n: int | str | Callable[[_Ctx], int] = 1) -> Maker:
    return lambda c: [maker(c) for _ in range(c.dim(n))]


_TEXT_KEYS = ("caption_channels", "joint_attention_dim", "text_embed_dim", "text_dim",
              "encoder_hid_dim", "context_in_dim", "text_hidden_dim", "cap_feat_dim",
              "text_in_dim", "in_text_dim", "text_encoder_dim", "encoder_hidden_size",
              "llm_features_dim", "cond_token_dim", "text_emb_dim", "dit_text_dim",
              "cross_attention_input_dim", "cross_attention_dim")
"""Config keys of the text conditioning's width, most specific first (a caption projection's
input before the cross-attention width it projects to)."""


def _latent(c: _Ctx) -> Any:
    return _randn(*c.shape())


def _timestep(c: _Ctx) -> Any:
    return _torch().tensor([500.0])


def _text(c: _Ctx) -> Any:
    return _randn(1, c.text, int(c.get(*_TEXT_KEYS, default=768)))


def _pooled(c: _Ctx) -> Any:
    return _randn(1, int(c.get("pooled_projection_dim", "text_embed_2_dim",
                                "clip_text_pooled_in_channels", default=768)))


def _ids(c: _Ctx, rows: int, grid: bool) -> Any:
    """Flux-style positions: one row per token, as many columns as rotary axes; latent tokens
    carry their (row, column), text tokens zeros."""
    torch = _torch()
    columns = len(c.config.get("axes_dims_rope") or c.config.get("axes_dim_rope") or ()) or 3
    ids = torch.zeros(rows, columns)
    if grid:
        side = c.size // 2
        index = torch.arange(rows)
        ids[:, 1], ids[:, 2] = (index // side).float(), (index % side).float()
    return ids


def _img_ids(c: _Ctx) -> Any:
    return _ids(c, c.tokens, grid=True)


def _txt_ids(c: _Ctx) -> Any:
    return _ids(c, c.text, grid=False)


def _guidance(c: _Ctx) -> Any:
    return _torch().tensor([3.5]) if c.get("guidance_embeds") else None


def _controlnet_cond(c: _Ctx) -> Any:
    """A UNet ControlNet's control image is in pixels (8x the latent); a transformer's is a
    latent like the sample."""
    channels = c.get("conditioning_channels", "ctrl_conditioning_channels")
    if channels and c.layout == "image":
        return _randn(1, int(channels), c.size * 8, c.size * 8)
    return _randn(*c.shape())


_MAKERS: dict[str, Maker] = {
    **dict.fromkeys(("sample", "hidden_states", "x", "latents", "z"), _latent),
    **dict.fromkeys(("timestep", "t", "timesteps", "timestep_r", "r_timestep"), _timestep),
    **dict.fromkeys(("encoder_hidden_states", "cap_feats", "text_bth", "prompt_embeds"), _text),
    **dict.fromkeys(("encoder_attention_mask", "encoder_mask", "text_embedding_mask",
                     "encoder_hidden_states_mask"), _ones(1, "T")),
    **dict.fromkeys(("pooled_projections", "pooled_embeds", "pooled_text_emb"), _pooled),
    "img_ids": _img_ids, "txt_ids": _txt_ids, "guidance": _guidance,
    "controlnet_cond": _controlnet_cond,
}
"""Forward argument name -> its example value."""

_OPTIONAL = frozenset({"timestep", "timesteps", "encoder_hidden_states", "pooled_projections",
                       "img_ids", "txt_ids", "guidance"})
"""Optional forward arguments passed whenever the forward takes them (a diffusion transformer is
conditioned on time and text though its signature lets them default to None)."""

_ENTRIES = ("conv_in", "x_embedder", "patch_embed", "img_in", "patch_embedding", "proj_in",
            "pos_embed", "embedder", "patch_embedder", "embedding", "input_proj", "encoder")
"""Submodules that take the latent first, in the order they are looked for."""


def _visual_cond(c: _Ctx) -> int:
    """Kandinsky 5/6 latents: the latent, plus a conditioning latent and its mask when the
    model takes visual conditioning."""
    dim = int(c.get("in_visual_dim"))
    return 2 * dim + 1 if c.get("visual_cond", default=True) else dim


def _rope_grid(c: _Ctx) -> Any:
    torch = _torch()
    return [torch.arange(c.frames), torch.arange(c.size // 2), torch.arange(c.size // 2)]


def _hunyuan_dit_rope(c: _Ctx) -> Any:
    from diffusers.models.embeddings import get_2d_rotary_pos_embed

    grid = c.size // int(c.get("patch_size"))
    head = int(c.get("hidden_size")) // int(c.get("num_attention_heads"))
    return get_2d_rotary_pos_embed(head, ((0, 0), (grid, grid)), (grid, grid), use_real=True)


def _lumina_rope(c: _Ctx) -> Any:
    from diffusers.models.embeddings import get_2d_rotary_pos_embed_lumina

    head = int(c.get("hidden_size")) // int(c.get("num_attention_heads"))
    return get_2d_rotary_pos_embed_lumina(head, 384, 384)


def _stable_audio_rope(c: _Ctx) -> Any:
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    return get_1d_rotary_pos_embed(int(c.get("attention_head_dim")) // 2, c.length + 1,
                                   use_real=True, repeat_interleave_real=False)


def _sana_wm_rope(c: _Ctx) -> Any:
    return c.model.build_rotary_emb_for_absolute_positions(
        1, list(range(c.frames)), c.size, c.size, _torch().device("cpu"), 24.0)


def _krea2_positions(c: _Ctx) -> Any:
    """(text + image tokens, 3): text at zero, image tokens at their (row, column)."""
    ids = _ids(c, c.text + c.tokens, grid=False)
    ids[c.text:] = _ids(c, c.tokens, grid=True)
    return ids


def _image_slots(c: _Ctx) -> Any:
    """Qwen-Image 2.1's vision-language sequence: the text, then one slot per 2 x 2 latent
    tokens of the target image."""
    torch = _torch()
    return torch.cat([torch.zeros(1, c.text), torch.ones(1, c.tokens // 4)], dim=1).bool()


def _ideogram4(c: _Ctx) -> dict[str, Any]:
    """One sequence of text tokens then image tokens, told apart by ``indicator``."""
    from diffusers.models.transformers import transformer_ideogram4 as m

    torch, t, n = _torch(), c.text, c.text + c.tokens
    side = c.size // 2
    positions = torch.zeros(1, n, 3, dtype=torch.long)
    positions[0, :t] = torch.arange(t)[:, None]
    positions[0, t:, 0] = m.IMAGE_POSITION_OFFSET
    positions[0, t:, 1] = torch.arange(c.tokens) // side + m.IMAGE_POSITION_OFFSET
    positions[0, t:, 2] = torch.arange(c.tokens) % side + m.IMAGE_POSITION_OFFSET
    indicator = torch.full((1, n), m.OUTPUT_IMAGE_INDICATOR, dtype=torch.long)
    indicator[0, :t] = m.LLM_TOKEN_INDICATOR
    return {"hidden_states": _randn(1, n, c.channels), "timestep": torch.tensor([0.5]),
            "encoder_hidden_states": _randn(1, n, int(c.get("llm_features_dim"))),
            "position_ids": positions, "segment_ids": torch.ones(1, n, dtype=torch.long),
            "indicator": indicator}


def _minimax_h3(c: _Ctx) -> dict[str, Any]:
    """One packed sequence of text, audio and video rows, tagged by modality (0 video, 1 text,
    2 audio), as MiniMax-H3's pipelines pack it."""
    torch, side, t = _torch(), c.size // 2, c.text
    audio, video = c.length, c.frames * side * side
    n = t + audio + video
    tags = torch.cat([torch.ones(t), torch.full((audio,), 2), torch.zeros(video)]).long()
    positions = torch.zeros(n, 3)
    positions[:, 0] = torch.arange(n)
    grid = torch.arange(video)
    positions[t + audio:, 1], positions[t + audio:, 2] = grid // side, grid % side
    pt, ph, pw = c.config["patch_size"]
    return {"hidden_states": _randn(1, video, c.channels * pt * ph * pw),
            "audio_hidden_states": _randn(1, audio, c.dim("audio_in_channels")),
            "encoder_hidden_states": _randn(1, t, c.dim("text_dim")),
            "timestep": torch.tensor([0.7, 0.3]), "timestep_indices": (tags == 2).long(),
            "token_tags": tags, "position_ids": positions, "text_indices": torch.arange(t),
            "audio_indices": torch.arange(t, t + audio),
            "video_indices": torch.arange(t + audio, n)}


def _cosmos3(c: _Ctx) -> dict[str, Any]:
    """Two text tokens then one latent frame's vision tokens, in one sequence."""
    torch = _torch()
    side = c.size // int(c.get("latent_patch_size"))
    vision = side * side
    n = 2 + vision
    indexes = torch.arange(2, n)
    return {"input_ids": torch.tensor([1, 2]), "text_indexes": torch.tensor([0, 1]),
            "position_ids": torch.zeros(3, n, dtype=torch.long), "und_len": 2,
            "sequence_length": n,
            "vision_tokens": [_randn(1, int(c.get("latent_channel")), 1, c.size, c.size)],
            "vision_token_shapes": [(1, side, side)], "vision_sequence_indexes": indexes,
            "vision_mse_loss_indexes": indexes, "vision_timesteps": torch.ones(vision),
            "vision_noisy_frame_indexes": [torch.tensor([0])]}


def _joyimage_plus(c: _Ctx) -> dict[str, Any]:
    """One image's patches, each patch a (channels, t, h, w) block, and its token grid."""
    pt, ph, pw = c.config["patch_size"]
    side = c.size // ph
    return {"hidden_states": _randn(1, side * side, c.channels, pt, ph, pw),
            "timestep": _timestep(c), "encoder_hidden_states": _text(c),
            "shape_list": [[(1, side, side)]]}


def _wan_animate2(c: _Ctx) -> dict[str, Any]:
    """The reference pass (``kv_cache_mode="extract"``) the pipeline runs first: per-sample
    latents and conditions as lists, and a fresh cache to fill."""
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2KVCache

    torch, s, f = _torch(), c.size, c.frames
    return {"hidden_states": [_randn(int(c.get("out_dim")), f, s, s)], "timestep": _timestep(c),
            "encoder_hidden_states": [_randn(c.text, c.dim("text_dim"))],
            "condition_latents": [_randn(int(c.get("in_dim")) - int(c.get("out_dim")), f, s, s)],
            "encoder_hidden_states_image": _randn(1, 257, 1280),
            "kv_cache": WanAnimate2KVCache(int(c.get("num_layers"))), "kv_cache_mode": "extract",
            "seq_len": f * (s // 2) ** 2,
            "offset_grid_sizes": torch.tensor([[f, s // 2, s // 2]], device="cpu")}


def _z_image(c: _Ctx) -> dict[str, Any]:
    inputs = {"x": [_randn(c.channels, 1, c.size, c.size)], "t": _torch().tensor([0.5]),
              "cap_feats": [_randn(c.text, c.model.cap_embedder[-1].in_features)]}
    if "control_context" in c.made:
        inputs["control_context"] = c.made["control_context"]
    return inputs


def _needs(what: str) -> Callable[[_Ctx], dict[str, Any]]:
    """Inputs this source cannot make: a clear error instead."""
    def fail(c: _Ctx) -> dict[str, Any]:
        raise NarbuildError(f"{type(c.model).__name__}.forward needs {what}",
                            "not traceable from diffusers alone")
    return fail


def _from_transformer(transformer: str) -> Callable[[Any], Any]:
    """A ControlNet that shares its embedders with the transformer it controls, built the
    documented way (``cls.from_transformer``) from that transformer's defaults."""
    def attach(model: Any) -> Any:
        model = type(model).from_transformer(model, _class(transformer).from_config({}))
        model.gradient_checkpointing = False  # set by the transformer's __init__, not its own
        return model
    return attach


def _enable_tiling(model: Any) -> Any:
    model.enable_tiling()
    return model


_SDXL_ADDED = {"added_cond_kwargs": lambda c: {  # pooled text, and size, crop and target size
    "text_embeds": _randn(1, 1280), "time_ids": _torch().tensor([[256.0] * 4 + [0.0] * 2])}}
_SIZES = {"original_size": _full(256.0, 1, 2), "target_size": _full(256.0, 1, 2),
          "crop_coords": _zeros(1, 2, dtype="float")}
_HUNYUAN_DIT = {  # CLIP and T5 text at the lengths the model's poolers are sized for
    "encoder_hidden_states": _text_of("cross_attention_dim", tokens="text_len"),
    "text_embedding_mask": _ones(1, "text_len"),
    "encoder_hidden_states_t5": _text_of("cross_attention_dim_t5", tokens="text_len_t5"),
    "text_embedding_mask_t5": _ones(1, "text_len_t5"),
    "image_meta_size": lambda c: _torch().tensor([[1024.0, 1024.0, 256.0, 256.0, 0.0, 0.0]]),
    "style": _zeros(1), "image_rotary_emb": _hunyuan_dit_rope}


def _rfd4_conditioning(c: _Ctx) -> dict[str, Any]:
    """A protein's annotations as RFdiffusion's preprocessor emits them: no token given as
    in-context conditioning, every token with a local latent, and no atom-level interaction
    (hydrogen bonds, stacking, salt bridges ...) annotated."""
    torch = _torch()
    atoms = {f"condition_{name}_1_atom": torch.zeros(1, c.length, 37, dtype=torch.long)
             for name in ("hbond", "pistack", "pication", "saltbridge", "hydrophobic",
                          "metal-coord")}
    return {"is_in_context_conditioning": torch.zeros(1, c.length, dtype=torch.bool),
            "supports_local_latent": torch.ones(1, c.length, dtype=torch.bool),
            "condition_index-group_1_token": torch.zeros(1, c.length, dtype=torch.long), **atoms}


_CLASSES: dict[str, dict[str, Any]] = {
    # audio
    "AceStepAudioTokenizer": {"args": {"hidden_states": _rand(1, 8, "pool_window_size",
                                                               "audio_acoustic_hidden_dim")}},
    "AceStepConditionEncoder": {"args": {
        "text_hidden_states": _rand(1, "T", "text_hidden_dim"),
        "text_attention_mask": _ones(1, "T"),
        "lyric_hidden_states": _rand(1, "T", "text_hidden_dim"),
        "lyric_attention_mask": _ones(1, "T"),
        "refer_audio_acoustic_hidden_states_packed": _rand(1, "L", "timbre_hidden_dim"),
        "refer_audio_order_mask": _zeros(1)}},
    "AnimaTextConditioner": {"args": {
        "source_hidden_states": _rand(1, "T", "source_dim"),
        "target_input_ids": _ones(1, "T")}},
    "AceStepTransformer1DModel": {
        "layout": "sequence", "channels": "audio_acoustic_hidden_dim",
        "args": {"timestep_r": _timestep, "encoder_hidden_states": _text_of("hidden_size"),
                 "context_latents": _rand(1, "L", lambda c: 2 * c.channels)}},
    "AutoencoderKLLTX2Audio": {"args": {"sample": _rand(1, "in_channels", "L", "mel_bins")}},
    "AutoencoderSAME": {"layout": "audio", "channels": "audio_channels"},
    "AutoencoderOobleck": {"layout": "audio", "channels": "audio_channels"},
    "Cosmos3AVAEAudioTokenizer": {"layout": "audio", "channels": 2},
    "LongCatAudioDiTTransformer": {
        "layout": "sequence", "channels": "latent_dim",
        "args": {"encoder_attention_mask": _ones(1, "T", dtype="bool"),
                 "attention_mask": _ones(1, "L", dtype="bool"),
                 "latent_cond": _rand(1, "L", "latent_dim")}},
    "MMAudioVAE": {"args": {"sample": _rand(1, SAMPLES)}},
    "MMAudioVocoder": {"args": {"mel": _rand(1, "num_mels", "L")}},
    "MiniMaxMusic3ConditionEncoder": {"args": {"hidden_states": _rand(
        1, "T", lambda c: c.dim("num_condition_layers") * c.dim("condition_hidden_dim"))}},
    "MiniMaxMusic3RVQDepthDecoder": {"args": {"inputs_embeds": _rand(1, "num_codebooks",
                                                                      "hidden_size")}},
    "MiniMaxMusic3Transformer1DModel": {
        "layout": "audio", "args": {"encoder_hidden_states": _rand(1, "L", "condition_dim")}},
    "MiniMaxMusic3Vocoder": {"layout": "audio", "channels": "latent_channels", "length": LENGTH},
    "StableAudio3DiTModel": {
        "layout": "audio", "channels": "io_channels",
        "args": {"global_hidden_states": _rand(1, "global_cond_dim")}},
    "StableAudio3DurationEmbedder": {"args": {"seconds": _full(10.0, 1)}},
    "StableAudioDiTModel": {
        "layout": "audio",
        "args": {"global_hidden_states": _rand(1, 1, "global_states_input_dim"),
                 "rotary_embedding": _stable_audio_rope}},
    "StableAudioProjectionModel": {"args": {
        "text_hidden_states": _rand(1, "T", "text_encoder_dim"), "start_seconds": _full(0.0, 1),
        "end_seconds": _full(10.0, 1)}},
    "AudioLDM2ProjectionModel": {"args": {
        "hidden_states": _rand(1, "T", "text_encoder_dim"),
        "hidden_states_1": _rand(1, "T", "text_encoder_1_dim"),
        "attention_mask": _ones(1, "T"), "attention_mask_1": _ones(1, "T")}},
    "T5FilmDecoder": {"args": {
        "encodings_and_masks": lambda c: [(_randn(1, TEXT, int(c.get("d_model"))),
                                           _torch().ones(1, TEXT))],
        "decoder_input_tokens": _rand(1, "L", "input_dims"), "decoder_noise_time": _full(0.5, 1)}},
    "UNet1DModel": {"layout": "audio"},
    # image
    "AuraFlowTransformer2DModel": {"layout": "image"},
    "BriaFibo2Transformer2DModel": {"layout": "image", "args": {"encoder_hidden_states": _rand(
        1, lambda c: 1 + len(c.config["injection_layer_ids"]), "T", "cap_feat_dim")}},
    "BriaFiboTransformer2DModel": {"args": {"text_encoder_layers": _list(
        _text_of("text_encoder_dim"), lambda c: len(c.model.caption_projection))}},
    "CLIPImageProjection": {"layout": "vector"},
    "CogView3PlusTransformer2DModel": {"layout": "image", "args": _SIZES},
    "CogView4Transformer2DModel": {"layout": "image", "args": _SIZES},
    "ControlNetUnionModel": {"args": {
        "controlnet_cond": lambda c: [_randn(1, 3, 8 * c.size, 8 * c.size)],
        "control_type": _ones(1, "num_control_type", dtype="float"),
        "control_type_idx": _value([0]), **_SDXL_ADDED}},
    "DiTTransformer2DModel": {"args": {"class_labels": _zeros(1)}},
    "ErnieImageTransformer2DModel": {"layout": "image",
                                     "args": {"text_lens": _full(TEXT, 1, dtype="long")}},
    "Flux3Transformer2DModel": {"layout": "tokens"},
    "GlmImageTransformer2DModel": {"layout": "image", "host": ("prior_token_drop",), "args": {
        "prior_token_id": _zeros(1, "N"), "prior_token_drop": _zeros(dtype="bool"),
        **_SIZES}},
    "HiDreamImageTransformer2DModel": {"layout": "image", "channels": 16, "args": {
        "encoder_hidden_states_t5": _text_of("caption_channels"),
        "encoder_hidden_states_llama3": _rand(lambda c: len(c.config["llama_layers"]), 1, "T",
                                              "caption_channels"),
        "pooled_embeds": _rand(1, "text_emb_dim")}},
    "HunyuanDiT2DControlNetModel": {"layout": "image",
                                    "args": {**_HUNYUAN_DIT, "controlnet_cond": _latent}},
    "HunyuanDiT2DModel": {"layout": "image", "args": _HUNYUAN_DIT},
    "Ideogram4PromptEnhancerHead": {"layout": "sequence"},
    "Ideogram4Transformer2DModel": {"layout": "tokens", "inputs": _ideogram4},
    "Kandinsky3UNet": {"args": {"encoder_attention_mask": _ones(1, "T")}},
    "Krea2Transformer2DModel": {"layout": "tokens", "args": {
        "encoder_hidden_states": _rand(1, "T", "num_text_layers", "text_hidden_dim"),
        "position_ids": _krea2_positions}},
    "Lumina2Transformer2DModel": {"layout": "image", "host": ("encoder_attention_mask",), "args": {
        "encoder_attention_mask": _ones(1, "T", dtype="bool")}},
    "LuminaNextDiT2DModel": {"layout": "image", "args": {
        "encoder_mask": _ones(1, "T"), "image_rotary_emb": _lumina_rope,
        "cross_attention_kwargs": _value({})}},
    "NucleusMoEImageTransformer2DModel": {"args": {
        "img_shapes": lambda c: [(1, c.size // 2, c.size // 2)],
        "encoder_hidden_states_mask": _ones(1, "T")}},
    "OmniGenTransformer2DModel": {"layout": "image", "host": ("position_ids",), "args": {
        "input_ids": _ones(1, "T"), "input_img_latents": _value([]),
        "input_image_sizes": _value({}),
        "attention_mask": _ones(1, lambda c: TEXT + 1 + c.tokens,
                                lambda c: TEXT + 1 + c.tokens, dtype="float"),
        "position_ids": lambda c: _torch().arange(TEXT + 1 + c.tokens)[None]}},
    "PRXTransformer2DModel": {"layout": "image"},
    "PixArtTransformer2DModel": {"args": {"added_cond_kwargs": lambda c: {
        "resolution": _torch().tensor([[256.0, 256.0]]),
        "aspect_ratio": _torch().tensor([[1.0]])}}},
    "PriorTransformer": {"layout": "vector", "channels": "embedding_dim", "args": {
        "proj_embedding": _rand(1, "embedding_dim"),
        "encoder_hidden_states": _rand(1, "num_embeddings", "embedding_dim")}},
    "QwenImage21Transformer2DModel": {"layout": "tokens", "args": {
        "img_shapes": lambda c: [[(1, c.size // 2, c.size // 2)]],
        "img_mask": _image_slots, "encoder_hidden_states_mask": _ones(1, "T")}},
    "QwenImageControlNetModel": {"args": {
        "img_shapes": lambda c: [(1, c.size // 2, c.size // 2)],
        "encoder_hidden_states_mask": _ones(1, "T"), "timestep": _timestep,
        "encoder_hidden_states": _text}},
    "QwenImageTransformer2DModel": {"args": {
        "img_shapes": lambda c: [(1, c.size // 2, c.size // 2)],
        "encoder_hidden_states_mask": _ones(1, "T")}},
    "ReduxImageEncoder": {"layout": "sequence"},
    "SD3ControlNetModel": {"args": {"pooled_projections": _pooled}},
    "StableCascadeUNet": {"args": {
        "timestep_ratio": _full(0.5, 1),
        "clip_text_pooled": _rand(1, 1, "clip_text_pooled_in_channels")}},
    "T2IAdapter": {"layout": "image", "size": 8 * SIZE},
    "Transformer2DModel": {"layout": "image"},
    "UNetControlNetXSModel": {"args": {"controlnet_cond": _controlnet_cond}},
    "UVit2DModel": {"args": {
        "input_ids": _zeros(1, 16, 16), "encoder_hidden_states": _text_of("encoder_hidden_size"),
        "pooled_text_emb": _rand(1, "cond_embed_dim"), "micro_conds": _full(256.0, 1, 5)}},
    "UniDiffuserModel": {"args": {
        "latent_image_embeds": _rand(1, "in_channels", "sample_size", "sample_size"),
        "image_embeds": _rand(1, 1, "clip_img_dim"),
        "prompt_embeds": _rand(1, "num_text_tokens", "text_dim"),
        "timestep_img": _timestep, "timestep_text": _timestep}},
    "UniDiffuserTextDecoder": {"args": {
        "input_ids": _ones(1, "T"),
        "prefix_embeds": _rand(1, "prefix_length", "prefix_inner_dim")}},
    "ZImageControlNetModel": {"setup": _from_transformer("ZImageTransformer2DModel"),
                              "layout": "image", "channels": 16, "inputs": _z_image,
                              "args": {"control_context": lambda c: [
                                  _randn(int(c.get("control_in_dim")), 1, c.size, c.size)]}},
    "ZImageTransformer2DModel": {"layout": "image", "channels": 16, "inputs": _z_image},
    "RFD4ProteinaAutoencoder": {"args": {
        "z_latent": _rand(1, "L", "latent_dim"), "ca_coors_nm": _rand(1, "L", 3),
        "padding_mask": _ones(1, "L", dtype="bool"), "token_type": _zeros(1, "L"),
        "atom37_mask": _ones(1, "L", 37, dtype="bool"), "conditioning": _rfd4_conditioning}},
    "RFD4ProteinaTransformer": {"inputs": _needs(
        "RFdiffusion3's molecular features (chirality frames, bond path lengths, molecule and "
        "entity ids, nucleic-acid pairing), which its preprocessor makes outside diffusers"),
                                "args": {
        "bb_ca": _rand(1, "L", 3), "local_latents": _rand(1, "L", "latent_dim"),
        "bb_ca_time": _full(0.5, 1), "local_latents_time": _full(0.5, 1),
        "padding_mask": _ones(1, "L", dtype="bool"), "token_type": _zeros(1, "L"),
        "atom37_mask": _ones(1, "L", 37, dtype="bool"), "conditioning": _rfd4_conditioning}},
    # video
    "AnyFlowFARTransformer3DModel": {"layout": "frames", "args": {
        "timestep": _full(500.0, 1, "F"), "r_timestep": _full(250.0, 1, "F"),
        "chunk_partition": lambda c: [1] * c.frames}},
    "AnyFlowTransformer3DModel": {"layout": "frames", "args": {
        "timestep": _full(500.0, 1, "F"), "r_timestep": _full(250.0, 1, "F")}},
    "AutoencoderKLAllegro": {"setup": _enable_tiling, "frames": 24,
                             "size": "sample_size"},  # one tile: it encodes tiled only
    "AutoencoderKLMiniMaxH3": {"frames": lambda c: int(c.get("clip_length")) + 5},
    "AutoencoderKLMochi": {"layout": "video", "channels": 3, "frames": 7},
    "AutoencoderKLQwenImage21": {"layout": "video", "frames": 1},
    "AutoencoderKLTemporalDecoder": {"layout": "image", "args": {"num_frames": _value(1)}},
    "CogVideoXTransformer3DModel": {"layout": "frames", "text": "max_text_seq_length"},
    "ConsisIDTransformer3DModel": {"layout": "frames", "text": "max_text_seq_length"},
    "CosmosControlNetModel": {"layout": "video", "channels": 16, "args": {
        "controls_latents": _latent, "latents": _latent,
        "condition_mask": _ones(1, 1, "F", "S", "S", dtype="float"),
        "padding_mask": _zeros(1, 1, "S", "S", dtype="float")}},
    "CosmosTransformer3DModel": {"layout": "video", "args": {
        "padding_mask": _zeros(1, 1, "S", "S", dtype="float")}},
    "HunyuanVideo15Transformer3DModel": {"host": ("image_embeds",), "all_selected": True, "args": {
        "encoder_hidden_states_2": _text_of("text_embed_2_dim"),
        "encoder_attention_mask_2": _ones(1, "T"),
        "image_embeds": _rand(1, 8, "image_embed_dim")}},
    "HunyuanVideoFramepackTransformer3DModel": {"frames": 3, "host": ("encoder_attention_mask",),
                                                "args": {  # + 2 clean, 8 history
        "image_embeds": _rand(1, "T", "image_proj_dim"), "indices_latents": _arange("F"),
        "latents_clean": _rand(1, "C", 2, "S", "S"), "indices_latents_clean": _arange(2),
        "latents_history_2x": _rand(1, "C", 2, "S", "S"), "indices_latents_history_2x": _arange(2),
        "latents_history_4x": _rand(1, "C", 8, "S", "S"),
        "indices_latents_history_4x": _arange(8)}},
    "EasyAnimateTransformer3DModel": {"layout": "video"},
    "I2VGenXLUNet": {"args": {"fps": _full(8, 1, dtype="long"), "image_latents": _latent,
                              "image_embeddings": _rand(1, "cross_attention_dim")}},
    "JoyImageEditPlusTransformer3DModel": {"layout": "video", "inputs": _joyimage_plus},
    "Kandinsky5Transformer3DModel": {"layout": "video-last", "channels": _visual_cond, "args": {
        "encoder_hidden_states": _text_of("in_text_dim"), "pooled_projections": _rand(
            1, "in_text_dim2"), "visual_rope_pos": _rope_grid, "text_rope_pos": _arange("T")}},
    "Kandinsky6SRLatentUpscalerBank": {"layout": "video", "args": {"scale": _value(2)}},
    "Kandinsky6SRTransformer3DModel": {"layout": "video-last",
                                       "channels": lambda c: 2 * int(c.get("in_visual_dim")) + 1},
    "Kandinsky6Transformer3DModel": {"layout": "video-last", "channels": _visual_cond, "args": {
        "encoder_hidden_states": _text_of("in_text_dim"), "pooled_projections": _rand(
            1, "in_text_dim2"), "audio_hidden_states": _rand(1, "L", "in_audio_dim")}},
    "LTX2VideoDiffusionDecoderModel": {"layout": "video", "channels": "latent_channels",
                                       "size": 8, "frames": 2},
    "LTX2VideoTransformer3DModel": {"layout": "video-tokens", "size": 16, "args": {
        "audio_hidden_states": _rand(1, "L", "audio_in_channels"),
        "audio_encoder_hidden_states": _text_of("caption_channels"),
        "encoder_attention_mask": _ones(1, "T", dtype="bool"),
        "num_frames": lambda c: c.frames, "height": lambda c: c.size, "width": lambda c: c.size,
        "audio_num_frames": lambda c: c.length}},
    "LTXVideoTransformer3DModel": {"layout": "video-tokens", "size": 16, "args": {
        "encoder_attention_mask": _ones(1, "T", dtype="bool"), "num_frames": lambda c: c.frames,
        "height": lambda c: c.size, "width": lambda c: c.size}},
    "MiniMaxH3Transformer3DModel": {"layout": "video-tokens", "inputs": _minimax_h3},
    "Cosmos3OmniTransformer": {"inputs": _cosmos3},
    "MochiTransformer3DModel": {"layout": "video", "host": ("encoder_attention_mask",), "args": {
        "encoder_attention_mask": _ones(1, "T", dtype="bool")}},
    "SanaWMLTX2RefinerTransformer3DModel": {"layout": "video-tokens", "size": 16, "args": {
        "video_rotary_emb": _sana_wm_rope, "encoder_attention_mask": _ones(1, "T")}},
    "SanaWMTransformer3DModel": {"layout": "video", "args": {
        "mask": _ones(1, "T"), "timestep": _full(500.0, 1, 1, "F")}},
    "SparseControlNetModel": {"args": {
        "encoder_hidden_states": _rand("F", "T", "cross_attention_dim"),
        "controlnet_cond": _rand(1, "conditioning_channels", "F", "S", "S"),
        "conditioning_mask": _ones(1, 1, "F", "S", "S", dtype="float")}},
    "TransformerTemporalModel": {"layout": "image", "skip": ("encoder_hidden_states",), "args": {
        "hidden_states": _rand("F", "C", "S", "S"), "num_frames": lambda c: c.frames}},
    "UNetMotionModel": {"args": {"encoder_hidden_states": _rand("F", "T", "cross_attention_dim")}},
    "UNetSpatioTemporalConditionModel": {"layout": "frames", "args": {
        "encoder_hidden_states": _rand(1, 1, "cross_attention_dim"),
        "added_time_ids": lambda c: _torch().tensor([[6.0, 127.0, 0.02]])}},
    "WanAnimate2Transformer3DModel": {"inputs": _wan_animate2, "host": ("offset_grid_sizes",)},
    "WanAnimateTransformer3DModel": {"layout": "video", "frames": 21, "size": 16, "args": {
        # the reference frame, then 20 frames of pose-driven motion (77 face frames)
        "encoder_hidden_states_image": _rand(1, 257, "image_dim"),
        "pose_hidden_states": _rand(1, "latent_channels", lambda c: c.frames - 1, "S", "S"),
        "face_pixel_values": _rand(1, 3, 77, "motion_encoder_size", "motion_encoder_size")}},
    "LatteTransformer3DModel": {"frames": "video_length"},
    "WanVACETransformer3DModel": {"args": {
        "control_hidden_states": _rand(1, lambda c: c.model.config.vace_in_channels, "F", "S",
                                       "S")}},
}
"""Per-class settings: ``layout`` (``image``, ``video``, ``frames``, ``video-last``, ``audio``,
``sequence``, ``tokens``, ``video-tokens``, ``vector``), ``channels`` / ``size`` / ``frames`` /
``length`` / ``text`` (a number or a config key), ``args`` (forward argument -> maker, over
:data:`_MAKERS`, always passed), ``skip`` (optional arguments not passed), ``inputs`` (a
function that makes all of them), ``host`` (inputs kept real on the CPU, see
:func:`_add_kwargs`), ``all_selected`` (its masks are all true: see :func:`_select_all`),
``setup`` (run on the built model; returns the model to trace)."""


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
                                    "add a maker for it in narbuild/sources/diffusers.py")
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
