"""64-bit hashing shared by the graph hash (tracing) and motif encoding (preprocess)."""

from __future__ import annotations

import hashlib

import numpy as np

_U = np.uint64
_MASK = (1 << 64) - 1


def mix64(x: np.ndarray, salt: int = 0) -> np.ndarray:
    """splitmix64 finaliser over a uint64 array (array arithmetic wraps silently)."""
    z = np.asarray(x).astype(_U, copy=True)
    z += _U((salt * 0x9E3779B97F4A7C15 + 0x9E3779B97F4A7C15) & _MASK)
    z ^= z >> _U(30)
    z *= _U(0xBF58476D1CE4E5B9)
    z ^= z >> _U(27)
    z *= _U(0x94D049BB133111EB)
    z ^= z >> _U(31)
    return z


def name_hash(name: str) -> int:
    """Stable 64-bit hash of a name (blake2b, independent of the Python process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
