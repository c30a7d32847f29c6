"""neuralforecast: the forecasting models of ``neuralforecast.models`` (Nixtla).

One row per model the package exports, built with a horizon of :data:`HORIZON` steps from
:data:`INPUT_SIZE` past steps (multivariate models over :data:`SERIES` series), no exogenous
variables. The input is the window batch the package's own training step builds
(``insample_y`` and its mask). Left out: HINT (it wraps another model), TimeLLM (it downloads a
language model from the Hub) and xLSTM (it needs the separate ``xlstm`` kernels package).

Listing reads the package's ``__all__`` without importing it (the import takes ~18 s).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, assigned

SOURCE = Source(
    name="neuralforecast", title="Nixtla neuralforecast models (neuralforecast.models)",
    package="neuralforecast", offline=True, license="Apache-2.0", extra="neuralforecast",
    family="the model class, lower case (NHITS -> nhits)")

EXCLUDED = frozenset({"HINT", "TimeLLM", "xLSTM"})
HORIZON, INPUT_SIZE, SERIES = 12, 24, 4


def _exported() -> list[str]:
    """The names in ``neuralforecast/models/__init__.py``'s ``__all__``, read as text."""
    init = SOURCE.package_dir() / "models" / "__init__.py"
    exported = assigned(ast.parse(init.read_text()), "__all__")
    if exported is None:
        raise NarbuildError(f"{init} has no __all__", "upgrade neuralforecast or re-crawl")
    return [n for n in ast.literal_eval(exported) if n not in EXCLUDED]


def names() -> list[str]:
    return sorted(_exported())


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per model (all, or ``names``)."""
    for name in names if names is not None else sorted(_exported()):
        config = {"model": name, "h": HORIZON, "input_size": INPUT_SIZE}
        yield manifest_row("neuralforecast", name, config, task="time-series-forecasting",
                           library="neuralforecast", module=name.lower())


def build(config: dict[str, Any], step: str) -> Built:
    import inspect
    import logging

    import torch
    from neuralforecast import models

    cls = getattr(models, config["model"], None)
    if cls is None:
        raise NarbuildError(f"neuralforecast has no model {config['model']!r}",
                            "upgrade neuralforecast or re-crawl")
    kwargs = {"h": config["h"], "input_size": config["input_size"]}
    if "n_series" in inspect.signature(cls.__init__).parameters:
        kwargs["n_series"] = SERIES
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    model = cls(**kwargs)
    series = SERIES if getattr(cls, "MULTIVARIATE", False) else 1
    window = torch.randn(1, config["input_size"], series, requires_grad=True)
    batch = {"insample_y": window, "insample_mask": torch.ones(1, config["input_size"], series),
             "futr_exog": None, "hist_exog": None, "stat_exog": None}
    return Built(model, (batch,))
