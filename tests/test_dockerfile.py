"""The image definition, checked without a Docker engine: the Dockerfile's structure, the
build context `.dockerignore` lets through, and (slow) the wheel the build stage makes,
installed into a fresh virtualenv (pip-less: the project's pip installs into it with
`--python`) whose `jetstream` entry point must run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import attrs
import pytest

from tests.support.paths import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
SECRET_NAME = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET|CREDENTIAL)", re.IGNORECASE)
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "python3-dev")


@attrs.frozen
class Instruction:
    keyword: str
    args: str
    line: int


@attrs.frozen
class Stage:
    base: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs and stages of a Dockerfile (continuations joined, comments dropped)."""
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append((start, buf + line))
        buf = ""
    assert not buf, "Dockerfile ends inside a line continuation"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    base = name = None
    for n, line in logical:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            if current is not None:
                stages.append(Stage(base, name, tuple(current)))
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            current = []
        elif current is None:
            assert keyword == "ARG", f"line {n}: only ARG may precede FROM"
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip()
        else:
            current.append(Instruction(keyword, rest.strip(), n))
    if current is not None:
        stages.append(Stage(base, name, tuple(current)))
    return args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse(DOCKERFILE.read_text())


def test_parser_reads_continuations_and_stages():
    args, stages = parse(
        "ARG B=python:3.11.9-slim-bookworm\nFROM ${B} AS one\nRUN a \\\n  # c\n  && b\n"
        "FROM one\nUSER 1\n"
    )
    assert [s.base for s in stages] == ["python:3.11.9-slim-bookworm", "one"]
    assert stages[0].all("RUN")[0].args.split() == ["a", "&&", "b"]


def test_bases_are_pinned_slim_python(dockerfile):
    _, stages = dockerfile
    assert len(stages) >= 2, "expected a multi-stage build"
    stage_names = {s.name for s in stages}
    for stage in stages:
        if stage.base in stage_names:
            continue
        assert PINNED_BASE.match(stage.base), f"base image {stage.base!r} is not pinned"


def test_first_stage_builds_the_wheel(dockerfile):
    _, stages = dockerfile
    runs = " ".join(i.args for i in stages[0].all("RUN"))
    assert "pip wheel" in runs or "-m build" in runs
    assert "/dist" in runs


def test_final_stage_installs_only_wheels(dockerfile):
    _, stages = dockerfile
    build, final = stages[0], stages[-1]
    for ins in final.all("COPY") + final.all("ADD"):
        assert f"--from={build.name}" in ins.args and ".whl" in ins.args, (
            f"line {ins.line}: the final stage copies more than the wheel: {ins.args}"
        )
    installs = [i for i in final.all("RUN") if "pip install" in i.args]
    assert len(installs) == 1
    args = installs[0].args
    assert "--no-index" in args, "install from the built wheels only, not the index"
    assert f"from={build.name},source=/dist" in args or "/dist" in args
    for ins in final.all("RUN"):
        assert not re.search(r"pip install[^&]*\s\.(\s|$)", ins.args), "installs the source tree"


def test_runs_as_non_root_with_jetstream_entrypoint(dockerfile):
    _, stages = dockerfile
    final = stages[-1]
    users = final.all("USER")
    assert users, "no USER in the final stage"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), "the image runs as root"
    assert user.isdigit(), "use a numeric USER so runAsNonRoot can verify it"
    assert final.instructions.index(users[-1]) > max(
        final.instructions.index(i) for i in final.all("RUN")
    ), "USER must come after the last RUN"
    (entry,) = final.all("ENTRYPOINT")
    assert json.loads(entry.args) == ["jetstream"]


def test_no_secrets_in_env_or_args(dockerfile):
    args, stages = dockerfile
    pairs = list(args.items())
    for stage in stages:
        for ins in stage.all("ENV") + stage.all("ARG"):
            for m in re.finditer(r"(\w+)(?:=|\s+)(\"[^\"]*\"|\S+)?", ins.args):
                pairs.append((m.group(1), m.group(2) or ""))
    for key, value in pairs:
        assert not (SECRET_NAME.search(key) and value), f"{key} has a value in the image"


def test_apt_get_is_cleaned_up_and_no_build_tools(dockerfile):
    _, stages = dockerfile
    for stage in stages:
        for ins in stage.all("RUN"):
            if "apt-get install" in ins.args:
                assert "--no-install-recommends" in ins.args, f"line {ins.line}"
                assert "rm -rf /var/lib/apt/lists" in ins.args, f"line {ins.line}: apt lists kept"
            if "apt-get update" in ins.args:
                assert "apt-get install" in ins.args, f"line {ins.line}: update without install"
    final_runs = " ".join(i.args for i in stages[-1].all("RUN")).split()
    assert not set(BUILD_TOOLS) & set(final_runs), "build tools in the final stage"


def test_pip_keeps_no_cache(dockerfile):
    _, stages = dockerfile
    for stage in stages:
        env = " ".join(i.args for i in stage.all("ENV"))
        for ins in stage.all("RUN"):
            if "pip " in ins.args:
                assert "--no-cache-dir" in ins.args or "PIP_NO_CACHE_DIR=1" in env, (
                    f"line {ins.line}: pip without --no-cache-dir"
                )


# -- .dockerignore -----------------------------------------------------------------------


