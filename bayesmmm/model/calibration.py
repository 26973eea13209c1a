"""Lift-test calibration: experiments enter the likelihood next to the target of each period.

Periods are those of the data's frequency (weeks of weekly data, days of daily data, months of
monthly data): "weekly" below means "per period" for data of another frequency.

A lift test (geo experiment, conversion-lift study, go-dark test) measures how much the
target moved when a channel's weekly spend changed from ``x`` to ``x + delta_x``. The CSV
follows PyMC-Marketing's ``add_lift_test_measurements`` contract:

=========  =====================================================================
column     meaning
=========  =====================================================================
channel    the channel tested (a channel name: ``data.channel_columns`` or a key of ``data.channels``)
x          weekly spend during the test without the change (spend units)
delta_x    the change of weekly spend (negative for a pull-back; ``-x`` goes dark)
delta_y    the measured change of the WEEKLY target (target units)
sigma      the standard error of ``delta_y`` (target units, > 0)
geo        geo models only: the geo the test ran in
start,end  optional dates (inclusive): the test's weeks, see below
=========  =====================================================================

Each test adds ``delta_y ~ Normal(lift, sigma)`` to the model (``lift_obs``, in scaled
target units: ``delta_y / s_y`` and ``sigma / s_y``), where ``lift`` is the MODEL's lift:

- without dates, the steady state of a constant weekly spend,
  ``beta · [sat(adstock_ss(x + Δx) / s_c) − sat(adstock_ss(x) / s_c)]`` (for a normalized
  adstock the steady state of a constant spend is the spend itself);
- with ``start``/``end``, the counterfactual over the weeks whose date lies in
  ``start..end``: the channel's actual spend with those weeks set to ``x`` versus
  ``x + delta_x``, the mean weekly difference of the channel's contribution over those
  weeks, carry-over from the weeks before included (the effect after ``end`` is not
  counted: extend ``end`` over a cool-down period if the test's readout does).

Both are one computation, :func:`model_lift`: the channel's contribution
(:func:`~bayesmmm.model.predictive.media_contributions`, so every registered adstock and
saturation, plugins included) on two spend series, differenced and averaged over weights
(a steady-state test uses a constant series and weighs its last week). For a geo model the
``geo`` column picks the geo's pooled parameters and its scales.

Spend and exposure: the contract stays in SPEND (``x``, ``delta_x``) and target units
(``delta_y``, ``sigma``; KPI units when the target is valued by ``data.revenue_per_kpi_column``:
a lift test measures KPI, not revenue). For a channel whose curves act on an exposure column
(``data.channels: {name: {spend, exposure}}``) the spend is converted to exposure at the channel's
cost per unit: over the test's weeks, total spend ÷ total exposure in those weeks (of the test's
geo for a panel); without dates, or where the window has no exposure, the channel's recent cost per
unit (:func:`~bayesmmm.model.value.channel_cost_per_unit`: the stated ``cost_per_unit`` or the
average of the last quarter-year). Spend-only channels are unchanged (cost per unit 1).

What a test can pin: a go-dark test (``delta_x = -x``) measures the curve's level at ``x``
(``beta · sat(x / s_c)``, the channel's contribution at that spend); a half pull-back
(``delta_x = -x/2``) measures only the curve's top half, between ``x/2`` and ``x``; the
shape below ``x/2``, and so the total contribution, stays with the prior and the data.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesmmm.components.adstock import convolution_graphs
from bayesmmm.data.exposure import window_cost_per_unit
from bayesmmm.data.loading import DataError, read_csv
from bayesmmm.model.geo import geo_parameters
from bayesmmm.model.mean import media_contributions, training_frequency
from bayesmmm.model.multiplier import media_multiplier
from bayesmmm.model.reach import RF_PARAMETERS, rf_parameters
from bayesmmm.model.value import channel_cost_per_unit

if TYPE_CHECKING:
    from bayesmmm.model.spec import ModelSpec

__all__ = [
    "LIFT_COLUMNS",
    "LiftDesign",
    "add_lift_likelihood",
    "calibration_summary",
    "check_lift_tests",
    "design_lift_draws",
    "lift_design",
    "lift_draws",
    "lift_key",
    "lift_tests_from_json",
    "lift_tests_to_json",
    "model_lift",
    "read_lift_tests",
]

#: required columns of a lift-test file, then the optional ones
LIFT_COLUMNS = ("channel", "x", "delta_x", "delta_y", "sigma")
OPTIONAL_COLUMNS = ("geo", "start", "end")
_CONTRACT = "channel, x, delta_x, delta_y, sigma (optional geo, start, end)"


def read_lift_tests(path: str | Path) -> pd.DataFrame:
    """Read and check a lift-test CSV (:func:`check_lift_tests`); errors name the file and row."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"lift-test file {str(path)!r} does not exist; fix calibration.lift_tests.path")
    frame = read_csv(path)
    return check_lift_tests(frame, source=str(path))


