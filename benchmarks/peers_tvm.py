"""Time-varying media, bayesmmm vs PyMC-Marketing's ``time_varying_media``, on the same data.

Run through nox (``nox -s bench_peers_tvm``), which builds PyMC-Marketing's own virtualenv
and passes its interpreter as ``--peer-python``. Every fit is a fresh process: ours of this
interpreter (:func:`ours_child`), PyMC-Marketing's of the peer interpreter
(``benchmarks/peer_tvm_fit.py``, which does not import bayesmmm); the compilation caches
under ``OUT/cache`` are shared by every fit (after the first data set, a refit's caches).

Data: the built-in ``effect_change`` scenario (156 weeks of search / social / tv; social's
true effect halves mid-history, the others are constant), one data set per seed. Each data
set is fitted by

- ``bayesmmm constant``: constant effects;
- ``bayesmmm varying``: ``time_varying_media: {channels: [social], kind: hsgp}``;
- ``pymc-marketing varying``: PyMC-Marketing's ``MMM(time_varying_media=True)``, its one
  HSGP multiplier over time shared by every channel (its default HSGP settings);
- ``pymc-marketing constant`` too with ``--peer-constant``.

The same model family on both sides: geometric adstock (``--l-max``, default 8), the truth's
saturation family (``--saturation``, default ``hill``), yearly seasonality 2, a linear trend;
same chains, draws, tune, target_accept, seed and sampler (numpyro). Each library's own
default priors.

Scoring, the same code for every arm: each channel's ROAS per calendar year is the year's
posterior contribution (every draw; original units) over the year's spend; its posterior
mean is scored against the truth's (the simulator's weekly contributions over the same
spend, :func:`~bayesmmm.workflows.simulate_varying.roas_by_year`), as a relative error in
the first and the last year, with the 90% interval's coverage of the truth. The constant
channels (search, tv) check that the units agree (and PyMC-Marketing's fit reports its mean
weekly media total and intercept in original units next to the target's mean). Wall: the
libraries' ``fit`` calls (model build, compile, sampling). Convergence: max R-hat,
divergences. ``multiplier_first/last_year_mean``: PyMC-Marketing's shared multiplier,
posterior mean, averaged over the first / last third of the weeks (a year each here).

Usage (modest sizes; the machine is shared)::

    OMP_NUM_THREADS=1 nice -n 10 nox -s bench_peers_tvm -- --seeds 3 --chains 2 --draws 500 --tune 500

Writes ``OUT/rows.csv`` (one row per data set × arm × channel), ``OUT/fits.csv`` (one per
fit), ``OUT/summary.md`` and per fit ``OUT/fits/<seed>-<arm>.json``; finished fits with the
same settings are kept, so a larger ``--seeds`` only fits the new data sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmmm.workflows.bench import cache_env, run_child
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate
from bayesmmm.workflows.simulate_varying import roas_by_year

ROOT = Path(__file__).resolve().parents[1]
PEER_FIT = ROOT / "benchmarks" / "peer_tvm_fit.py"
CHANGED = "social"
CHANNELS = ["search", "social", "tv"]
DATA = {"date_column": "date", "target_column": "sales", "channel_columns": CHANNELS}
ARMS = ("bayesmmm/constant", "bayesmmm/varying", "pymc-marketing/constant", "pymc-marketing/varying")


def yearly_roas_draws(dates: pd.DatetimeIndex, contribution: np.ndarray, spend: np.ndarray) -> dict[str, np.ndarray]:
    """Per calendar year of ``dates``, every draw's ROAS per channel.

    Parameters
    ----------
    dates : the weekly dates, length T.
    contribution : (sample, T, channel) posterior draws of each channel's weekly contribution
        in the target's original units.
    spend : (T, channel) spend per week.

    Returns
    -------
    ``{year: (sample, channel) array}``: the year's contribution over the year's spend (NaN
    where a channel did not spend that year).
    """
    contribution, spend = np.asarray(contribution, dtype=float), np.asarray(spend, dtype=float)
    if contribution.shape[1:] != spend.shape:
        raise ValueError(f"contribution {contribution.shape} and spend {spend.shape} disagree on (date, channel)")
    years = pd.DatetimeIndex(dates).year.to_numpy()
    out = {}
    for year in dict.fromkeys(years):
        mask = years == year
        total = spend[mask].sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[str(year)] = contribution[:, mask, :].sum(axis=1) / np.where(total > 0, total, np.nan)
    return out


def score_rows(
    draws: dict[str, np.ndarray], truth: dict[str, dict[str, float]], channels: list[str]
) -> list[dict[str, Any]]:
    """One row per channel: posterior-mean ROAS in the first and last year against ``truth``
    (``{channel: {year: true ROAS}}``), relative errors and whether the 90% interval covers it."""
    first, last = min(draws), max(draws)
    rows = []
    for c, ch in enumerate(channels):
        row: dict[str, Any] = {"channel": ch}
        for label, year in (("first", first), ("last", last)):
            d = draws[year][:, c]
            lo, hi = np.quantile(d, [0.05, 0.95])
            true = truth[ch][year]
            row.update(
                {
                    f"year_{label}": year,
                    f"true_roas_{label}": true,
                    f"roas_{label}": float(d.mean()),
                    f"rel_error_{label}": float(d.mean() / true - 1),
                    f"covered90_{label}": bool(lo <= true <= hi),
                }
            )
        rows.append(row)
    return rows


def simulate_set(seed: int, out: Path) -> dict[str, Any]:
    """Write the seed's data set; its dates, spend and true ROAS per channel and year."""
    scenario = load_scenario(builtin_scenario("effect_change"))
    frame, truth = simulate(scenario.model_copy(update={"seed": seed}))
    path = out / "data" / f"effect_change-{seed}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    dates = pd.DatetimeIndex(pd.to_datetime(frame["date"]))
    spend = frame[CHANNELS].to_numpy(dtype=float)
    true = {
        ch: roas_by_year(dates, np.asarray(truth["channels"][ch]["weekly_contribution"]), spend[:, c])
        for c, ch in enumerate(CHANNELS)
    }
    return {"seed": seed, "path": path, "frame": frame, "dates": dates, "spend": spend, "truth": true}


