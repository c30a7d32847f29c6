"""The dataset card: a YAML header the Hub and ``datasets`` read, then the sections a reader needs.

The prose is the Jinja template ``card_template.md`` beside this module, filled by
:meth:`huggingface_hub.DatasetCard.from_template` (as the Hub's own dataset-card template is)
with the values of :func:`narbuild.cards.stats.card_statistics`. To add a section, write it in
the template and compute its values there. The header (``configs`` with ``data_files`` per config
and split, licence, task categories, tags, pretty name, size category) is a
:class:`huggingface_hub.DatasetCardData`, and the whole card is parsed back by
:class:`huggingface_hub.DatasetCard`, so a malformed header fails here and not on the Hub.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from narbuild.cards.stats import PLACEHOLDER_REPO, CardInputs, card_statistics

__all__ = ["PLACEHOLDER_REPO", "CardInputs", "card_data", "render_card", "size_category"]

TEMPLATE = Path(__file__).with_name("card_template.md")
PRETTY_NAME = "Neural Architecture Retrieval graphs (narbuild)"
TASK_CATEGORIES = ["graph-ml"]
TAGS = ["neural-architecture-retrieval", "neural-architecture-search", "computational-graphs",
        "architecture", "pytorch", "darts", "narbuild"]
CITATION = """@inproceedings{pei2024neural,
  title     = {Neural Architecture Retrieval},
  author    = {Pei, Xiaohuan and Li, Yanxi and Dong, Minjing and Xu, Chang},
  booktitle = {The Twelfth International Conference on Learning Representations (ICLR)},
  year      = {2024}
}"""
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
          (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]


def render_card(inputs: CardInputs) -> str:
    """The README.md text: YAML header, then the template's sections."""
    card = DatasetCard.from_template(card_data(inputs), template_path=str(TEMPLATE),
                                     citation=CITATION, **card_statistics(inputs))
    text = re.sub(r"\n{3,}", "\n\n", card.content.strip()) + "\n"  # the template's skipped parts
    return DatasetCard(text).content  # parses the header back


def card_data(inputs: CardInputs) -> DatasetCardData:
    """The YAML header, as the Hub and ``datasets`` expect it."""
    configs = []
    for i, c in enumerate(inputs.configs):
        entry: dict[str, Any] = {"config_name": c.name, "data_files": c.data_files()}
        if i == 0:
            entry["default"] = True
        configs.append(entry)
    largest = max((sum(c.rows.values()) for c in inputs.configs), default=0)
    return DatasetCardData(
        pretty_name=PRETTY_NAME, license=inputs.license, task_categories=TASK_CATEGORIES,
        tags=TAGS, size_categories=[size_category(largest)], configs=configs)


def size_category(rows: int) -> str:
    """The Hub's size category for a number of rows."""
    return next((name for limit, name in _SIZES if rows < limit), "n>10M" if rows else "n<1K")