def check_lift_tests(frame: pd.DataFrame, source: str = "lift tests") -> pd.DataFrame:
    """Checked, normalized lift tests (the model-independent checks).

    Returns a frame with ``channel`` (str), ``x``, ``delta_x``, ``delta_y``, ``sigma``
    (float), ``geo`` (str or None), ``start``/``end`` (Timestamps or NaT). Rows are
    numbered as in the file (header = line 1).

    Raises
    ------
    DataError
        A missing or unknown column, a non-number, ``sigma <= 0``, ``x < 0``,
        ``x + delta_x < 0``, ``delta_x = 0``, or only one of ``start``/``end``.
    """
    frame = pd.DataFrame(frame).copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in LIFT_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: lift-test column(s) {missing} missing; the file needs {_CONTRACT}")
    unknown = [c for c in frame.columns if c not in LIFT_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], LIFT_COLUMNS + OPTIONAL_COLUMNS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(f"{source}: unknown lift-test column {unknown[0]!r}{hint}; the columns are {_CONTRACT}")
    if frame.empty:
        raise DataError(f"{source}: no lift tests (a header but no rows)")
    rows = np.arange(len(frame)) + 2
    out = pd.DataFrame({"channel": frame["channel"].astype(str).str.strip()})
    for col in LIFT_COLUMNS[1:]:
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            i = bad[0]
            raise DataError(f"{source}, row {rows[i]}: {col} = {frame[col].iloc[i]!r} is not a number; give a number")
        out[col] = values
    checks = (
        (out["sigma"] <= 0, "sigma must be > 0 (the standard error of delta_y, in target units)"),
        (out["x"] < 0, "x (weekly spend without the change) must be >= 0"),
        (out["x"] + out["delta_x"] < 0, "x + delta_x < 0: spend cannot be negative (a go-dark test has delta_x = -x)"),
        (out["delta_x"] == 0, "delta_x = 0: a test without a spend change measures nothing; drop the row"),
    )
    for mask, message in checks:
        bad = np.flatnonzero(mask.to_numpy())
        if len(bad):
            i = bad[0]
            got = ", ".join(f"{c}={out[c].iloc[i]:g}" for c in ("x", "delta_x", "sigma"))
            raise DataError(f"{source}, row {rows[i]} ({out['channel'].iloc[i]}): {message}; got {got}")
    out["geo"] = (
        frame["geo"].map(lambda g: None if pd.isna(g) or str(g).strip() == "" else str(g).strip())
        if "geo" in frame
        else None
    )
    for col in ("start", "end"):
        if col in frame:
            raw = frame[col]
            dates = pd.to_datetime(raw, errors="coerce")
            bad = np.flatnonzero(dates.isna().to_numpy() & raw.notna().to_numpy() & (raw.astype(str).str.strip() != ""))
            if len(bad):
                i = bad[0]
                raise DataError(f"{source}, row {rows[i]}: {col} = {raw.iloc[i]!r} is not a date; write YYYY-MM-DD")
            out[col] = dates
        else:
            out[col] = pd.NaT
    one = out["start"].isna() != out["end"].isna()
    late = out["start"] > out["end"]
    for mask, message in ((one, "give both start and end, or neither (steady state)"), (late, "start is after end")):
        bad = np.flatnonzero(mask.to_numpy())
        if len(bad):
            raise DataError(f"{source}, row {rows[bad[0]]}: {message}")
    out.attrs["source"] = source
    return out