_OURS_CHILD = (
    "import importlib.util as u; "
    f"s = u.spec_from_file_location('peers_tvm', {str(Path(__file__).resolve())!r}); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); m.ours_child()"
)


def ours_child() -> None:  # pragma: no cover - runs in the subprocess
    """Fit one data set with bayesmmm (spec on stdin), as ``benchmarks/peer_tvm_fit.py`` does theirs."""
    from bayesmmm.data.loading import read_csv
    from bayesmmm.evaluation.summaries import diagnostics
    from bayesmmm.evaluation.varying import roas_by_period_table
    from bayesmmm.model.mmm import MMM

    spec = json.loads(sys.stdin.read())
    model: dict[str, Any] = {
        "adstock": {"name": "geometric", "l_max": spec["l_max"]},
        "saturation": {"name": spec["saturation"]},
        "yearly_seasonality": 2,
        "trend": "linear",
    }
    if spec["time_varying_media"]:
        model["time_varying_media"] = {"channels": [CHANGED], "kind": "hsgp"}
    frame = read_csv(spec["data_path"])
    mmm = MMM(DATA, model)
    start = time.perf_counter()
    mmm.fit(frame, spec["sampler"])
    wall = time.perf_counter() - start
    diag = diagnostics(mmm.idata)
    media = mmm.posterior_components()["media"].stack(sample=("chain", "draw"))
    contribution = np.asarray(media.transpose("sample", "date", "channel").sel(channel=CHANNELS), dtype=float)
    # the scoring must agree with the library's own roas_by_period.csv (same draws, same spend)
    table = roas_by_period_table(mmm)
    own = table[table.kind == "year"].set_index(["channel", "period"])["roas_mean"]
    dates = pd.DatetimeIndex(mmm.data.dates)
    for year, d in yearly_roas_draws(dates, contribution, frame[CHANNELS].to_numpy(dtype=float)).items():
        for c, ch in enumerate(CHANNELS):
            if not np.isclose(d[:, c].mean(), own[(ch, year)], rtol=1e-6):
                raise AssertionError(f"{ch} {year}: scoring {d[:, c].mean()} != roas_by_period {own[(ch, year)]}")
    np.savez_compressed(spec["contributions_path"], contribution=contribution)
    result = {
        "wall_s": round(wall, 3),
        "max_rhat": round(float(diag["max_rhat"]), 4),
        "min_ess_bulk": round(float(diag["min_ess_bulk"]), 1),
        "divergences": int(diag["divergences"]),
    }
    sys.stdout.write("\nBAYESMMM_BENCH_RESULT " + json.dumps(result) + "\n")


