"""`make demo`: the main job on the offline default, stage by stage, into one workspace.

Run it with ``python -m narbuild.demo [--workdir DIR]``. Each stage that exists runs on the
offline registries; the summary says where every table is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from narbuild.cli import main as cli_main

# A quick, representative slice of the catalog (the whole catalog: `narbuild trace`, ~20 min).
DEMO_MODELS = [
    "timm:resnet50", "timm:resnet101", "timm:vit_base_patch16_224", "timm:convnext_tiny",
    "timm:efficientnet_b0", "timm:swin_tiny_patch4_window7_224", "torchvision:*mobilenet*",
    "torchvision:regnet_y_400mf", "transformers:bert/*", "transformers:gpt2/*",
    "transformers:llama/ForCausalLM", "transformers:mixtral/ForCausalLM", "transformers:whisper/*",
    # a slice of every other offline source
    "pytorchcv:resnet20_cifar10", "pytorchcv:shufflenetv2_wd2", "pytorchcv:quartznet5x5_en_ls",
    "smp:Unet/resnet34", "smp:Segformer/mit_b0", "ultralytics:yolov8n", "ultralytics:yolo11n-seg",
    "ultralytics:rtdetr-l", "open_clip:ViT-B-32", "open_clip:RN50", "diffusers:UNet2DModel",
    "diffusers:AutoencoderKL", "monai:UNet", "monai:SwinUNETR", "keras:MobileNetV3Small",
    "keras:ResNet50V2", "pyg:GAT", "pyg:GIN", "neuralforecast:NHITS", "neuralforecast:PatchTST",
    "litgpt:pythia-70m", "litgpt:SmolLM2-135M", "torchtune:qwen2_5_0_5b",
    "torchtune:llama3_2_1b", "mmpretrain:resnet50_8xb32_in1k", "mmpretrain:riformer-s12_in1k",
    "mmpretrain:conformer-tiny-p16_3rdparty_in1k",
    "mmpretrain:mae_vit-base-p16_8xb512-amp-coslr-300e_in1k",
    "torchaudio:wav2vec2_base", "torchaudio:conv_tasnet_base", "torchaudio:Tacotron2",
    "doctr:db_mobilenet_v3_large", "doctr:crnn_mobilenet_v3_small", "doctr:parseq",
    "torchtitan:llama3/debugmodel", "torchtitan:deepseek_v3/debugmodel",
    "spandrel:ESRGAN", "spandrel:SwinIR", "spandrel:NAFNet", "braindecode:EEGNet",
    "braindecode:USleep", "braindecode:BIOT", "holocron:rexnet1_0x", "holocron:unet3p",
    "holocron:yolov4", "tsai:InceptionTimePlus", "tsai:MiniRocket", "tsai:PatchTST",
    "nni:darts-v2", "nni:proxyless-mobile",
]

QUERY = '''"""A design no registry knows: a ResNet with stage depths 2-5-3-2."""


def build():
    from timm.models.resnet import Bottleneck, ResNet

    return ResNet(block=Bottleneck, layers=[2, 5, 3, 2])
'''


def _run(workdir: str, *args: str) -> None:
    print(f"\n$ narbuild --workdir {workdir} {' '.join(args)}", flush=True)
    try:
        cli_main(["--workdir", workdir, *args])
    except SystemExit as exc:
        if exc.code:
            raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", default="narbuild-data")
    args = parser.parse_args(argv)
    _run(args.workdir, "crawl")
    _run(args.workdir, "trace", *[f"--include={p}" for p in DEMO_MODELS])
    _run(args.workdir, "trace", "--model", "timm:resnet50")
    _run(args.workdir, "gen-nas", "--count", "2000")
    _run(args.workdir, "preprocess")
    _run(args.workdir, "embed")  # the bundled wl-metric encoder (the published vectors)
    # every method trained on this workspace's split; a quick CPU recipe (the full one: the
    # defaults, 512 dims and 3 seeds; bench/README.md has its figures on the whole catalog)
    _run(args.workdir, "eval", "--seeds", "0", "--dim", "32", "--epochs", "5", "--motif-epochs", "2")
    # benchmark v2: siblings excluded, unit- and family-disjoint folds, depth/width variants of
    # the traced models (traced into <workdir>/variants), settings chosen on validation
    _run(args.workdir, "eval", "--protocol", "all", "--methods",
         "wl,wl-fam,wl-metric,wl-metric+wl-fam,nar-cl,nar-cl+wl-fam",
         "--seeds", "0", "--folds", "3", "--dim", "32", "--epochs", "5", "--motif-epochs", "2")
    # a release folder is narbuild's own and lies outside the workspace
    release = str(Path(args.workdir).resolve().parent / f"{Path(args.workdir).name}-release")
    _run(args.workdir, "push", "--local-dir", release, "--check")
    query = Path(args.workdir) / "my_resnet.py"
    query.write_text(QUERY)
    _run(args.workdir, "search", f"{query}:build", "-k", "5")  # wl-metric fused with wl-fam
    _run(args.workdir, "search", f"{query}:build", "-k", "5", "--method", "wl-fam")  # training-free
    print(f"\nDone. Every table is under {args.workdir}/ (Parquet); try "
          f"`narbuild --workdir {args.workdir} --help`.")


if __name__ == "__main__":
    sys.exit(main())
