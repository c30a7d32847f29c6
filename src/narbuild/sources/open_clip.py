"""open_clip: every model config it ships (``open_clip.list_models()``), the image and the text
tower as one model, built from the shipped config dict with no pretrained weights.

The row's config is ``{"name", "model_cfg"}`` (the dict of ``open_clip.get_model_config``), so a
build does not depend on the installed open_clip's copy of the config. :func:`build` picks the
model class as ``open_clip.create_model`` does (CLIP; CustomTextCLIP for a custom or Hugging Face
text tower; CoCa when there is a multimodal decoder) and never loads weights: timm towers get
``timm_model_pretrained=False`` and Hugging Face text towers ``hf_model_pretrained=False``.

A Hugging Face text tower (roberta, xlm-roberta, mt5, NLLB) names a Hub repo whose config.json
open_clip downloads. Offline, the tower is built from transformers' *default* config of the
repo's model type (its ``hf_model_type``, recorded in the row): the layer types and wiring are
the real ones, depth, width and vocabulary may differ from the Hub checkpoint. The row's
metadata says so (``text_tower_config``). Its padding mask is not passed to transformers on the
meta device (see :func:`_unmasked_on_meta`), so these towers trace on meta too.

The family (fine label) is, first match wins: ``coca`` (a multimodal decoder); a name prefix of
:data:`_NAME_FAMILIES` (``mobileclip``, ``vitamin``, ``pe_core``, ``eva``); the Hugging Face text
tower's model type (``xlm_roberta``, ``mt5``, ``m2m_100`` ...: multilingual CLIPs are named after
it); ``siglip`` (SigLIP in the name); the timm module of a timm vision tower (``convnext``,
``swin``, ``vit`` ... as timm's own source labels them); else ``resnet`` for open_clip's
ModifiedResNet (``layers`` is a list) and ``vit`` for its VisionTransformer.

Inputs: one image at the vision config's ``image_size`` and one row of token ids of the text
config's ``context_length`` (ids drawn below the vocabulary size; no tokenizer is needed).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="open_clip", title="OpenCLIP model configs (image + text towers)", package="open_clip",
    distribution="open-clip-torch", offline=True, license="MIT", extra="open_clip",
    family="coca, a name-prefix family (mobileclip, vitamin, pe_core, eva), the Hugging Face text "
           "tower's model type, siglip, the timm vision tower's module, else resnet / vit")

_NAME_FAMILIES = (("mobileclip", "mobileclip"), ("vitamin", "vitamin"), ("pe-core", "pe_core"),
                  ("eva", "eva"))
"""Lower-case name prefix -> family: open_clip's own model families."""

_HF_TYPES = {"nllb": "m2m_100"}
"""Hub repo basename prefix -> transformers model type, where the repo name does not start with
its model type (NLLB checkpoints are M2M100 models)."""

_MIN_TOKEN_ID = 3  # token ids start above the special ids (pad, bos, eos) that masks read


