"""A config repository named by git URL, optionally pinned: `URL@REF` (a commit, tag or
branch). Pods and the webhook use it so every task of a rerun reads the configs of the
commit that triggered it. Checkouts are cached per URL and commit."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from jetstream.errors import ConfigError, TransientError


def is_git_url(text: str) -> bool:
    return "://" in text or text.startswith("git@")


def split_ref(text: str) -> tuple[str, str | None]:
    """`https://host/repo.git@abc123` -> (url, "abc123"); no `@` after the path: no ref."""
    head, sep, ref = text.rpartition("@")
    if sep and "/" not in ref and ":" not in ref and head and is_git_url(head):
        return head, ref
    return text, None


def cache_root() -> Path:
    base = os.environ.get("JETSTREAM_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path(tempfile.gettempdir())
    return root / "jetstream-config-repos"


def _git(args: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        message = proc.stderr.strip() or f"exit {proc.returncode}"
        if "Could not resolve host" in message or "unable to access" in message:
            raise TransientError(f"git {' '.join(args[:2])}: {message}")
        raise ConfigError(f"git {' '.join(args[:2])} failed: {message}")
    return proc.stdout.strip()


def checkout(spec: str) -> Path:
    """A local directory holding the config repo `spec` (URL or URL@REF)."""
    url, ref = split_ref(spec)
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    root = cache_root() / key
    if ref is not None and len(ref) >= 7 and all(c in "0123456789abcdef" for c in ref.lower()):
        done = root / ref
        if (done / ".git").exists():
            return done
    work = Path(tempfile.mkdtemp(prefix="checkout-", dir=_mkdir(root)))
    _git(["init", "--quiet"], cwd=work)
    _git(["remote", "add", "origin", url], cwd=work)
    _git(["fetch", "--quiet", "--depth", "1", "origin", ref or "HEAD"], cwd=work)
    _git(["checkout", "--quiet", "FETCH_HEAD"], cwd=work)
    sha = _git(["rev-parse", "HEAD"], cwd=work)
    final = root / sha
    if final.exists():
        return final
    try:
        work.rename(final)
    except OSError:  # another process won the race
        return final if final.exists() else work
    return final


def pin(spec: str) -> tuple[Path, str]:
    """Check out `spec` (URL or URL@REF) and name the commit it resolved to:
    (directory, "URL@<commit sha>"), so other pods read exactly these configs."""
    path = checkout(spec)
    url, _ = split_ref(spec)
    return path, f"{url}@{_git(['rev-parse', 'HEAD'], cwd=path)}"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve(config_repo: str | Path) -> Path:
    """A local directory for a `--config-repo` value: a path, a git URL or URL@REF."""
    text = str(config_repo)
    if is_git_url(text):
        return checkout(text)
    return Path(text)
