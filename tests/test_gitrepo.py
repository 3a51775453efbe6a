"""jetstream.gitrepo: the hardening every git command gets, on real repositories. Each test
first shows that plain git does the dangerous thing in the same setup, so it can fail."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from jetstream import gitrepo
from jetstream.errors import TransientError


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def work_tree(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "a.toml").write_text("v = 1\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "one", cwd=repo)
    (repo / "a.toml").write_text("v = 2\n")
    git("commit", "-q", "-am", "two", cwd=repo)
    return repo


def marker_script(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """An executable that creates a marker file when run; (script, marker)."""
    marker = tmp_path / f"{name}.ran"
    script = tmp_path / f"{name}.sh"
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
    script.chmod(0o755)
    return script, marker


def test_repository_config_cannot_run_commands(work_tree, tmp_path):
    """A work tree's own config (here core.fsmonitor, run by `git diff`) runs nothing."""
    script, marker = marker_script(tmp_path, "fsmonitor")
    git("config", "core.fsmonitor", str(script), cwd=work_tree)
    (work_tree / "a.toml").write_text("v = 3\n")
    subprocess.run(["git", "diff", "--name-only", "HEAD~1"], cwd=work_tree, capture_output=True)
    assert marker.exists()  # plain git ran it
    marker.unlink()
    assert gitrepo.worktree_changes(work_tree, "HEAD~1") == ["a.toml"]
    assert not marker.exists()


def test_hooks_do_not_run(work_tree, tmp_path):
    """A hook of the cache's bare repository (reference-transaction, run on every ref
    update of a fetch) does not run."""
    cache = gitrepo.ConfigRepoCache(f"file://{work_tree}", tmp_path / "cache")
    cache.update()
    script, marker = marker_script(tmp_path, "hook")
    hook = cache.git_dir / "hooks" / "reference-transaction"
    hook.write_bytes(script.read_bytes())
    hook.chmod(0o755)
    subprocess.run(["git", "--git-dir", str(cache.git_dir), "fetch", "-q"], capture_output=True)
    (work_tree / "b.toml").write_text("x = 1\n")
    git("add", ".", cwd=work_tree)
    git("commit", "-q", "-m", "three", cwd=work_tree)
    subprocess.run(["git", "--git-dir", str(cache.git_dir), "fetch", "-q"], capture_output=True)
    assert marker.exists()  # plain git ran it
    marker.unlink()
    git("commit", "-q", "--allow-empty", "-m", "four", cwd=work_tree)
    cache.update()
    assert not marker.exists()
    head = git("rev-parse", "HEAD", cwd=work_tree)
    assert cache.has_commit(head)


def test_inherited_variables_do_not_move_the_repository(work_tree, tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    git("init", "-q", cwd=other)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.fsmonitor'='/bin/false'")
    assert gitrepo.git_dir_of(work_tree) == work_tree / ".git"
    assert gitrepo.worktree_changes(work_tree, "HEAD~1") == ["a.toml"]


def test_refs_and_urls_cannot_be_options(work_tree, tmp_path):
    out = tmp_path / "written-by-diff"
    subprocess.run(["git", "diff", f"--output={out}", "HEAD"], cwd=work_tree, capture_output=True)
    assert out.exists()  # plain git would write it
    out.unlink()
    git_dir = work_tree / ".git"
    for ref in (f"--output={out}", "", "HEAD 1", "a\nb"):
        with pytest.raises(gitrepo.GitError, match="not a usable git ref"):
            gitrepo.changed_paths(git_dir, ref, "HEAD")
    assert not out.exists()
    with pytest.raises(gitrepo.GitError, match="not a usable git ref"):
        gitrepo.export_tree(git_dir, "--remote=x", tmp_path / "t")
    script, marker = marker_script(tmp_path, "ext")
    for url in ("--upload-pack=" + str(script), f"ext::{script}"):
        with pytest.raises(gitrepo.GitError, match="not a usable git url"):
            gitrepo.ConfigRepoCache(url, tmp_path / "cache")
    # a ref is passed after --end-of-options: an unknown one is git's error, named
    with pytest.raises(gitrepo.GitError, match="git diff --name-only failed: .*no-such-ref"):
        gitrepo.changed_paths(git_dir, "no-such-ref", "HEAD")
    assert not marker.exists()


def test_timeout_is_transient(tmp_path):
    with pytest.raises(gitrepo.GitUnavailable, match="timed out") as info:
        gitrepo.run("-c", "alias.slow=!sleep 2", "slow", cwd=tmp_path, timeout=0.2)
    assert isinstance(info.value, TransientError)
    assert isinstance(info.value, gitrepo.GitError)


def test_shallow_fetch_and_export_are_cached(work_tree, tmp_path):
    cache = gitrepo.ConfigRepoCache(f"file://{work_tree}", tmp_path / "cache", keep=None)
    sha = cache.fetch("main")
    assert sha == git("rev-parse", "HEAD", cwd=work_tree)
    tree = cache.checkout(sha)
    assert tree == tmp_path / "cache" / "checkouts" / sha
    assert (tree / "a.toml").read_text() == "v = 2\n"
    assert not (tree / ".git").exists()
    os.utime(tree, (0, 0))
    assert cache.checkout(sha) == tree
    with pytest.raises(gitrepo.GitError, match="not a commit id"):
        cache.checkout("../escape")
