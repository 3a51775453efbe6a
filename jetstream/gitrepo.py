"""The one way jetstream runs git, and the cache of config repositories it reads.

Every command goes through `run`, hardened once:
- no prompts, no system or user config, no inherited variables that move the repository
  or inject config (GIT_DIR, GIT_CONFIG_PARAMETERS, ...), English messages;
- no hooks, no fsmonitor, no external diff (`--no-ext-diff`), no `ext::` transport (a
  URL that runs a command), whatever the repository's own config says;
- `--end-of-options` before every ref and URL, which are also refused when they could read
  as an option;
- a timeout; one error type, `GitError`, whose `GitUnavailable` subclass (a timeout, an
  unreachable host) is also a `TransientError`, so the task is retried.

`ConfigRepoCache` keeps one bare repository per URL and an exported tree (`git archive`,
no `.git`) per commit, under one directory.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from jetstream.errors import JetstreamError, TransientError
from jetstream.warehouse.filelock import FileLock

TIMEOUT = 300.0  # seconds, per git command
END = "--end-of-options"
COMMIT_ID = re.compile(r"[0-9a-f]{7,64}")

# set on every command, before its own options: win over the repository's config
HARDENING = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("protocol.ext.allow", "never"),
)
ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ASKPASS": "true",
    "LC_ALL": "C",
    "LANGUAGE": "C",
}
# inherited variables that would point git at another repository or add config
DROPPED_ENV = re.compile(
    r"GIT_(DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|"
    r"COMMON_DIR|NAMESPACE|CEILING_DIRECTORIES|DISCOVERY_ACROSS_FILESYSTEM|CONFIG|"
    r"CONFIG_PARAMETERS|CONFIG_COUNT|CONFIG_KEY_\d+|CONFIG_VALUE_\d+|EXTERNAL_DIFF|"
    r"EXEC_PATH|TEMPLATE_DIR|PAGER|EDITOR|SEQUENCE_EDITOR)"
)
NETWORK_MESSAGES = ("Could not resolve host", "unable to access")


class GitError(JetstreamError):
    """A git command failed; the message names the command and git's own message."""


class GitUnavailable(GitError, TransientError):
    """git could not reach the remote, or timed out: retryable."""


def environment() -> dict[str, str]:
    """The environment of every git command."""
    env = {k: v for k, v in os.environ.items() if not DROPPED_ENV.fullmatch(k)}
    env.update(ENV)
    return env


def argument(value: str, what: str = "ref") -> str:
    """`value` (a ref, commit or URL from a config or a request) when git can only read it
    as one: not empty, no leading `-`, no control characters or whitespace."""
    if not value or value.startswith("-") or re.search(r"[\x00-\x20\x7f]", value):
        raise GitError(f"not a usable git {what}: {value!r}")
    if what == "url" and value.lower().startswith("ext::"):
        raise GitError(f"not a usable git url: {value!r}")
    return value


def run(
    *args: str,
    cwd: Path | None = None,
    git_dir: Path | None = None,
    timeout: float = TIMEOUT,
) -> bytes:
    """Run `git ARGS` hardened (see the module docstring); its standard output."""
    cmd = ["git"]
    for key, value in HARDENING:
        cmd += ["-c", f"{key}={value}"]
    if git_dir is not None:
        cmd += ["--git-dir", str(git_dir)]
    cmd += args
    name = " ".join(a for a in args[:2] if a != END)
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=environment(),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitUnavailable(f"git {name} timed out after {timeout:.0f}s") from None
    except OSError as exc:  # git itself missing
        raise GitError(f"git {name}: {exc}") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        message = " | ".join(line.strip() for line in lines[-4:] if line.strip())
        message = message or f"exit {proc.returncode}"
        error = GitUnavailable if any(m in message for m in NETWORK_MESSAGES) else GitError
        raise error(f"git {name} failed: {message}")
    return proc.stdout


def text(*args: str, cwd: Path | None = None, git_dir: Path | None = None) -> str:
    return run(*args, cwd=cwd, git_dir=git_dir).decode().strip()


def _names(out: bytes) -> list[str]:
    return [p for p in out.decode().split("\0") if p]


def git_dir_of(work_tree: Path) -> Path:
    """The git directory of a work tree."""
    return Path(text("rev-parse", "--absolute-git-dir", cwd=work_tree))


def changed_paths(git_dir: Path, before: str, after: str) -> list[str]:
    """Paths that differ between two commits (renames count as both paths)."""
    out = run(
        "diff",
        "--name-only",
        "--no-renames",
        "--no-ext-diff",
        "-z",
        END,
        argument(before),
        argument(after),
        "--",
        git_dir=git_dir,
    )
    return _names(out)


