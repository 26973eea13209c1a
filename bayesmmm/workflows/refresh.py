"""Refresh a fitted run with new periods: ``bayesmmm refresh RUN_DIR --data NEW.csv``.

The refit is the first run's experiment (its ``config.yaml``: the same structure, priors and
sampler settings) on the new table, with

- **the first fit's scales** (:class:`~bayesmmm.model.scales.Scales`, fixed instead of computed
  from the new data): the target, spend and control scales are the same numbers, so
  parameters and priors mean the same; ``start`` and ``span_days`` too, so the trend's time
  index ``t`` continues past 1 for the new periods (piecewise changepoints stay where the first
  fit put them; a trend with a :meth:`~bayesmmm.components.trend.Trend.forecast_limit` (hsgp)
  is refused when the new periods reach past it);
- **a warm start**. With a backend that takes a warm metric (``numpyro``, the default
  ``backend: auto``; :attr:`~bayesmmm.inference.base.Capabilities.warm_metric`): each chain starts
  at a draw of the first posterior, the mass matrix is the first posterior's covariance on the
  unconstrained space (kept fixed), the step size starts at the first fit's and is the only thing
  adapted, over a shorter warm-up: ``sampler.warm_tune`` (``--warm-tune``; default a fifth of
  ``tune``, at least 100: :func:`~bayesmmm.inference.warm.default_warm_tune`). NUTS is exact for
  any fixed mass matrix, so this changes the cost, not the posterior; the refresh's
  ``diagnostics.json`` (R-hat, ESS, divergences) checks the result like any fit's, and
  ``refresh.json`` records the warm start and the convergence. Other backends (and
  ``--no-warm-metric``) start every free variable at the first posterior's mean (the model's
  initial point, jittered per chain as usual) and run the full ``tune``;
  :mod:`bayesmmm.model.warm_start` falls back to that too where the new model's free variables
  are not the first posterior's (a variable per period);
- optionally **the first posterior as the prior** (``prior_from_posterior``): by default
  (``prior_kind="joint"``) the sequential update of :mod:`bayesmmm.model.sequential`: an MvNormal
  over the first posterior's unconstrained draws of all its parameters replaces their priors, the
  likelihood covers the new periods only (the mean over the whole history) and only lift tests the
  first posterior does not hold enter (``lift_tests_counted.csv`` records those it holds).
  ``prior_kind="marginal"``: the time-invariant parameters' moment-matched marginals
  (:mod:`bayesmmm.model.posterior_priors`) with the likelihood over every period, so the first
  fit's periods inform them twice (more confident than the data warrant; measured, it did not move
  less: ``benchmarks/README.md``); a ``share`` / ``roas`` prior is fitted over the new table's
  periods (:func:`~bayesmmm.model.posterior_priors.window_quantity`).

The new table (``--data``) holds the first fit's periods followed by the new ones, on the same
grid (the dates of the first fit first, then at least one more); history that differs from the
first fit's data (restated figures) is used as given, with a warning.

``NEW_RUN/changes.csv``: per channel the first and the refreshed posterior's ROAS, marginal ROAS
and contribution, both evaluated over the first fit's periods (the same weeks and spend: a change
is a change of the model's belief, not of the window), means and HDIs, and the probability that
each moved by more than 10%: ``P(|new / old − 1| > 0.1)`` over every pair of a draw of the new
posterior and an independent draw of the old one (so it includes both posteriors' uncertainty:
wide posteriors give a high probability even where the means agree; read it with the intervals).
The changes table reuses the first run's compiled mean function (the view of the new posterior on
the first fit's data is the first fit's bound model, where the model settings are equal) and the
first posterior's half of it is computed on a worker thread while the new fit's sampler compiles.
``NEW_RUN/refresh.json`` records the first run, the new periods, the warm start, the convergence
and, with ``--prior-from-posterior``, the fitted priors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmmm.config.experiment import ConfigError, ExperimentConfig, load_experiment
from bayesmmm.data.loading import DataError, MMMData, frame_to_data, read_csv
from bayesmmm.model.mmm import MMM, ModelFileError

__all__ = [
    "CHANGES_FILE",
    "CHANGE_THRESHOLD",
    "COUNTED_TESTS_FILE",
    "PRIOR_KINDS",
    "RefreshResult",
    "changes_table",
    "channel_draws",
    "check_extends",
    "prob_moved",
    "refresh_run",
    "warm_start_values",
]

CHANGES_FILE = "changes.csv"
#: a joint refresh's record of every lift test its posterior holds (the first fit's and the new ones)
COUNTED_TESTS_FILE = "lift_tests_counted.csv"
#: ``--prior-from-posterior-kind``: the joint sequential update (default) or the moment-matched marginals
PRIOR_KINDS = ("joint", "marginal")
#: a quantity "moved" when the new value differs from the old by more than this fraction
CHANGE_THRESHOLD = 0.1


@dataclass
class RefreshResult:
    """What a refresh produced: the new run, the changes table and the provenance."""

    run: Any  # RunResult
    changes: pd.DataFrame
    old_run: Path
    new_periods: int
    provenance: dict[str, Any]


def check_extends(old: MMMData, new: MMMData) -> int:
    """Raise :class:`DataError` unless ``new`` holds ``old``'s dates followed by more on the same
    grid; returns the number of new periods."""
    o, n = pd.DatetimeIndex(old.dates), pd.DatetimeIndex(new.dates)
    if n[0] > o[-1]:
        raise DataError(
            f"the new data start on {n[0].date()}, after the first fit's last date {o[-1].date()}: give the whole "
            f"table, the first fit's {len(o)} periods ({o[0].date()} to {o[-1].date()}) followed by the new ones"
        )
    if n[0] != o[0]:
        raise DataError(
            f"the new data start on {n[0].date()}, the first fit's data on {o[0].date()}: the table must begin "
            "with the first fit's periods (same start, same grid) and add periods after them"
        )
    if len(n) <= len(o):
        raise DataError(
            f"the new data end on {n[-1].date()} and add no period after the first fit's last date {o[-1].date()}; "
            "append the new periods"
        )
    if not n[: len(o)].equals(o):
        bad = next(i for i, (a, b) in enumerate(zip(n, o, strict=False)) if a != b)
        raise DataError(
            f"the new data's dates leave the first fit's grid: period {bad + 1} is {n[bad].date()}, the first fit's "
            f"is {o[bad].date()}; keep the first fit's dates and append new ones after {o[-1].date()}"
        )
    if len(o) > 1:
        step = o[1] - o[0]
        expected = o[-1] + step * np.arange(1, len(n) - len(o) + 1)
        if not n[len(o) :].equals(pd.DatetimeIndex(expected)):
            raise DataError(
                f"the new periods must continue the first fit's grid (every {step.days} days after {o[-1].date()}); "
                f"got {', '.join(str(d.date()) for d in n[len(o) : len(o) + 3])}"
            )
    if old.is_panel and tuple(new.geos) != tuple(old.geos):
        raise DataError(f"the new data's geos {list(new.geos)} differ from the first fit's {list(old.geos)}")
    return len(n) - len(o)


def _restated(old: MMMData, new: MMMData) -> int:
    """Periods of the first fit whose target, spend or controls differ in the new table."""
    k = old.n_dates
    pairs = (
        [(old.geo_target, new.geo_target), (old.geo_media, new.geo_media), (old.geo_controls, new.geo_controls)]
        if old.is_panel
        else [(old.target, new.target), (old.media, new.media), (old.controls, new.controls)]
    )
    changed = np.zeros(k, dtype=bool)
    for a, b in pairs:
        diff = ~np.isclose(np.asarray(a, float), np.asarray(b, float)[:k], rtol=1e-9, atol=0.0)
        changed |= diff.reshape(k, -1).any(axis=1)
    return int(changed.sum())


def warm_start_values(mmm: MMM) -> dict[str, np.ndarray]:
    """The posterior mean of every free variable of a fitted model (constrained space)."""
    post = mmm.idata["posterior"]
    return {name: post[name].mean(("chain", "draw")).to_numpy() for name in post.data_vars}


def prob_moved(new: np.ndarray, old: np.ndarray, threshold: float = CHANGE_THRESHOLD) -> float:
    """``P(|new / old − 1| > threshold)`` over all pairs of the two sets of independent draws."""
    new, old = np.asarray(new, float), np.asarray(old, float)
    ratio = new[:, None] / old[None, :]
    return float(np.mean(np.abs(ratio - 1.0) > threshold))


def _channel_draws(mmm: MMM, max_draws: int, seed: int) -> dict[str, np.ndarray]:
    """ROAS, marginal ROAS and contribution per draw over ``mmm``'s training weeks, (sample, channel)."""
    from bayesmmm.decisions.response import marginal_roas

    contribution = mmm.posterior_components()["media"].sum("date")
    contribution = contribution.stack(sample=("chain", "draw")).transpose("sample", "channel").to_numpy()
    mroas = marginal_roas(mmm).stack(sample=("chain", "draw")).transpose("sample", "channel").to_numpy()
    spend = mmm.data.media.sum(axis=0)
    out = {"roas": contribution / spend, "mroas": mroas, "contribution": contribution}
    n = contribution.shape[0]
    if n > max_draws:
        idx = np.sort(np.random.default_rng(seed).choice(n, size=max_draws, replace=False))
        out = {k: v[idx] for k, v in out.items()}
    return out


