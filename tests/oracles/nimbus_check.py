"""Run inside the oracle virtualenv (mozilla-nimbus-schemas installed): check every
published JSON file under a results directory with Experimenter's own pydantic models, as
Experimenter's Jetstream client reads them, and print one JSON report on stdout.

    python nimbus_check.py RESULTS_DIR

Report: {"files": {relative path: "ok" | error text}, "errors_shown": {slug: [count kept
by Experimenter's analysis_start_time filter, count published]}}.
Standard library and mozilla_nimbus_schemas only: this file never imports jetstream."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mozilla_nimbus_schemas.jetstream import AnalysisErrors, Metadata, Statistics

MODELS = {"statistics": Statistics, "metadata": Metadata, "errors": AnalysisErrors}


def main(root: Path) -> dict:
    files: dict[str, str] = {}
    parsed: dict[str, dict[str, object]] = {}
    for kind, model in MODELS.items():
        for path in sorted((root / kind).glob("*.json")):
            rel = path.relative_to(root).as_posix()
            try:
                obj = model.model_validate(json.loads(path.read_text()))
            except Exception as exc:  # pydantic.ValidationError or bad JSON
                files[rel] = f"{type(exc).__name__}: {exc}"
                continue
            files[rel] = "ok"
            slug = path.stem.removeprefix(f"{kind}_")
            parsed.setdefault(kind, {})[slug] = obj
    shown: dict[str, list[int]] = {}
    for slug, errors in parsed.get("errors", {}).items():
        meta = parsed.get("metadata", {}).get(slug)
        start = getattr(meta, "analysis_start_time", None)
        rows = errors.root
        kept = [e for e in rows if start is None or e.timestamp >= start]
        shown[slug] = [len(kept), len(rows)]
    return {"files": files, "errors_shown": shown}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
