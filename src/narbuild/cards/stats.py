"""Every number the dataset card shows, computed once from the tables: :func:`card_statistics`.

The card's prose is the Jinja template ``card_template.md`` (:mod:`narbuild.cards.card` fills
it); this module turns the release's tables into the values and Markdown tables it shows.
Nothing here depends on the time of staging.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from narbuild.cards.configs import ConfigRelease
from narbuild.cards.figures import Figure
from narbuild.cards.sources import funnel_table, real_records, shared_families
from narbuild.provenance import git_commit
from narbuild.schemas import SCHEMA_VERSION, column_docs

PLACEHOLDER_REPO = "ORG/NAME"
_TOP = 25


@dataclass
class CardInputs:
    """Everything the card is written from."""

    tables: dict[str, pa.Table]
    configs: list[ConfigRelease]
    figures: list[Figure]
    eval_report: dict[str, Any] | None = None
    protocol_report: dict[str, Any] | None = None
    """``narbuild eval --protocol``'s benchmark-v2 report, when the workspace has one."""
    io_report: dict[str, Any] | None = None
    """``narbuild eval --protocol io``'s report, when the workspace has one."""
    commands: dict[str, list[str]] = field(default_factory=dict)
    """The command lines recorded per stage (``crawl``, ``trace``) that built the tables."""
    repo_id: str | None = None
    license: str = "apache-2.0"
    map_points: int = 2000
    max_shard_bytes: int = 500 * 1000 * 1000


def card_statistics(x: CardInputs) -> dict[str, Any]:
    """The template's values: every count, table and figure reference of the card."""
    from narbuild.benchmark.report import card_section
    from narbuild.encoder.report import protocol_text, results_table
    from narbuild.nasio.report import card_section as io_card_section

    t = x.tables
    graphs = t.get("graphs")
    return {
        "source_names": _source_names(t),
        "config_rows": "\n".join(
            f"| `{c.name}` | {c.spec.what} | " + ", ".join(f"{s} {n:,}" for s, n in c.rows.items())
            + " |" for c in x.configs),
        "repo": x.repo_id or PLACEHOLDER_REPO,
        "first_config": x.configs[0].name,
        "versions": "\n".join(f"| {name} | {value} |" for name, value in _versions(t)),
        "schema_version": SCHEMA_VERSION,
        "commands": "\n".join(_commands(x)),
        "shard_size": _mb(x.max_shard_bytes),
        "config_schemas": _config_schemas(x.configs),
        "vocabulary": _vocabulary(t.get("processed")),
        "labels": _labels(t.get("processed")),
        "statistics": [s for s in (funnel_table(t), shared_families(t), _task_table(t),
                                   _distribution_table(t), _figure(x, "params-vs-flops.png"))
                       if s],
        "embeddings": _embeddings(x),
        "nas_io": _nas_io(t.get("nas_io")),
        "nas_io_eval": io_card_section(x.io_report) if x.io_report and "nas_io" in t else "",
        "eval_table": results_table(x.eval_report) if x.eval_report else "",
        "eval_protocol": protocol_text(x.eval_report) if x.eval_report else "",
        "benchmark_v2": card_section(x.protocol_report) if x.protocol_report else "",
        "error_rows": None if graphs is None else
        f"{int(pc.sum(pc.not_equal(graphs.column('status'), 'ok')).as_py() or 0):,}",
        "map_points": f"{x.map_points:,}",
    }


def _source_names(t: dict[str, pa.Table]) -> str:
    m = t.get("manifest")
    names = sorted(set(m.column("source").to_pylist())) if m is not None else []
    names = names or ["timm", "torchvision", "transformers"]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _versions(tables: dict[str, pa.Table]) -> list[tuple[str, str]]:
    def recorded(column: str) -> str:
        seen = sorted({v for t in tables.values() if column in t.column_names
                       for v in pc.unique(t.column(column)).to_pylist() if v})
        return ", ".join(seen) or "not recorded"

    out = [("narbuild (recorded in the tables)", recorded("narbuild_version")),
           ("narbuild commit (when staged)", git_commit()),
           ("torch (recorded in the tables)", recorded("torch_version"))]
    for package in ("timm", "transformers", "pyarrow", *_source_packages(tables)):
        out.append((f"{package} (installed when staged)", _installed(package)))
    return out


def _source_packages(tables: dict[str, pa.Table]) -> list[str]:
    """The distributions of the manifest's other sources (their registries shaped the rows)."""
    from narbuild import sources

    m = tables.get("manifest")
    names = sorted(set(m.column("source").to_pylist())) if m is not None else []
    known = [sources.get(n).SOURCE for n in names if n in sources.MODULES]
    return [s.dist for s in known if s.dist and s.offline and s.extra]


