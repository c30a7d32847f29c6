"""The images the IO-dataset's networks are trained on and evaluated with.

The paper uses CIFAR-10: networks are trained on its training set minus 1,000 validation
images, their outputs are recorded on those validation images (the *seen* images) and on 2,000
test images (the *unseen* images). No installed package ships CIFAR-10 itself (torchvision,
mmpretrain and pytorchcv only hold downloaders and configs), and nothing may be downloaded at
run time, so narbuild uses scikit-learn's bundled handwritten digits instead: 1,797 grey 8x8
images of 10 classes, inside the scikit-learn wheel. One seeded split gives 1,197 training
images, 300 validation images (accuracy and the recorded outputs) and 300 unseen images
(held out: outputs only, for the unseen-images evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DATASET = "sklearn-digits"
IMAGE_SHAPE = (1, 8, 8)
NUM_CLASSES = 10
VAL_IMAGES = 300
UNSEEN_IMAGES = 300


@dataclass(frozen=True)
class Images:
    """The split: images (N, 1, 8, 8) float32, labels (N,) int64 and their indices into
    :func:`sklearn.datasets.load_digits`, for the train, validation and unseen parts."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    unseen_x: np.ndarray
    unseen_y: np.ndarray
    val_index: np.ndarray
    unseen_index: np.ndarray


def load_images(seed: int = 0) -> Images:
    """The digits, split by ``seed`` and standardised by the training images' mean and std
    (the paper's per-channel CIFAR normalisation, on one channel)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    val, unseen = order[:VAL_IMAGES], order[VAL_IMAGES:VAL_IMAGES + UNSEEN_IMAGES]
    train = order[VAL_IMAGES + UNSEEN_IMAGES:]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return Images(x[train], y[train], x[val], y[val], x[unseen], y[unseen], val, unseen)
