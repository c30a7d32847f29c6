"""The dataset card: a YAML header the Hub and ``datasets`` read, then the sections a reader needs.

The header (``configs`` with ``data_files`` per config and split, licence, task categories, tags,
pretty name, size category) is built as :class:`huggingface_hub.DatasetCardData` and the whole
card is parsed back by :class:`huggingface_hub.DatasetCard`, so a malformed header fails here and
not on the Hub. Every number comes from the tables; nothing depends on the time of staging.
"""

from __future__ import annotations

import importlib.metadata
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from huggingface_hub import DatasetCard, DatasetCardData

from narbuild.cards.configs import ConfigRelease
from narbuild.cards.figures import Figure
from narbuild.cards.sources import funnel_table, real_records, shared_families
from narbuild.provenance import git_commit
from narbuild.schemas import SCHEMA_VERSION, column_docs

PRETTY_NAME = "Neural Architecture Retrieval graphs (narbuild)"
TASK_CATEGORIES = ["graph-ml"]
TAGS = ["neural-architecture-retrieval", "neural-architecture-search", "computational-graphs",
        "architecture", "pytorch", "darts", "narbuild"]
PLACEHOLDER_REPO = "ORG/NAME"
CITATION = """@inproceedings{pei2024neural,
  title     = {Neural Architecture Retrieval},
  author    = {Pei, Xiaohuan and Li, Yanxi and Dong, Minjing and Xu, Chang},
  booktitle = {The Twelfth International Conference on Learning Representations (ICLR)},
  year      = {2024}
}"""
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
          (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]
_METRICS = ("mrr", "map", "ndcg")
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
    commands: dict[str, list[str]] = field(default_factory=dict)
    """The command lines recorded per stage (``crawl``, ``trace``) that built the tables."""
    repo_id: str | None = None
    license: str = "apache-2.0"
    map_points: int = 2000
    max_shard_bytes: int = 500 * 1000 * 1000


def render_card(inputs: CardInputs) -> str:
    """The README.md text: YAML header, then the sections."""
    sections = [_intro, _built, _schema, _vocabulary, _labels, _statistics, _embedding_map,
                _evaluation, _limitations, _citation]
    body = "\n\n".join(text for section in sections if (text := section(inputs)))
    header = card_data(inputs).to_yaml()
    card = DatasetCard(f"---\n{header}\n---\n\n{body}\n")  # parses the header back
    return card.content


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


# --------------------------------------------------------------------------- sections


def _intro(x: CardInputs) -> str:
    repo = x.repo_id or PLACEHOLDER_REPO
    rows = "\n".join(f"| `{c.name}` | {c.spec.what} | "
                     + ", ".join(f"{s} {n:,}" for s, n in c.rows.items()) + " |"
                     for c in x.configs)
    first = x.configs[0].name
    return f"""# {PRETTY_NAME}

Computational graphs of neural networks for **Neural Architecture Retrieval** (NAR, Pei et al.,
ICLR 2024): given a query network, find the existing networks whose designs are most similar.
Real models from the registries of {_source_names(x)} are traced
without weights into autograd operator graphs; DARTS-space networks are generated in
edit-distance classes; both are cleaned onto the NAR operator vocabulary, labelled, cut into
motifs and macro graphs, and embedded. Built with narbuild, the reproducible toolkit for this
dataset: every table below is one of its pipeline stages.

| config | one row is | splits (rows) |
| --- | --- | --- |
{rows}

```python
from datasets import load_dataset

ds = load_dataset("{repo}", "{first}")          # every config: see the table above
```

A graph row is ready for PyTorch Geometric: `x = op_ids`, `edge_index = [edge_src, edge_dst]`."""


