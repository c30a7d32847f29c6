"""doctr: the model builders of Mindee's docTR (``python-doctr``, PyTorch), without weights.

One row per builder that has a default config (``default_cfgs``) in ``doctr.models``: text
detection (``db_resnet34/50``, ``db_mobilenet_v3_large``, ``linknet_resnet18/34/50``,
``fast_tiny/small/base``), text recognition (``crnn_*``, ``sar_resnet31``, ``master``,
``vitstr_small/base``, ``parseq``, ``viptr_tiny``), character classification backbones
(``resnet*``, ``magc_resnet31``, ``mobilenet_v3_*``, ``vgg16_bn_r``, ``textnet_*``, ``vit_*``,
``vit_det_*``, ``vip_*``, ``starnet_s3``) with the two orientation classifiers
(``mobilenet_v3_small_crop_orientation``, ``..._page_orientation``), layout detection
(``lw_detr_s/m``) and table structure (``tablecenternet``): 44 in docTR 1.1.0.

Listing reads each ``doctr/models/<task>/<arch>/pytorch.py`` with :mod:`ast` (its
``default_cfgs`` names and ``input_shape``), importing neither doctr nor torch. The family is
the architecture's folder in docTR (``differentiable_binarization``, ``linknet``, ``fast``,
``crnn``, ``master``, ``parseq``, ``sar``, ``vitstr``, ``viptr``, ``resnet``, ``mobilenet``,
``textnet``, ``lw_detr``, ``tablecenternet``...). Every builder runs with ``pretrained=False``
and, where it takes one, ``pretrained_backbone=False`` (its default, True, would download the
backbone's weights); detection, recognition, layout and table models are built
``exportable=True``: their forward returns the raw logits (or head maps) without the
post-processing (box extraction with OpenCV, string decoding) that runs in NumPy. The
recognisers that decode autoregressively (MASTER, SAR, PARSeq) run their greedy decoding loop.
The input is one image of the config's ``input_shape`` (32 x 32 characters, 32 x 128 words,
1024 x 1024 pages, 256 x 256 and 512 x 512 for the orientation classifiers).

Install: docTR 1.x is PyTorch only (the ``USE_TORCH`` switch of 0.x is gone). Every release
declares ``huggingface-hub<2`` (here 2.4, which transformers needs) and ``onnx`` (only its
export helpers use it), so ``make setup`` installs what it imports through the ``doctr`` extra
and python-doctr itself with ``pip install --no-deps``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="doctr", title="Mindee docTR OCR models (detection, recognition, classification)",
    package="doctr", offline=True, license="Apache-2.0", extra="doctr",
    distribution="python-doctr",
    family="the architecture's folder in doctr.models (differentiable_binarization, linknet, "
           "crnn, parseq, textnet, ...)",
    no_deps=("python-doctr==1.1.0",))

TASKS: dict[str, str] = {
    "classification": "image-classification", "detection": "text-detection",
    "recognition": "text-recognition", "layout": "layout-detection",
    "table_structure": "table-structure-recognition"}
"""docTR's task packages -> the row's task."""


@dataclass(frozen=True)
class _Entry:
    """One builder: its task package, architecture folder, input shape (C, H, W) and whether
    it takes ``pretrained_backbone`` and ``exportable``."""

    task: str
    arch: str
    input_shape: tuple[int, int, int]
    backbone_arg: bool
    exportable: bool


def _root() -> Path:
    """The installed ``doctr`` package's folder (found without importing it)."""
    return SOURCE.package_dir()


@cache
def _index() -> dict[str, _Entry]:
    """``{builder name: entry}`` read from every ``models/<task>/<arch>/pytorch.py``'s
    ``default_cfgs`` literal (its keys are the builders, each with an ``input_shape``)."""
    out = {}
    for task in TASKS:
        for path in sorted(Path(_root(), "models", task).glob("*/pytorch.py")):
            text = path.read_text()
            tree = ast.parse(text)
            functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
            for name, cfg in _default_cfgs(tree).items():
                if name not in functions or "input_shape" not in cfg:
                    continue
                out[name] = _Entry(task, path.parent.name, tuple(cfg["input_shape"]),
                                   "pretrained_backbone" in text, "exportable" in text)
    return out


def _default_cfgs(tree: ast.Module) -> dict[str, dict[str, Any]]:
    """The ``default_cfgs`` dict of a module: each entry's literal fields (others skipped)."""
    for node in tree.body:
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if isinstance(target, ast.Name) and target.id == "default_cfgs" and isinstance(
                node.value, ast.Dict):
            cfgs = {}
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                fields = {}
                for k, v in zip(value.keys, value.values, strict=True):
                    try:
                        fields[ast.literal_eval(k)] = ast.literal_eval(v)
                    except ValueError:  # e.g. "classes": list(VOCABS["french"])
                        continue
                cfgs[ast.literal_eval(key)] = fields
            return cfgs
    return {}


def names() -> list[str]:
    return list(_index())


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per builder (all, or ``names``)."""
    import importlib.metadata

    index = _index()
    version = importlib.metadata.version("python-doctr")
    for name in names if names is not None else index:
        entry = index[name]
        kwargs: dict[str, Any] = {"pretrained": False}
        if entry.backbone_arg and entry.task != "classification":
            kwargs["pretrained_backbone"] = False
        if entry.exportable and entry.task != "classification":
            kwargs["exportable"] = True
        yield manifest_row(
            "doctr", name, {"module": f"doctr.models.{entry.task}.{entry.arch}.pytorch",
                            "builder": name, "kwargs": kwargs,
                            "input_shape": list(entry.input_shape)},
            task=TASKS[entry.task], library="doctr", module=entry.arch,
            metadata={"doctr": version, "task": entry.task})


def build(config: dict[str, Any], step: str) -> Built:
    """The builder's model without weights, and one image of its config's input shape.

    For the ``meta-init`` step (constructors that read values: the ViP, ViTDet and StarNet
    backbones take their drop-path rates with ``.item()``), the dummy images that some
    constructors run through their backbone to size their head (VIPTR, LW-DETR,
    TableCenterNet) are made on meta too (:func:`_probes_on_meta`): the parameters are on meta.
    """
    import contextlib
    import importlib

    import torch

    from narbuild.sources.base import kwargs_of

    try:
        module = importlib.import_module(config["module"])
    except ModuleNotFoundError as exc:
        if not str(exc.name or "").startswith("doctr"):
            raise
        module = None
    builder = getattr(module, config["builder"], None)
    if builder is None:
        raise NarbuildError(f"doctr has no model builder {config['builder']!r}",
                            "upgrade python-doctr or re-crawl")
    with _probes_on_meta() if step == "meta-init" else contextlib.nullcontext():
        model = builder(**kwargs_of(config))
    channels, height, width = config["input_shape"]
    return Built(model, (torch.randn(1, channels, height, width, requires_grad=True),))


def _probes_on_meta() -> Any:
    """A mode in which ``torch.zeros``/``ones``/``rand``/``randn`` without a device make meta
    tensors: the shape probes of docTR's constructors then run on the meta parameters."""
    import torch
    from torch.overrides import TorchFunctionMode

    probes = (torch.zeros, torch.ones, torch.rand, torch.randn)

    class ProbesOnMeta(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in probes and kwargs.get("device") is None:
                kwargs = {**kwargs, "device": "meta"}
            return func(*args, **kwargs)

    return ProbesOnMeta()