def lift_tests_to_json(tests: pd.DataFrame) -> str:
    """The checked lift tests as JSON records (dates ISO), for the model file."""
    records = []
    for row in tests.itertuples(index=False):
        rec = {c: getattr(row, c) for c in ("channel", "x", "delta_x", "delta_y", "sigma")}
        rec["geo"] = row.geo
        rec["start"] = None if pd.isna(row.start) else str(pd.Timestamp(row.start).date())
        rec["end"] = None if pd.isna(row.end) else str(pd.Timestamp(row.end).date())
        records.append(rec)
    return json.dumps({"lift_tests": records, "source": tests.attrs.get("source", "lift tests")})


def lift_tests_from_json(text: str) -> pd.DataFrame:
    """Inverse of :func:`lift_tests_to_json`."""
    raw = json.loads(text)
    return check_lift_tests(pd.DataFrame(raw["lift_tests"]), source=raw.get("source", "lift tests"))


def lift_key(tests: pd.DataFrame | None) -> str | None:
    """What of the lift tests shapes the sampling graph (channel, geo, dated or not): for ``structure_key``."""
    if tests is None:
        return None
    parts = [[r.channel, r.geo, bool(pd.notna(r.start))] for r in tests.itertuples(index=False)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


@dataclass(frozen=True)
class LiftDesign:
    """The numeric inputs of :func:`model_lift` for one model's data (NumPy).

    ``base``/``treat`` (week, test): the tested channel's SCALED spend without and with the
    change over the weeks the lift needs (:func:`_rows_needed`); ``weights`` (week, test): the
    weeks the lift is averaged over (each column sums to 1); ``channel``/``geo`` (test,):
    indices; ``delta_y``/``sigma`` (test,): the measurements in SCALED target units;
    ``target_scale`` (test,): ``s_y`` of each test's geo. ``t`` (week,): the scaled time of the weeks
    and ``dated`` (test,): which tests have dates; with ``model.time_varying_media`` a dated test's lift
    is the channel's multiplier at its weeks times the constant-effect lift, an undated (steady-state)
    test's is at the training average (multiplier 1). None (a design of planned weeks): every test at 1.
    """

    base: np.ndarray
    treat: np.ndarray
    weights: np.ndarray
    channel: np.ndarray
    geo: np.ndarray
    delta_y: np.ndarray
    sigma: np.ndarray
    target_scale: np.ndarray
    t: np.ndarray | None = None
    dated: np.ndarray | None = None


def lift_design(spec: ModelSpec, tests: pd.DataFrame) -> LiftDesign:
    """Check ``tests`` against the model's data and build the design.

    Raises
    ------
    DataError
        An unknown channel or geo, a geo missing on a geo model (or given on a national
        one), dates outside the data or a window without a week of data.
    """
    scales = spec.scales
    data = spec.data
    source = tests.attrs.get("source", "lift tests")
    dates = pd.DatetimeIndex(data.dates)
    n, k = len(dates), len(tests)
    media = data.geo_media if spec.is_geo else data.media[:, None, :]  # (date, geo, channel): exposure
    spend = data.geo_channel_spend if spec.is_geo else data.channel_spend[:, None, :]
    recent_cpu = np.asarray(channel_cost_per_unit(spec), dtype=float).reshape(-1, len(spec.channels))
    s_media = np.asarray(scales.media, dtype=float).reshape(-1, len(spec.channels))  # (geo|1, channel)
    s_y = np.atleast_1d(np.asarray(scales.target, dtype=float))
    base, treat, weights = np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k))
    ch_idx, geo_idx = np.zeros(k, dtype="int64"), np.zeros(k, dtype="int64")
    for i, row in enumerate(tests.itertuples(index=False)):
        where = f"{source}, row {i + 2} ({row.channel})"
        if row.channel not in spec.channels:
            close = difflib.get_close_matches(row.channel, spec.channels, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"{where}: unknown channel {row.channel!r}{hint}; channels: {', '.join(spec.channels)}")
        c = spec.channels.index(row.channel)
        g = 0
        if spec.is_geo:
            if row.geo is None:
                raise DataError(f"{where}: the model is a geo panel: give the test's geo in a 'geo' column")
            if row.geo not in spec.geos:
                close = difflib.get_close_matches(row.geo, spec.geos, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise DataError(f"{where}: unknown geo {row.geo!r}{hint}; geos: {', '.join(spec.geos)}")
            g = spec.geos.index(row.geo)
        elif row.geo is not None:
            raise DataError(f"{where}: the model is national but the test names geo {row.geo!r}; drop the geo column")
        cpu = recent_cpu[g if len(recent_cpu) > 1 else 0, c]  # spend -> exposure (1 for spend-only channels)
        s = s_media[g if len(s_media) > 1 else 0, c]
        if pd.isna(row.start):  # steady state: a constant weekly spend, read at the last week
            s = s * cpu
            base[:, i], treat[:, i] = row.x / s, (row.x + row.delta_x) / s
            weights[-1, i] = 1.0
        else:
            start, end = pd.Timestamp(row.start), pd.Timestamp(row.end)
            if start < dates[0] or end > dates[-1]:
                raise DataError(
                    f"{where}: the test's weeks {start.date()}..{end.date()} are outside the data "
                    f"({dates[0].date()}..{dates[-1].date()}); fix start/end or drop the dates (steady state)"
                )
            window = (dates >= start) & (dates <= end)
            if not window.any():
                raise DataError(f"{where}: no week of the data falls in {start.date()}..{end.date()}; fix start/end")
            window_cpu = float(window_cost_per_unit(spend[:, g, c], media[:, g, c], window))
            if np.isfinite(window_cpu) and window_cpu > 0:  # the test window's own price, else the recent one
                cpu = window_cpu
            series = media[:, g, c] / s
            base[:, i], treat[:, i] = series, series
            base[window, i], treat[window, i] = row.x / (cpu * s), (row.x + row.delta_x) / (cpu * s)
            weights[window, i] = 1.0 / window.sum()
        ch_idx[i], geo_idx[i] = c, g
    rows = _rows_needed(weights, tests["start"].notna().to_numpy(), spec.carryover_weeks)
    steady = tests["start"].isna().to_numpy()
    weights[:, steady] = 0.0
    weights[rows.stop - 1, steady] = 1.0  # a constant series is steady from `carryover_weeks` rows on
    sy = s_y[geo_idx] if len(s_y) > 1 else np.full(k, s_y[0])
    return LiftDesign(
        base=base[rows],
        treat=treat[rows],
        weights=weights[rows],
        channel=ch_idx,
        geo=geo_idx,
        delta_y=tests["delta_y"].to_numpy(float) / sy,
        sigma=tests["sigma"].to_numpy(float) / sy,
        target_scale=sy,
        t=spec.training_design()["t"][rows],
        dated=~steady,
    )


def _rows_needed(weights: np.ndarray, dated: np.ndarray, carry: int) -> slice:
    """The weeks the lift needs: the dated tests' weeks and ``carry`` weeks before them, and at
    least ``carry + 1`` weeks (a steady state). The weeks before carry nothing into the
    tests' weeks (a lag-window adstock: ``carry = l_max − 1``), so cutting them changes no
    number and saves gradient work; an adstock of unbounded carry-over keeps every week."""
    n = weights.shape[0]
    carry = min(carry, n - 1)
    used = np.flatnonzero(weights[:, dated].sum(axis=1)) if dated.any() else np.array([n - 1])
    lo, hi = max(used[0] - carry, 0), used[-1]
    if hi - lo < carry:
        lo = max(hi - carry, 0)
        hi = max(hi, lo + carry)
    return slice(lo, hi + 1)


def model_lift(
    spec: ModelSpec, params: Mapping[str, Any], base, treat, weights, channel, geo, t=None, dated=None, reference=None
):
    """The model's lift of each test, scaled target units (PyTensor, pure).

    With ``model.time_varying_media``, ``t`` (date,) and ``dated`` (test,): a dated test's lift is multiplied
    by its channel's multiplier at each of its weeks (:mod:`bayesmmm.model.multiplier`), centred over
    ``reference`` (the training ``(media, t)``; default the training design as constants).

    ``params``: the model's variables (as for :func:`~bayesmmm.model.predictive.mean_components`);
    ``base``/``treat``/``weights``: (date, test) tensors; ``channel``/``geo``: (test,) integer
    indices. Each parameter is gathered for the test's channel (and geo, for per-geo values
    of a pooled panel), so the channel transforms see one column per test.
    """
    if spec.is_geo:
        params = geo_parameters(spec, params)
    names = ["beta", *spec.adstock.variable_names.values(), *spec.saturation.variable_names.values()]
    if spec.rf_channels:  # reach & frequency channels: at their plan frequency (bayesmmm.model.reach)
        params = rf_parameters(spec, params)
        names += list(RF_PARAMETERS)
    gathered = {}
    for name in names:
        value = params[name]
        gathered[name] = value[geo, channel] if value.ndim == 2 else value[channel]
    diff = media_contributions(spec, treat, gathered) - media_contributions(spec, base, gathered)
    if spec.varying is not None and t is not None and dated is not None and np.any(dated):
        diff = diff * lift_multiplier(spec, params, t, channel, dated, reference)
    return (diff * weights).sum(axis=0)


def lift_multiplier(spec: ModelSpec, params: Mapping[str, Any], t, channel, dated, reference=None):
    """Each test's multiplier over its weeks, (date, test): its channel's ``m_c(t)`` for a dated test, 1 for a
    steady-state one (PyTensor). ``params`` per geo for a panel."""
    import pytensor.tensor as pt

    if reference is None:
        training = spec.training_design()
        reference = (pt.constant(training["media"], dtype="float64"), pt.constant(training["t"], dtype="float64"))
    media, reference_t = reference
    contributions = media_contributions(spec, media, params, frequency=training_frequency(spec))
    multiplier = media_multiplier(spec, params, t, reference_t, contributions)
    if spec.is_geo:
        multiplier = multiplier[:, 0, :]
    picked = multiplier[:, channel]  # (date, test)
    return pt.where(np.asarray(dated, dtype=bool)[None, :], picked, 1.0)


def add_lift_likelihood(
    spec: ModelSpec, tests: pd.DataFrame, params: Mapping[str, Any], reference: tuple[Any, Any] | None = None
) -> None:
    """Inside the PyMC model context: ``lift_obs ~ Normal(model_lift, sigma)`` observed at ``delta_y`` of ``tests``.

    The spend series and measurements are ``pm.Data`` (a compiled model serves new data);
    the test indices are constants (they are part of ``structure_key``). ``reference``: the model's
    training ``(media, t)`` data, over which a time-varying multiplier is centred.
    """
    import pymc as pm

    d = lift_design(spec, tests)
    pm.modelcontext(None).add_coord("lift_test", np.arange(len(d.channel)))
    base = pm.Data("lift_base", d.base)
    treat = pm.Data("lift_treat", d.treat)
    weights = pm.Data("lift_weights", d.weights)
    delta_y = pm.Data("lift_delta_y", d.delta_y, dims="lift_test")
    sigma = pm.Data("lift_sigma", d.sigma, dims="lift_test")
    t = pm.Data("lift_t", d.t) if spec.varying is not None else None
    mu = model_lift(spec, params, base, treat, weights, d.channel, d.geo, t, d.dated, reference)
    pm.Normal("lift_obs", mu=mu, sigma=sigma, observed=delta_y, dims="lift_test")


def lift_draws(spec: ModelSpec, draws: Mapping[str, np.ndarray], tests: pd.DataFrame) -> np.ndarray:
    """The model's lift of each test per draw, ORIGINAL target units: (sample, test).

    ``draws``: free variables with a leading sample axis (the posterior's, or posterior means
    with a length-1 axis for the lift at the means); :meth:`~bayesmmm.model.mmm.MMM.lift_draws`
    passes the model's own.
    """
    return design_lift_draws(spec, draws, lift_design(spec, tests))


@convolution_graphs()
def design_lift_draws(spec: ModelSpec, draws: Mapping[str, np.ndarray], d: LiftDesign) -> np.ndarray:
    """:func:`lift_draws` of a built :class:`LiftDesign`: (sample, test), ORIGINAL target units.

    The spend series of ``d`` need not be the model's data: the experiment designer
    (:mod:`bayesmmm.decisions.design`) passes the data's last weeks followed by planned weeks
    after its end, so a test that has not run yet gets the lift this likelihood would compute.
    """
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import vectorize_graph

    from bayesmmm.components.base import numpy_mode

    dims = spec.variable_dims
    core = {n: pt.tensor(n, shape=(None,) * len(v), dtype="float64") for n, v in dims.items()}
    batched = {n: pt.tensor(f"{n}_draws", shape=(None,) * (len(v) + 1), dtype="float64") for n, v in dims.items()}
    lift = model_lift(spec, core, d.base, d.treat, d.weights, d.channel, d.geo, d.t, d.dated)
    out = vectorize_graph(lift, {core[n]: batched[n] for n in dims})
    fn = pytensor.function(list(batched.values()), out, mode=numpy_mode(), on_unused_input="ignore")
    values = fn(*[np.asarray(draws[n], dtype="float64") for n in dims])
    return np.asarray(values) * d.target_scale


def calibration_summary(
    spec: ModelSpec, draws: Mapping[str, np.ndarray], tests: pd.DataFrame, hdi_prob: float = 0.9
) -> list[dict[str, Any]]:
    """Per lift test: the measurement next to the model's posterior lift (for ``diagnostics.json``).

    ``z`` is ``(posterior mean lift − delta_y) / sigma``: |z| > 2 means the model and the
    test disagree (a test in a different regime, a mis-specified curve, or a wrong sigma).
    """
    from bayesmmm.stats import hdi_bounds

    lifts = lift_draws(spec, draws, tests)
    out = []
    for i, row in enumerate(tests.itertuples(index=False)):
        lo, hi = (float(v) for v in hdi_bounds(lifts[:, i], hdi_prob))
        mean = float(lifts[:, i].mean())
        out.append(
            {
                "channel": row.channel,
                **({"geo": row.geo} if row.geo is not None else {}),
                "x": float(row.x),
                "delta_x": float(row.delta_x),
                "delta_y": float(row.delta_y),
                "sigma": float(row.sigma),
                "window": None if pd.isna(row.start) else f"{row.start.date()}..{row.end.date()}",
                "model_lift_mean": mean,
                "model_lift_hdi": [lo, hi],
                "z": (mean - float(row.delta_y)) / float(row.sigma),
            }
        )
    return out
