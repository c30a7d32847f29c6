"""mmpretrain: every model of OpenMMLab's model zoo (``mmpretrain.list_models()``), one row per
published model name, built from its config without weights (``get_model(name,
pretrained=False)``).

The model zoo's index (``.mim/model-index.yml``: each model's name, config file, collection,
published FLOPs and parameters) is read with PyYAML alone: listing imports neither
mmpretrain nor torch. The family is the model's collection in that index (``ResNet``,
``Swin-Transformer``, ``MoCoV3``, ``EVA``), lower-cased with dashes (``mobilenet-v2``).

The graph is the one of the model's ``forward(inputs, mode="tensor")``: for a classifier the
backbone, neck and head's logits; for a self-supervised algorithm (MAE, MoCo, SimCLR, BEiT
pre-training...) and for the ``*-pre`` backbones without a head, the backbone's features (the
pre-training decoders and losses only run in ``mode="loss"``). A self-supervised config's
``target_generator`` (the frozen teacher that makes the pre-training targets: CLIP, DALL-E,
VQ-KD, HOG) is left out: it is no part of the trained model, its published parameter count
leaves it out too, and the CLIP teacher downloads its weights in its constructor. SparK's
sparse backbones run with every position active (:func:`_all_active`). The input is one RGB
image of the size of the config's test pipeline (its last ``CenterCrop``, else its
``Resize``), else the backbone's ``img_size``, else 224 x 224; 32 x 32 for the CIFAR configs.
Two released configs need help to load (:func:`load_config`). Models are built as the index
says: its ``convnext-large_3rdparty_in21k`` and ``convnext-xlarge_3rdparty_in21k`` point at
ConvNeXt-Base's config, so they are ConvNeXt-Base graphs.

Rows that cannot be built offline are not listed (:data:`_EXCLUDED`, by collection): the
25 multimodal models (BLIP, BLIP-2, Flamingo, OFA, LLaVA, MiniGPT-4, Otter, Chinese-CLIP)
need pycocotools and fetch their tokenizer or language model from the Hugging Face Hub in their
constructor; ``narbuild crawl`` lists the other 523 (mmpretrain 1.2.0).

Install: ``pip install 'narbuild[mmpretrain]'`` installs mmpretrain with mmengine and
``mmcv-lite`` (mmcv's pure-Python part, no compiled ops: mmpretrain's classifiers do not use
them).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, unknown_id

SOURCE = Source(
    name="mmpretrain", title="OpenMMLab mmpretrain model zoo (list_models)",
    package="mmpretrain", offline=True, license="Apache-2.0", extra="mmpretrain",
    family="the model's collection in mmpretrain's model index (ResNet -> resnet, "
           "MobileNet V2 -> mobilenet-v2)")

DEFAULT_IMAGE, CIFAR_IMAGE = 224, 32
_EXCLUDED: dict[str, str] = dict.fromkeys(
    ("BLIP", "BLIP-2", "ChineseCLIP", "Flamingo", "LLaVA", "MiniGPT4", "OFA", "Otter"),
    "a vision-language model: mmpretrain builds it only with its multimodal extra "
    "(pycocotools) and fetches its tokenizer or language model from the Hugging Face Hub")
"""Collections not listed, and why."""
_TASKS = {"Image Classification": "image-classification",
          "Multi-Label Classification": "image-classification",
          "Image Retrieval": "image-retrieval"}


@dataclass(frozen=True)
class _Entry:
    """One model of the zoo's index: its name, collection, config file (relative to
    ``.mim``), published metadata (``FLOPs``, ``Parameters``, ``Training Data``) and tasks."""

    name: str
    in_collection: str | None
    config: str
    metadata: dict[str, Any]
    tasks: tuple[str, ...]


@cache
def _index() -> dict[str, _Entry]:
    """``{model name: entry}`` of mmpretrain's model index (``.mim/model-index.yml`` and the
    metafiles it imports), read with PyYAML without importing mmpretrain. A model's
    ``Metadata`` is its collection's updated with its own, a fresh dict per model (modelindex's
    merge shares dicts between models: a parameter count leaked from one model to another)."""
    import yaml

    root = Path(_root(), ".mim")
    out = {}
    for metafile in yaml.safe_load((root / "model-index.yml").read_text())["Import"]:
        meta = yaml.safe_load((root / metafile).read_text())
        collections = {c["Name"]: c.get("Metadata") or {} for c in meta.get("Collections") or []}
        for model in meta.get("Models") or []:
            collection = model.get("In Collection")
            out[model["Name"].lower()] = _Entry(
                model["Name"], collection, model["Config"],
                {**collections.get(collection, {}), **(model.get("Metadata") or {})},
                tuple(r["Task"] for r in model.get("Results") or [] if r.get("Task")))
    return dict(sorted(out.items()))


def _root() -> str:
    """The installed ``mmpretrain`` package's folder (found without importing it)."""
    return str(SOURCE.package_dir())


def _listed() -> dict[str, Any]:
    return {n: m for n, m in _index().items() if m.in_collection not in _EXCLUDED}


def names() -> list[str]:
    return list(_listed())


def family_of(collection: str) -> str:
    """``MobileNet V2`` -> ``mobilenet-v2``; ``Swin-Transformer`` -> ``swin-transformer``."""
    return re.sub(r"[\s_]+", "-", collection.strip().lower())


