"""The real metric-hub corpus: every file parses, and the validation tally in
docs/config-corpus.md is what the validator says today."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

from jetstream.config import ConfigRepo, validate_file
from jetstream.config.schema import check
from jetstream.config.validate import file_kind
from tests.support.paths import REPO


def _corpus_module():
    spec = importlib.util.spec_from_file_location(
        "config_corpus", REPO / "scripts" / "config_corpus.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared
def test_whole_corpus_parses_and_checks(metric_hub: Path):
    files = sorted(metric_hub.rglob("*.toml"))
    assert len(files) > 300
    for f in files:
        doc = tomllib.loads(f.read_text())
        check(doc, file_kind(f), str(f))  # never raises, whatever the content


@pytest.mark.shared
def test_support_files_have_only_their_known_problems(metric_hub: Path):
    repo = ConfigRepo.load(metric_hub)
    assert repo.load_problems == []
    assert repo.platforms == [
        "fenix", "firefox_desktop", "firefox_ios", "focus_android", "focus_ios",
        "klar_android", "klar_ios", "monitor_cirrus",
    ]  # fmt: skip
    support = [
        *metric_hub.glob("definitions/*.toml"),
        *metric_hub.glob("jetstream/definitions/*.toml"),
        *metric_hub.glob("jetstream/defaults/*.toml"),
        *metric_hub.glob("jetstream/outcomes/*/*.toml"),
    ]
    found = set()
    for f in support:
        for p in validate_file(f, repo, None, "auto"):
            found.add((str(f.relative_to(metric_hub)), p.key.split(".")[-1], p.level))
    # `descriptions` is a misspelling; `exposure_basis` is not a metric key (the reference
    # tool ignores both silently).
    assert found == {
        ("definitions/ads.toml", "descriptions", "error"),
        *(("jetstream/outcomes/firefox_desktop/firefox_suggest.toml", "exposure_basis", "error"),),
    }


@pytest.mark.shared
@pytest.mark.slow
def test_corpus_report_is_current(metric_hub: Path):
    corpus = _corpus_module()
    text = corpus.corpus_report(metric_hub)
    assert corpus.MISSING_REASON not in text, "an invalid config has no investigated reason"
    assert "remove them from REASONS" not in text
    committed = (REPO / "docs" / "config-corpus.md").read_text()
    assert text == committed, (
        "docs/config-corpus.md is out of date: run .venv/bin/python scripts/config_corpus.py"
    )


def test_parity_constructs_are_recognised():
    c = _corpus_module()
    doc = {
        "metrics": {
            "*": {"Friendly_Name": "x"},
            "m": {
                "statistics": {
                    "per_client_dau_impact": {"drop_highest": 0.1},
                    "kernel_density_estimate": {"bandwidth": 0.3},
                    "bootstrap_mean": {
                        "pre_treatments": [{"name": "remove_nulls", "analysis_period_length": 7}]
                    },
                }
            },
        },
        "alerts": {},
        "segments": {"data_sources": {"s": {"group_id_column": "x"}}},
    }
    assert c.parity_uses(doc) == set(c.PARITY_CONSTRUCTS)
    plain = {"metrics": {"UpperSlug": {"select_expression": "1"}}}
    assert c.parity_uses(plain) == set()  # slugs keep their case: not a mixed-case key
