"""Native meta kernels: torch's C++ shape functions in place of its Python ones.

``import torch`` registers Python meta kernels (``torch._meta_registrations``) for some 1,300
aten operators, and for about 640 of them they replace a C++ meta kernel that torch also ships.
The Python ones serve symbolic shapes (``torch.compile``); for the concrete shapes of a trace the
C++ ones compute the same sizes and strides about ten times faster, and a forward pass on the
meta device spends most of its time in these kernels.

Inside :func:`native_meta_kernels` an operator with a C++ meta kernel uses it, and the others
keep their Python kernel; on leaving, torch's registrations are put back. Autograd runs above
the meta kernels, so the traced graph does not change (tests trace models both ways). Where
torch's internals are not as expected, nothing is changed and tracing is only slower.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator

import torch

log = logging.getLogger(__name__)

_active = 0  # nesting depth; > 0 while the C++ kernels are in use
_pinned = False
_fallbacks: torch.library.Library | None = None


@functools.cache
def _python_meta_kernels() -> tuple[torch.library.Library, dict[str, Callable]]:
    """torch's library of Python meta kernels, and the kernel it registered per operator name
    (chosen as ``torch._meta_registrations.activate_meta`` chooses them)."""
    from torch._decomp import global_decomposition_table
    from torch._meta_registrations import _meta_lib_dont_use_me_use_register_meta as lib

    registered = {key.split("/")[1] for key in lib._op_impls if key.endswith("/Meta")}
    kernels: dict[str, Callable] = {}
    for kind in ("meta", "post_autograd", "pre_autograd"):
        for op, fn in global_decomposition_table[kind].items():
            if isinstance(op, torch._ops.OpOverload) and op.namespace == "aten":
                name = op.name().split("::", 1)[1]
                if name in registered:
                    kernels.setdefault(name, fn)
    if len(kernels) != len(registered):
        raise RuntimeError("torch's Python meta kernels are not where expected")
    return lib, kernels


def _swap_in() -> None:
    global _fallbacks
    lib, kernels = _python_meta_kernels()
    lib.m.reset()  # every Python meta kernel off: C++ ones show again
    _fallbacks = torch.library.Library("aten", "IMPL", "Meta")
    for name, fn in kernels.items():  # operators without a C++ meta kernel keep theirs
        if not torch._C._dispatch_has_kernel_for_dispatch_key(f"aten::{name}", "Meta"):
            _fallbacks.impl(name, fn)


def _swap_out() -> None:
    global _fallbacks
    lib, kernels = _python_meta_kernels()
    if _fallbacks is not None:
        _fallbacks._destroy()
        _fallbacks = None
    for name, fn in kernels.items():
        lib.impl(name, fn)


def _try_swap_in() -> bool:
    """Swap the C++ kernels in; on any failure put torch's registrations back and say so."""
    try:
        _swap_in()
        return True
    except Exception as exc:  # noqa: BLE001 - a speed-up only; trace on without it
        log.debug("native meta kernels unavailable: %s", exc)
        with contextlib.suppress(Exception):
            _swap_out()  # a swap that failed half-way must not leave operators without a kernel
        return False


@contextlib.contextmanager
def native_meta_kernels() -> Iterator[None]:
    """Use torch's C++ meta kernels where they exist, for the duration of the block."""
    global _active
    if _active == 0 and not _try_swap_in():
        yield
        return
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0 and not _pinned:
            _swap_out()


def pin_native_meta_kernels() -> None:
    """Use the C++ meta kernels for the rest of this process (trace workers)."""
    global _pinned, _active
    if _pinned or (_active == 0 and not _try_swap_in()):
        return
    _pinned, _active = True, _active + 1
