"""pytorchcv: every builder of its model provider (ImageNet, CIFAR/SVHN, CUB, segmentation,
detection, pose, speech), built with ``pretrained=False``.

The family is the builder's module (``pytorchcv.models.resnet_cifar`` -> ``resnet``: the
dataset suffix is dropped, so a design trained on CIFAR and on ImageNet is one family). Inputs
follow the model's own ``in_size`` and ``in_channels``. The speech models (Jasper, QuartzNet)
are built with ``from_audio=False``: their audio front end needs librosa, and the network
proper starts at the mel features it would compute (64 features x 128 frames here).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.sources.base import Built, Source, kwargs_of

SOURCE = Source(
    name="pytorchcv", title="pytorchcv model provider (imgclsmob)", package="pytorchcv",
    offline=True, license="MIT", extra="pytorchcv",
    family="the builder's module, without its dataset suffix (resnet_cifar -> resnet)")

_DATASET = re.compile(r"_(cifar10|cifar100|svhn|cub|voc|coco|ade20k|cityscapes|celebamaskhq)$")
_DATASET_SUFFIX = re.compile(r"_(cifar\d*|svhn|cub|coco|cmupan|voc|ade20k|cityscapes|celebamaskhq)$")
SPEECH = frozenset({"jasper", "jasperdr", "quartznet"})
SPEECH_FRAMES = 128
_TASKS = {"fcn8sd": "image-segmentation", "pspnet": "image-segmentation",
          "deeplabv3": "image-segmentation", "icnet": "image-segmentation",
          "fastscnn": "image-segmentation", "cgnet": "image-segmentation",
          "dabnet": "image-segmentation", "sinet": "image-segmentation",
          "bisenet": "image-segmentation", "danet": "image-segmentation",
          "fpenet": "image-segmentation", "contextnet": "image-segmentation",
          "lednet": "image-segmentation", "esnet": "image-segmentation",
          "edanet": "image-segmentation", "enet": "image-segmentation",
          "erfnet": "image-segmentation", "linknet": "image-segmentation",
          "segnet": "image-segmentation", "unet": "image-segmentation",
          "sqnet": "image-segmentation", "alphapose": "pose-estimation",
          "simplepose": "pose-estimation", "simpleposemobile": "pose-estimation",
          "lwopenpose": "pose-estimation", "ibppose": "pose-estimation",
          "centernet": "object-detection", "lffd": "object-detection",
          "jasper": "automatic-speech-recognition", "jasperdr": "automatic-speech-recognition",
          "quartznet": "automatic-speech-recognition", "raft": "optical-flow",
          "propainter": "video-inpainting", "propainter_ip": "video-inpainting",
          "propainter_rfc": "optical-flow", "superpointnet": "keypoint-detection",
          "prnet": "face-alignment", "voca": "speech-to-face", "nvpattexp": "speech-to-face",
          "visemenet": "speech-to-face", "espcnet": "image-super-resolution"}


def _providers() -> dict[str, Any]:
    from pytorchcv.model_provider import _models

    return _models


def names() -> list[str]:
    return list(_providers())


def module_of(builder: Any) -> str:
    return builder.__module__.removeprefix("pytorchcv.models.")


def family_of(module: str) -> str:
    """``resnet_cifar`` -> ``resnet``; ``simplepose_coco`` -> ``simplepose``."""
    return _DATASET_SUFFIX.sub("", module)


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per builder of pytorchcv's model provider (all, or ``names``)."""
    providers = _providers()
    for name in names if names is not None else providers:
        module = module_of(providers[name])
        dataset = _DATASET.search(name) or _DATASET_SUFFIX.search(module)
        config: dict[str, Any] = {"builder": name}
        if family_of(module) in SPEECH:
            config["kwargs"] = {"from_audio": False}
        yield manifest_row(
            "pytorchcv", name, config,
            task=_TASKS.get(family_of(module), "image-classification"), library="pytorchcv",
            module=family_of(module),
            metadata={"module": module, "dataset": dataset.group(1) if dataset else "imagenet"})


def build(config: dict[str, Any], step: str) -> Built:
    from pytorchcv.model_provider import get_model

    model = get_model(config["builder"], pretrained=False, **kwargs_of(config))
    return Built(model, example_inputs(model))


def example_inputs(model: Any) -> tuple:
    """One image of the model's ``in_size`` and ``in_channels`` (3 and 224 x 224 when it does
    not say), plus what the few multi-input forwards take."""
    import inspect

    from narbuild.tracing import inputs as make

    if hasattr(model, "from_audio"):  # speech: mel features (batch, features, time), lengths
        import torch

        features = torch.randn(1, model.in_size, SPEECH_FRAMES, requires_grad=True)
        return (features, torch.tensor([SPEECH_FRAMES]))
    size = getattr(model, "in_size", None) or (make.DEFAULT_IMAGE, make.DEFAULT_IMAGE)
    channels = getattr(model, "in_channels", None) or 3
    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.default is inspect.Parameter.empty]
    image = make.image_batch(channels, *size[-2:])
    if len(params) == 2 and params[0].name.startswith("image"):  # optical flow: two frames
        return (image, make.image_batch(channels, *size[-2:]))
    return (image,)
