"""Operating characteristics of the sequential SRM test (jetstream.monitoring.srm).

    python -m benchmarks.srm_simulation [--runs-power 500] [--runs-null 1000] [--seed 20260301]

- power: true split 50.5/49.5 against configured 50/50, looked at every 5 minutes with
  `--power-per-look` new clients per look, up to 200,000 clients; the share of runs
  that raised the alarm by then (target >= 80% of 500 runs);
- false alarms: a balanced split looked at every 5 minutes for 30 days (8,640 looks,
  `--null-per-look` new clients per look); the share of runs that ever raised it
  (target <= alpha + 2 standard errors of 1,000 runs), next to a fixed-threshold
  chi-square test applied at every look, for contrast.

Vectorised: the new clients of each look are one numpy binomial draw per run and look. Writes
benchmarks/results/srm_simulation.json and the table between the markers in
docs/monitoring.md.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from jetstream.monitoring.srm import DEFAULT_ALPHA, DEFAULT_CONCENTRATION, log_e_values

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "srm_simulation.json"
DOC = ROOT / "docs" / "monitoring.md"
START, END = "<!-- srm-simulation:start -->", "<!-- srm-simulation:end -->"
LOOKS_30_DAYS = 30 * 24 * 12


def _simulate(
    rng: np.random.Generator, runs: int, looks: int, per_look: int, share: float,
    alpha: float, concentration: float, chunk: int = 100,
) -> dict[str, Any]:  # fmt: skip
    """Detections of the e-process (and of a chi-square test at every look) over runs."""
    threshold = math.log(1 / alpha)
    chi_crit = stats.chi2.ppf(1 - alpha, df=1)
    detected = np.zeros(runs, dtype=bool)
    first_n = np.full(runs, np.nan)
    chi_detected = np.zeros(runs, dtype=bool)
    n = np.arange(1, looks + 1, dtype=float) * per_look
    for lo in range(0, runs, chunk):
        hi = min(runs, lo + chunk)
        first = rng.binomial(per_look, share, size=(hi - lo, looks)).cumsum(axis=1)
        counts = np.stack([first, n - first], axis=-1)
        logs = log_e_values(counts, [0.5, 0.5], concentration)
        hit = logs >= threshold
        detected[lo:hi] = hit.any(axis=1)
        idx = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
        first_n[lo:hi] = np.where(idx >= 0, n[np.maximum(idx, 0)], np.nan)
        chi = (2 * first - n) ** 2 / n  # (x - n/2)^2/(n/4) for two equal shares
        chi_detected[lo:hi] = (chi >= chi_crit).any(axis=1)
    rate = float(detected.mean())
    return {
        "runs": runs,
        "looks": looks,
        "clients_per_look": per_look,
        "clients_at_end": int(looks * per_look),
        "true_share_first_branch": share,
        "detection_rate": rate,
        "standard_error": math.sqrt(rate * (1 - rate) / runs),
        "median_clients_at_detection": (
            float(np.nanmedian(first_n)) if np.isfinite(first_n).any() else None
        ),
        "chi_square_every_look_rate": float(chi_detected.mean()),
    }


def run(runs_power: int = 500, runs_null: int = 1000, power_per_look: int = 500,
        null_per_look: int = 100, seed: int = 20260301, alpha: float = DEFAULT_ALPHA,
        concentration: float = DEFAULT_CONCENTRATION) -> dict[str, Any]:  # fmt: skip
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    power = _simulate(rng, runs_power, 200_000 // power_per_look, power_per_look, 0.505,
                      alpha, concentration)  # fmt: skip
    power_s = time.perf_counter() - started
    started = time.perf_counter()
    null = _simulate(rng, runs_null, LOOKS_30_DAYS, null_per_look, 0.5, alpha, concentration)
    null_s = time.perf_counter() - started
    null_bound = alpha + 2 * math.sqrt(alpha * (1 - alpha) / runs_null)
    return {
        "test": "dirichlet-multinomial mixture e-process",
        "alpha": alpha,
        "concentration": concentration,
        "seed": seed,
        "power": power | {"target": 0.8, "passed": power["detection_rate"] >= 0.8,
                          "seconds": round(power_s, 2)},
        "false_alarm": null | {"bound": null_bound,
                               "passed": null["detection_rate"] <= null_bound,
                               "seconds": round(null_s, 2)},
    }  # fmt: skip


def table(result: dict[str, Any]) -> str:
    p, f = result["power"], result["false_alarm"]
    return "\n".join(
        [
            f"Concentration K = {result['concentration']:,.0f}, alpha = {result['alpha']}, "
            f"seed {result['seed']} (`python -m benchmarks.srm_simulation`).",
            "",
            "| scenario | runs | looks (clients per look) | alarm rate | target | "
            "chi-square at every look |",
            "|---|---|---|---|---|---|",
            f"| 50.5/49.5 split, by 200,000 clients | {p['runs']} | {p['looks']:,} "
            f"({p['clients_per_look']}) | {p['detection_rate']:.3f} (median "
            f"{p['median_clients_at_detection']:,.0f} clients) | >= 0.80 "
            f"{'pass' if p['passed'] else 'FAIL'} | {p['chi_square_every_look_rate']:.3f} |",
            f"| balanced, every 5 minutes for 30 days | {f['runs']} | {f['looks']:,} "
            f"({f['clients_per_look']}) | {f['detection_rate']:.3f} | <= {f['bound']:.4f} "
            f"{'pass' if f['passed'] else 'FAIL'} | {f['chi_square_every_look_rate']:.3f} |",
        ]
    )


def update_doc(text: str, path: Path = DOC) -> None:
    if not path.is_file():
        return
    doc = path.read_text()
    if START not in doc or END not in doc:
        return
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.srm_simulation",
                                     description=__doc__)  # fmt: skip
    parser.add_argument("--runs-power", type=int, default=500)
    parser.add_argument("--runs-null", type=int, default=1000)
    parser.add_argument("--power-per-look", type=int, default=500)
    parser.add_argument("--null-per-look", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20260301)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    result = run(args.runs_power, args.runs_null, args.power_per_look, args.null_per_look,
                 args.seed)  # fmt: skip
    text = table(result)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        update_doc(text)
    return 0 if result["power"]["passed"] and result["false_alarm"]["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
