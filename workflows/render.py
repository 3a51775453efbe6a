"""Write the YAML of the six cluster objects into the chart, charts/jetstream/files/workflows/
(their one committed home): `python -m workflows.render` (`make render`). `--check` exits 1
when a committed file differs from its source or is not one of them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jetstream.runners.argo.templates import render_all

__all__ = ["HERE", "main", "render_all", "stale", "write"]

REPO = Path(__file__).resolve().parents[1]
HERE = REPO / "charts" / "jetstream" / "files" / "workflows"


def stale(directory: Path = HERE) -> list[str]:
    """Files whose committed text differs from what the sources render."""
    texts = render_all()
    out = []
    for name, text in texts.items():
        path = directory / name
        if not path.is_file() or path.read_text() != text:
            out.append(name)
    present = {p.name for p in directory.glob("*.yaml")} if directory.is_dir() else set()
    return out + sorted(present - set(texts))


def write(directory: Path = HERE) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workflows.render", description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE,
        help="directory (default: charts/jetstream/files/workflows/)",
    )
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 on any")
    args = parser.parse_args(argv)
    if args.check:
        drift = stale(args.out)
        for name in drift:
            print(f"{args.out / name}: differs from its hera source; run `make render`")
        return 1 if drift else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