def _source_names(x: CardInputs) -> str:
    m = x.tables.get("manifest")
    names = sorted(set(m.column("source").to_pylist())) if m is not None else []
    names = names or ["timm", "torchvision", "transformers"]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _built(x: CardInputs) -> str:
    versions = "\n".join(f"| {name} | {value} |" for name, value in _versions(x.tables))
    return f"""## How it was built

| software | version |
| --- | --- |
{versions}

Table schema version {SCHEMA_VERSION}. narbuild's `make setup` installs the package versions
pinned in its `constraints.txt`, those its published figures were made with. The commands that
build this release (options read off the tables; the others are at their defaults):

```bash
{chr(10).join(_commands(x))}
```"""


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
        lines.append(f"narbuild gen-nas --count {nas.num_rows} --classes {classes}")
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
    target = f"--repo-id {x.repo_id or PLACEHOLDER_REPO}"
    lines.append(f"narbuild push {target}    # configs: {', '.join(sorted(names))}")
    return lines


def _schema(x: CardInputs) -> str:
    parts = [(f"## Configs and schema\n\nEvery Parquet file carries the pyarrow schema below "
              f"(with each column's description as field metadata `doc`). Rows are sorted by "
              f"the table's key; shards are at most {_mb(x.max_shard_bytes)}, written with zstd, "
              f"content-defined chunking and a page index. Timestamps are stored in "
              f"milliseconds (Parquet has no second unit); their values are whole seconds.")]
    documented: dict[str, str] = {}
    for c in x.configs:
        files = ", ".join(f"`{s}`: {len(paths)} file{'s' * (len(paths) != 1)}"
                          for s, paths in c.files.items())
        intro = (f"### `{c.name}`\n\nOne row is {c.spec.what}. From the workspace table "
                 f"`{c.spec.table}`; {files}.")
        if c.spec.table in documented:
            parts.append(f"{intro} Same columns as `{documented[c.spec.table]}`.")
            continue
        documented[c.spec.table] = c.name
        docs = column_docs(c.schema)
        rows = "\n".join(f"| `{f.name}` | `{type_name(f.type)}` | {_cell(docs[f.name])} |"
                         for f in c.schema)
        parts.append(f"{intro}\n\n| column | type | description |\n| --- | --- | --- |\n{rows}")
    return "\n\n".join(parts)


def type_name(t: pa.DataType) -> str:
    """A short readable Arrow type: ``list<string>``, ``timestamp[s, UTC]``."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{type_name(t.value_type)}>"
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}{', ' + t.tz if t.tz else ''}]"
    return str(t)


def _vocabulary(x: CardInputs) -> str:
    p = x.tables.get("processed")
    if p is None:
        return ""
    from narbuild.preprocess.vocab import PUBLISHED, VOCAB

    counts = {d: _op_counts(p, d) for d in ("real", "nas")}
    used = sorted(set(counts["real"]) | set(counts["nas"]))
    rows = "\n".join(f"| {i} | `{VOCAB[i] if i < len(VOCAB) else '?'}` | "
                     f"{'yes' if 1 <= i <= len(PUBLISHED) else 'no'} | "
                     f"{counts['real'].get(i, 0):,} | {counts['nas'].get(i, 0):,} |" for i in used)
    shares = [f"{d}: {_outside_share(c, len(PUBLISHED)):.2%} of nodes" for d, c in counts.items()
              if c]
    unknown = _unknown_names(p)
    unknown_line = (f" Unknown operators (id 0) seen, most frequent first: "
                    f"{', '.join(f'`{n}` ({k:,})' for n, k in unknown)}." if unknown else "")
    return f"""## Operator vocabulary

Each node is an autograd operator: its class name without `Backward<N>`, renames folded onto the
published spelling, `AccumulateGrad` and `T` removed. Ids are fixed: `0` is `unknown` (the name is
kept in `op_names`), `1`-`{len(PUBLISHED)}` are the {len(PUBLISHED)} operators of the published NAR
dataset in their index order, `{len(PUBLISHED) + 1}`+ are narbuild's stable extra ids (every other
forward autograd node of PyTorch 2.x, append-only; {len(VOCAB)} ids in all). Outside the published
{len(PUBLISHED)}: {'; '.join(shares)}.{unknown_line}

<details><summary>The {len(used)} operator ids that occur in this release, with node counts</summary>

| id | operator | in NAR's {len(PUBLISHED)} | nodes (real) | nodes (nas) |
| --- | --- | --- | --- | --- |
{rows}

