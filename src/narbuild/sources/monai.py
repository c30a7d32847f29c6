"""monai: the networks of ``monai.networks.nets``, 2-D or 3-D as each expects, without weights.

One row per network class that the module exports (an alias such as ``Unet`` for ``UNet`` is
the same class and listed once), and one per named design that MONAI builds from a class:
``EfficientNetBN/<model name>``, ``ResNet/resnet18`` (its ``resnet*`` builders),
``MedNeXt/S`` (``MedNeXtS``..``MedNeXtL``), ``SwinUNETR/v2``, ``HyenaNDUNETR/<paper variant>``,
``VISTA3D/vista3d132`` and ``FlexibleUNet/<backbone>`` (the first backbone of each encoder kind).

Constructor arguments are the class's own defaults; a required one takes its value from
:data:`_ARGS` (MONAI's documented conventions: ``spatial_dims=3``, ``in_channels=1``,
``out_channels=2``, UNet's ``channels=(16, 32, 64, 128, 256)``, ``strides=(2, 2, 2, 2)``, a
``patch_size`` of 16, ``img_size`` the input size), with a few per-class values in
:data:`_CLASSES` (the MedNIST GAN tutorial's Generator and Discriminator, the registration nets'
moving + fixed channels, ...). ``pretrained`` is always False, and Transchex's BERT weights are
not fetched (:func:`_no_downloads`): nothing touches the network. Inputs are one batch of
``(1, in_channels, *spatial)``, 64 per axis in 3-D and 128 in 2-D unless the class wants
another size, plus what a forward takes besides (timesteps, segmentation maps, token ids).
Most networks need ``einops``; ``HyenaNDUNETR`` needs ``nvsubquadratic`` (``monai[hyena]``),
and without it its rows fail at once with that reason (:data:`_OPTIONAL`).

Excluded (:data:`_EXCLUDED`): building blocks (BERT layers, ``HighResBlock``, ``PatchMerging``,
ResNet blocks, DiNTS's search spaces), encoders and feature extractors of networks listed
already (``EfficientNetBNFeatures``, ``EfficientNetEncoder``, ``ResNetEncoder``,
``ResNetFeatures``, ``VoxelMorphUNet``), generic bases whose named designs are listed
(``DenseNet`` = ``DenseNet121``, ``SENet``, ``EfficientNet``), and wrappers around another
library's model (``NetAdapter``, ``TorchVisionFCModel``).

The family is the class's module under ``monai.networks.nets`` (``swin_unetr``, ``segresnet``,
``densenet``), ``transformer`` renamed ``decoder_only_transformer``. Tasks: image-segmentation
(the default), image-classification, image-regression, image-registration, image-generation
(autoencoders, diffusion models, GAN parts, the token transformer of latent models),
image-text-classification (Transchex), tabular-classification and feature-extraction (the
fully connected nets).
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from narbuild.crawler.base import manifest_row
from narbuild.errors import NarbuildError
from narbuild.sources.base import Built, Source, kwargs_of, unknown_id

SOURCE = Source(
    name="monai", title="MONAI networks (monai.networks.nets)", package="monai",
    offline=True, license="Apache-2.0", extra="monai",
    family="the class's module under monai.networks.nets (swin_unetr, segresnet, densenet)")

_EXCLUDED: dict[str, str] = {
    **dict.fromkeys(("BertAttention", "BertMixedLayer", "BertOutput", "BertPreTrainedModel",
                     "MultiModal", "Pooler"), "a part of Transchex"),
    **dict.fromkeys(("HighResBlock", "PatchMerging", "PatchMergingV2", "ResNetBlock",
                     "ResNetBottleneck"), "a building block"),
    **dict.fromkeys(("TopologyConstruction", "TopologyInstance", "TopologySearch"),
                    "DiNTS's search space, not a network"),
    **dict.fromkeys(("EfficientNetBNFeatures", "EfficientNetEncoder", "ResNetEncoder",
                     "ResNetFeatures", "VoxelMorphUNet"), "the encoder of a listed network"),
    "DenseNet": "its defaults are DenseNet121's", "SENet": "its named designs are listed",
    "EfficientNet": "its named designs are listed as EfficientNetBN",
    **dict.fromkeys(("NetAdapter", "TorchVisionFCModel"), "a wrapper of another model"),
}
"""Classes of ``monai.networks.nets`` that are not listed, and why."""

_SIZE = {2: 128, 3: 64}
"""Input size per spatial axis, by the number of spatial axes."""

_UNET_CHANNELS = (16, 32, 64, 128, 256)

_ARGS: dict[str, Any] = {
    "spatial_dims": 3, "in_channels": 1, "out_channels": 2, "num_classes": 2, "classes": 2,
    "channels": _UNET_CHANNELS, "strides": (2, 2, 2, 2), "patch_size": 16,
    "hidden_size": 768, "mlp_dim": 3072, "num_layers": 12, "num_heads": 12, "label_nc": 3,
    "num_channel_initial": 16, "depth": 3, "extract_levels": (0, 1, 2, 3), "latent_size": 64,
    "hidden_channels": (64, 64), "encode_channels": (64, 32), "decode_channels": (32, 64),
    "dints_space": {},
}
"""Values of required constructor arguments (MONAI's documented conventions); the size-like
ones (:data:`_SIZED`) are the input's spatial size."""

_SIZED = frozenset({"img_size", "image_size", "input_image_size", "input_shape"})

_OBJECTS = {"dints_space": "TopologyInstance"}
"""Arguments that are a MONAI object: the config holds that class's keyword arguments."""

_CONV = {"channels": (8, 16, 32, 64), "strides": (2, 2, 2, 2)}
_MEDNIST = {"dims": 2, "size": 64}  # the MedNIST GAN tutorial's 64 x 64 images and networks
_CLASSES: dict[str, dict[str, Any]] = {
    "Classifier": {**_MEDNIST, "kwargs": _CONV}, "Critic": {**_MEDNIST, "kwargs": _CONV},
    "Regressor": {**_MEDNIST, "kwargs": {**_CONV, "out_shape": (1,)}},
    "Discriminator": {**_MEDNIST, "kwargs": {"channels": (8, 16, 32, 64, 1), "kernel_size": 5,
                                             "strides": (2, 2, 2, 2, 1), "num_res_units": 1}},
    "Generator": {**_MEDNIST, "kwargs": {"latent_shape": (64,), "start_shape": (64, 8, 8),
                                         "channels": (32, 16, 8, 1), "strides": (2, 2, 2, 1)}},
    "AutoEncoder": {"kwargs": {"strides": (2, 2, 2, 2, 2)}},
    "VarAutoEncoder": {"kwargs": {"strides": (2, 2, 2, 2, 2)}},
    "DynUNet": {"kwargs": {"kernel_size": (3, 3, 3, 3, 3), "strides": (1, 2, 2, 2, 2),
                           "upsample_kernel_size": (2, 2, 2, 2)}},
    "PatchDiscriminator": {"dims": 2, "size": 256, "kwargs": {"channels": 64}},
    "MultiScalePatchDiscriminator": {"dims": 2, "size": 256, "kwargs": {
        "num_d": 2, "num_layers_d": 3, "channels": 64}},
    "SPADENet": {"kwargs": {"channels": (16, 32, 64, 128), "z_dim": 16}},
    "DiffusionModelUNet": {"size": 32}, "SPADEDiffusionModelUNet": {"size": 32},
    "ControlNet": {"size": 16}, "AutoencoderKL": {"size": 32}, "SPADEAutoencoderKL": {"size": 32},
    "VQVAE": {"size": 32},
    "DecoderOnlyTransformer": {"kwargs": {"num_tokens": 257, "max_seq_len": 257,
                                          "attn_layers_dim": 128, "attn_layers_depth": 16,
                                          "attn_layers_heads": 16}},
    "RegUNet": {"kwargs": {"in_channels": 2}}, "GlobalNet": {"kwargs": {"in_channels": 2}},
    "LocalNet": {"kwargs": {"in_channels": 2}},
    "AHNet": {"size": (128, 128, 64)},  # its pyramid pooling: 2 ** 7 in-plane, 32 across
    "HoVerNet": {"dims": 2, "size": 256}, "Quicknat": {"dims": 2},
    "MILModel": {"dims": 2, "size": 224},
    "Transchex": {"dims": 2, "size": 224, "kwargs": {
        "in_channels": 3, "patch_size": (32, 32), "num_language_layers": 2,
        "num_vision_layers": 2, "num_mixed_layers": 2}},
    "FullyConnectedNet": {"kwargs": {"in_channels": 16}},
    "VarFullyConnectedNet": {"kwargs": {"in_channels": 16}},
}
"""Per-class settings: ``kwargs`` (over :data:`_ARGS`), ``dims`` (spatial axes of a class
without ``spatial_dims`` or where it is 2-D by design), ``size`` (per axis, or each axis's)."""

_OPTIONAL = {"HyenaNDUNETR": ("nvsubquadratic", "monai[hyena]")}
"""Classes that need a package ``monai`` does not install: class -> (import name, install)."""

_TASKS: dict[str, tuple[str, ...]] = {
    "image-classification": ("densenet", "senet", "efficientnet", "resnet", "classifier",
                             "milmodel", "vit", "navit"),
    "image-regression": ("regressor",),
    "image-registration": ("regunet", "voxelmorph"),
    "image-generation": (
        "autoencoder", "varautoencoder", "autoencoderkl", "vqvae", "diffusion_model_unet",
        "controlnet", "spade_autoencoderkl", "spade_diffusion_model_unet", "spade_network",
        "generator", "patchgan_discriminator", "transformer", "vitautoenc",
        "masked_autoencoder_vit", "Critic", "Discriminator"),
    "image-text-classification": ("transchex",),
    "tabular-classification": ("fullyconnectednet",),
    "feature-extraction": ("VarFullyConnectedNet",),
}
_TASK = {key: task for task, keys in _TASKS.items() for key in keys}
"""Task by module, or by class where a module holds more than one kind (GAN critics in
``classifier``, a VAE in ``fullyconnectednet``); image-segmentation otherwise."""
_FAMILY = {"transformer": "decoder_only_transformer"}


def _timesteps(image: list[int], kwargs: dict) -> dict[str, Any]:
    return {"timesteps": {"shape": [1], "high": 1000}}


def _seg(image: list[int], kwargs: dict) -> dict[str, Any]:
    return {"seg": [1, kwargs["label_nc"], *image[2:]]}


_INPUTS: dict[str, Callable[[list[int], dict], dict[str, Any]]] = {
    "DiffusionModelUNet": _timesteps,
    "SPADEDiffusionModelUNet": lambda image, kw: {**_timesteps(image, kw), **_seg(image, kw)},
    "ControlNet": lambda image, kw: {**_timesteps(image, kw), "controlnet_cond": [
        1, 1, *(8 * s for s in image[2:])]},  # conditioning in pixel space, 8x the latent
    "SPADEAutoencoderKL": _seg,
    "SPADENet": lambda image, kw: {"seg": [1, kw["label_nc"], *image[2:]], "x": image},
    "VISTA3D": lambda image, kw: {"class_vector": {"shape": [1, 1], "high": 132}},
    "Transchex": lambda image, kw: {"input_ids": {"shape": [1, 16], "high": 30522},
                                    "vision_feats": image},
    "DecoderOnlyTransformer": lambda image, kw: {
        "x": {"shape": [1, kw["max_seq_len"]], "high": kw["num_tokens"]}},
    "NaViT": lambda image, kw: {"batched_images": {"shape": image[1:], "nest": 2}},
    "MILModel": lambda image, kw: {"x": [1, 4, 3, *image[2:]]},  # a bag of 4 RGB tiles
    "Generator": lambda image, kw: {"x": [1, *kw["latent_shape"]]},
    "FullyConnectedNet": lambda image, kw: {"input": [1, kw["in_channels"]]},
    "VarFullyConnectedNet": lambda image, kw: {"x": [1, kw["in_channels"]]},
}
"""Inputs other than one image (or one per required forward argument): name -> shape, or
``{"shape", "high"}`` for integer ids, or ``{"shape", "nest"}`` for tensors in nested lists."""


class _NoDefault(Exception):
    """A required constructor argument that neither the class nor this source gives a value."""


@cache
def _nets() -> Any:
    from monai.networks import nets

    return nets


def _variants() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The named designs MONAI builds from one class: class -> [(variant, settings)]; the
    variant "" is the class with its own defaults."""
    from monai.networks.nets.efficientnet import efficientnet_params
    from monai.networks.nets.flexible_unet import FLEXUNET_BACKBONE
    from monai.networks.nets.hyena_nd_unetr import PAPER_VARIANTS

    nets = _nets()
    exported = sorted(dir(nets), key=lambda n: [int(t) if t.isdigit() else t
                                                for t in re.split(r"(\d+)", n)])
    backbones: dict[Any, str] = {}
    for name, entry in FLEXUNET_BACKBONE.register_dict.items():
        backbones.setdefault(entry["type"], name)
    return {
        "EfficientNetBN": [(n, {"kwargs": {"model_name": n}, "dims": 2, "size": p[2]})
                           for n, p in efficientnet_params.items()],
        "ResNet": [(n, {"builder": n}) for n in exported if re.fullmatch(r"resnet\d+", n)],
        "MedNeXt": [("", {})] + [(n[-1], {"builder": n}) for n in exported
                                 if re.fullmatch(r"MedNeXt[A-Z]", n)],
        "SwinUNETR": [("", {}), ("v2", {"kwargs": {"use_v2": True}})],
        "HyenaNDUNETR": [(v, {"kwargs": {"hyena_stages": list(stages)}})
                         for v, stages in PAPER_VARIANTS.items()],
        "VISTA3D": [(n, {"builder": n}) for n in exported if re.fullmatch(r"vista3d\d+", n)],
        "FlexibleUNet": [(n, {"kwargs": {"backbone": n}}) for n in backbones.values()],
    }


@cache
def _classes() -> dict[str, type]:
    """Every network class exported by ``monai.networks.nets`` (by its own name, once)."""
    import torch

    nets, found = _nets(), {}
    for name in sorted(dir(nets)):
        obj = getattr(nets, name)
        if (inspect.isclass(obj) and issubclass(obj, torch.nn.Module)
                and obj.__module__.startswith("monai.networks.nets.")
                and obj.__name__ not in _EXCLUDED):
            found[obj.__name__] = obj
    return found


@cache
def _catalog() -> dict[str, tuple[type, dict[str, Any]]]:
    """Row name -> (class, settings)."""
    variants = _variants()
    rows = {}
    for name, cls in _classes().items():
        for variant, settings in variants.get(name, [("", {})]):
            rows[f"{name}/{variant}" if variant else name] = (cls, _merge(
                _CLASSES.get(name, {}), settings))
    return rows


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {**base, **extra, "kwargs": {**base.get("kwargs", {}), **extra.get("kwargs", {})}}


def names() -> list[str]:
    return list(_catalog())


def lookup(name: str) -> dict[str, Any]:
    """The row of one name; MONAI's aliases (``Unet``, ``densenet121``) name their class."""
    catalog = _catalog()
    if name not in catalog:
        obj = getattr(_nets(), name, None)
        name = getattr(obj, "__name__", name) if inspect.isclass(obj) else name
    if name in _EXCLUDED:
        raise NarbuildError(f"monai:{name} is not listed: {_EXCLUDED[name]}",
                            "list the networks with `narbuild crawl -s monai`")
    if name not in catalog:
        raise unknown_id(f"monai:{name}", [f"monai:{n}" for n in catalog],
                         "list them with `narbuild crawl -s monai`")
    return next(iter_rows([name]))


def iter_rows(names: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One manifest row per network of ``monai.networks.nets`` (all, or ``names``)."""
    catalog = _catalog()
    for name in names if names is not None else catalog:
        yield _row(name, *catalog[name])


def _row(name: str, cls: type, settings: dict[str, Any]) -> dict[str, Any]:
    module = cls.__module__.removeprefix("monai.networks.nets.")
    builder = settings.get("builder", cls.__name__)
    config: dict[str, Any] = {"builder": builder}
    error, dims = None, None
    try:
        recipe, dims = _config(cls, builder, settings)
        config.update(recipe)
    except _NoDefault as exc:
        error = f"no value for the required argument {exc} of {cls.__name__}"
    return manifest_row(
        "monai", name, config,
        task=_TASK.get(cls.__name__) or _TASK.get(module, "image-segmentation"),
        library="monai", module=_FAMILY.get(module, module), architectures=[cls.__name__],
        metadata={"module": module, "class": cls.__name__, "variant": name.partition("/")[2]
                  or None, "spatial_dims": dims},
        error=error)


def _config(cls: type, builder: str,
            settings: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The constructor's keyword arguments and the inputs of one row, and its spatial axes."""
    kwargs = dict(settings.get("kwargs", {}))
    dims = kwargs.get("spatial_dims") or settings.get("dims") or _default(cls, "spatial_dims", 3)
    size = settings.get("size", _SIZE[dims])
    size = list(size) if isinstance(size, (list, tuple)) else [size] * dims
    if builder == cls.__name__:
        for arg in _required(cls):
            if arg not in kwargs:
                kwargs[arg] = _value(arg, dims, size)
    if "pretrained" in _params(getattr(_nets(), builder)):
        kwargs["pretrained"] = False
    image = [1, _channels(cls, kwargs), *size]
    inputs = {arg: image for arg in _required_forward(cls)}
    inputs.update(_INPUTS.get(cls.__name__, lambda image, kw: {})(image, kwargs))
    return {"kwargs": kwargs, "inputs": inputs}, dims


def _value(arg: str, dims: int, size: list[int]) -> Any:
    if arg == "spatial_dims":
        return dims
    if arg in _SIZED:
        return tuple(size)
    if arg == "in_shape":
        return (_ARGS["in_channels"], *size)
    if arg not in _ARGS:
        raise _NoDefault(repr(arg))
    return _ARGS[arg]


def _params(obj: Any) -> set[str]:
    try:
        return set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return set()


def _required(cls: type) -> list[str]:
    """Required constructor arguments; through ``**kwargs``, the bases' that :data:`_ARGS`
    knows (``SENet154(**kwargs)`` passes ``spatial_dims`` on to ``SENet``)."""
    required: list[str] = []
    for i, klass in enumerate(c for c in cls.__mro__ if "__init__" in vars(c)):
        params = inspect.signature(klass.__init__).parameters.values()
        required += [p.name for p in params if p.name != "self" and p.default is p.empty
                     and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                     and p.name not in required and (i == 0 or p.name in _ARGS)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return required


def _required_forward(cls: type) -> list[str]:
    params = inspect.signature(cls.forward).parameters.values()
    return [p.name for p in params if p.name != "self" and p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _default(cls: type, arg: str, fallback: Any) -> Any:
    param = inspect.signature(cls.__init__).parameters.get(arg)
    return fallback if param is None or param.default is param.empty else param.default


def _channels(cls: type, kwargs: dict[str, Any]) -> int:
    """Input channels: the row's argument or the class's default (of whichever name)."""
    if "in_shape" in kwargs:
        return int(kwargs["in_shape"][0])
    for arg in ("in_channels", "n_input_channels", "num_channels"):
        value = kwargs.get(arg, _default(cls, arg, None))
        if isinstance(value, int):
            return value
    return _ARGS["in_channels"]


def build(config: dict[str, Any], step: str) -> Built:
    _check_optional(config["builder"])
    kwargs = kwargs_of(config)
    for arg, cls in _OBJECTS.items():
        if isinstance(kwargs.get(arg), dict):
            kwargs[arg] = getattr(_nets(), cls)(**kwargs[arg])
    with _no_downloads():
        model = getattr(_nets(), config["builder"])(**kwargs)
    return Built(model, {name: _tensor(spec) for name, spec in config["inputs"].items()})


def _check_optional(builder: str) -> None:
    """A clear error, before the build, for a class whose optional package is missing."""
    import importlib.util

    package, install = _OPTIONAL.get(builder, (None, None))
    if package and importlib.util.find_spec(package) is None:
        raise ImportError(f"monai's {builder} needs the optional package {package!r}, which is "
                          f"not installed (pip install '{install}')")


def _no_downloads() -> contextlib.AbstractContextManager:
    """Transchex loads BERT weights from the Hub in its constructor: build it without them."""
    from unittest import mock

    from monai.networks.nets.transchex import MultiModal

    def bare(cls, num_language_layers, num_vision_layers, num_mixed_layers, bert_config,
             *args, **kwargs):
        return cls(num_language_layers, num_vision_layers, num_mixed_layers, bert_config)

    return mock.patch.object(MultiModal, "from_pretrained", classmethod(bare))


def _tensor(spec: Any) -> Any:
    """An input from its spec: a float batch (requires grad), integer ids, or nested lists."""
    import torch

    if isinstance(spec, list):
        return torch.randn(*spec, requires_grad=True)
    if "high" in spec:
        return torch.randint(0, spec["high"], spec["shape"])
    value: Any = torch.randn(*spec["shape"], requires_grad=True)
    for _ in range(spec.get("nest", 0)):
        value = [value]
    return value
