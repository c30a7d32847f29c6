"""braindecode: the EEG, ECoG and EMG decoding models of ``braindecode.models``, without weights.

One row per model of braindecode's registry (``braindecode.models.util.models_dict``): motor
imagery and ERP decoders (EEGNet, ShallowFBCSPNet, Deep4Net, EEGConformer, ATCNet, ...), sleep
stagers (USleep, DeepSleepNet, AttnSleep, ...), the EEG foundation models (BENDR, BIOT, LaBraM,
CBraMod, EEGPT, ...) and EMG decoders. Every model takes the same signal arguments
(``EEGModuleMixin``): a model's own default is kept, and an argument without one takes the value
of its kind of recording (:data:`SIGNALS`: EEG, sleep EEG or EMG); the models that place
channels by position get the 10-20 positions of their channels (:data:`PLACED`). The input is
one window, ``(1, n_chans, n_times)``. The family is the model's module in ``braindecode.models``
(``eegnet``, ``deep4``, ``usleep``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from functools import cache
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.sources.base import Built, Source, kwargs_of

SOURCE = Source(
    name="braindecode", title="braindecode EEG/ECoG/EMG decoding models (braindecode.models)",
    package="braindecode", offline=True, license="BSD-3-Clause", extra="braindecode",
    family="the model's module in braindecode.models (eegnet, deep4, usleep, labram, ...)")

CHANNELS = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3",
            "Pz", "P4", "P8", "O1", "O2"]
"""The 19 EEG channels of the clinical 10-20 montage (positions: MNE's ``standard_1020``)."""
SIGNALS: dict[str, dict[str, Any]] = {
    "eeg": {"n_outputs": 4, "n_chans": len(CHANNELS), "sfreq": 200.0, "n_times": 800},
    "sleep": {"n_outputs": 5, "n_chans": 2, "sfreq": 100.0, "n_times": 3000},
    "emg": {"n_outputs": 20, "n_chans": 16, "sfreq": 2000.0, "n_times": 8000},
}
"""The values of the signal arguments a model has no default for, per kind of recording: 4 s of
10-20 EEG at 256 Hz with 4 classes (motor imagery), a 30 s sleep epoch of Sleep-EDF's Fpz-Cz
derivation at 100 Hz with 5 stages, 4 s of emg2pose's 16-channel wristband EMG at 2 kHz with its
20 joint angles."""
EMG_MODULES = frozenset({"emg2qwerty", "sensingdynamics", "vemg2pose", "meta_neuromotor",
                         "neuropose"})
PLACED = frozenset({"DANCE", "DGCNN", "EEGSym", "Labram", "SignalJEPA", "SignalJEPA_Contextual",
                    "ZUNA"})
"""The models that place the channels by their 10-20 positions (``chs_info``, from MNE)."""
OWN: dict[str, dict[str, Any]] = {"AttnSleep": {"n_chans": 1},
                                  "MetaNeuromotorHand": {"n_times": 32_000}}
"""Signal values of one model: AttnSleep stages one EEG channel (Sleep-EDF's Fpz-Cz); the
strided conformer of Meta's neuromotor handwriting model needs 16 s of EMG (8 s is too short)."""


@cache
def _catalog() -> dict[str, type]:
    import warnings

    with warnings.catch_warnings():  # MNE 1.13 renames montages braindecode's modules load
        warnings.simplefilter("ignore", FutureWarning)
        from braindecode.models.util import models_dict

    return dict(sorted(models_dict.items()))


def names() -> list[str]:
    return list(_catalog())


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per model (all, or ``names``)."""
    import importlib.metadata

    version = importlib.metadata.version("braindecode")
    catalog = _catalog()
    for name in names if names is not None else catalog:
        cls = catalog[name]
        module = cls.__module__.rsplit(".", 1)[-1]
        kind = "sleep" if "sleep" in module else "emg" if module in EMG_MODULES else "eeg"
        kwargs = _signal_kwargs(cls, SIGNALS[kind]) | OWN.get(name, {})
        montage = name in PLACED
        yield manifest_row(
            "braindecode", name, {"module": cls.__module__, "class": cls.__name__,
                                  "kwargs": kwargs, "montage": montage},
            task={"sleep": "sleep-staging", "emg": "emg-decoding"}.get(kind, "eeg-decoding"),
            library="braindecode", module=module,
            metadata={"braindecode": version, "recording": kind})


def _takes(cls: type, arg: str) -> bool:
    """Whether the model's ``arg`` has no default of its own (None)."""
    params = inspect.signature(cls.__init__).parameters
    return arg in params and params[arg].default is None


def _signal_kwargs(cls: type, signal: dict[str, Any]) -> dict[str, Any]:
    """The signal arguments the model has no default for, with ``signal``'s values."""
    return {arg: value for arg, value in signal.items() if _takes(cls, arg)}


def build(config: dict[str, Any], step: str) -> Built:
    """The model with its defaults and the row's signal arguments, and one window."""

    import torch

    cls = SOURCE.attribute(config["module"], config["class"], "model")
    kwargs = kwargs_of(config)
    if config.get("montage"):
        kwargs["chs_info"] = _chs_info(kwargs.get("sfreq", SIGNALS["eeg"]["sfreq"]))
    model = cls(**kwargs)
    return Built(model, (torch.randn(1, model.n_chans, model.n_times, requires_grad=True),))


def _chs_info(sfreq: float) -> list[dict[str, Any]]:
    """MNE's channel descriptions of :data:`CHANNELS`, with their 10-20 positions."""
    import warnings

    import mne

    info = mne.create_info(CHANNELS, sfreq, "eeg")
    with warnings.catch_warnings():  # the montage's name changes after MNE 1.13 (pinned)
        warnings.simplefilter("ignore", FutureWarning)
        info.set_montage("standard_1020")
    return list(info["chs"])
