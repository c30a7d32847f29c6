"""spandrel: the image-restoration architectures of chaiNNer's spandrel, without weights.

One row per model class of every architecture in ``spandrel.MAIN_REGISTRY``: super-resolution
(ESRGAN, SwinIR, HAT, DAT, OmniSR, SPAN, RealCUGAN, ...), denoising and restoration (SCUNet,
NAFNet, Uformer, DRUNet, FBCNN, ...), face restoration (GFPGAN, RestoreFormer), inpainting
(LaMa), low-light enhancement (RetinexFormer, HVI-CIDNet), dehazing (MixDehazeNet) and text
detection (CRAFT). An architecture's model class is the type parameter of its
``Architecture[...]``; where that is a union (RealCUGAN's 2x/3x/4x nets, KBNet's s and l, PLKSR
and RealPLKSR) each class is a row, ``<architecture>/<class>``. The package only holds
architectures under permissive licences (``spandrel_extra_arches`` holds the rest, not used).

Spandrel builds a model from a checkpoint's state dict; here each class is built with its own
defaults, and the few constructor arguments without one take the values spandrel's loader
starts from or the architecture's published model (:data:`_REQUIRED`). The input is one image
of ``(1, channels, 64, 64)``, channels from the class's input-channel argument (3 by default),
512 x 512 for the face restorers, with LaMa's mask beside its image. The family is the
architecture's id (``esrgan``, ``swinir``, ``realcugan``).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from functools import cache
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.sources.base import Built, Source, kwargs_of

SOURCE = Source(
    name="spandrel", title="spandrel image restoration and super-resolution architectures",
    package="spandrel", offline=True, license="MIT", extra="spandrel",
    family="the architecture's id in spandrel's registry (esrgan, swinir, hat, nafnet, ...)")

_REQUIRED: dict[str, dict[str, Any]] = {
    "SPAN": {"num_in_ch": 3, "num_out_ch": 3},  # spandrel's loader's starting values
    "MMRealSR": {"num_in_ch": 3, "num_out_ch": 3},
    "SAFMN": {"dim": 36},  # SAFMN's published x2-x4 models (n_blocks 8)
    "SAFMNBCIE": {"dim": 32},
    "AuraSR": {"dim": 64, "image_size": 256, "input_image_size": 64,  # its 64 -> 256 model
               "style_network": {"dim_in": 128, "dim_out": 512, "depth": 4}},
    # The window sizes of the published models: the classes' defaults (7 with 64 x 64 images)
    # do not tile the image
    "SwinIR": {"window_size": 8}, "Swin2SR": {"window_size": 8}, "HAT": {"window_size": 16},
    "LaMa": {"in_nc": 4},  # the image's 3 channels and the mask's (spandrel's loader reads 4)
}
"""Constructor arguments without a default, per architecture id."""
_SIZE: dict[str, int] = {"GFPGAN": 512, "RestoreFormer": 512, "Uformer": 256}
"""Input sizes other than 64: the face restorers' 512 x 512 faces, Uformer's ``img_size``."""
_CHANNEL_ARGS = ("in_nc", "num_in_ch", "in_chans", "inp_channels", "in_channels", "in_ch",
                 "in_channel", "img_channel", "input_channels")
_TASKS = {"CRAFT": "text-detection", "LaMa": "image-inpainting"}


@cache
def _catalog() -> dict[str, tuple[str, type]]:
    """``{row name: (architecture id, model class)}`` from the registry."""
    import spandrel

    out: dict[str, tuple[str, type]] = {}
    for support in spandrel.MAIN_REGISTRY.architectures():
        arch = support.architecture
        base = next(b for b in type(arch).__orig_bases__ if typing.get_args(b))
        (model,) = typing.get_args(base)
        classes = list(typing.get_args(model)) or [model]
        for cls in classes:
            name = arch.id if len(classes) == 1 else f"{arch.id}/{cls.__name__}"
            out[name] = (arch.id, cls)
    return out


def names() -> list[str]:
    return list(_catalog())


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per model class (all, or ``names``)."""
    import importlib.metadata

    version = importlib.metadata.version("spandrel")
    catalog = _catalog()
    for name in names if names is not None else catalog:
        arch, cls = catalog[name]
        kwargs = dict(_REQUIRED.get(arch, {}))
        channels = _channels(cls, kwargs) - (arch == "LaMa")  # LaMa's mask is the 4th
        size = _SIZE.get(arch, 64)
        yield manifest_row(
            "spandrel", name, {"module": cls.__module__, "class": cls.__name__,
                               "kwargs": kwargs, "input_shape": [channels, size, size],
                               "mask": arch == "LaMa"},
            task=_TASKS.get(arch, "image-to-image"), library="spandrel", module=arch.lower(),
            metadata={"spandrel": version, "architecture": arch})


def _channels(cls: type, kwargs: dict[str, Any]) -> int:
    """The image channels the class takes: its input-channel argument's value, else 3."""
    params = inspect.signature(cls.__init__).parameters
    for arg in _CHANNEL_ARGS:
        if arg in params:
            value = kwargs.get(arg, params[arg].default)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return 3


def build(config: dict[str, Any], step: str) -> Built:
    """The class with its defaults (plus the row's arguments), and one image."""

    import torch

    cls = SOURCE.attribute(config["module"], config["class"], "model class")
    model = cls(**kwargs_of(config))
    channels, height, width = config["input_shape"]
    image = torch.rand(1, channels, height, width, requires_grad=True)
    if config.get("mask"):
        return Built(model, (image, torch.ones(1, 1, height, width)))
    return Built(model, (image,))
