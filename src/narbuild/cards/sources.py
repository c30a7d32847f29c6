"""The card's per-source facts: the funnel (ids -> traced ok -> distinct records -> families),
each source's licence, and the families that several sources feed.

Read off the tables and the source registry; nothing here imports a source's package.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pyarrow as pa
import pyarrow.compute as pc

_TOP = 25


def source_of(model_id: str, known: dict[str, str]) -> str:
    """A model id's source: the manifest's, else its id prefix."""
    return known.get(model_id) or model_id.split(":", 1)[0]


def manifest_sources(t: dict[str, pa.Table]) -> dict[str, str]:
    """Model id -> source, from the manifest (empty without one)."""
    m = t.get("manifest")
    if m is None:
        return {}
    return dict(zip(m.column("model_id").to_pylist(), m.column("source").to_pylist()))


def real_records(t: dict[str, pa.Table]) -> pa.Table | None:
    """The processed table's real records, or None when there are none."""
    p = t.get("processed")
    if p is None:
        return None
    real = p.filter(pc.equal(p.column("dataset"), "real"))
    return real if real.num_rows else None


def funnel(t: dict[str, pa.Table]) -> dict[str, dict[str, int]]:
    """Per source: ids crawled, traced ok, trace errors, distinct real records (a record counts
    for every source with an id in it) and families (fine labels of its ids)."""
    known = manifest_sources(t)
    cols: dict[str, Counter] = {}
    if "manifest" in t:
        ok = t["manifest"].filter(pc.equal(t["manifest"].column("status"), "ok"))
        cols["ids"] = Counter(ok.column("source").to_pylist())
    if "graphs" in t:
        g = t["graphs"].select(["model_id", "status"]).to_pylist()
        cols["traced ok"] = Counter(source_of(r["model_id"], known) for r in g
                                    if r["status"] == "ok")
        cols["trace errors"] = Counter(source_of(r["model_id"], known) for r in g
                                       if r["status"] != "ok")
    real = real_records(t)
    if real is not None:
        records: Counter = Counter()
        families: dict[str, set[str]] = defaultdict(set)
        for ids, labels in zip(real.column("model_ids").to_pylist(),
                               real.column("fine_labels").to_pylist()):
            labels = labels or [None] * len(ids)
            for source in {source_of(i, known) for i in ids}:
                records[source] += 1
            for i, label in zip(ids, labels):
                if label:
                    families[source_of(i, known)].add(label)
        cols["distinct records"] = records
        cols["families"] = Counter({s: len(f) for s, f in families.items()})
    sources = sorted({s for c in cols.values() for s in c if s})
    return {s: {name: c.get(s, 0) for name, c in cols.items()} for s in sources}


def _licence(source: str) -> str:
    from narbuild import sources

    if source not in sources.MODULES:
        return "unknown"
    return sources.get(source).SOURCE.license


def funnel_table(t: dict[str, pa.Table]) -> str:
    """The per-source funnel as a Markdown table, with each source's licence."""
    rows = funnel(t)
    if not rows:
        return ""
    names = list(next(iter(rows.values())))
    head = "| source | licence | " + " | ".join(names) + " |\n| --- | --- |" + " --- |" * len(names)
    body = "\n".join(f"| {s} | {_licence(s)} | " + " | ".join(f"{v:,}" for v in r.values()) + " |"
                     for s, r in rows.items())
    totals = _totals(t, names, rows)
    total = "| **all** | | " + " | ".join(f"{totals[n]:,}" for n in names) + " |"
    note = ("A record or family that several sources share counts once per source and once in "
            "**all**. ")
    return (f"Models per source, from crawled ids to distinct records and families:\n\n"
            f"{head}\n{body}\n{total}\n\n{note}" + agpl_note(rows))


def _totals(t: dict[str, pa.Table], names: list[str], rows: dict[str, dict[str, int]]
            ) -> dict[str, int]:
    totals = {n: sum(r[n] for r in rows.values()) for n in names}
    real = real_records(t)
    if real is not None:
        totals["distinct records"] = real.num_rows
        totals["families"] = len({label for labels in real.column("fine_labels").to_pylist()
                                  for label in labels or () if label})
    return totals


def agpl_note(rows: dict[str, dict[str, int]]) -> str:
    """What the licences mean for this dataset."""
    text = ("Licences are those of the packages whose registries were read; the dataset holds "
            "graphs derived from their model definitions, with no code and no weights.")
    if "ultralytics" in rows:
        text += (" ultralytics is AGPL-3.0: its rows are operator graphs traced from the "
                 "model YAMLs it ships, not its code or weights.")
    return text


def shared_families(t: dict[str, pa.Table]) -> str:
    """The families that more than one source feeds, with the sources and their records."""
    real = real_records(t)
    if real is None:
        return ""
    known = manifest_sources(t)
    feeders: dict[str, Counter] = defaultdict(Counter)
    for ids, labels in zip(real.column("model_ids").to_pylist(),
                           real.column("fine_labels").to_pylist()):
        for i, label in zip(ids, labels or ()):
            if label:
                feeders[label][source_of(i, known)] += 1
    shared = sorted(((f, c) for f, c in feeders.items() if len(c) > 1),
                    key=lambda fc: (-sum(fc[1].values()), fc[0]))
    if not shared:
        return ""
    lines = "\n".join(f"| {f} | " + ", ".join(f"{s} {n:,}" for s, n in sorted(c.items())) + " |"
                      for f, c in shared[:_TOP])
    more = f"\n\n{len(shared) - _TOP} more shared families." if len(shared) > _TOP else ""
    return (f"{len(shared):,} families are fed by more than one source (the alias table merges "
            f"their names); the largest, with model ids per source:\n\n| family | sources |\n"
            f"| --- | --- |\n{lines}{more}")