def channel_draws(mmm: MMM, max_draws: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """``roas``, ``mroas`` and ``contribution`` per draw and channel ``(sample, channel)`` over
    ``mmm``'s training weeks (at most ``max_draws`` draws, a seeded subsample): one side of
    :func:`changes_table`."""
    return _channel_draws(mmm, max_draws, seed)


def _view(old: MMM, new: MMM) -> MMM:
    """The new posterior on the first fit's data and scales (the new model's scales are the first's).

    Where the model settings are the first fit's, the view is the first fit's bound model
    (its spec, so its compiled mean function) with the new posterior."""
    if new.model_config == old.model_config and new.scales == old.scales:
        view = MMM(old.data_config, old.model_config)
        view.spec = old.spec
    else:
        view = MMM(new.data_config, new.model_config)
        view.bind(old.data, new.scales)
    view.idata = new.idata
    return view


def changes_table(
    old: MMM,
    new: MMM,
    hdi_prob: float = 0.9,
    max_draws: int = 2000,
    seed: int = 0,
    before: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Per channel the old and new posteriors' ROAS, mROAS and contribution over the OLD fit's periods.

    The new posterior is evaluated on the first fit's data (its own scales are the first fit's):
    a view of the new model bound to the old data. Columns per quantity ``q``: ``q_old_mean``,
    ``q_old_hdi_low``, ``q_old_hdi_high``, ``q_new_mean``, ``q_new_hdi_low``, ``q_new_hdi_high``,
    ``q_change`` (new mean / old mean − 1) and ``q_prob_moved`` (:func:`prob_moved`, at most
    ``max_draws`` draws of each posterior). ``before``: :func:`channel_draws` of ``old`` (with
    ``max_draws`` and ``seed``) computed ahead.
    """
    from bayesmmm.evaluation.summaries import hdi_bounds

    if before is None:
        before = _channel_draws(old, max_draws, seed)
    after = _channel_draws(_view(old, new), max_draws, seed + 1)
    rows = []
    for c, ch in enumerate(old.channels):
        row: dict[str, Any] = {"channel": ch}
        for q in ("roas", "mroas", "contribution"):
            a, b = before[q][:, c], after[q][:, c]
            for label, x in (("old", a), ("new", b)):
                lo, hi = hdi_bounds(x, hdi_prob)
                row[f"{q}_{label}_mean"] = float(x.mean())
                row[f"{q}_{label}_hdi_low"], row[f"{q}_{label}_hdi_high"] = lo, hi
            row[f"{q}_change"] = float(b.mean() / a.mean() - 1.0) if a.mean() != 0 else np.nan
            row[f"{q}_prob_moved"] = prob_moved(b, a)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["hdi_prob"] = hdi_prob
    return table


def _load_old(run_dir: Path) -> MMM:
    if not run_dir.exists():
        raise ModelFileError(f"run folder {str(run_dir)!r} does not exist; pass the folder written by `bayesmmm fit`")
    if not run_dir.is_dir():
        raise ModelFileError(f"{run_dir} is not a folder; pass the run folder written by `bayesmmm fit`")
    if not (run_dir / "config.yaml").exists():
        raise ModelFileError(f"{run_dir} has no config.yaml; pass a run folder written by `bayesmmm fit`")
    return MMM.load(run_dir)


def refresh_config(
    run_dir: Path, data: Path, lift_tests: Path | None, overrides: dict[str, Any] | None = None
) -> ExperimentConfig:
    """The first run's experiment with the new data (and lift tests) and ``overrides`` applied.

    Without ``lift_tests`` a calibrated first run keeps its tests (``RUN_DIR/lift_tests.csv``)."""
    values = {**(overrides or {}), "data.path": str(Path(data).resolve())}
    if lift_tests is not None:
        if not Path(lift_tests).exists():
            raise DataError(f"lift-test file {str(lift_tests)!r} does not exist")
        values["calibration.lift_tests.path"] = str(Path(lift_tests).resolve())
    elif (run_dir / "lift_tests.csv").exists():
        values["calibration.lift_tests.path"] = str((run_dir / "lift_tests.csv").resolve())
    config = load_experiment(run_dir / "config.yaml", values)
    name = config.name or "experiment"
    return config.model_copy(update={"name": name if name.endswith("-refresh") else f"{name}-refresh"})


def refresh_run(
    run_dir: str | Path,
    data: str | Path,
    out_dir: str | Path | None = None,
    *,
    lift_tests: str | Path | None = None,
    prior_from_posterior: bool = False,
    prior_kind: str = "joint",
    warm_metric: bool = True,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> RefreshResult:
    """Refit the run in ``run_dir`` on ``data`` (see the module docstring) and write ``out_dir``.

    ``prior_from_posterior``: the first posterior becomes the prior, ``prior_kind`` ``joint`` (the
    sequential update, :mod:`bayesmmm.model.sequential`: an MvNormal over every first-fit parameter,
    the likelihood of the new periods and new lift tests only) or ``marginal`` (moment-matched
    marginals of the time-invariant parameters, the likelihood over every period:
    :mod:`bayesmmm.model.posterior_priors`). ``warm_metric``: hand the first fit's mass matrix, step
    size and draws to a backend that takes them, with the shorter warm-up ``sampler.warm_tune``
    (False: posterior means as the initial point and the full ``tune``, the same on every backend).
    ``overrides``: dotted experiment keys (sampler settings from the command line). Returns the new
    run, the changes table (also ``out_dir/changes.csv``) and the provenance (``out_dir/refresh.json``).
    """
    from bayesmmm.io import write_json, write_text
    from bayesmmm.workflows.experiment import default_run_dir, run_experiment

    run_dir = Path(run_dir)
    old = _load_old(run_dir)
    config = refresh_config(run_dir, Path(data), Path(lift_tests) if lift_tests is not None else None, overrides)
    frame = read_csv(config.data.path)
    new_data = frame_to_data(frame, config.data)
    n_new = check_extends(old.data, new_data)
    restated = _restated(old.data, new_data)
    if restated:
        warnings.warn(
            f"{restated} of the first fit's {old.data.n_dates} periods differ in the new data (restated history): "
            "the refresh uses the new figures",
            UserWarning,
            stacklevel=2,
        )
    scales = old.scales
    _check_trend_reach(old, new_data)
    provenance: dict[str, Any] = {
        "old_run": str(run_dir.resolve()),
        "data": str(config.data.path),
        "old_periods": int(old.data.n_dates),
        "new_periods": int(n_new),
        "restated_periods": restated,
        "scales": "first fit's",
        "warm_start": "posterior means of the first fit (initial point)",
        "warm_metric": {"requested": warm_metric},
        "prior_from_posterior": prior_from_posterior,
    }
    if prior_kind not in PRIOR_KINDS:
        raise ConfigError(f"unknown prior-from-posterior kind {prior_kind!r}; use one of {', '.join(PRIOR_KINDS)}")
    joint = prior_from_posterior and prior_kind == "joint"
    if prior_from_posterior:
        provenance["prior_kind"] = prior_kind
    if joint and restated:
        warnings.warn(
            "the joint update (--prior-from-posterior) does not re-read the first fit's periods: the first posterior "
            "stands for them as they were; refresh without the option to use the restated figures",
            UserWarning,
            stacklevel=2,
        )
    if prior_from_posterior and not joint:
        from bayesmmm.model.posterior_priors import posterior_priors

        fitted = posterior_priors(old, new_data)
        config = config.model_copy(update={"model": fitted.model_config})
        provenance["priors"] = fitted.to_dict()
    start = warm_start_values(old)

    def warm(model: Any, sampler: Any) -> Any:
        from bayesmmm.inference.warm import default_warm_tune
        from bayesmmm.model.warm_start import posterior_warm_start

        tune = sampler.warm_tune if sampler.warm_tune is not None else default_warm_tune(sampler.tune)
        stats = old.idata.get("sample_stats", None)
        ws, reason = posterior_warm_start(
            model, old.idata["posterior"].to_dataset(), stats, sampler.chains, tune, sampler.seed
        )
        provenance["warm_metric"].update(ws.summary() if ws is not None else {"reason": reason})
        return ws

    # the lift tests the first posterior already holds: its own and, for a refresh of a joint refresh, those
    # its first posterior held (COUNTED_TESTS_FILE)
    counted_before = old.lift_tests
    if joint and (run_dir / COUNTED_TESTS_FILE).exists():
        from bayesmmm.model.calibration import read_lift_tests

        counted_before = read_lift_tests(run_dir / COUNTED_TESTS_FILE)
    counted_now: list[pd.DataFrame | None] = [None]

    def setup(mmm: MMM) -> None:
        mmm.fixed_scales = scales
        mmm.initial_values = start
        if joint:
            from bayesmmm.model.sequential import SequentialUpdate, new_lift_tests

            mmm.sequential = SequentialUpdate(old.idata["posterior"].to_dataset(), old.require_spec(), seed)
            fresh = new_lift_tests(counted_before, mmm.lift_tests)
            held = [t for t in (counted_before, fresh) if t is not None]
            counted_now[0] = pd.concat(held, ignore_index=True) if held else None
            counted = 0 if mmm.lift_tests is None else len(mmm.lift_tests) - (0 if fresh is None else len(fresh))
            provenance["lift_tests"] = {"new": 0 if fresh is None else len(fresh), "already_counted": counted}
            mmm.set_lift_tests(fresh)
        if warm_metric:
            mmm.warm_start = warm

    out = Path(out_dir) if out_dir is not None else default_run_dir(config)
    log(
        f"Refreshing {run_dir} with {n_new} new periods ({new_data.dates[old.data.n_dates].date()} to "
        f"{new_data.dates[-1].date()}): the first fit's scales, warm start"
        + (f", its posterior as the prior ({prior_kind})" if prior_from_posterior else "")
    )
    seed = config.sampler.seed or 0
    # the first posterior's half of the changes table, on a worker thread while the new fit compiles
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bayesmmm-changes") as pool:
        before = pool.submit(channel_draws, old, 2000, seed)
        result = run_experiment(config, out, frame=frame, log=log, setup=setup)
        before_draws = before.result()
    if joint and result.model.sequential is not None and result.model.sequential.prior is not None:
        provenance["priors"] = result.model.sequential.prior.summary()
    if result.model.scales != scales:  # the contract of a refresh: never silently rescaled
        raise RuntimeError("the refreshed model's scales differ from the first fit's")
    timings = result.model.timings
    used = bool(timings.get("warm_metric"))
    provenance["warm_metric"]["used"] = used
    if warm_metric and not used and "reason" not in provenance["warm_metric"]:
        provenance["warm_metric"]["reason"] = f"the {timings.get('backend')} backend takes no warm metric"
    provenance["warm_start"] = (
        "draws of the first posterior, its mass matrix and step size" if used else provenance["warm_start"]
    )
    provenance["tune"] = timings.get("tune")
    d = result.diagnostics
    provenance["convergence"] = {k: d.get(k) for k in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences")}
    provenance["convergence"]["passed"] = d.get("passed")
    changes = changes_table(old, result.model, config.output.hdi_prob, seed=seed, before=before_draws)
    write_text(out / CHANGES_FILE, changes.to_csv(index=False))
    if joint and counted_now[0] is not None and len(counted_now[0]):
        write_text(out / COUNTED_TESTS_FILE, counted_now[0].to_csv(index=False))
    write_json(out / "refresh.json", provenance)
    return RefreshResult(result, changes, run_dir, n_new, provenance)


def _check_trend_reach(old: MMM, new: MMMData) -> None:
    """Refuse new periods past the trend's forecast limit on the first fit's time index."""
    from bayesmmm.components.features import time_index

    limit = old.trend.forecast_limit()
    if limit is None:
        return
    s = old.scales
    t_last = float(time_index(pd.DatetimeIndex(new.dates[-1:]), pd.Timestamp(s.start), s.span_days)[0])
    if t_last > limit:
        raise ConfigError(
            f"the new data reach t = {t_last:.2f} first-fit spans ({new.dates[-1].date()}), past the "
            f"{old.model_config.trend} trend's limit t = {limit:.2f} on the first fit's scales: "
            f"{old.trend.forecast_fix(t_last)}, or fit the full data from scratch with `bayesmmm fit`"
        )
