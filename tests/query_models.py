"""Search queries that no registry knows: real architectures built with unusual sizes.

Each entry: name -> (factory, the families a correct result belongs to). A result is correct when
one of its model ids carries such a family (collapsed duplicates keep every id's family).
Used by tests/test_search.py and bench/search_bench.py. :data:`CATALOG` is the catalogue they
search (tests/conftest.py builds it once per session).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def resnet_deep_stage() -> torch.nn.Module:
    from timm.models.resnet import Bottleneck, ResNet

    return ResNet(block=Bottleneck, layers=[2, 5, 3, 2])


def resnet_basic_shallow() -> torch.nn.Module:
    from torchvision.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 3, 1, 1], num_classes=10)


def vit_narrow_shallow() -> torch.nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(embed_dim=192, depth=4, num_heads=3)


def vit_patch32_tiny() -> torch.nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(image_size=224, patch_size=32, num_layers=3, num_heads=4,
                             hidden_dim=128, mlp_dim=256)


def convnext_custom() -> torch.nn.Module:
    from timm.models.convnext import ConvNeXt

    return ConvNeXt(depths=(2, 2, 4, 2), dims=(64, 128, 256, 512))


def densenet_small() -> torch.nn.Module:
    from torchvision.models.densenet import DenseNet

    return DenseNet(growth_rate=16, block_config=(3, 6, 4), num_init_features=32)


def vgg_short() -> torch.nn.Module:
    from torchvision.models.vgg import VGG, make_layers

    return VGG(make_layers([64, "M", 128, "M", 256, 256, "M", 512, "M"], batch_norm=True))


def swin_small_windows() -> torch.nn.Module:
    from torchvision.models.swin_transformer import SwinTransformer

    return SwinTransformer(patch_size=[4, 4], embed_dim=48, depths=[2, 2, 2, 2],
                           num_heads=[2, 4, 8, 16], window_size=[7, 7])


def mobilenetv2_custom() -> torch.nn.Module:
    from torchvision.models.mobilenetv2 import MobileNetV2

    setting = [[1, 16, 1, 1], [6, 24, 3, 2], [6, 48, 2, 2], [6, 96, 2, 2], [6, 160, 1, 1]]
    return MobileNetV2(inverted_residual_setting=setting)


def bert_small() -> torch.nn.Module:
    import transformers

    return transformers.BertModel(transformers.BertConfig(
        hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512))


def gpt2_small() -> torch.nn.Module:
    import transformers

    return transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=3, n_embd=128, n_head=4))


def llama_small() -> torch.nn.Module:
    import transformers

    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=4, vocab_size=1000))


def t5_small() -> torch.nn.Module:
    import transformers

    return transformers.T5Model(transformers.T5Config(
        d_model=128, d_ff=512, num_layers=2, num_decoder_layers=2, num_heads=4, d_kv=32))


QUERIES: dict[str, tuple[Callable[[], torch.nn.Module], set[str]]] = {
    "resnet_deep_stage": (resnet_deep_stage, {"resnet"}),
    "resnet_basic_shallow": (resnet_basic_shallow, {"resnet"}),
    "vit_narrow_shallow": (vit_narrow_shallow, {"vit"}),
    "vit_patch32_tiny": (vit_patch32_tiny, {"vit"}),
    "convnext_custom": (convnext_custom, {"convnext"}),
    "densenet_small": (densenet_small, {"densenet"}),
    "vgg_short": (vgg_short, {"vgg"}),
    "swin_small_windows": (swin_small_windows, {"swin"}),
    "mobilenetv2_custom": (mobilenetv2_custom, {"efficientnet"}),  # timm files it there
    "bert_small": (bert_small, {"bert"}),
    "gpt2_small": (gpt2_small, {"gpt2"}),
    "llama_small": (llama_small, {"llama"}),
    "t5_small": (t5_small, {"t5"}),
}


# Real registry models: five or more distinct graphs of each queried family, and distractors.
CATALOG = [
    "timm:resnet10t", "timm:resnet14t", "torchvision:resnet18", "timm:resnet18d", "timm:resnet26",
    "timm:resnet26d",
    "timm:test_vit", "timm:test_vit2", "timm:vit_base_patch16_224_miil",
    "timm:vit_xsmall_patch16_clip_224", "timm:vit_base_patch16_rpn_224", "timm:vit_large_patch16_224",
    "timm:test_convnext2", "timm:test_convnext3", "timm:convnext_zepto_rms", "timm:convnext_femto",
    "timm:convnext_pico_ols", "timm:convnext_atto_rms",
    "torchvision:densenet121", "torchvision:densenet169", "torchvision:densenet201",
    "timm:densenetblur121d", "timm:densenet161",
    "timm:vgg11", "timm:vgg13", "timm:vgg16", "timm:vgg19", "timm:vgg11_bn", "timm:vgg16_bn",
    "timm:vgg13_bn", "timm:vgg19_bn", "torchvision:vgg11_bn", "torchvision:vgg16_bn",
    "transformers:bert/Model", "transformers:bert/LMHeadModel",
    "transformers:bert/ForSequenceClassification", "transformers:bert/ForMaskedLM",
    "transformers:bert/ForTokenClassification",
    "transformers:gpt2/Model", "transformers:gpt2/LMHeadModel", "transformers:gpt2/ForQuestionAnswering",
    "transformers:gpt2/ForTokenClassification", "transformers:gpt2/ForSequenceClassification",
    "transformers:t5/EncoderModel", "transformers:t5/Model", "transformers:t5/ForQuestionAnswering",
    "transformers:t5/ForTokenClassification", "transformers:t5/ForConditionalGeneration",
    # distractors
    "timm:test_efficientnet", "timm:mobilenetv1_100", "timm:tinynet_e", "timm:regnetx_002",
    "timm:regnety_002", "torchvision:mobilenet_v3_large", "torchvision:swin_t",
    "transformers:deit/Model", "transformers:vit/Model",
]
