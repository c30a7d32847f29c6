"""diffusers inputs: the context of one model's inputs (:class:`_Ctx`) and the makers of its
forward arguments (:data:`_MAKERS`), shared by every class; the per-class settings are in
:mod:`narbuild.sources.diffusers.classes`. Names keep their underscore: they are this source's
internals, not narbuild's API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
