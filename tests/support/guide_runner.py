"""Follow a Markdown guide literally: `<!-- file: PATH -->` before a fenced block writes the
block to PATH; `<!-- run: sh -->` runs each command of the block (with `\\` continuations)
in a shell; `<!-- run: python -->` runs the block with this interpreter. `jetstream` on the
PATH is this interpreter's CLI with this tree importable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO

ROOT = REPO
STEP = re.compile(r"<!-- (file|run): (\S+) -->\n```[a-z]*\n(.*?)\n```", re.S)


def steps(markdown: str) -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in STEP.finditer(markdown)]


def environment(workdir: Path) -> dict[str, str]:
    bin_dir = workdir / ".bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "jetstream"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m jetstream.cli "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("JETSTREAM_WAREHOUSE", None)
    return env


def commands(block: str) -> list[str]:
    return [
        line.strip()
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def follow(
    markdown: str, workdir: Path, skip: tuple[str, ...] = (), timeout: float = 900
) -> list[subprocess.CompletedProcess]:
    """Do every step; return the completed commands. Fails on the first non-zero exit."""
    env = environment(workdir)
    done = []
    found = steps(markdown)
    assert found, "the guide has no <!-- file: --> or <!-- run: --> steps"
    for kind, arg, body in found:
        if kind == "file":
            path = workdir / arg
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body + "\n")
            continue
        if arg == "python":
            argvs = [[sys.executable, "-c", body]]
        elif arg == "sh":
            argvs = [["sh", "-c", c] for c in commands(body) if not any(s in c for s in skip)]
        else:
            raise AssertionError(f"unknown step kind run: {arg}")
        for argv in argvs:
            result = subprocess.run(
                argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
            )
            assert result.returncode == 0, f"{argv[-1]}\n{result.stdout}\n{result.stderr}"
            done.append(result)
    return done