def names() -> list[str]:
    import open_clip

    return list(open_clip.list_models())


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per open_clip model config (all, or ``names``)."""
    import open_clip

    for name in names if names is not None else open_clip.list_models():
        cfg = open_clip.get_model_config(name)
        if cfg is None:
            yield manifest_row("open_clip", name, {"name": name}, library="open_clip",
                               error=f"open_clip has no model config {name!r}")
            continue
        yield _row(name, cfg, list(open_clip.list_pretrained_tags_by_model(name)))


def _row(name: str, cfg: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {"name": name, "model_cfg": cfg}
    repo = cfg.get("text_cfg", {}).get("hf_model_name")
    hf_type = hf_model_type(repo) if repo else None
    error = None
    if repo:
        config["hf_model_type"] = hf_type
        if hf_type is None:
            error = (f"the text tower {repo!r} is a Hugging Face model of unknown type; its "
                     "config is on the Hub, which is not read offline")
    family = family_of(name, cfg, hf_type)
    return manifest_row(
        "open_clip", name, config, library="open_clip", module=family,
        task="image-to-text" if "multimodal_cfg" in cfg else "zero-shot-image-classification",
        architectures=[model_class_name(cfg)], metadata=_metadata(cfg, hf_type, tags),
        error=error)


def _metadata(cfg: dict[str, Any], hf_type: str | None, tags: list[str]) -> dict[str, Any]:
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    meta: dict[str, Any] = {
        "vision_tower": vision_tower(vision), "image_size": vision.get("image_size"),
        "text_tower": f"hf:{text['hf_model_name']}" if text.get("hf_model_name") else "native",
        "context_length": context_length(cfg), "embed_dim": cfg.get("embed_dim"),
        "pretrained_tags": tags}
    if hf_type:
        meta["text_tower_config"] = f"transformers default {hf_type} config (Hub config not read)"
    return meta


def vision_tower(vision: dict[str, Any]) -> str:
    """``timm:<model>``, ``modified-resnet`` or ``vit`` (open_clip's own towers)."""
    if vision.get("timm_model_name"):
        return f"timm:{vision['timm_model_name']}"
    return "modified-resnet" if isinstance(vision.get("layers"), (list, tuple)) else "vit"


def model_class_name(cfg: dict[str, Any]) -> str:
    """The class ``open_clip.create_model`` instantiates for this config."""
    custom = cfg.get("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    if custom:
        return "CoCa" if "multimodal_cfg" in cfg else "CustomTextCLIP"
    return "CLIP"


def hf_model_type(repo: str) -> str | None:
    """The transformers model type of a Hub repo, from its name: the longest model type of
    open_clip's Hugging Face table (or :data:`_HF_TYPES`) that starts the repo's basename."""
    from open_clip.hf_configs import arch_dict

    base = repo.rsplit("/", 1)[-1].lower()
    known = {**{t: t for t in arch_dict}, **_HF_TYPES}
    matches = [p for p in known if base.startswith(p)]
    return known[max(matches, key=len)] if matches else None


def family_of(name: str, cfg: dict[str, Any], hf_type: str | None = None) -> str:
    """The fine label of a config (rule in the module docstring)."""
    lower = name.lower()
    if "multimodal_cfg" in cfg:
        return "coca"
    for prefix, family in _NAME_FAMILIES:
        if lower.startswith(prefix):
            return family
    if hf_type:
        return hf_type.replace("-", "_")
    if "siglip" in lower:
        return "siglip"
    vision = cfg.get("vision_cfg", {})
    if vision.get("timm_model_name"):
        return _timm_family(vision["timm_model_name"])
    return "resnet" if vision_tower(vision) == "modified-resnet" else "vit"


def _timm_family(model: str) -> str:
    """The timm module of a timm model, named as the labels name it (``swin_transformer`` ->
    ``swin``)."""
    from timm.models import model_entrypoint

    from narbuild.preprocess.labels import alias

    return alias(model_entrypoint(model).__module__.rsplit(".", 1)[-1])


def context_length(cfg: dict[str, Any]) -> int:
    from open_clip.model import CLIPTextCfg

    return int(cfg.get("text_cfg", {}).get("context_length") or CLIPTextCfg.context_length)


def build(config: dict[str, Any], step: str) -> Built:
    """The model of a config, without weights, and one image and one token row as inputs."""
    cfg = _weightless(config["model_cfg"])
    repo = cfg.get("text_cfg", {}).get("hf_model_name")
    if repo and not config.get("hf_model_type"):
        raise NarbuildError(f"the text tower {repo!r} has no known model type",
                            "its config is on the Hugging Face Hub, which is not read offline")
    with _offline_hf_config(config.get("hf_model_type")):
        model = _model_class(model_class_name(cfg))(
            **{k: v for k, v in cfg.items() if k != "custom_text"})
    if config.get("hf_model_type"):
        model.text.transformer.register_forward_pre_hook(_unmasked_on_meta, with_kwargs=True)
    attention = "eager" if config.get("hf_model_type") else "math"
    return Built(model, example_inputs(model, cfg), attention=attention)


def _unmasked_on_meta(module: Any, args: tuple, kwargs: dict) -> tuple | None:
    """The Hugging Face tower's padding mask, when on meta, is not passed on: the example text
    has no padding, so the mask is all ones, which transformers drops itself after reading it
    (``mask.all()``), and a meta tensor cannot be read. The pooler still gets the mask."""
    mask = kwargs.get("attention_mask")
    if getattr(mask, "is_meta", False):
        return args, {**kwargs, "attention_mask": None}
    return None


def _weightless(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """A copy of the config that loads no pretrained tower weights."""
    cfg = copy.deepcopy(model_cfg)
    if cfg.get("vision_cfg", {}).get("timm_model_name"):
        cfg["vision_cfg"]["timm_model_pretrained"] = False
    if cfg.get("text_cfg", {}).get("hf_model_name"):
        cfg["text_cfg"]["hf_model_pretrained"] = False
    return cfg


def _model_class(name: str) -> type:
    from open_clip.coca_model import CoCa
    from open_clip.model import CLIP, CustomTextCLIP

    return {"CLIP": CLIP, "CustomTextCLIP": CustomTextCLIP, "CoCa": CoCa}[name]


@contextlib.contextmanager
def _offline_hf_config(model_type: str | None):
    """While open_clip builds a Hugging Face text tower, ``AutoConfig.from_pretrained(repo)``
    answers transformers' default config of ``model_type`` instead of reading the Hub (with eager
    attention, as the transformers source builds its models)."""
    if model_type is None:
        yield
        return
    from open_clip import hf_model
    from transformers import AutoConfig

    class _DefaultConfig:
        @staticmethod
        def from_pretrained(repo: str, *args: Any, **kwargs: Any) -> Any:
            hf_config = AutoConfig.for_model(model_type)
            hf_config._attn_implementation = "eager"
            return hf_config

    previous, hf_model.AutoConfig = hf_model.AutoConfig, _DefaultConfig
    try:
        yield
    finally:
        hf_model.AutoConfig = previous


def example_inputs(model: Any, cfg: dict[str, Any]) -> tuple:
    """One image at the vision config's size and one row of token ids of the context length."""
    import torch

    from narbuild.tracing import inputs as make

    height, width = make.image_hw(cfg.get("vision_cfg", {}).get("image_size"))
    vocab = _vocab_size(model, cfg)
    tokens = torch.randint(_MIN_TOKEN_ID, max(vocab, _MIN_TOKEN_ID + 1),
                           (1, context_length(cfg)))
    return (make.image_batch(3, height, width), tokens)


def _vocab_size(model: Any, cfg: dict[str, Any]) -> int:
    """The text tower's vocabulary: the Hugging Face config's, else the text config's."""
    hf_config = getattr(getattr(model, "text", None), "config", None)
    if hf_config is not None and getattr(hf_config, "vocab_size", None):
        return int(hf_config.vocab_size)
    from open_clip.model import CLIPTextCfg

    return int(cfg.get("text_cfg", {}).get("vocab_size") or CLIPTextCfg.vocab_size)