</details>"""


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


def _labels(x: CardInputs) -> str:
    p = x.tables.get("processed")
    if p is None:
        return ""
    real = p.filter(pc.equal(p.column("dataset"), "real"))
    nas = p.filter(pc.equal(p.column("dataset"), "nas"))
    parts = [_LABELS_INTRO]
    if real.num_rows:
        parts.append(_coarse_table(real))
        parts.append(_family_table(real))
    if nas.num_rows:
        rows = "\n".join(f"| `{k}` | {n:,} |" for k, n in _counts(nas.column("fine_label")))
        parts.append(f"NAS classes (records after collapsing duplicate graphs):\n\n"
                     f"| class | records |\n| --- | --- |\n{rows}")
    return "\n\n".join(parts)


_LABELS_INTRO = """## Labels

Two levels, as in the NAR paper, but from metadata first. The **fine** label is the architecture
family (timm module, torchvision builder, transformers `model_type`; aliases merged; the paper's
name hints only where metadata is missing, see `label_source`), the majority over a record's
`model_ids`. The **coarse** label is read off the graph itself: `attention-block` when a softmax
lies between two matrix products (or a fused attention kernel is present), else `cnn-block` when
a convolution is, else `other`. NAS networks are labelled by edit-distance class (`nas-<k>`); all
of them are `cnn-block`."""


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


def _statistics(x: CardInputs) -> str:
    parts = ["## Statistics"]
    if (sources := funnel_table(x.tables)):
        parts.append(sources)
    if (shared := shared_families(x.tables)):
        parts.append(shared)
    if (tasks := _task_table(x.tables)):
        parts.append(tasks)
    parts.append(_distribution_table(x.tables))
    figure = next((f for f in x.figures if f.path.endswith("params-vs-flops.png")), None)
    if figure:
        parts.append(f"![{figure.title}]({figure.path})\n\n*{figure.caption}*")
    return "\n\n".join(p for p in parts if p)


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


def _embedding_map(x: CardInputs) -> str:
    figure = next((f for f in x.figures if f.path.endswith("embedding-map.png")), None)
    if "embeddings" not in x.tables:
        return ""
    e = x.tables["embeddings"]
    methods = ", ".join(f"`{m}` ({n:,})" for m, n in _counts(e.column("method")))
    encoders = ", ".join(f"`{m}`" for m, _ in _counts(e.column("encoder_id")))
    text = (f"## Embeddings\n\nVectors per method: {methods}. Encoders: {encoders}. Compare "
            "vectors of one method and encoder only, with cosine similarity.")
    if figure:
        text += f"\n\n![{figure.title}]({figure.path})\n\n*{figure.caption}*"
    return text


def _evaluation(x: CardInputs) -> str:
    from narbuild.benchmark.report import card_section

    table = eval_table(x.eval_report) if x.eval_report else ""
    v2 = card_section(x.protocol_report) if x.protocol_report else ""
    if not table and not v2:
        return ("## Evaluation\n\nNo evaluation report in this release: run `narbuild eval` "
                "before `narbuild push` to add the retrieval metrics.")
    text = "## Evaluation"
    if table:
        text += ("\n\nRetrieval of the test records against the train records (as in the NAR "
                 "paper's Table 1): MRR, MAP and NDCG at 20, 50 and 100, from `narbuild eval`"
                 + _protocol(x.eval_report) + "\n\n" + table)
    return text + (f"\n\n{v2}" if v2 else "")


def eval_table(report: dict[str, Any]) -> str:
    """A Markdown table of an eval report: ``{dataset: {method: {metric: value}}}`` (the
    summary), or ``{"datasets": {dataset: {"methods": {method: {"mean": {...}, "std": {...}}}}}}``
    (the details). Entries of other shapes are skipped."""
    datasets = report.get("datasets") if isinstance(report.get("datasets"), dict) else report
    rows: list[tuple[str, str, dict[str, str]]] = []
    for dataset in sorted(datasets, key=lambda d: (_DATASET_ORDER.get(str(d), 9), str(d))):
        entry = datasets[dataset]
        methods = entry.get("methods") if isinstance(entry, dict) else None
        methods = methods if isinstance(methods, dict) else entry
        for method, row in (methods.items() if isinstance(methods, dict) else ()):
            if isinstance(row, dict) and (cells := _cells(row)):
                rows.append((str(dataset), str(method), cells))
    if not rows:
        return ""
    names = sorted({k for *_, cells in rows for k in cells}, key=_metric_order)
    head = "| dataset | method | " + " | ".join(names) + " |\n| --- | --- |" + " --- |" * len(names)
    body = "\n".join(f"| {d} | {m} | " + " | ".join(c.get(k, "") for k in names) + " |"
                     for d, m, c in rows)
    return f"{head}\n{body}"


_DATASET_ORDER = {"real": 0, "nas": 1}


def _cells(row: dict[str, Any]) -> dict[str, str]:
    """metric -> formatted value, from ``{metric: value}`` or ``{"mean": {...}, "std": {...}}``."""
    if isinstance(row.get("mean"), dict):
        stds = row.get("std") if isinstance(row.get("std"), dict) and row.get("seeds") != 1 else {}
        row = {m: {"mean": v, "std": stds.get(m)} for m, v in row["mean"].items()}
    return {str(k): v for k, val in row.items() if (v := _metric(val)) is not None}


def _metric(value: Any) -> str | None:
    if isinstance(value, dict):
        mean, std = value.get("mean"), value.get("std")
        if not _is_number(mean):
            return None
        if math.isnan(mean):
            return "-"
        return f"{mean:.3f}" + (f" ± {std:.3f}" if _is_number(std) else "")
    if _is_number(value):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _protocol(report: dict[str, Any]) -> str:
    """``; mean ± std over seeds ...`` from a details report's protocol, else ``.``."""
    p = report.get("protocol")
    if not isinstance(p, dict):
        return "."
    parts = []
    if isinstance(p.get("seeds"), list):
        parts.append(f"mean ± std over seeds {', '.join(map(str, p['seeds']))}")
    for key in ("relevant", "similarity", "device", "torch"):
        if isinstance(p.get(key), str):
            parts.append(f"{key} {p[key]}")
    return ("; " + "; ".join(parts) + ".") if parts else "."