def fit(arm: str, data: dict[str, Any], args: argparse.Namespace) -> tuple[dict[str, Any], np.ndarray | None]:
    """One fit in a fresh process (ours: this interpreter; theirs: ``--peer-python``), the compilation
    caches under ``OUT/cache`` shared by every fit: its measurements and (sample, date, channel)
    contributions in original units."""
    npz = (args.out / "fits" / f"{data['seed']}-{arm.replace('/', '-')}.npz").resolve()
    spec: dict[str, Any] = {
        "data_path": str(data["path"].resolve()),
        "saturation": args.saturation,
        "l_max": args.l_max,
        "time_varying_media": arm.endswith("varying"),
        "contributions_path": str(npz),
    }
    env = cache_env((args.out / "cache").resolve())
    if arm.startswith("bayesmmm"):
        spec["sampler"] = {
            "backend": args.ours,
            "chains": args.chains,
            "draws": args.draws,
            "tune": args.tune,
            "target_accept": args.target_accept,
            "seed": data["seed"],
            "progressbar": False,
        }
        result = run_child(spec, env, args.timeout, module=_OURS_CHILD)
    else:
        spec.update(
            {
                "date_column": "date",
                "target_column": "sales",
                "channels": CHANNELS,
                "chains": args.chains,
                "draws": args.draws,
                "tune": args.tune,
                "seed": data["seed"],
                "target_accept": args.target_accept,
                "nuts_sampler": args.theirs,
            }
        )
        result = run_child(spec, env, args.timeout, python=args.peer_python, module=PEER_FIT.read_text())
    if result.get("status") != "ok":
        return result, None
    with np.load(npz) as f:
        contribution = f["contribution"]
        if "multiplier_mean" in f:
            m = f["multiplier_mean"]
            result["multiplier_first_year_mean"] = float(m[: len(m) // 3].mean())
            result["multiplier_last_year_mean"] = float(m[-(len(m) // 3) :].mean())
    npz.unlink()  # the scores are kept; the draws are large
    return result, contribution


def summarize(rows: pd.DataFrame, fits: pd.DataFrame) -> str:
    """Markdown: per arm, the changed channel's first / last-year errors (median absolute, range),
    how often both are within 20%, its estimated last / first-year ROAS ratio (the change) against
    the truth's, the constant channels' median absolute error and the largest gap between their
    estimated and true last / first ratio (a change invented where there is none), 90% coverage,
    convergence and wall time (the first data set's fit compiles with empty caches); then every
    data set × arm × channel."""
    true_ratio = rows[rows.channel == CHANGED].eval("true_roas_last / true_roas_first")
    lines = [
        "| library / model | data sets | social first-year error: median abs (range) | social last-year error "
        f"| social within 20% both years | social last / first ROAS (truth {true_ratio.min():.2f}–"
        f"{true_ratio.max():.2f}) | other channels: median abs error | other channels: last / first ROAS, "
        "largest gap to the truth's | 90% covered (channels × 2 years) | max R-hat (fits > 1.05) "
        "| divergences (all fits) | min bulk ESS (median) | fit wall s: first data set / median |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        part, f = rows[rows.arm == arm], fits[(fits.arm == arm) & (fits.status == "ok")]
        if part.empty:
            continue
        social, other = part[part.channel == CHANGED], part[part.channel != CHANGED]
        covered = np.concatenate([part.covered90_first, part.covered90_last])
        both = int(((social.rel_error_first.abs() <= 0.2) & (social.rel_error_last.abs() <= 0.2)).sum())
        ratio = social.roas_last / social.roas_first
        gap = np.abs(other.roas_last / other.roas_first - other.true_roas_last / other.true_roas_first).max()
        other_err = np.median(np.abs(np.concatenate([other.rel_error_first, other.rel_error_last])))

        def err(col: str, s=social) -> str:
            v = s[col].to_numpy()
            return f"{np.median(np.abs(v)):.0%} ({v.min():+.0%} … {v.max():+.0%})"

        lines.append(
            f"| {arm} | {len(social)} | {err('rel_error_first')} | {err('rel_error_last')} | {both} / {len(social)} "
            f"| {ratio.min():.2f}–{ratio.max():.2f} | {other_err:.0%} | {gap:.3f} | {covered.sum()} / {covered.size} "
            f"| {f.max_rhat.max():.3f} ({int((f.max_rhat > 1.05).sum())}) | {int(f.divergences.sum())} "
            f"| {f.min_ess_bulk.median():.0f} | {f.wall_s.iloc[0]:.0f} / {f.wall_s.median():.0f} |"
        )
    lines += [
        "",
        "| seed | library / model | channel | first year: true ROAS | estimate (error) | last year: true ROAS "
        "| estimate (error) |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in rows.sort_values(["seed", "channel", "arm"]).iterrows():
        lines.append(
            f"| {r.seed} | {r.arm} | {r.channel} | {r.true_roas_first:.3f} | {r.roas_first:.3f} "
            f"({r.rel_error_first:+.0%}) | {r.true_roas_last:.3f} | {r.roas_last:.3f} ({r.rel_error_last:+.0%}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", help="interpreter of PyMC-Marketing's environment (nox passes it)")
    parser.add_argument("--seeds", type=int, default=3, help="data sets: seeds 1..N")
    parser.add_argument("--arms", nargs="+", default=[a for a in ARMS if a != "pymc-marketing/constant"])
    parser.add_argument("--peer-constant", action="store_true", help="also fit PyMC-Marketing with constant effects")
    parser.add_argument("--saturation", default="hill", choices=["hill", "logistic"])
    parser.add_argument("--l-max", type=int, default=8)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--target-accept", type=float, default=0.9)
    parser.add_argument("--ours", default="numpyro", help="our sampler backend")
    parser.add_argument("--theirs", default="numpyro", help="PyMC-Marketing's nuts_sampler")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("-o", "--out", type=Path, default=Path("benchmarks/results/peers_tvm"))
    args = parser.parse_args()
    arms = list(dict.fromkeys([*args.arms, *(["pymc-marketing/constant"] if args.peer_constant else [])]))
    if any(a.startswith("pymc-marketing") for a in arms) and not args.peer_python:
        parser.error("--peer-python is required for the pymc-marketing arms (run through `nox -s bench_peers_tvm`)")
    (args.out / "fits").mkdir(parents=True, exist_ok=True)
    rows, fits = [], []
    settings = {k: getattr(args, k) for k in ("saturation", "l_max", "chains", "draws", "tune", "target_accept")}
    for seed in range(1, args.seeds + 1):
        data = simulate_set(seed, args.out)
        for arm in [a for a in ARMS if a in arms]:
            cached = args.out / "fits" / f"{seed}-{arm.replace('/', '-')}.json"
            wanted = {**settings, "backend": args.ours if arm.startswith("bayesmmm") else args.theirs}
            saved = json.loads(cached.read_text()) if cached.exists() else {}
            if saved.get("settings") != wanted:  # a fit with other settings is redone
                result, contribution = fit(arm, data, args)
                scores = []
                if contribution is not None:
                    draws = yearly_roas_draws(data["dates"], contribution, data["spend"])
                    scores = score_rows(draws, data["truth"], CHANNELS)
                saved = {"settings": wanted, "result": result, "scores": scores}
                cached.write_text(json.dumps(saved, indent=1))
            fits.append({"seed": seed, "arm": arm, **saved["result"]})
            rows += [{"seed": seed, "arm": arm, **s} for s in saved["scores"]]
            print(json.dumps(fits[-1]), flush=True)
            pd.DataFrame(rows).to_csv(args.out / "rows.csv", index=False)
            pd.DataFrame(fits).to_csv(args.out / "fits.csv", index=False)
    header = (
        f"{args.chains} chains × {args.tune} tune × {args.draws} draws, target_accept {args.target_accept}, "
        f"geometric adstock (l_max {args.l_max}) + {args.saturation} saturation; ours {args.ours}, "
        f"theirs {args.theirs}; data sets: effect_change seeds 1–{args.seeds}.\n\n"
    )
    md = header + summarize(pd.DataFrame(rows), pd.DataFrame(fits))
    (args.out / "summary.md").write_text(md)
    print("\n" + md)


if __name__ == "__main__":
    sys.exit(main())
