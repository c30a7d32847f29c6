"""tsai: the time-series architectures of timeseriesAI's tsai (``tsai.learner.all_arch_names``).

One row per name of ``all_arch_names`` that ``get_arch`` resolves to a network of a series
alone: InceptionTime and its variants, XceptionTime, OmniScaleCNN, FCN, ResNet/ResCNN,
XResNet1d (18 to 152, deep and deeper), TCN, RNN/LSTM/GRU and their FCN and attention hybrids,
TST, TSiT, PatchTST, ConvTran, TSSequencer, gMLP, mWDN, XCM and the random-kernel transforms
(ROCKET, MiniRocket, MultiRocket, Hydra) with their heads. Each is built as ``tsai`` builds a
model for a learner (``build_ts_model(arch, c_in, c_out, seq_len)``; the plain ``xresnet1d*``
builders as ``arch(c_in, c_out)``, since ``build_ts_model`` passes them a ``seq_len`` they do
not take) for one series of :data:`CHANNELS` variables and :data:`SEQ_LEN` steps into
:data:`CLASSES` classes. The family is the module ``get_arch`` imports it from, without tsai's
"Plus" (its extended version of a design) and "_Pytorch" suffixes
(``tsai.models.InceptionTimePlus`` -> ``inceptiontime``, ``MINIROCKET_Pytorch`` ->
``minirocket``); Wang et al.'s time-series ResNet and FCN are ``resnet_ts`` and ``fcn_ts``, apart
from the image ResNet and the segmentation FCN. ``ConvTran`` is ``get_arch``'s other name for
``ConvTranPlus`` (one row).

Not listed (:data:`_EXCLUDED`): the scikit-learn pipelines that need sktime
(``MiniRocketClassifier`` and its kin, ``RocketClassifier``, ``RocketRegressor``), and the
models of tabular data or of several inputs, which need their columns described
(``TabModel``, ``TabTransformer``, ``GatedTabTransformer``, ``TabFusionTransformer``,
``TSTabFusionTransformer``, ``MultiInputNet``, ``TSPerceiver``).

Listing reads ``all_arch_names`` and ``get_arch``'s imports from ``tsai/learner.py`` without
importing it (that imports fastai, ~6 s). Install: tsai 1.0.1 declares ``scikit-learn<1.8``
(1.9 here) and fastai declares spaCy (for its text models only), so ``make setup`` installs
both with ``pip install --no-deps``; the ``tsai`` extra holds what their model code imports.
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
    name="tsai", title="timeseriesAI tsai time-series architectures (all_arch_names)",
    package="tsai", offline=True, license="Apache-2.0", extra="tsai",
    family="the tsai.models module of the architecture, without 'Plus' (InceptionTimePlus -> "
           "inceptiontime)",
    no_deps=("tsai==1.0.1", "fastai==2.8.12"))

CHANNELS, SEQ_LEN, CLASSES = 3, 128, 5
"""The series every model is built for: 3 variables, 128 steps, 5 classes."""
_EXCLUDED = frozenset({
    "MiniRocketClassifier", "MiniRocketRegressor", "MiniRocketVotingClassifier",
    "MiniRocketVotingRegressor", "RocketClassifier", "RocketRegressor",  # sktime pipelines
    "TabModel", "TabTransformer", "GatedTabTransformer", "TabFusionTransformer",
    "TSTabFusionTransformer", "MultiInputNet", "TSPerceiver"})  # tabular or several inputs
_RENAMED = {"resnet": "resnet_ts", "fcn": "fcn_ts"}
"""tsai families whose name another source gives a different design."""


def family(module: str) -> str:
    """``'tsai.models.MINIROCKETPlus_Pytorch'`` -> ``'minirocket'``."""
    name = module.rsplit(".", 1)[-1].lower().removesuffix("_pytorch").removesuffix("plus")
    return _RENAMED.get(name, name)


@cache
def _catalog() -> dict[str, tuple[str, str]]:
    """``{name: (module, attribute)}`` read from ``tsai/learner.py``'s source."""
    tree = ast.parse((SOURCE.package_dir() / "learner.py").read_text())
    value = assigned(tree, "all_arch_names")
    names: list[str] = ast.literal_eval(value) if value is not None else []
    imports: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tsai.models."):
            for alias in node.names:
                imports.setdefault(alias.name, (node.module, alias.name))
    return {n: imports[n] for n in dict.fromkeys(names) if n in imports and n not in _EXCLUDED}


def names() -> list[str]:
    return list(_catalog())


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per architecture (all, or ``names``)."""
    version = importlib.metadata.version("tsai")
    catalog = _catalog()
    for name in names if names is not None else catalog:
        module, attribute = catalog[name]
        yield manifest_row(
            "tsai", name, {"module": module, "arch": attribute, "c_in": CHANNELS,
                           "c_out": CLASSES, "seq_len": SEQ_LEN},
            task="time-series-classification", library="tsai",
            module=family(module), metadata={"tsai": version, "module": module})


def build(config: dict[str, Any], step: str) -> Built:
    """The architecture as tsai builds it for a learner, and one series."""
    import torch

    arch = SOURCE.attribute(config["module"], config["arch"], "architecture")
    c_in, c_out, seq_len = config["c_in"], config["c_out"], config["seq_len"]
    if config["arch"].startswith("xresnet1d") and not config["arch"].endswith("plus"):
        model = arch(c_in, c_out)
    else:
        from tsai.models.utils import build_ts_model

        model = build_ts_model(arch, c_in=c_in, c_out=c_out, seq_len=seq_len,
                               device=torch.get_default_device())
    series = torch.randn(1, c_in, seq_len, requires_grad=True)
    return Built(model, (series,))