def _metric_order(name: str) -> tuple[int, int, str]:
    base, _, k = name.lower().partition("@")
    rank = _METRICS.index(base) if base in _METRICS else len(_METRICS)
    return (rank, int(k) if k.isdigit() else 0, name)


def _limitations(x: CardInputs) -> str:
    t = x.tables
    errors = ""
    if "graphs" in t:
        n = int(pc.sum(pc.not_equal(t["graphs"].column("status"), "ok")).as_py() or 0)
        errors = (f"\n- The `graphs` config keeps the {n:,} models that could not be traced as error "
                  "rows (`status` = error, the reason in `error`); they have no record in `real`.")
    return f"""## Limitations

- Graphs are autograd graphs of one forward pass at one input size, traced without weights (on
  PyTorch's meta device where possible): operations that record no autograd node (integer
  arithmetic, shape logic) do not appear, and data-dependent control flow follows that one input.
- FLOPs and parameters are for that input size (FLOPs count 2 per multiply-accumulate); they can
  differ from published numbers measured at other sizes.
- Records collapse models with identical graphs (same canonical hash); `model_ids` lists them
  all, and the family is their majority. The split is stratified by family with a fixed seed.
- Families come from library metadata, which is only as consistent as the libraries; the coarse
  label is a rule on the graph, not a human judgement.
- The catalogue is a snapshot of the libraries installed (and Hub revisions read) when it was
  crawled; the `revision` column pins Hub configs.{errors}
- NAS networks are synthetic (DARTS search space); their classes are edit-distance balls around
  sampled centres, not trained behaviours.
- No weights are included. The rows describe architectures only; a model's own licence (in the
  manifest's `metadata` where known) governs its weights and code.
- The embedding map is a t-SNE of a subsample (at most {x.map_points:,} records per panel):
  distances between far clusters mean little."""


def _citation(x: CardInputs) -> str:
    return f"""## Citation

The dataset follows the NAR paper; please cite it:

```bibtex
{CITATION}
```"""


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
