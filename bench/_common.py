"""What every benchmark shares: result files that say what made them.

Each result a script writes carries ``provenance``: the git commit, the versions of the packages
the figures depend on, Python, the processor and the number of cores
(:func:`narbuild.provenance.provenance`), and the load of the machine when it was written.

    from _common import append_line, write_json   # bench/ is the script's own folder
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from narbuild.provenance import provenance


def with_provenance(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with a ``provenance`` entry (an existing one is kept)."""
    return {"provenance": {**provenance(), "load_avg": [round(x, 2) for x in os.getloadavg()]},
            **result}


def write_json(path: str | Path, result: dict[str, Any], key: str | None = None) -> None:
    """Write ``result`` (with its provenance) to ``path``; under ``key``, merged into the
    results already there (one file holding several labelled runs)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if key is None:
        merged = with_provenance(result)
    else:
        merged = json.loads(path.read_text()) if path.is_file() else {}
        merged[key] = with_provenance(result)
    path.write_text(json.dumps(merged, indent=1, default=str) + "\n")


def append_line(path: str | Path, result: dict[str, Any]) -> str:
    """Append ``result`` (with its provenance) to the JSON-lines file ``path``; the line."""
    line = json.dumps(with_provenance(result), default=str)
    with Path(path).open("a") as fh:
        fh.write(line + "\n")
    return line
