"""Benchmark v2 (``narbuild eval --protocol``): retrieval measured on design similarity.

:mod:`~narbuild.benchmark.protocols` defines retrieval units, relevance and the protocols
(closed, loo, open, variants), :mod:`~narbuild.benchmark.variants` builds the variant queries,
:mod:`~narbuild.benchmark.run` scores every method on every task,
:mod:`~narbuild.benchmark.suite` runs them on a workspace, and
:mod:`~narbuild.benchmark.report` writes the report (torch-free, so the dataset card reads it).
"""
