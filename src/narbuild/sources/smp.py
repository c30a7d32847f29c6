"""segmentation_models_pytorch: its decoders with its native encoders, built with
``encoder_weights=None``.

Which (decoder, encoder) pairs are listed, so that the dataset is not padded with hundreds of
near-identical combinations:

* every native encoder (``smp.encoders.get_encoder_names()``) under ``Unet``;
* every other decoder with each encoder of :data:`REPRESENTATIVE_ENCODERS` (one per encoder
  family: ResNet, EfficientNet, MobileNet, Mix Transformer) that passes the decoder's own checks;
* a decoder that accepts none of them (``DPT`` takes only timm ViTs) with its own default
  encoder, the ``encoder_name`` default of its constructor.

The ``tu-*`` timm pass-throughs only repeat timm and are left out (but for that default).
Whether a decoder accepts an encoder is decided by smp itself: :func:`passes_checks` runs the
decoder's constructor with the encoder factory replaced by a stop, so its argument checks run
(``UnetPlusPlus`` and ``Linknet`` reject ``mit_b*``, ``DPT`` wants ``tu-``) and no model is built.

The family (fine label) is the decoder, lower case (``unet``, ``deeplabv3plus``); the encoder's
family (the smp module that defines it: ``resnet``, ``efficientnet``, ``mix_transformer``, or the
timm module for ``tu-`` encoders) is ``metadata["encoder"]``. Inputs: one 256 x 256 image, or
the encoder's own size when it takes a fixed one (ViTs).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Iterator
from functools import cache
from typing import Any
from unittest import mock

from narbuild.crawler.base import manifest_row
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="smp", title="segmentation_models_pytorch (decoders x native encoders)",
    package="segmentation_models_pytorch", offline=True, license="MIT", extra="smp",
    family="the decoder, lower case (unet, fpn, deeplabv3plus ...); the encoder family is "
           "metadata['encoder']")

SWEEP_DECODER = "Unet"
"""The decoder listed with every native encoder."""
REPRESENTATIVE_ENCODERS = ("resnet34", "efficientnet-b0", "mobilenet_v2", "mit_b0")
"""One encoder per family, listed under every decoder that accepts it."""
IMAGE_SIZE = 256
_FACTORIES = ("get_encoder", "TimmViTEncoder")  # what a decoder module builds its encoder with


@cache
def architectures() -> dict[str, type]:
    """Decoder class name -> class, in smp's order."""
    import segmentation_models_pytorch as smp

    return {cls.__name__: cls for cls in smp._MODEL_ARCHITECTURES}


def native_encoders() -> list[str]:
    """smp's own encoders: every registered name but the ``tu-`` timm pass-throughs."""
    from segmentation_models_pytorch.encoders import get_encoder_names

    return [name for name in get_encoder_names() if not name.startswith("tu-")]


class _ChecksPassed(Exception):
    """Raised instead of building the encoder: the decoder's checks accepted the arguments."""


def _stop(*args: Any, **kwargs: Any) -> None:
    raise _ChecksPassed


@cache
def passes_checks(arch: str, encoder: str) -> bool:
    """Whether smp's decoder ``arch`` accepts ``encoder``: its constructor runs until it would
    build the encoder (that factory is replaced by a stop); a ValueError or KeyError before
    that is a rejection."""
    cls = architectures()[arch]
    module = sys.modules[cls.__module__]
    with contextlib.ExitStack() as stack:
        for factory in _FACTORIES:
            if hasattr(module, factory):
                stack.enter_context(mock.patch.object(module, factory, _stop))
        try:
            cls(encoder_name=encoder, encoder_weights=None)
        except _ChecksPassed:
            return True
        except (ValueError, KeyError):
            return False
    return True


def default_encoder(arch: str) -> str:
    """The ``encoder_name`` default of a decoder's constructor."""
    return inspect.signature(architectures()[arch]).parameters["encoder_name"].default


def pairs() -> list[tuple[str, str]]:
    """Every listed (decoder, encoder) pair (rule in the module docstring)."""
    listed = [(SWEEP_DECODER, e) for e in native_encoders() if passes_checks(SWEEP_DECODER, e)]
    for arch in architectures():
        if arch == SWEEP_DECODER:
            continue
        valid = [(arch, e) for e in REPRESENTATIVE_ENCODERS if passes_checks(arch, e)]
        listed += valid or [(arch, default_encoder(arch))]
    return listed


def names() -> list[str]:
    return [f"{arch}/{encoder}" for arch, encoder in pairs()]


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per listed pair (all, or the given ``<Decoder>/<encoder>`` names)."""
    chosen = pairs() if names is None else [tuple(n.split("/", 1)) for n in names]
    for arch, encoder in chosen:
        config = {"arch": arch, "encoder_name": encoder, "encoder_weights": None,
                  "in_channels": 3, "classes": 1}
        yield manifest_row(
            "smp", f"{arch}/{encoder}", config, task="image-segmentation",
            library="segmentation_models_pytorch", module=arch.lower(), architectures=[arch],
            metadata={"encoder": encoder_family(encoder), "encoder_name": encoder,
                      "decoder": arch})


def encoder_family(encoder: str) -> str:
    """The smp module that defines a native encoder (``resnet34`` -> ``resnet``); for a
    ``tu-`` encoder, the timm module of its model (``vit``)."""
    if encoder.startswith("tu-"):
        from timm.models import model_entrypoint

        from narbuild.preprocess.labels import alias

        model = encoder[3:].split(".", 1)[0]
        return alias(model_entrypoint(model).__module__.rsplit(".", 1)[-1])
    from segmentation_models_pytorch.encoders import encoders

    return encoders[encoder]["encoder"].__module__.rsplit(".", 1)[-1].lstrip("_")


def build(config: dict[str, Any], step: str) -> Built:
    """The model of a config via ``smp.create_model`` (no weights), and one image."""
    import segmentation_models_pytorch as smp

    model = smp.create_model(**{**config, "encoder_weights": None})
    return Built(model, example_inputs(model, config.get("in_channels", 3)))


def example_inputs(model: Any, channels: int = 3) -> tuple:
    """One image: the encoder's own size when it is fixed (ViTs), else 256 x 256."""
    from narbuild.tracing import inputs as make

    encoder = getattr(model, "encoder", None)
    height = width = IMAGE_SIZE
    if getattr(encoder, "is_fixed_input_size", False) and getattr(encoder, "input_size", None):
        height, width = make.image_hw(list(encoder.input_size))
    return (make.image_batch(channels, height, width),)
