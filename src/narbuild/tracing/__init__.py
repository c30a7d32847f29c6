"""Stage 2, ``narbuild trace``: weightless autograd tracing into the ``graphs`` table.

    from narbuild.tracing import trace_module, trace_spec, trace_catalog
    result = trace_module(my_module, (example_input,))   # any nn.Module
    row = trace_spec("timm:resnet50")                    # a model id, config.json or file.py:fn

Names are imported on first use, so importing a light submodule (``graph``) stays cheap.
"""

from importlib import import_module

_EXPORTS = {
    "TraceResult": "core", "trace_module": "core",
    "OpGraph": "graph", "remove_ops": "graph", "walk_autograd": "graph",
    "TraceOptions": "runner", "TraceSummary": "runner", "trace_catalog": "runner",
    "trace_workspace": "runner",
    "trace_isolated": "workers",
    "trace_spec": "spec",
}
__all__ = ["OpGraph", "TraceOptions", "TraceResult", "TraceSummary", "remove_ops",
           "trace_catalog", "trace_isolated", "trace_module", "trace_spec", "trace_workspace",
           "walk_autograd"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"narbuild.tracing.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'narbuild.tracing' has no attribute {name!r}")
