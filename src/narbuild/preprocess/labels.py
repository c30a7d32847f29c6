"""Labels: the fine label (architecture family) and the coarse label (block type).

Fine label, metadata first (:func:`fine_label`):

* timm: the model's module (``timm.models.<module>``), e.g. ``resnet``, ``vision_transformer``;
* torchvision: the builder's module, its last part (``detection.faster_rcnn`` -> ``faster_rcnn``,
  ``quantization.resnet`` -> ``resnet``); video models keep a 3-D name (``resnet3d``, ``swin3d``);
* transformers and Hub models with a config: ``model_type``;
* the other registries (pytorchcv, smp, ultralytics, open_clip, diffusers, monai, ...): the family
  their source module puts in the manifest's ``module`` (see ``narbuild.sources``);
* Hub ``timm`` models: the timm module of the config's ``architecture``;
* NAS networks: ``nas-<cluster>``;
* only where none of that is known: the paper's regex hints over the model name
  (:data:`NAME_HINTS`, first match wins), else ``unknown``.

Then :data:`ALIASES` merges the names that different sources give the same family
(``vision_transformer`` = ``vit``, ``swin_transformer`` = ``swin``, ...).

Coarse label, read off the graph (:func:`coarse_label`): ``attention-block`` when an attention
pattern is present (a fused attention kernel, or a softmax fed by a matrix product and feeding one,
each within :data:`ATTENTION_HOPS` edges); else ``cnn-block`` when a convolution is present; else
``other``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

COARSE_LABELS = ("cnn-block", "attention-block", "other")

ALIASES: dict[str, str] = {
    # transformers' model_type or torchvision's builder -> the family name used for all sources
    "vision_transformer": "vit",
    "vision_transformer_hybrid": "vit_hybrid",
    "swin_transformer": "swin",
    "swin_transformer_v2": "swinv2",
    "convnextv2": "convnext",
    "mobilenet_v1": "mobilenetv1",
    "mobilenet_v2": "mobilenetv2",
    "mobilenet_v3": "mobilenetv3",
    "mobilevitv2": "mobilevit",
    "bit": "resnetv2",
    "inception": "inception_v3",
    "maxxvit": "maxvit",
    "mvitv2": "mvit",
    "efficientformer_v2": "efficientformer",
    "shufflenet_v2": "shufflenetv2",
    # pytorchcv's modules (dataset suffix already dropped: resnet_cifar -> resnet)
    "inceptionv3": "inception_v3",
    "inceptionv4": "inception_v4",
    "inceptionresnetv2": "inception_resnet_v2",
    "resnesta": "resnest",
    "mobilenet": "mobilenetv1",
    "mobilenetb": "mobilenetv1",
    "shufflenetv2b": "shufflenetv2",
    "darknet53": "darknet",
    "rtdetr": "rt_detr",  # ultralytics' RT-DETR = transformers' rt_detr
    # monai's modules
    "basic_unet": "unet",
    "basic_unetplusplus": "unetplusplus",
    "segresnet_ds": "segresnet",
    "autoencoderkl": "autoencoder_kl",  # monai's latent-diffusion VAE = diffusers'
    # holocron's modules
    "darknetv2": "darknet",  # Darknet-19
    "darknetv3": "darknet",  # Darknet-53
    "darknetv4": "cspnet",  # CSPDarknet-53, in timm's cspnet
    "unetpp": "unetplusplus",
    "yolo": "yolov1",
}
"""Family names of different sources that mean the same family -> one name (documented in the
dataset card). Video models of torchvision are kept apart in :func:`torchvision_family`."""

NAME_HINTS: tuple[tuple[str, str], ...] = (
    (r"deberta", "deberta"), (r"roberta", "roberta"), (r"distilbert", "distilbert"),
    (r"albert", "albert"), (r"electra", "electra"), (r"bert", "bert"),
    (r"gpt-?2", "gpt2"), (r"gpt-?neox", "gpt_neox"), (r"gpt-?j", "gptj"), (r"gpt", "gpt"),
    (r"llama", "llama"), (r"mistral", "mistral"), (r"qwen", "qwen"), (r"t5", "t5"),
    (r"bart", "bart"), (r"whisper", "whisper"), (r"wav2vec", "wav2vec2"), (r"clip", "clip"),
    (r"swin", "swin"), (r"deit", "deit"), (r"beit", "beit"), (r"vit", "vit"),
    (r"convnext", "convnext"), (r"efficientnet", "efficientnet"), (r"mobilenet", "mobilenet"),
    (r"resnext", "resnet"), (r"resnet", "resnet"), (r"densenet", "densenet"), (r"vgg", "vgg"),
    (r"yolo", "yolo"), (r"detr", "detr"), (r"unet", "unet"),
    (r"former", "transformer"), (r"conv|cnn", "convnet"),
)
"""The paper's name hints, used only where metadata is missing: (regex, family), first wins."""

