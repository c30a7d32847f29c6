"""Stage 2, ``narbuild trace``: weightless autograd tracing into the ``graphs`` table.

    from narbuild.tracing import trace_module, trace_spec, trace_catalog
    result = trace_module(my_module, (example_input,))   # any nn.Module
    row = trace_spec("timm:resnet50")                    # a model id, config.json or file.py:fn
"""

from narbuild.tracing.core import TraceResult, trace_module
from narbuild.tracing.graph import OpGraph, remove_ops, walk_autograd
from narbuild.tracing.runner import TraceOptions, TraceSummary, trace_catalog
from narbuild.tracing.spec import trace_spec

__all__ = ["OpGraph", "TraceOptions", "TraceResult", "TraceSummary", "remove_ops",
           "trace_catalog", "trace_module", "trace_spec", "walk_autograd"]