def _installed(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _commands(x: CardInputs) -> list[str]:
    t, names = x.tables, {c.name for c in x.configs}
    lines = []
    if x.commands.get("crawl"):
        lines.extend(x.commands["crawl"])
    elif "manifest" in t:  # a workspace crawled before commands were recorded
        sources = sorted(set(t["manifest"].column("source").to_pylist()))
        lines.append("narbuild crawl " + " ".join(f"-s {s}" for s in sources))
    if "graphs" in t:
        lines.extend(x.commands.get("trace") or ["narbuild trace"])
    if "nas" in t:
        nas = t["nas"]
        classes = len(pc.unique(nas.column("cluster")))
        lines.extend(x.commands.get("gen-nas")
                     or [f"narbuild gen-nas --count {nas.num_rows} --classes {classes}"])
    if "nas_io" in t:
        lines.extend(x.commands.get("nas-io") or ["narbuild nas-io"])
    if "processed" in t:
        p = t["processed"]
        steps = _mode(p.column("steps").to_pylist())
        splitter = _mode(p.column("splitter").to_pylist())
        lines.append(f"narbuild preprocess --steps {steps} --splitter {splitter}")
    if "embeddings" in t:
        methods = sorted(set(t["embeddings"].column("method").to_pylist()))
        lines.append(f"narbuild embed    # methods: {', '.join(methods)}")
    if x.eval_report:
        lines.append("narbuild eval")
    if x.io_report and "nas_io" in t:
        lines.append("narbuild eval --protocol io")
    target = f"--repo-id {x.repo_id or PLACEHOLDER_REPO}"
    lines.append(f"narbuild push {target}    # configs: {', '.join(sorted(names))}")
    return lines


def _config_schemas(configs: list[ConfigRelease]) -> list[dict[str, str]]:
    """Per config: what a row is, its files, and its column table (or the config whose columns
    it shares)."""
    out, documented = [], {}
    for c in configs:
        entry = {"name": c.name, "what": c.spec.what, "table": c.spec.table, "same_as": "",
                 "files": ", ".join(f"`{s}`: {len(paths)} file{'s' * (len(paths) != 1)}"
                                    for s, paths in c.files.items())}
        if c.spec.table in documented:
            entry["same_as"] = documented[c.spec.table]
        else:
            documented[c.spec.table] = c.name
            docs = column_docs(c.schema)
            entry["columns"] = "\n".join(
                f"| `{f.name}` | `{type_name(f.type)}` | {_cell(docs[f.name])} |"
                for f in c.schema)
        out.append(entry)
    return out


def type_name(t: pa.DataType) -> str:
    """A short readable Arrow type: ``list<string>``, ``timestamp[s, UTC]``."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{type_name(t.value_type)}>"
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}{', ' + t.tz if t.tz else ''}]"
    return str(t)


def _vocabulary(p: pa.Table | None) -> dict[str, Any] | None:
    """The operator ids used, with node counts per dataset, and the share outside NAR's."""
    if p is None:
        return None
    from narbuild.preprocess.vocab import PUBLISHED, VOCAB

    counts = {d: _op_counts(p, d) for d in ("real", "nas")}
    used = sorted(set(counts["real"]) | set(counts["nas"]))
    rows = "\n".join(f"| {i} | `{VOCAB[i] if i < len(VOCAB) else '?'}` | "
                     f"{'yes' if 1 <= i <= len(PUBLISHED) else 'no'} | "
                     f"{counts['real'].get(i, 0):,} | {counts['nas'].get(i, 0):,} |" for i in used)
    shares = [f"{d}: {_outside_share(c, len(PUBLISHED)):.2%} of nodes" for d, c in counts.items()
              if c]
    unknown = ", ".join(f"`{n}` ({k:,})" for n, k in _unknown_names(p))
    return {"published": len(PUBLISHED), "size": len(VOCAB), "shares": "; ".join(shares),
            "unknown": unknown, "used": len(used), "rows": rows}


def _op_counts(p: pa.Table, dataset: str) -> dict[int, int]:
    rows = p.filter(pc.equal(p.column("dataset"), dataset))
    if rows.num_rows == 0:
        return {}
    vc = pc.value_counts(pc.list_flatten(rows.column("op_ids")))
    return {int(v): int(n) for v, n in zip(vc.field("values").to_pylist(),
                                           vc.field("counts").to_pylist()) if v is not None}


def _outside_share(counts: dict[int, int], published: int) -> float:
    total = sum(counts.values())
    return sum(n for i, n in counts.items() if not 1 <= i <= published) / max(1, total)


def _unknown_names(p: pa.Table, k: int = 10) -> list[tuple[str, int]]:
    ids = pc.list_flatten(p.column("op_ids"))
    names = pc.list_flatten(p.column("op_names"))
    unknown = names.filter(pc.equal(ids, 0)).to_pylist()
    return sorted(Counter(unknown).items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def _labels(p: pa.Table | None) -> list[str]:
    """The coarse-label and family tables of the real records, the class table of the NAS ones."""
    if p is None:
        return []
    real = p.filter(pc.equal(p.column("dataset"), "real"))
    nas = p.filter(pc.equal(p.column("dataset"), "nas"))
    parts = [_coarse_table(real), _family_table(real)] if real.num_rows else []
    if nas.num_rows:
        rows = "\n".join(f"| `{k}` | {n:,} |" for k, n in _counts(nas.column("fine_label")))
        parts.append(f"NAS classes (records after collapsing duplicate graphs):\n\n"
                     f"| class | records |\n| --- | --- |\n{rows}")
    return parts


def _coarse_table(real: pa.Table) -> str:
    sources = dict(_counts(real.column("label_source")))
    rows = []
    for label, n in _counts(real.column("coarse_label")):
        sub = real.filter(pc.equal(real.column("coarse_label"), label))
        models = int(pc.sum(sub.column("num_models")).as_py() or 0)
        families = len(pc.unique(sub.column("fine_label")))
        rows.append(f"| `{label}` | {n:,} | {models:,} | {families:,} |")
    source_line = ", ".join(f"{k} {v:,}" for k, v in sources.items())
    return ("Coarse labels of the real records (label source: " + source_line + "):\n\n"
            "| coarse label | records | models | families |\n| --- | --- | --- | --- |\n"
            + "\n".join(rows))


def _family_table(real: pa.Table) -> str:
    rows = real.select(["fine_label", "coarse_label", "num_models", "split"]).to_pylist()
    fam: dict[str, dict[str, Any]] = {}
    for r in rows:
        f = fam.setdefault(r["fine_label"] or "(none)", {"records": 0, "models": 0, "test": 0,
                                                        "coarse": Counter()})
        f["records"] += 1
        f["models"] += r["num_models"] or 0
        f["test"] += r["split"] == "test"
        f["coarse"][r["coarse_label"]] += 1
    order = sorted(fam, key=lambda k: (-fam[k]["records"], k))

    def line(k: str) -> str:
        f = fam[k]
        coarse = f["coarse"].most_common(1)[0][0]
        return f"| `{k}` | {f['records']:,} | {f['models']:,} | {f['test']:,} | {coarse} |"

    head = "| family | records | models | test records | coarse (majority) |\n" \
           "| --- | --- | --- | --- | --- |\n"
    top = "\n".join(line(k) for k in order[:_TOP])
    text = (f"{len(fam):,} families (fine labels) among the real records; the {min(_TOP, len(fam))}"
            f" largest:\n\n{head}{top}")
    if len(fam) > _TOP:
        rest = "\n".join(line(k) for k in order)
        text += (f"\n\n<details><summary>All {len(fam):,} families</summary>\n\n{head}{rest}\n\n"
                 "</details>")
    return text


def _task_table(t: dict[str, pa.Table]) -> str:
    real = real_records(t)
    if real is None:
        return ""
    records = _counts(real.column("task"))
    models: Counter = Counter()
    for task, n in zip(real.column("task").to_pylist(), real.column("num_models").to_pylist()):
        models[task or "(none)"] += n or 0
    rows = "\n".join(f"| {k} | {n:,} | {models[k]:,} |" for k, n in records[:_TOP])
    more = f"\n\n{len(records) - _TOP} more tasks are in the `task` column." \
        if len(records) > _TOP else ""
    return (f"Real records per task (of the representative model):\n\n| task | records | models |"
            f"\n| --- | --- | --- |\n{rows}{more}")


def _distribution_table(t: dict[str, pa.Table]) -> str:
    groups = _size_groups(t)
    qs = (0, 10, 50, 90, 100)
    head = ("| set | quantity | n | " + " | ".join(_q_name(q) for q in qs) + " |\n| --- | --- | ---"
            + " | ---" * len(qs) + " |")
    rows = []
    for name, table in groups:
        for column, unit, scale in (("params", "parameters (M)", 1e6), ("flops", "GFLOPs", 1e9)):
            values = table.column(column).to_numpy(zero_copy_only=False)
            values = np.asarray([v for v in values if v is not None and v > 0], dtype=float)
            if len(values) == 0:
                continue
            cells = " | ".join(_num(np.percentile(values, q) / scale) for q in qs)
            rows.append(f"| {name} | {unit} | {len(values):,} | {cells} |")
    if not rows:
        return ""
    return ("Parameters and FLOPs (one forward pass at the traced input size; FLOPs count 2 per "
            "multiply-accumulate):\n\n" + head + "\n" + "\n".join(rows))


def _size_groups(t: dict[str, pa.Table]) -> list[tuple[str, pa.Table]]:
    out = []
    p = t.get("processed")
    if p is not None:
        for d in ("real", "nas"):
            rows = p.filter(pc.equal(p.column("dataset"), d))
            if rows.num_rows:
                out.append((f"{d} records", rows))
    if "graphs" in t:
        out.append(("traced models",
                    t["graphs"].filter(pc.equal(t["graphs"].column("status"), "ok"))))
    if "nas" in t and not any(name == "nas records" for name, _ in out):
        out.append(("NAS networks", t["nas"]))
    return out


def _figure(x: CardInputs, name: str) -> str:
    figure = next((f for f in x.figures if f.path.endswith(name)), None)
    return f"![{figure.title}]({figure.path})\n\n*{figure.caption}*" if figure else ""


def _embeddings(x: CardInputs) -> dict[str, Any] | None:
    if "embeddings" not in x.tables:
        return None
    e = x.tables["embeddings"]
    figure = next((f for f in x.figures if f.path.endswith("embedding-map.png")), None)
    methods = _counts(e.column("method"))
    return {"methods": ", ".join(f"`{m}` ({n:,})" for m, n in methods),
            "encoders": ", ".join(f"`{m}`" for m, _ in _counts(e.column("encoder_id"))),
            "about": [_about(m, x.protocol_report) for m, _ in methods], "figure": figure}


def _about(method: str, report: dict[str, Any] | None) -> dict[str, Any]:
    """What a method's vectors are, and how they rank against the training-free WL rankings on
    this workspace's benchmark v2 (when it ran the method)."""
    from narbuild.benchmark.report import embedding_comparison
    from narbuild.encoder.methods import LEARNED

    doc = LEARNED[method].doc if method in LEARNED else "a learned encoder"
    return {"method": method, "doc": doc,
            "comparison": embedding_comparison(report, method) if report else []}


def _nas_io(t: pa.Table | None) -> dict[str, Any] | None:
    """The nas-io section: how many networks, on what, trained how, and how well."""
    if t is None or not t.num_rows:
        return None
    settings = json.loads(t.column("settings")[0].as_py())
    accuracy = np.asarray([a for a in t.column("accuracy").to_pylist() if a is not None])
    q1, median, q3 = np.percentile(accuracy, [25, 50, 75]) if len(accuracy) else (np.nan,) * 3
    return {
        "networks": f"{t.num_rows:,}",
        "splits": ", ".join(f"{n:,} {s}" for s, n in _counts(t.column("split"))),
        "data": f"`{settings.get('dataset', '?')}` ({settings.get('train_images', '?')} "
                "training images)",
        "recipe": (f"width {settings.get('width')}, {settings.get('depth')} cells, "
                   f"{settings.get('epochs')} epochs of {settings.get('optimizer')} at lr "
                   f"{settings.get('lr')}, batch {settings.get('batch_size')}, seed "
                   f"{settings.get('seed')}"),
        "val_images": len(settings.get("val_images", [])),
        "unseen_images": len(settings.get("unseen_images", [])),
        "median": f"{median:.3f}", "iqr": f"{q1:.3f}–{q3:.3f}",
    }


# --------------------------------------------------------------------------- helpers


def _counts(column: pa.ChunkedArray | pa.Array) -> list[tuple[str, int]]:
    """(value, count), most frequent first; nulls as ``(none)``."""
    c = Counter("(none)" if v is None else str(v) for v in column.to_pylist())
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


def _mode(values: list[Any]) -> Any:
    c = Counter(v for v in values if v is not None)
    return min(c.items(), key=lambda kv: (-kv[1], str(kv[0])))[0] if c else "?"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _num(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 10**6 else f"{n / 1e3:,.0f} kB"


def _q_name(q: int) -> str:
    return {0: "min", 50: "median", 100: "max"}.get(q, f"p{q}")
