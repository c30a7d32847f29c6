"""The IO-dataset of trained NAS networks (arch2vec-IO, ``shared/seeds``; issue #23).

::

    from narbuild import Workspace
    from narbuild.nasio import build

    summary = build(Workspace("narbuild-data"), train=608, val=77, seed=0)

Networks sampled from the workspace's ``nas`` table are trained on scikit-learn's bundled
digits; their validation accuracy, pooled features on fixed validation and unseen images and
last dense layer are stored in the ``nas_io`` table with the paper's preprocessing.
Modules: :mod:`.data` (the images), :mod:`.train` (one network), :mod:`.preprocess` (sorting
and scaling of outputs), :mod:`.dataset` (sampling and the table). Imports torch when used.
"""

from __future__ import annotations

from narbuild.nasio.dataset import build, preprocess_outputs, sample_networks
from narbuild.nasio.train import TrainSettings

__all__ = ["TrainSettings", "build", "preprocess_outputs", "sample_networks"]
