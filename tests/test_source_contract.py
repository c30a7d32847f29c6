"""What every optional offline source promises, as one table: an id it lists with its family, a
misspelling of that id answered with the id as a hint, a model built on meta with the shape of
its first input, its installed distribution found (the card's version table), and (slow) every
row traced with at most 5 % error rows, each with its reason.

The missing-package path is ``tests/test_sources.py``'s, for every optional source; what is
particular to one source (its listing rule, inputs, published parameter counts) stays in its own
``tests/test_source_<name>.py``."""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest

from narbuild import sources
from narbuild.errors import NarbuildError
from narbuild.tracing.build import build
from narbuild.tracing.ladder import trace_manifest_row


class Case(NamedTuple):
    source: str
    name: str
    family: str
    typo: str
    built: str
    """A name built on meta, whose first input has ``shape``."""
    shape: tuple[int, ...]


CASES = [
    Case("spandrel", "SwinIR", "swinir", "SwinIr", "ESRGAN", (1, 3, 64, 64)),
    Case("braindecode", "EEGNet", "eegnet", "EEGNett", "ShallowFBCSPNet", (1, 19, 800)),
    Case("holocron", "sknet50", "sknet", "sknet5", "unet_tvresnet34", (1, 3, 256, 256)),
    Case("tsai", "XceptionTime", "xceptiontime", "XceptionTim", "InceptionTimePlus", (1, 3, 128)),
    Case("torchaudio", "wav2vec2_base", "wav2vec2", "wav2vec2_bas", "wav2vec2_base", (1, 16000)),
    Case("nni", "proxyless-gpu", "proxylessnas", "proxyless-gpv", "darts-v2", (1, 3, 32, 32)),
]
SLOW = ["spandrel", "braindecode", "holocron", "tsai", "torchaudio", "doctr", "torchtitan", "nni"]
"""The sources whose every row is traced by the slow test below."""


def _installed(source: str):
    return pytest.mark.skipif(not sources.available(source),
                              reason=f"the {source} extra is not installed")


@pytest.mark.parametrize("case", [pytest.param(c, marks=_installed(c.source), id=c.source)
                                  for c in CASES])
def test_lookup_of_one_id_and_of_a_misspelt_one(case):
    row = sources.lookup(f"{case.source}:{case.name}")
    assert (row["model_id"], row["module"]) == (f"{case.source}:{case.name}", case.family)
    with pytest.raises(NarbuildError, match=f"did you mean .*{case.source}:{case.name}"):
        sources.lookup(f"{case.source}:{case.typo}")


@pytest.mark.parametrize("case", [pytest.param(c, marks=_installed(c.source), id=c.source)
                                  for c in CASES])
def test_build_on_meta(case):
    config = json.loads(sources.lookup(f"{case.source}:{case.built}")["config"])
    built = build(case.source, config, device="meta")
    assert all(p.is_meta for p in built.model.parameters())
    assert tuple(built.inputs[0].shape) == case.shape


OPTIONAL = [s.name for s in sources.all_sources() if s.extra]


@pytest.mark.parametrize("source", [pytest.param(s, marks=_installed(s)) for s in OPTIONAL])
def test_the_installed_distribution_is_found_for_the_card(source):
    """The card's version table reads ``importlib.metadata.version(SOURCE.dist)``: a package
    published under another name (pylocron, open-clip-torch) declares it."""
    import importlib.metadata

    assert importlib.metadata.version(sources.get(source).SOURCE.dist)


@pytest.mark.slow
@pytest.mark.parametrize("source", [pytest.param(s, marks=_installed(s)) for s in SLOW])
def test_every_model_traces(source):
    rows = list(sources.get(source).iter_rows())
    graphs = [trace_manifest_row(row) for row in rows]
    failed = {g["model_id"]: g["error"] for g in graphs if g["status"] != "ok"}
    assert len(failed) <= 0.05 * len(rows), failed
    assert all(failed.values())  # every error row says why
