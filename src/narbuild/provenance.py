"""What a measured figure was made with: the git commit, package versions and the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGES = ("narbuild", "torch", "torchvision", "timm", "transformers", "numpy", "pyarrow")


def git_commit(folder: Path = HERE) -> str:
    """The short commit of the checkout holding ``folder`` ("unknown" outside one)."""
    try:
        sha = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],
                             check=False, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return sha.strip() or "unknown"


def provenance() -> dict[str, Any]:
    """``{"git", "packages", "python", "machine", "cpus"}`` for a result file."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {"git": git_commit(), "packages": packages, "python": platform.python_version(),
            "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
