"""ultralytics: every model YAML the package ships (``ultralytics/cfg/models/**.yaml``), at each
scale it defines, built from the YAML with no weights and nothing fetched.

A YAML with a ``scales:`` mapping gives one row per scale, named the ultralytics way (the scale
letter after the version: ``yolov8.yaml`` + ``n`` -> ``yolov8n``, ``yoloe-v8-seg`` + ``s`` ->
``yoloe-v8s-seg``); a YAML with no scales, or one whose only scale its name already carries
(``rtdetr-l``, ``yolov10n``), gives one row named after the file. The task comes from the last
head module, the way ``ultralytics.nn.tasks.guess_model_task`` reads a YAML; the model class is
the one ultralytics builds for that head (``WorldDetect`` -> ``WorldModel``, ``RTDETRDecoder`` ->
``RTDETRDetectionModel``, ...). The published ``summary:`` comments of the YAMLs (layers,
parameters, GFLOPs per scale) go into ``metadata["reference"]``.

Listing reads the YAML files only (no import of ultralytics or torch). Building sets
ultralytics' offline switches (``YOLO_OFFLINE``, no auto-install) and refuses any download:
``TorchVision`` backbone layers are built without pretrained weights, World and YOLOE models
keep their placeholder text embeddings (no CLIP model is loaded), and a download that would
still happen raises an error naming it instead of reaching the network.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, unknown_id

SOURCE = Source(
    name="ultralytics", title="ultralytics YOLO / RT-DETR model YAMLs (cfg/models)",
    package="ultralytics", offline=True, license="AGPL-3.0", extra="ultralytics",
    family="the YAML's design generation (yolov3 ... yolov10, yolo11, yolo12, yolo26, rtdetr, "
           "yolo-world, yoloe; resnet for the ResNet-backbone classifiers), not its scale or head")

OFFLINE_ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0"}
"""Environment ultralytics reads at import: no online check (a DNS lookup), no pip installs."""
QUIET_ENV = {"YOLO_VERBOSE": "0"}
"""Set unless the user set it: no model summary printed per build."""

CLASSIFY_IMAGE = 224
"""Input size of the classification YAMLs (ultralytics' classify default), unless the YAML says."""
DETECT_IMAGE = 640
"""Input size of every other YAML (ultralytics' default ``imgsz``, the one its summaries use)."""

_TASKS = {
    "detect": "object-detection", "segment": "image-segmentation",
    "semantic": "image-segmentation", "pose": "pose-estimation",
    "obb": "oriented-object-detection", "classify": "image-classification",
    "depth": "depth-estimation", "rtdetr": "object-detection",
}
"""ultralytics task -> pipeline-tag task."""

_OPEN_VOCAB = {"WorldDetect": "WorldModel", "YOLOEDetect": "YOLOEModel"}
"""Open-vocabulary detection heads -> their model class (segment heads of YOLOE: YOLOESegModel)."""

_MODEL_CLASSES = {
    "detect": "DetectionModel", "segment": "SegmentationModel",
    "semantic": "SemanticSegmentationModel", "pose": "PoseModel", "obb": "OBBModel",
    "classify": "ClassificationModel", "depth": "DepthModel", "rtdetr": "RTDETRDetectionModel",
}
"""ultralytics task -> the ``ultralytics.nn.tasks`` class its YAMLs build."""

_SUMMARY = re.compile(
    r"(?P<layers>\d[\d,]*) layers, (?P<params>\d[\d,]*) parameters"
    r"(?:, (?P<gradients>\d[\d,]*) gradients)?, (?P<gflops>\d+(?:\.\d+)?) GFLOPs", re.IGNORECASE)
_SCALE_LINE = re.compile(r"^\s+(?P<scale>\w+)\s*:\s*\[[^\]]*\]\s*#(?P<comment>.*)$")


def _offline() -> None:
    """ultralytics' offline switches, set before it is imported (it checks for a network at
    import) and before each build."""
    os.environ.update(OFFLINE_ENV)
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


_offline()


# Listing ------------------------------------------------------------------------------------


def models_dir() -> Path:
    """``ultralytics/cfg/models`` of the installed package (found without importing it)."""
    return SOURCE.package_dir() / "cfg" / "models"


def version() -> str:
    return importlib.metadata.version("ultralytics")


@cache
def _yaml_files() -> tuple[str, ...]:
    """Every model YAML, as a path relative to ``cfg/models``, sorted."""
    root = models_dir()
    return tuple(sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml")))


@cache
def read_yaml(rel: str) -> tuple[dict[str, Any], str]:
    """A model YAML (parsed, and its text for the comments)."""
    import yaml

    text = (models_dir() / rel).read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader), text


def head_of(cfg: dict[str, Any]) -> str:
    """The module name of the last head layer (``Detect``, ``Segment26``, ``RTDETRDecoder``)."""
    return str(cfg["head"][-1][2]).rpartition(".")[2]


def task_of(head: str) -> str:
    """ultralytics' task of a head module, as ``guess_model_task`` reads a YAML; ``rtdetr`` for
    the RT-DETR decoder (which ``guess_model_task`` leaves unnamed)."""
    m = head.lower()
    if m in {"classify", "classifier", "cls", "fc"}:
        return "classify"
    for key, task in (("detect", "detect"), ("semanticsegment", "semantic"),
                      ("segment", "segment"), ("pose", "pose"), ("obb", "obb"),
                      ("depth", "depth"), ("rtdetr", "rtdetr")):
        if key in m:
            return task
    raise NarbuildError(f"ultralytics head {head!r} has no known task", "update narbuild")


def model_class_of(head: str) -> str:
    """The ``ultralytics.nn.tasks`` class ultralytics builds for a head (as ``YOLO``,
    ``YOLOWorld``, ``YOLOE`` and ``RTDETR`` pick it)."""
    if head in _OPEN_VOCAB:
        return _OPEN_VOCAB[head]
    if head.startswith("YOLOESegment"):
        return "YOLOESegModel"
    return _MODEL_CLASSES[task_of(head)]


def task_tag(head: str) -> str:
    """Pipeline-tag task: open-vocabulary detectors (World, YOLOE) are zero-shot detectors."""
    if model_class_of(head) in ("WorldModel", "YOLOEModel"):
        return "zero-shot-object-detection"
    return _TASKS[task_of(head)]


def family_of(stem: str, head: str) -> str:
    """One name per design generation: ``yolov8-ghost-p2`` -> ``yolov8``, ``yoloe-11-seg`` ->
    ``yoloe``, ``yolov8-worldv2`` -> ``yolo-world``, ``yolov8-rtdetr`` -> ``rtdetr``,
    ``yolo11-cls-resnet18`` -> ``resnet``."""
    if stem.startswith("yoloe"):
        return "yoloe"
    if "world" in stem:
        return "yolo-world"
    if task_of(head) == "rtdetr":
        return "rtdetr"
    if "resnet" in stem:
        return "resnet"
    match = re.match(r"yolov?\d+", stem)
    return match.group(0) if match else stem


def scaled_name(stem: str, scale: str | None) -> str:
    """ultralytics' model name of a YAML at a scale: the letter after the first number
    (``yolov8-seg`` + ``n`` -> ``yolov8n-seg``; ``yolo26`` + ``x`` -> ``yolo26x``)."""
    if scale is None:
        return stem
    name, count = re.subn(r"(\d+)", rf"\g<1>{scale}", stem, count=1)
    return name if count else f"{stem}-{scale}"


def scales_of(cfg: dict[str, Any]) -> list[str | None]:
    """The scales a YAML defines (``[None]`` for none)."""
    return list(cfg.get("scales") or {}) or [None]


def row_names(rel: str) -> dict[str, str | None]:
    """Row name -> scale of one YAML: one row per scale, one row when its single scale is
    already in the file name (``rtdetr-l``, ``yolov10n``) or it has none."""
    cfg, _ = read_yaml(rel)
    stem = Path(rel).stem
    scales = scales_of(cfg)
    if len(scales) == 1:
        return {stem: scales[0]}
    return {scaled_name(stem, s): s for s in scales}


def references(text: str, scales: list[str | None]) -> dict[str | None, dict[str, Any]]:
    """The published summary of each scale, from the YAML's comments: a ``summary:`` comment
    on the scale's line, or, for a YAML without scales, the first such comment in the file."""
    found: dict[str | None, dict[str, Any]] = {}
    for line in text.splitlines():
        summary = _SUMMARY.search(line)
        if summary is None:
            continue
        scale_line = _SCALE_LINE.match(line)
        key = scale_line.group("scale") if scale_line else None
        if key in scales and key not in found:
            found[key] = _figures(summary)
        elif scales == [None] and None not in found and line.lstrip().startswith("#"):
            found[None] = _figures(summary)
    return found


def _figures(summary: re.Match) -> dict[str, Any]:
    def number(key: str) -> int | None:
        value = summary.group(key)
        return int(value.replace(",", "")) if value else None

    return {"layers": number("layers"), "params": number("params"),
            "gradients": number("gradients"), "gflops": float(summary.group("gflops"))}


@cache
def _index() -> dict[str, tuple[str, str | None]]:
    """Row name -> (YAML path, scale), sorted by name."""
    pairs = {name: (rel, scale) for rel in _yaml_files()
             for name, scale in row_names(rel).items()}
    return dict(sorted(pairs.items()))


def names() -> list[str]:
    return list(_index())


def image_size(cfg: dict[str, Any]) -> int:
    """The traced input size: the YAML's ``imgsz`` if any, else 224 (classify) or 640."""
    default = CLASSIFY_IMAGE if task_of(head_of(cfg)) == "classify" else DETECT_IMAGE
    size = cfg.get("imgsz") or default
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _row(name: str, rel: str, scale: str | None) -> dict[str, Any]:
    cfg, text = read_yaml(rel)
    head, stem = head_of(cfg), Path(rel).stem
    metadata: dict[str, Any] = {
        "yaml": rel, "scale": scale, "head": head, "ultralytics_task": task_of(head),
        "model_class": model_class_of(head), "image_size": image_size(cfg),
        "ultralytics": version()}
    reference = references(text, scales_of(cfg)).get(scale)
    if reference:
        metadata["reference"] = reference
    if metadata["model_class"].startswith(("World", "YOLOE")):
        metadata["prompts"] = "placeholder class embeddings; no text encoder built or loaded"
    return manifest_row(
        "ultralytics", name, {"yaml": rel, "scale": scale}, task=task_tag(head),
        library="ultralytics", module=family_of(stem, head),
        architectures=[model_class_of(head)], metadata=metadata)


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per model YAML and scale (all, or the given ``names``), sorted."""
    index = _index()
    for name in names if names is not None else index:
        if name not in index:
            raise unknown_id(f"ultralytics:{name}", [f"ultralytics:{n}" for n in index],
                             "list them with `narbuild crawl -s ultralytics`")
        yield _row(name, *index[name])


# Building -----------------------------------------------------------------------------------


def model_dict(config: dict[str, Any]) -> dict[str, Any]:
    """The YAML of a row's config, at its scale, with every pretrained-weight argument of a
    ``TorchVision`` layer cleared (it would download torchvision weights)."""
    import copy

    rel, scale = config["yaml"], config.get("scale")
    if rel not in _yaml_files():
        raise NarbuildError(f"ultralytics {version()} has no model YAML {rel!r}",
                            "re-crawl the source with the installed ultralytics")
    cfg = copy.deepcopy(read_yaml(rel)[0])
    if scale is not None:
        cfg["scale"] = scale
    cfg["yaml_file"] = f"{scaled_name(Path(rel).stem, scale)}.yaml"
    for layer in (*cfg.get("backbone", ()), *cfg.get("head", ())):
        if str(layer[2]).endswith("TorchVision") and len(layer[3]) > 2:
            layer[3][2] = None  # [c2, model, weights, unwrap, truncate, ...]
    return cfg


_DOWNLOADERS = (("ultralytics.utils.downloads", "safe_download"),
                ("ultralytics.utils.downloads", "attempt_download_asset"),
                ("ultralytics.utils.downloads", "get_github_assets"),
                ("ultralytics.utils.checks", "check_font"),
                ("torch.hub", "download_url_to_file"))
"""Every function through which building a model could reach the network (weights, assets,
fonts, torchvision weights); a function-level import reads the patched attribute."""


@contextlib.contextmanager
def no_downloads():
    """Any download ultralytics or torch.hub would start raises instead (nothing reaches the
    network, nothing hangs on a connection)."""
    import importlib

    def refuse(*args: Any, **kwargs: Any) -> None:
        what = next((str(a) for a in (*args, *kwargs.values()) if isinstance(a, (str, Path))), "")
        raise NarbuildError(f"building this ultralytics model needs a download ({what})",
                            "narbuild builds from the YAML offline, without weights")

    saved = [(importlib.import_module(m), attr) for m, attr in _DOWNLOADERS]
    originals = [getattr(module, attr) for module, attr in saved]
    for module, attr in saved:
        setattr(module, attr, refuse)
    try:
        yield
    finally:
        for (module, attr), original in zip(saved, originals):
            setattr(module, attr, original)


def _literals_on_host() -> Any:
    """A torch function mode: tensors made from Python numbers with no device
    (``torch.tensor(strides)``) are made on the CPU, whatever the default device. A detection
    model computes its strides with a probe forward in its constructor and reads them back as
    numbers (``math.log(stride)`` in ``bias_init``), which a meta tensor cannot answer.
    Parameters made that way still go to the default device (:func:`_params_on_default_device`)."""
    import torch
    from torch.overrides import TorchFunctionMode

    class LiteralsOnHost(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if (func in (torch.tensor, torch.as_tensor) and kwargs.get("device") is None
                    and args and not isinstance(args[0], torch.Tensor)):
                kwargs = {**kwargs, "device": "cpu"}
            return func(*args, **kwargs)

    return LiteralsOnHost()


@contextlib.contextmanager
def _params_on_default_device():
    """Parameters and buffers made from host literals by :func:`_literals_on_host`
    (``nn.Parameter(torch.tensor([-10.0]))``) are registered on the default device (meta, when
    building on meta); the strides, plain attributes, stay numbers on the CPU."""
    import torch

    device = torch.empty(0).device
    module = torch.nn.Module
    register_parameter, register_buffer = module.register_parameter, module.register_buffer

    def parameter(self: Any, name: str, p: Any) -> None:
        if p is not None and p.device != device:
            p = torch.nn.Parameter(p.detach().to(device), p.requires_grad)
        register_parameter(self, name, p)

    def buffer(self: Any, name: str, t: Any, persistent: bool = True) -> None:
        if isinstance(t, torch.Tensor) and t.device != device:
            t = t.to(device)
        register_buffer(self, name, t, persistent)

    module.register_parameter, module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        module.register_parameter, module.register_buffer = register_parameter, register_buffer


def build(config: dict[str, Any], step: str) -> Built:
    """The model of a row's YAML and scale (random weights, ``verbose=False``) and one image of
    its input size."""
    _offline()
    from ultralytics.nn import tasks

    from narbuild.tracing.inputs import image_batch

    cfg = model_dict(config)
    model_class = getattr(tasks, model_class_of(head_of(cfg)))
    with no_downloads(), _params_on_default_device(), _literals_on_host():
        model = model_class(cfg, ch=int(cfg.get("channels", 3)), verbose=False)
    size = image_size(cfg)
    return Built(model, (image_batch(int(cfg.get("channels", 3)), size, size),))