def lookup(name: str) -> dict[str, Any]:
    """The row of one model name; an excluded one says why."""
    index = _index()
    model = index.get(name.lower())
    if model is not None and model.in_collection in _EXCLUDED:
        raise NarbuildError(f"mmpretrain:{name} is not listed: "
                            f"{_EXCLUDED[model.in_collection]}",
                            "choose an image model: `narbuild crawl -s mmpretrain` lists them")
    if model is None:
        raise unknown_id(f"mmpretrain:{name}", [f"mmpretrain:{n}" for n in _listed()],
                         "list them with `narbuild crawl -s mmpretrain`")
    return next(iter_rows([name.lower()]))


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per model name of the zoo (all listed, or ``names``)."""
    index = _listed() if names is None else {n: _index()[n] for n in names}
    version = _version()
    for name, model in index.items():
        meta, tasks = model.metadata, list(model.tasks)
        yield manifest_row(
            "mmpretrain", name, {"name": name}, library="mmpretrain",
            task=_TASKS.get(tasks[0], "image-feature-extraction") if tasks else
            "image-feature-extraction",
            module=family_of(model.in_collection or name.split("_")[0]),
            metadata={"mmpretrain": version, "collection": model.in_collection,
                      "config": model.config, "published_flops": meta.get("FLOPs"),
                      "published_params": meta.get("Parameters"),
                      "training_data": meta.get("Training Data"), "tasks": tasks})


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("mmpretrain")


def build(config: dict[str, Any], step: str) -> Built:
    """``get_model(config, pretrained=False)`` of the model's config, and one image of the
    config's test size."""
    import logging

    import torch
    from mmpretrain import get_model

    logging.getLogger("mmengine").setLevel(logging.WARNING)  # its INFO lines go to stdout
    cfg = load_config(config["name"])
    cfg.model.pop("target_generator", None)  # a frozen teacher for the pre-training loss
    model = get_model(cfg, pretrained=False)
    if hasattr(model, "downsample_raito"):  # SparK (mmpretrain's spelling)
        model.register_forward_pre_hook(_all_active)
    height, width = image_size(cfg)
    return Built(model, (torch.randn(1, 3, height, width, requires_grad=True),))


def _all_active(model: Any, args: tuple) -> None:
    """SparK's sparse backbone masks every layer with the active positions that its
    pre-training loss draws (a class attribute); here every position is active (mask ratio 0),
    the backbone as it is fine-tuned."""
    import torch
    from mmpretrain.models.utils.sparse_modules import SparseHelper

    image = args[0]
    size = image.shape[-1] // model.downsample_raito
    SparseHelper._cur_active = torch.ones(image.shape[0], 1, size, size, dtype=torch.bool,
                                          device=image.device)


def load_config(name: str) -> Any:
    """The mmengine config of a model name, read as a plain (not lazy-import) config.

    Two released configs need help: RepLKNet-31B's base model file imports
    ``build_classifier`` for its ``__main__`` block, which makes mmengine take it for a
    lazy-import config (read here with ``lazy_import=False``); the two SwinV2 in21k-192px
    configs edit their base's ``test_pipeline``, which the ImageNet-21k base does not have
    (read here without those edits: the image size is then the backbone's ``img_size``)."""
    from mmengine.config import Config

    model = _index().get(name)
    if model is None:
        raise NarbuildError(f"mmpretrain has no model {name!r}", "upgrade mmpretrain or re-crawl")
    path = Path(_root(), ".mim", model.config)
    try:
        return Config.fromfile(str(path), lazy_import=False)
    except KeyError as exc:
        if "test_pipeline" not in str(exc):
            raise
    text = re.sub(r"^_base_\[.test_pipeline.\].*$", "", path.read_text(), flags=re.MULTILINE)
    text = text.replace("'../", f"'{path.parent.parent}/").replace('"../', f'"{path.parent.parent}/')
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder, path.name)
        copy.write_text(text)
        return Config.fromfile(str(copy), lazy_import=False)


def image_size(cfg: Any) -> tuple[int, int]:
    """(height, width) of a config's test images: its test pipeline's last ``CenterCrop``,
    else its ``Resize``/``ResizeEdge``, else the backbone's ``img_size``, else 224 (32 for the
    CIFAR datasets)."""
    pipeline = _pipeline(cfg)
    for kind, key in (("CenterCrop", "crop_size"), ("EfficientNetCenterCrop", "crop_size"),
                      ("Resize", "scale"), ("ResizeEdge", "scale")):
        steps = [p for p in pipeline if p.get("type") == kind and p.get(key)]
        if steps:
            return _pair(steps[-1][key])
    backbone = cfg.model.get("backbone") or {}
    if backbone.get("img_size"):
        return _pair(backbone["img_size"])
    dataset = str(_get(cfg, "test_dataloader", "dataset", "type") or "")
    return _pair(CIFAR_IMAGE if "CIFAR" in dataset.upper() else DEFAULT_IMAGE)


def _pipeline(cfg: Any) -> list[dict]:
    for pipeline in (cfg.get("test_pipeline"), _get(cfg, "test_dataloader", "dataset", "pipeline"),
                     cfg.get("val_pipeline")):
        if pipeline:
            return [p for p in pipeline if isinstance(p, dict)]
    return []


def _get(cfg: Any, *keys: str) -> Any:
    for key in keys:
        if not hasattr(cfg, "get"):
            return None
        cfg = cfg.get(key)
    return cfg


def _pair(size: Any) -> tuple[int, int]:
    """A pipeline size: an int, or (width, height) as mmcv writes it."""
    if isinstance(size, int):
        return size, size
    width, height = size
    return int(height), int(width)
