"""A config repository in the metric-hub layout, read once. The only module in
`jetstream.config` that reads files.

    definitions/<app>.toml, definitions/functions.toml
    jetstream/definitions/<app>.toml (merged over definitions/<app>.toml), functions.toml
    jetstream/defaults/<app>.toml
    jetstream/outcomes/<app>/<slug>.toml
    jetstream/<slug>.toml                 experiment configs
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from jetstream import nesting
from jetstream.config.problems import Problem
from jetstream.config.values import lower_keys
from jetstream.logs import get_logger

log = get_logger(__name__)

NAMED_SECTIONS = ("metrics", "data_sources", "parameters", "dimensions")


def read_toml(path: Path, label: str | None = None) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Parse one TOML file. Never raises for a bad file: returns (None, [problem]) for a
    directory, a missing, unreadable or binary file, or malformed TOML (including TOML
    nested more than `nesting.MAX_DEPTH` levels)."""
    name = label or str(path)
    if path.is_dir():
        return None, [Problem(name, "", "is a directory, not a TOML file")]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, [Problem(name, "", "file not found")]
    except OSError as exc:
        return None, [Problem(name, "", f"cannot be read: {exc.strerror or exc}")]
    if b"\x00" in data:
        return None, [Problem(name, "", "is a binary file, not TOML")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(name, "", f"is not UTF-8 text (byte {exc.start})")]
    try:
        return lower_keys(
            nesting.loads_toml(text, name)
        ), []  # keys lower-cased, as metric-hub does
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem(name, "", f"malformed TOML: {exc}")]
    except nesting.NestingError as exc:
        return None, [Problem(name, "", f"malformed TOML: {str(exc).removeprefix(name + ': ')}")]


def merge_named(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge two parsed files section by section: in `metrics`, `data_sources`, `segments`,
    `segments.data_sources`, `parameters`, each named table is merged key by key, `over`
    winning; other keys of `over` replace those of `base`."""
    out = dict(base)
    for key, value in over.items():
        if key in NAMED_SECTIONS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_tables(out[key], value)
        elif key == "segments" and isinstance(value, dict) and isinstance(out.get(key), dict):
            segs = _merge_tables(out[key], {k: v for k, v in value.items() if k != "data_sources"})
            if "data_sources" in value or "data_sources" in out[key]:
                segs["data_sources"] = _merge_tables(
                    out[key].get("data_sources") or {}, value.get("data_sources") or {}
                )
            out[key] = segs
        else:
            out[key] = value
    return out


def _merge_tables(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, table in over.items():
        if isinstance(table, dict) and isinstance(out.get(name), dict):
            out[name] = {**out[name], **table}
        else:
            out[name] = table
    return out


class ConfigRepo:
    """A metric-hub layout directory, parsed once."""

    def __init__(self, root: Path):
        self.root = root
        self.definitions: dict[str, dict[str, Any]] = {}  # app -> merged definitions
        self.definition_files: dict[str, list[str]] = {}  # app -> files merged, low first
        self.functions: dict[str, str] = {}  # slug -> definition with {select_expr}
        self.defaults: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[tuple[str, str], dict[str, Any]] = {}  # (app, slug) -> outcome
        self.load_problems: list[Problem] = []  # support files that could not be parsed
        self._experiment_configs: dict[str, dict[str, Any] | None] = {}

    @classmethod
    def load(cls, path: Path) -> ConfigRepo:
        path = Path(path)
        if not path.is_dir():
            from jetstream.errors import ConfigError

            raise ConfigError(f"{path}: config repo is not a directory")
        repo = cls(path)
        repo._load()
        return repo

    @classmethod
    def empty(cls) -> ConfigRepo:
        """A repository with nothing in it (configs must then be self-contained)."""
        return cls(Path("."))

    def _read(self, path: Path) -> dict[str, Any] | None:
        doc, problems = read_toml(path, self.label(path))
        self.load_problems.extend(problems)
        return doc

    def label(self, path: Path) -> str:
        return str(path)

    def _load(self) -> None:
        jet = self.root / "jetstream"
        for base_dir in (self.root / "definitions", jet / "definitions"):
            if not base_dir.is_dir():
                continue
            for f in sorted(base_dir.glob("*.toml")):
                doc = self._read(f)
                if doc is None:
                    continue
                if f.name == "functions.toml":
                    for slug, fn in (doc.get("functions") or {}).items():
                        if isinstance(fn, dict) and isinstance(fn.get("definition"), str):
                            self.functions[slug] = fn["definition"]
                    continue
                app = f.stem
                self.definitions[app] = merge_named(self.definitions.get(app, {}), doc)
                self.definition_files.setdefault(app, []).append(self.label(f))
        if (jet / "defaults").is_dir():
            for f in sorted((jet / "defaults").glob("*.toml")):
                doc = self._read(f)
                if doc is not None:
                    self.defaults[f.stem] = doc
        if (jet / "outcomes").is_dir():
            for f in sorted((jet / "outcomes").glob("*/*.toml")):
                doc = self._read(f)
                if doc is not None:
                    self.outcomes[(f.parent.name, f.stem)] = doc
        log.debug(
            "config_repo_loaded",
            root=str(self.root),
            platforms=self.platforms,
            outcomes=len(self.outcomes),
        )

    @property
    def platforms(self) -> list[str]:
        """Apps that have jetstream/defaults/<app>.toml and definitions (type defaults such as
        messaging.toml are not platforms)."""
        return sorted(app for app in self.defaults if app in self.definitions)

    def defaults_path(self, app: str) -> str:
        return self.label(self.root / "jetstream" / "defaults" / f"{app}.toml")

    def outcome_path(self, app: str, slug: str) -> str:
        return self.label(self.root / "jetstream" / "outcomes" / app / f"{slug}.toml")

    def definitions_label(self, app: str) -> str:
        files = self.definition_files.get(app) or [f"definitions/{app}.toml"]
        return " + ".join(files)

    def outcome_slugs(self, app: str) -> list[str]:
        return sorted(slug for (a, slug) in self.outcomes if a == app)

    def experiment_config_path(self, slug: str) -> Path:
        return self.root / "jetstream" / f"{slug}.toml"

    def experiment_config(self, slug: str) -> dict[str, Any] | None:
        """The parsed jetstream/<slug>.toml, or None when there is none (or it is broken:
        see `load_problems`)."""
        if slug not in self._experiment_configs:
            path = self.experiment_config_path(slug)
            self._experiment_configs[slug] = self._read(path) if path.is_file() else None
        return self._experiment_configs[slug]

    def experiment_slugs(self) -> list[str]:
        jet = self.root / "jetstream"
        return sorted(f.stem for f in jet.glob("*.toml")) if jet.is_dir() else []
