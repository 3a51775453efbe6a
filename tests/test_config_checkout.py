import subprocess
from pathlib import Path

import pytest

from jetstream import config_checkout
from jetstream.errors import ConfigError


def git(*args, cwd):
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[str, str, str]:
    src = tmp_path / "src"
    src.mkdir()
    git("init", "-q", "-b", "main", cwd=src)
    (src / "a.toml").write_text("v = 1\n")
    git("add", ".", cwd=src)
    git("commit", "-q", "-m", "one", cwd=src)
    first = git("rev-parse", "HEAD", cwd=src)
    (src / "a.toml").write_text("v = 2\n")
    git("commit", "-q", "-am", "two", cwd=src)
    second = git("rev-parse", "HEAD", cwd=src)
    git("config", "uploadpack.allowReachableSHA1InWant", "true", cwd=src)
    return f"file://{src}", first, second


def test_split_ref():
    assert config_checkout.split_ref("https://h/r.git@abc1234") == ("https://h/r.git", "abc1234")
    assert config_checkout.split_ref("git@github.com:o/r.git") == ("git@github.com:o/r.git", None)
    assert config_checkout.split_ref("/local/dir") == ("/local/dir", None)


def test_checkout_pins_a_commit_and_caches_it(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("JETSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    url, first, second = repo
    head = config_checkout.resolve(url)
    assert (head / "a.toml").read_text() == "v = 2\n"
    pinned = config_checkout.resolve(f"{url}@{first}")
    assert (pinned / "a.toml").read_text() == "v = 1\n"
    assert pinned.name == first
    assert config_checkout.resolve(f"{url}@{first}") == pinned  # cached
    local = tmp_path / "plain"
    assert config_checkout.resolve(str(local)) == local


def test_unknown_commit_is_a_config_error(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("JETSTREAM_CACHE_DIR", str(tmp_path / "cache"))
    url, _, _ = repo
    with pytest.raises(ConfigError, match="git fetch .*failed: .*not our ref"):
        config_checkout.resolve(f"{url}@{'0' * 40}")