def worktree_changes(work_tree: Path, since: str) -> list[str]:
    """Paths of a work tree that differ from `since` (uncommitted edits included), and
    untracked files that are not ignored; sorted."""
    tracked = run(
        "diff",
        "--name-only",
        "--no-renames",
        "--no-ext-diff",
        "-z",
        END,
        argument(since),
        "--",
        cwd=work_tree,
    )
    untracked = run("ls-files", "--others", "--exclude-standard", "-z", cwd=work_tree)
    return sorted(set(_names(tracked) + _names(untracked)))


def export_tree(git_dir: Path, commit: str, dest: Path) -> Path:
    """Write the files of `commit` into `dest` (via `git archive`, no work tree state)."""
    data = run("archive", "--format=tar", END, argument(commit), git_dir=git_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


class ConfigRepoCache:
    """A bare repository of one remote and read-only trees per commit, under `directory`.

    cache = ConfigRepoCache(url, Path("/tmp/jetstream-config"))
    cache.update()                       # mirror once, then fetch everything
    sha = cache.fetch("main")            # or fetch one ref, shallow
    tree = cache.checkout(sha)           # <dir>/checkouts/<sha>/

    Writes to the bare repository hold a file lock (several processes may share the
    directory); with `keep`, only that many trees stay (the oldest are removed).
    """

    def __init__(self, url: str, directory: Path, keep: int | None = 8):
        self.url = argument(url, "url")
        self.directory = Path(directory)
        self.git_dir = self.directory / "mirror.git"
        self.keep = keep

    def _lock(self) -> FileLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        return FileLock(self.directory / "git.lock", timeout=2 * TIMEOUT)

    def _create(self, mirror: bool) -> None:
        """The bare repository, made aside and moved into place (holding the lock)."""
        tmp = Path(tempfile.mkdtemp(dir=self.directory, prefix="clone-"))
        try:
            if mirror:
                run("clone", "--mirror", "--quiet", END, self.url, str(tmp / "m.git"))
            else:
                run("init", "--bare", "--quiet", str(tmp / "m.git"))
                run("remote", "add", END, "origin", self.url, git_dir=tmp / "m.git")
            os.replace(tmp / "m.git", self.git_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def update(self) -> None:
        """Clone the whole remote once (a mirror), then fetch and prune."""
        lock = self._lock()
        lock.acquire()
        try:
            if not (self.git_dir / "HEAD").exists():
                self._create(mirror=True)
                return
            run("remote", "set-url", END, "origin", self.url, git_dir=self.git_dir)
            run("fetch", "--quiet", "--prune", END, "origin", git_dir=self.git_dir)
        finally:
            lock.release()

    def fetch(self, ref: str, depth: int | None = 1) -> str:
        """Fetch one ref of the remote (a branch, tag or commit id; `depth` commits of
        history); its commit id."""
        ref = argument(ref)
        lock = self._lock()
        lock.acquire()
        try:
            if not (self.git_dir / "HEAD").exists():
                self._create(mirror=False)
            deepen = ["--depth", str(int(depth))] if depth is not None else []
            run("fetch", "--quiet", *deepen, END, "origin", ref, git_dir=self.git_dir)
            return text("rev-parse", "--verify", END, "FETCH_HEAD^{commit}", git_dir=self.git_dir)
        finally:
            lock.release()

    def has_commit(self, commit: str) -> bool:
        try:
            run("cat-file", "-e", END, f"{argument(commit)}^{{commit}}", git_dir=self.git_dir)
        except GitError:
            return False
        return True

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether `ancestor` is reachable from `descendant` (false when either is unknown)."""
        try:
            run(
                "merge-base",
                "--is-ancestor",
                argument(ancestor),
                argument(descendant),
                git_dir=self.git_dir,
            )
        except GitError:
            return False
        return True

    def tree_dir(self, commit: str) -> Path:
        """Where the tree of `commit` (a full or abbreviated commit id) is kept."""
        if not COMMIT_ID.fullmatch(commit):
            raise GitError(f"not a commit id: {commit!r}")
        return self.directory / "checkouts" / commit

    def checkout(self, commit: str) -> Path:
        """The files of `commit`, exported once."""
        target = self.tree_dir(commit)
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(dir=self.directory, prefix="checkout-"))
        try:
            export_tree(self.git_dir, commit, tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, target)
            except OSError:  # another request made it first
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if self.keep is not None:
            self._prune(keep_also=target)
        return target

    def changed_paths(self, before: str, after: str) -> list[str]:
        return changed_paths(self.git_dir, before, after)

    def _prune(self, keep_also: Path) -> None:
        assert self.keep is not None
        root = self.directory / "checkouts"
        dirs = sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in dirs[self.keep :]:
            if old != keep_also:
                shutil.rmtree(old, ignore_errors=True)
