"""keras: the image classifiers of ``keras.applications``, on Keras 3's torch backend.

Each application is built with ``weights=None`` (nothing is downloaded) and traced through
the torch ops Keras runs; its input is one channels-last image of the model's own input shape.
NASNetMobile and NASNetLarge are left out: Keras refuses them on the torch backend ("not
available with the torch backend at this time due to an outstanding bug"). The backend must be
torch: the source sets ``KERAS_BACKEND=torch`` before Keras is first
imported, and refuses to build in a process where Keras already runs another backend.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source

SOURCE = Source(
    name="keras", title="keras.applications on the torch backend", package="keras",
    offline=True, license="Apache-2.0", extra="keras",
    family="the application's module (keras.applications.resnet_v2 -> resnetv2)")

_FAMILY = {"resnet_v2": "resnetv2", "inception_v3": "inception_v3",
           "inception_resnet_v2": "inception_resnet_v2", "efficientnet_v2": "efficientnetv2",
           "mobilenet": "mobilenetv1", "mobilenet_v2": "mobilenetv2",
           "mobilenet_v3": "mobilenetv3"}


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise NarbuildError(f"Keras runs the {keras.backend.backend()} backend in this process",
                            "set KERAS_BACKEND=torch before anything imports keras")
    return keras


NOT_ON_TORCH = frozenset({"NASNetMobile", "NASNetLarge"})


def _applications() -> dict[str, Any]:
    apps = _keras().applications
    return {n: f for n, f in sorted(vars(apps).items())
            if callable(f) and n[:1].isupper() and n not in NOT_ON_TORCH}


def names() -> list[str]:
    return list(_applications())


def family_of(builder: Any) -> str:
    """``keras.src.applications.resnet_v2`` -> ``resnetv2``; ``densenet`` -> ``densenet``."""
    module = builder.__module__.rsplit(".", 1)[-1]
    return _FAMILY.get(module, re.sub(r"_", "", module))


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per application (all, or ``names``)."""
    apps = _applications()
    version = _keras().__version__
    for name in names if names is not None else apps:
        yield manifest_row(
            "keras", name, {"application": name}, task="image-classification",
            library="keras", module=family_of(apps[name]),
            metadata={"keras": version, "module": apps[name].__module__})


def build(config: dict[str, Any], step: str) -> Built:
    """The application on the CPU (Keras places its variables itself), ``weights=None``."""
    import torch

    keras = _keras()
    app = _applications().get(config["application"])
    if app is None:
        raise NarbuildError(f"keras.applications has no {config['application']!r}",
                            "upgrade keras or re-crawl")
    with keras.device("cpu"), torch.device("cpu"):
        model = app(weights=None)
    _, *shape = model.input_shape
    image = torch.randn(1, *(s or 224 for s in shape), requires_grad=True)
    return Built(model, (image,))
