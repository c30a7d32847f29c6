"""nni: the published architectures that Microsoft NNI's NAS hub builds (``nni.nas.hub.pytorch``).

One row per searched architecture whose weights NNI publishes (the keys of
``nni/nas/hub/pytorch/utils/pretrained.py:PRETRAINED_WEIGHT_URLS``, its only list of them):
the DARTS (second order) CIFAR-10 network; ProxylessNAS for CPU, GPU and mobile and the three
AceNAS networks in the same space; MobileNetV3-Large and four Cream networks in the MobileNetV3
space; the SPOS ShuffleNet; AutoFormer Tiny, Small and Base. Each is built by its search space's
``load_searched_model(name, pretrained=False)``: the architecture NNI stores for it, no weights.
The input is one 224 x 224 image, 32 x 32 for DARTS (CIFAR-10). The family is the search space
(``proxylessnas``, ``mobilenetv3``, ``darts``, ``spos``, ``autoformer_vit``): a network found
by search is labelled with the designs it was searched among.

Not listed (:data:`_EXCLUDED`): the AutoFormer supernets (weights shared by every subnet, not
a network), and MobileNetV3-Small 0.50/0.75/1.00 and Cream 481/604, which nni 3.0's own
``MobileNetV3Space`` rejects (its depth range is narrower than the depths it stores for them:
``SampleValidationError``).

Listing reads ``pretrained.py`` on its own (importing ``nni`` takes about 5 s). Install: nni 3.0
declares ``filelock<3.12`` and ``typeguard<4.1.3`` (4.3 and 4.6 here, which it works with), so
``make setup`` installs it with ``pip install --no-deps``; the ``nni`` extra holds what the NAS
hub imports.
"""

from __future__ import annotations

import ast
import importlib.metadata
from collections.abc import Iterator
from functools import cache
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.sources.base import Built, Source, assigned

SOURCE = Source(
    name="nni", title="NNI NAS hub: published searched architectures (nni.nas.hub.pytorch)",
    package="nni", offline=True, license="MIT", extra="nni",
    family="the search space the architecture was found in (ProxylessNAS -> proxylessnas)",
    no_deps=("nni==3.0",))

SPACES = (("acenas-", "ProxylessNAS"), ("proxyless-", "ProxylessNAS"),
          ("mobilenetv3-", "MobileNetV3Space"), ("cream-", "MobileNetV3Space"),
          ("darts-", "DARTS"), ("spos", "ShuffleNetSpace"), ("autoformer-", "AutoFormer"))
"""Name prefix -> the search space class that builds it."""
FAMILIES = {"ProxylessNAS": "proxylessnas", "MobileNetV3Space": "mobilenetv3", "DARTS": "darts",
            "ShuffleNetSpace": "spos", "AutoFormer": "autoformer_vit"}
"""Search space -> family. AutoFormer (a vision transformer search) is ``autoformer_vit``: the
``autoformer`` of transformers and neuralforecast is Wu et al.'s time-series Autoformer."""
_EXCLUDED = frozenset({"mobilenetv3-small-050", "mobilenetv3-small-075", "mobilenetv3-small-100",
                       "cream-481", "cream-604"})


@cache
def _catalog() -> dict[str, str]:
    """``{name: search space class}`` from ``PRETRAINED_WEIGHT_URLS``' keys, read from source."""
    path = SOURCE.package_dir() / "nas/hub/pytorch/utils/pretrained.py"
    urls = assigned(ast.parse(path.read_text()), "PRETRAINED_WEIGHT_URLS")
    keys: list[str] = [k.value for k in urls.keys] if urls is not None else []
    out = {}
    for key in keys:
        name = key.removesuffix("-subnet")
        space = next((cls for prefix, cls in SPACES if name.startswith(prefix)), None)
        if space and not key.endswith("-supernet") and name not in _EXCLUDED:
            out[name] = space
    return out


def names() -> list[str]:
    return list(_catalog())


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per searched architecture (all, or ``names``)."""
    version = importlib.metadata.version("nni")
    catalog = _catalog()
    for name in names if names is not None else catalog:
        space = catalog[name]
        size = 32 if space == "DARTS" else 224
        yield manifest_row(
            "nni", name, {"space": space, "searched": name, "image_size": size},
            task="image-classification", library="nni", module=FAMILIES[space],
            metadata={"nni": version, "search_space": space})


def build(config: dict[str, Any], step: str) -> Built:
    """The stored architecture, built by its search space without weights, and one image."""
    import warnings

    from narbuild.tracing import inputs as make

    with warnings.catch_warnings():  # "your PyTorch version might not be supported" (it is)
        warnings.simplefilter("ignore", RuntimeWarning)
        space = SOURCE.attribute("nni.nas.hub.pytorch", config["space"], "search space")
    model = space.load_searched_model(config["searched"], pretrained=False, download=False)
    size = config["image_size"]
    return Built(model, (make.image_batch(3, size, size),))
