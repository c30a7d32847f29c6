"""The train/test split: 0.9 / 0.1 stratified by fine label, with a fixed seed.

Each family gets ``floor(0.1 n)`` test records, and the records left over by rounding go, one
each, to the families with the largest remainders (ties by a seeded hash of the family), so the
test set is 10% of the records overall (largest-remainder allocation). A family never gives all
its records to test, and a family with one record stays in train. Within a family, the records
whose seeded hash of the record id is smallest go to test: the choice depends only on the seed
and the ids, not on the order the rows were read in.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

TEST_FRACTION = 0.1


def _rank(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def stratified_split(record_ids: Sequence[str], labels: Sequence[str], seed: int = 0,
                     test_fraction: float = TEST_FRACTION) -> list[str]:
    """``'train'`` or ``'test'`` per record (see the module docstring)."""
    members: dict[str, list[str]] = defaultdict(list)
    for rid, label in zip(record_ids, labels):
        members[label].append(rid)
    eligible = {k: v for k, v in members.items() if len(v) > 1}
    quota = {k: int(len(v) * test_fraction) for k, v in eligible.items()}
    extra = round(sum(len(v) for v in eligible.values()) * test_fraction) - sum(quota.values())
    by_remainder = sorted(eligible, key=lambda k: (-(len(eligible[k]) * test_fraction % 1),
                                                   _rank(seed, k)))
    for k in by_remainder:
        if extra <= 0:
            break
        if quota[k] < len(eligible[k]) - 1:
            quota[k] += 1
            extra -= 1
    test: set[str] = set()
    for k, ids in eligible.items():
        test.update(sorted(ids, key=lambda r: _rank(seed, r))[: min(quota[k], len(ids) - 1)])
    return ["test" if rid in test else "train" for rid in record_ids]