_ATTENTION_KERNELS = frozenset({
    "ScaledDotProductFlashAttention", "ScaledDotProductFlashAttentionForCpu",
    "ScaledDotProductEfficientAttention", "ScaledDotProductCudnnAttention", "FlashAttention",
    "EfficientAttention", "CudnnAttention", "MaskedSoftmax"})
_SOFTMAX = frozenset({"Softmax", "XSoftmax", "MaskedSoftmax"})
_MATMUL = frozenset({"Bmm", "Mm", "Baddbmm", "Matmul", "Mv", "Dot", "Addbmm"})
_CONV = frozenset({"Convolution", "ConvTbc"})
ATTENTION_HOPS = 4


def alias(family: str) -> str:
    """The canonical name of a family (lower case, :data:`ALIASES` applied)."""
    family = family.strip().lower().replace("-", "_")
    return ALIASES.get(family, family)


def torchvision_family(module: str) -> str:
    """``'detection.faster_rcnn'`` -> ``'faster_rcnn'``; ``'video.resnet'`` -> ``'resnet3d'``."""
    parts = module.removeprefix("torchvision.models.").split(".")
    family = alias(parts[-1])
    if parts[0] == "video" and family in ("resnet", "swin"):
        return f"{family}3d"
    return family


def name_hint(name: str) -> str:
    """The paper's regex hints over a model name; ``unknown`` when none matches."""
    lower = name.lower()
    for pattern, family in NAME_HINTS:
        if re.search(pattern, lower):
            return alias(family)
    return "unknown"


@lru_cache(maxsize=1)
def _timm_modules() -> dict[str, str]:
    try:
        import timm
    except ImportError:  # pragma: no cover - timm is a dependency
        return {}
    return {name: mod for mod in timm.list_modules() for name in timm.list_models(module=mod)}


def fine_label(meta: Mapping[str, Any]) -> tuple[str, str]:
    """``(family, how)`` of one model from its manifest row (``source``, ``name``, ``module``,
    ``model_type``, ``config``); ``how`` is ``metadata`` or ``name-hint``."""
    source = meta.get("source") or ""
    if meta.get("cluster") is not None:
        return f"nas-{int(meta['cluster'])}", "metadata"
    if source == "torchvision" and meta.get("module"):
        return torchvision_family(meta["module"]), "metadata"
    if meta.get("module"):
        return alias(meta["module"]), "metadata"
    if meta.get("model_type"):
        return alias(meta["model_type"]), "metadata"
    arch = _config_architecture(meta.get("config"))
    if arch and arch in _timm_modules():
        return alias(_timm_modules()[arch]), "metadata"
    name = meta.get("name") or str(meta.get("model_id", "")).partition(":")[2]
    return name_hint(name), "name-hint"


def _config_architecture(config: str | None) -> str | None:
    """A Hub timm config's ``architecture`` (the manifest keeps the config.json under ``config``)."""
    if not config or "architecture" not in config:
        return None
    try:
        cfg = json.loads(config)
    except ValueError:
        return None
    inner = cfg.get("config") if isinstance(cfg.get("config"), dict) else cfg
    arch = inner.get("architecture")
    return arch if isinstance(arch, str) else None


def _within(start: np.ndarray, frm: np.ndarray, to: np.ndarray, hops: int) -> np.ndarray:
    """Nodes reachable from ``start`` in 1..``hops`` steps along edges ``frm -> to``."""
    reach = np.zeros_like(start)
    front = start
    for _ in range(hops):
        nxt = np.zeros_like(start)
        nxt[to[front[frm]]] = True
        reach |= nxt
        front = nxt
    return reach


def coarse_label(op_names: Sequence[str], src: np.ndarray, dst: np.ndarray) -> str:
    """``attention-block`` / ``cnn-block`` / ``other`` from a cleaned graph (see the module)."""
    names = set(op_names)
    if names & _ATTENTION_KERNELS:
        return "attention-block"
    if names & _SOFTMAX and names & _MATMUL:
        ops = np.asarray(op_names, dtype=object)
        soft = np.isin(ops, list(_SOFTMAX))
        mat = np.isin(ops, list(_MATMUL))
        src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        after_matmul = _within(mat, src, dst, ATTENTION_HOPS)
        before_matmul = _within(mat, dst, src, ATTENTION_HOPS)
        if np.any(soft & after_matmul & before_matmul):
            return "attention-block"
    if names & _CONV:
        return "cnn-block"
    return "other"
