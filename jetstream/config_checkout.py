"""A config repository named by git URL, optionally pinned: `URL@REF` (a commit, tag or
branch). Pods and the webhook use it so every task of a rerun reads the configs of the
commit that triggered it. Checkouts are cached per URL and commit (git: `jetstream.gitrepo`)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from jetstream import gitrepo
from jetstream.errors import ConfigError


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


def checkout(spec: str) -> Path:
    """A local directory holding the files of the config repo `spec` (URL or URL@REF):
    one shallow fetch of the ref into the URL's cache (`gitrepo.ConfigRepoCache`), its
    tree exported once per commit. A git failure is a ConfigError naming the command;
    an unreachable host a TransientError (retried)."""
    url, ref = split_ref(spec)
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    try:
        cache = gitrepo.ConfigRepoCache(url, cache_root() / key, keep=None)
        if ref is not None and gitrepo.COMMIT_ID.fullmatch(ref.lower()):
            done = cache.tree_dir(ref.lower())
            if done.is_dir():
                return done
        return cache.checkout(cache.fetch(ref or "HEAD"))
    except gitrepo.GitUnavailable:
        raise
    except gitrepo.GitError as exc:
        raise ConfigError(str(exc)) from None


def pin(spec: str) -> tuple[Path, str]:
    """Check out `spec` (URL or URL@REF) and name the commit it resolved to:
    (directory, "URL@<commit sha>"), so other pods read exactly these configs."""
    path = checkout(spec)
    url, _ = split_ref(spec)
    return path, f"{url}@{path.name}"


def resolve(config_repo: str | Path) -> Path:
    """A local directory for a `--config-repo` value: a path, a git URL or URL@REF."""
    text = str(config_repo)
    if is_git_url(text):
        return checkout(text)
    return Path(text)
