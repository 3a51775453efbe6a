"""Render the Helm chart with its default values into k8s/ (committed). The chart's Argo
objects are charts/jetstream/files/workflows/*.yaml, written by `make render`
(`python -m workflows.render`); run that first.

    python scripts/render_chart.py            # write
    python scripts/render_chart.py --check    # exit 1 when k8s/ drifted

Uses the real Helm engine offline (helm-python-sdk). Release name and namespace:
`jetstream`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "jetstream"
OUT = REPO / "k8s"
RELEASE = "jetstream"
NAMESPACE = "jetstream"
HEADER = (
    "# Rendered from charts/jetstream with default values by scripts/render_chart.py;"
    " do not edit.\n"
)


def render(
    chart: Path = CHART, values: dict | None = None, name: str = RELEASE, namespace: str = NAMESPACE
) -> dict[str, str]:
    """template file name (e.g. `configmap.yaml`) -> rendered text, empty ones left out."""
    from helm_python import Chart

    with Chart.load(str(chart)) as loaded:
        rendered = loaded.render(values or {}, name=name, namespace=namespace)
    out = {}
    for path, text in sorted(rendered.items()):
        if text.strip():
            out[Path(path).name] = HEADER + text.lstrip("\n")
    return out


def stale() -> list[str]:
    """Paths that differ from what the sources give."""
    drift = []
    texts = render()
    for name, text in texts.items():
        path = OUT / name
        if not path.is_file() or path.read_text() != text:
            drift.append(str(path.relative_to(REPO)))
    extra = {p.name for p in OUT.glob("*.yaml")} - set(texts) if OUT.is_dir() else set()
    drift += [str((OUT / n).relative_to(REPO)) for n in sorted(extra)]
    return drift


def write() -> list[Path]:
    texts = render()
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.yaml"):
        if old.name not in texts:
            old.unlink()
    written = []
    for name, text in texts.items():
        (OUT / name).write_text(text)
        written.append(OUT / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="report drift; exit 1 on any")
    args = parser.parse_args(argv)
    if args.check:
        drift = stale()
        for path in drift:
            print(f"{path}: out of date; run `python scripts/render_chart.py`")
        return 1 if drift else 0
    for path in write():
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
