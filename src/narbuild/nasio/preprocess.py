"""The paper's preprocessing of the recorded outputs (section 3.2, *Preprocessing*).

Pooled features have no order (two networks can compute the same features, permuted) and no
common scale. For each network and image, as in the paper and its code:

1. normalise the network's outputs by one mean and one std (scalars over all its outputs on
   the validation images; the same two numbers scale its unseen-image outputs);
2. append 1 to the output vector for the bias, and take the last dense layer's weights of the
   image's class with the bias appended;
3. sort the output vector by those weights, largest first, and multiply it by them;
4. normalise every feature (position in the sorted vector) by its mean and std over the
   labelled training set (training networks on validation images), applied to every set.

The paper puts the per-network scaling before the sorting, as here.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8


def network_scale(outputs: np.ndarray) -> tuple[float, float]:
    """Step 1: one network's mean and std over all its (images, features) outputs."""
    return float(outputs.mean()), float(outputs.std()) + EPS


def sort_by_weights(outputs: np.ndarray, labels: np.ndarray, weight: np.ndarray,
                    bias: np.ndarray) -> np.ndarray:
    """Steps 2-3: (images, F) outputs -> (images, F + 1), with 1 appended, sorted by the
    class's dense weights (bias appended; largest first) and multiplied by them."""
    ones = np.ones((len(outputs), 1), dtype=np.float32)
    extended = np.concatenate([outputs, ones], axis=1)
    weights = np.concatenate([weight, bias[:, None]], axis=1)[labels]
    order = np.argsort(-weights, axis=1, kind="stable")
    return np.take_along_axis(extended * weights, order, axis=1).astype(np.float32)


def per_network(outputs: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                weight: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
    """Steps 1-3 for one network's outputs on each image set (``"val"`` fits the scale)."""
    mean, std = network_scale(outputs["val"])
    return {name: sort_by_weights((x - mean) / std, labels[name], weight, bias)
            for name, x in outputs.items()}


def feature_scale(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 4: per-feature mean and std of (samples, F + 1) training vectors."""
    return train.mean(axis=0), train.std(axis=0) + EPS


def scale_features(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((x - mean) / std).astype(np.float32)
