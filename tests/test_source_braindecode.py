"""The braindecode source: listing from braindecode's registry, the traces that check it
(lookup, a meta build, every row: tests/test_source_contract.py; the missing-package path:
tests/test_sources.py)."""

from __future__ import annotations

import json

import pytest

from narbuild import sources
from narbuild.sources import braindecode as source
from narbuild.tracing.ladder import trace_manifest_row

pytest.importorskip("braindecode", reason="the braindecode extra is not installed")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {r["name"]: r for r in source.iter_rows()}


def test_listing_has_every_model_of_the_registry_with_its_recording(rows):
    from braindecode.models.util import models_dict

    assert set(rows) == set(models_dict) and len(rows) >= 60
    eegnet = json.loads(rows["EEGNet"]["config"])
    assert eegnet["kwargs"] == source.SIGNALS["eeg"] and not eegnet["montage"]
    assert rows["EEGNet"]["task"] == "eeg-decoding" and rows["EEGNet"]["module"] == "eegnet"
    usleep = json.loads(rows["USleep"]["config"])["kwargs"]  # its own n_outputs (5) is kept
    assert usleep == {k: v for k, v in source.SIGNALS["sleep"].items() if k != "n_outputs"}
    assert rows["USleep"]["task"] == "sleep-staging"
    assert rows["VEMG2Pose"]["task"] == "emg-decoding"
    assert json.loads(rows["DGCNN"]["config"])["montage"]




def test_trace_counts_the_model_s_own_parameters():
    from braindecode.models import ShallowFBCSPNet

    graph = trace_manifest_row(sources.lookup("braindecode:ShallowFBCSPNet"))
    assert graph["status"] == "ok", graph["error"]
    own = ShallowFBCSPNet(**source.SIGNALS["eeg"])
    assert graph["params"] == sum(p.numel() for p in own.parameters())


def test_a_model_that_places_channels_traces_with_their_10_20_positions():
    graph = trace_manifest_row(sources.lookup("braindecode:EEGSym"))
    assert graph["status"] == "ok", graph["error"]