def _pattern(p: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(p):
        if p.startswith("**/", i):
            out += r"(?:.*/)?"
            i += 3
        elif p.startswith("**", i):
            out += ".*"
            i += 2
        elif p[i] == "*":
            out += "[^/]*"
            i += 1
        elif p[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(p[i])
            i += 1
    return re.compile(out + "$")


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: patterns in order, the last one matching the path or a parent wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        pat = os.path.normpath(raw[1:] if negate else raw).lstrip("/")
        rx = _pattern(pat)
        if any(rx.match(c) for c in candidates):
            result = not negate
    return result


def dockerignore() -> list[str]:
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/test_chart.py",
        "demo-output/index.html",
        "jetstream/__pycache__/cli.cpython-311.pyc",
        "jetstream.duckdb",
        "k8s/all.yaml",
    ],
)
def test_dockerignore_excludes(path):
    assert ignored(path, dockerignore())


def test_dockerignore_keeps_what_the_build_copies(dockerfile):
    _, stages = dockerfile
    patterns = dockerignore()
    for ins in stages[0].all("COPY"):
        for src in ins.args.split()[:-1]:
            if src.startswith("--"):
                continue
            target = REPO / src
            assert target.exists(), f"COPY {src}: not in the repository"
            files = (
                [target]
                if target.is_file()
                else [p for p in target.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            )
            for f in files[:200]:
                rel = f.relative_to(REPO).as_posix()
                assert not ignored(rel, patterns), f"{rel} is copied but .dockerignore drops it"


# -- the wheel, installed and run --------------------------------------------------------


@pytest.mark.slow
def test_wheel_builds_installs_and_runs(tmp_path):
    """Build the wheel from a copy of what the Docker context holds (isolated build env
    from the package index), install it with --no-deps into a fresh venv whose
    dependencies come from the project venv via a .pth file, and run the entry point."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "jetstream", src / "jetstream", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if build.returncode != 0 and "Could not find a version" in build.stdout + build.stderr:
        pytest.skip("the package index is unreachable: cannot create the build environment")
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = dist.glob("jetstream_platform-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "jetstream/cli.py" in names and "jetstream/py.typed" in names
    assert any(n.startswith("jetstream/data/demo/") for n in names), "package data missing"
    assert not any(n.startswith("tests/") for n in names)

    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300
    )
    py = venv / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # dependencies: the project venv's site-packages (its .pth files, including the
    # editable install of the source tree, are not processed from here)
    (Path(site) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    where = subprocess.run(
        [str(py), "-c", "import jetstream; print(jetstream.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tmp_path,
    ).stdout
    assert where.startswith(str(venv)), f"jetstream imported from {where}, not the wheel"
    exe = venv / "bin" / "jetstream"
    version = subprocess.run(
        [str(exe), "--version"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert version.returncode == 0, version.stderr
    from jetstream import __version__

    assert __version__ in version.stdout
    helptext = subprocess.run(
        [str(exe), "--help"], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert helptext.returncode == 0, helptext.stderr
    for command in ("run", "rerun-config-changed", "webhook", "task"):
        assert command in helptext.stdout
    serve = subprocess.run(
        [str(exe), "webhook", "serve", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert serve.returncode == 0 and "--repo-url" in serve.stdout


# -- supply chain: hash-locked dependencies, base image pinned by digest -----------------

LOCK = REPO / "requirements" / "image.txt"
BUILD_LOCK = REPO / "requirements" / "build.txt"
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)")


def locked(path: Path) -> dict[str, list[str]]:
    """name -> hashes of a pip-compile --generate-hashes file."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in path.read_text().splitlines():
        m = REQUIREMENT.match(line)
        if m:
            current = m.group(1).lower().replace("_", "-")
            out[current] = []
        elif line.strip().startswith("--hash=") and current:
            out[current].append(line.strip().removesuffix("\\").strip())
    return out


def test_base_image_is_pinned_by_digest(dockerfile):
    args, stages = dockerfile
    assert re.fullmatch(
        r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", args["PYTHON_IMAGE"]
    )
    for stage in stages:
        if stage.base not in {s.name for s in stages}:
            assert "@sha256:" in stage.base, stage.base


@pytest.mark.parametrize("lock", [LOCK, BUILD_LOCK], ids=["image", "build"])
def test_lock_files_pin_every_package_with_hashes(lock):
    packages = locked(lock)
    assert packages
    for name, hashes in packages.items():
        assert hashes, f"{name} has no --hash"
        assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), name


def test_lock_covers_every_declared_dependency():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = locked(LOCK)
    extras = project["project"]["optional-dependencies"]
    image_extras = [r for key in ("bigquery", "gcs", "argo", "webhook") for r in extras[key]]
    for requirement in [*project["project"]["dependencies"], *image_extras]:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in packages, f"{name} (pyproject.toml) is missing from {LOCK.name}"
    backend = project["build-system"]["requires"]
    build = locked(BUILD_LOCK)
    for requirement in backend:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()
        assert name in build, f"build backend {name} is not hash-locked"


def test_every_pip_install_requires_hashes(dockerfile):
    _, stages = dockerfile
    for stage in stages:
        for ins in stage.all("RUN"):
            for cmd in re.split(r"&&|;", ins.args):
                if re.search(r"\bpip (install|wheel)\b", cmd) and " -r " in cmd:
                    assert "--require-hashes" in cmd, f"line {ins.line}: {cmd.strip()}"
                elif re.search(r"\bpip (install|wheel)\b", cmd):
                    # the project itself: no dependencies fetched, nothing from an index
                    assert "--no-deps" in cmd, f"line {ins.line}: {cmd.strip()}"
    final_runs = " ".join(i.args for i in stages[-1].all("RUN"))
    assert "--require-hashes" in final_runs and "--no-index" in final_runs
    build_runs = " ".join(i.args for i in stages[0].all("RUN"))
    assert "--only-binary=:all:" in build_runs, "sdists would be rebuilt with other hashes"
