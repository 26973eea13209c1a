"""Channel response to spend, per posterior draw: the engine behind insights and the optimizer.

Two views of "response", both in original units of the target:

- **Flight response** (:class:`FlightResponse`, used by the budget optimizer): the
  incremental response of a flight of ``weeks`` weeks of flat weekly spend, starting
  from zero adstock and counted until its carry-over has decayed
  (``weeks + l_max - 1`` weeks). Channels do not interact, so the total response is
  the sum of per-channel responses. Values and exact gradients (through PyTensor)
  come for every draw at once.
- **Historical response curves** (:func:`response_curves`, :func:`marginal_roas`): the
  channel's total contribution over the training weeks when its historical spend
  pattern is scaled by a multiplier. At multiplier 1 this is the contribution behind
  ``roas.csv``, and its slope there is the marginal ROAS, so curves, ROAS and
  marginal ROAS agree by construction.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayesmmm.components.adstock import convolution_graphs
from bayesmmm.decisions.reach import plan_frequencies
from bayesmmm.model.mean import media_contributions
from bayesmmm.model.reach import rf_channel_values
from bayesmmm.model.value import channel_cost_per_unit, future_revenue_per_kpi

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = [
    "FlightResponse",
    "adstock_weights",
    "marginal_roas",
    "organic_response_curves",
    "organic_totals",
    "response_curves",
]


class FlightResponse:
    """Per-draw response of flat-spend flights, with gradients, for a fitted model.

    Parameters
    ----------
    mmm : a fitted :class:`~bayesmmm.model.mmm.MMM`.
    weeks : flight length in weeks (spend is flat over these weeks).
    max_draws : use at most this many posterior draws (a seeded subsample).
    seed : seed of the subsample.
    geo : for a geo model, the geo the flight runs in (default: national).
    value : report the response in revenue (KPI × the recent revenue per KPI,
        :func:`~bayesmmm.model.value.future_revenue_per_kpi`; per geo for a panel); default: when the
        data have ``data.revenue_per_kpi_column``. Otherwise in the target's units.
    plan : for a time-varying channel (``model.time_varying_media``), the level of its effect the flight
        meets: ``latest``, ``average`` or a multiplier of the training average; default the config's
        ``plan`` (``latest``: the mean multiplier over the last ``plan_periods`` periods), per draw
        (:meth:`~bayesmmm.model.predictive.Predictive.planning_level`).

    Notes
    -----
    Spend becomes exposure at each channel's cost per unit
    (:func:`~bayesmmm.model.value.channel_cost_per_unit`: the stated ``cost_per_unit`` or the
    recent average; 1 for spend-only channels): a weekly spend ``s`` is ``s / cpu`` units of
    exposure, the curves act on that, and gradients are per unit of SPEND.

    The graph is laid out ``(date, draw, channel)``: adstocks convolve along the leading
    axis with parameters broadcasting over ``(draw, channel)``, so no per-draw loop is
    needed. It is compiled once per instance in NumPy mode (milliseconds).

    For a geo model the response is national: each channel's total is split over geos
    in proportion to the geo's share of that channel's historical spend, every geo
    responds with its own (pooled) parameters and scales, and the responses are summed
    (layout ``(date, draw, geo, channel)``). With ``geo`` the flight runs in that geo only.
    """

    def __init__(
        self,
        mmm: MMM,
        weeks: int,
        *,
        max_draws: int | None = 1000,
        seed: int = 0,
        geo: str | None = None,
        value: bool | None = None,
        plan: str | float | None = None,
    ) -> None:
        if int(weeks) != weeks or weeks < 1:
            raise ValueError(f"weeks must be a positive whole number, got {weeks}")
        mmm.require_fitted()
        if geo is not None and not mmm.is_geo:
            raise ValueError(f"geo {geo!r} given, but the model is national (no data.geo_column)")
        if geo is not None and geo not in mmm.geos:
            raise ValueError(f"unknown geo {geo!r}; the model's geos: {', '.join(mmm.geos)}")
        self.mmm = mmm
        self.weeks = int(weeks)
        self.channels = tuple(mmm.channels)
        draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
        names = ["beta", *mmm.adstock.variable_names.values(), *mmm.saturation.variable_names.values()]
        self._names = names
        self.geo = mmm.is_geo
        spec = mmm.require_spec()
        #: whether responses are revenue (KPI × future revenue per KPI) rather than KPI
        self.value = spec.data.has_revenue if value is None else bool(value)
        #: revenue per KPI the responses are valued at (1 without ``value``): float, or (geo,)
        self.revenue_per_kpi = (
            future_revenue_per_kpi(spec) if self.value else (np.ones(len(mmm.geos)) if self.geo else 1.0)
        )
        #: spend per unit of exposure, (channel,) or (geo, channel)
        self.cost_per_unit = np.asarray(channel_cost_per_unit(spec), dtype="float64")
        #: the frequency reach & frequency channels are bought at (:func:`~bayesmmm.decisions.reach.plan_frequencies`;
        #: 1 for other channels): a spend ``s`` buys ``s / cpu`` impressions, reaching ``s / (cpu · f)`` people
        self.frequency = plan_frequencies(mmm) if spec.rf_channels else np.ones(len(self.channels))
        rf_values = rf_channel_values(spec, draws, self.frequency)  # empty without R&F channels
        if rf_values:
            names += list(rf_values)
        #: the level of each channel's effect the flights meet, per draw (ones for constant effects)
        self.level = mmm.predictive.planning_level(draws, plan)
        if self.geo:
            per_geo = mmm.geo_media_parameters(draws)  # (sample, geo, channel); R&F values are shared by the geos
            per_geo.update(
                {n: np.broadcast_to(v[:, None, :], (len(v), len(mmm.geos), v.shape[-1])) for n, v in rf_values.items()}
            )
            self._params = [np.ascontiguousarray(per_geo[n]) for n in names]
            self._params[0] = self._params[0] * self.level[:, None, :]  # beta (sample, geo, channel)
            if geo is None:  # national totals split over geos by their historical spend share
                spend = mmm.data.geo_channel_spend.sum(axis=0)  # (geo, channel)
                self._share = spend / spend.sum(axis=0)
            else:  # the whole flight runs in one geo
                self._share = np.zeros((len(mmm.geos), len(self.channels)))
                self._share[mmm.geos.index(geo)] = 1.0
            self._target_scale = np.asarray(mmm.scales.target, dtype="float64") * self.revenue_per_kpi  # (geo,)
        else:
            self._params = [np.ascontiguousarray({**draws, **rf_values}[n]) for n in names]
            self._params[0] = self._params[0] * self.level  # beta (sample, channel) at the planning level
            self._target_scale = float(mmm.scales.target) * float(self.revenue_per_kpi)
        self.n_draws = len(self._params[0])
        # weekly spend / (media scale × cost per unit) = the scaled exposure the curves act on
        self._media_scale = np.asarray(mmm.scales.media) * self.cost_per_unit
        horizon = self.weeks + mmm.adstock.l_max - 1
        self._mask = (np.arange(horizon) < self.weeks).astype("float64")

    @cached_property
    @convolution_graphs()
    def _function(self):
        import pytensor
        import pytensor.tensor as pt

        from bayesmmm.components.base import numpy_mode

        mmm = self.mmm
        if self.geo:
            return self._geo_function()
        x = pt.matrix("x", dtype="float64")  # (draw, channel): weekly spend / media scale
        mask = pt.vector("mask", dtype="float64")  # (date,)
        params = {n: pt.matrix(n, dtype="float64") for n in self._names}
        media = mask[:, None, None] * x[None, :, :]
        contrib = media_contributions(mmm.require_spec(), media, params)
        total = pt.sum(contrib, axis=0)  # (draw, channel)
        grad = pt.grad(pt.sum(total), x)  # response of (d, c) depends on x[d, c] only
        return pytensor.function(
            [x, mask, *params.values()], [total, grad], mode=numpy_mode(), on_unused_input="ignore"
        )

    @convolution_graphs()
    def _geo_function(self):
        import pytensor
        import pytensor.tensor as pt

        from bayesmmm.components.base import numpy_mode

        mmm = self.mmm
        x = pt.tensor3("x", dtype="float64")  # (draw, geo, channel): weekly spend / media scale
        mask = pt.vector("mask", dtype="float64")
        scale = pt.vector("target_scale", dtype="float64")  # (geo,)
        params = {n: pt.tensor3(n, dtype="float64") for n in self._names}
        media = mask[:, None, None, None] * x[None]
        contrib = media_contributions(mmm.require_spec(), media, params)
        per_geo = pt.sum(contrib, axis=0) * scale[None, :, None]  # (draw, geo, channel), original units
        grad = pt.grad(pt.sum(per_geo), x)
        fn = pytensor.function(
            [x, mask, scale, *params.values()],
            [pt.sum(per_geo, axis=1), grad],
            mode=numpy_mode(),
            on_unused_input="ignore",
        )
        return lambda x, mask, *params: fn(x, mask, self._target_scale, *params)

    def per_channel(self, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Response and its derivative for each draw and channel.

        Parameters
        ----------
        totals : spend per channel, TOTAL over the flight (money), shape (channel,).

        Returns
        -------
        response : (draw, channel) incremental response, original units (revenue with :attr:`value`).
        gradient : (draw, channel) d response / d total spend of that channel.
        """
        totals = np.asarray(totals, dtype="float64")
        if totals.shape != (len(self.channels),):
            raise ValueError(f"expected {len(self.channels)} spends (one per channel), got shape {totals.shape}")
        weekly = totals / self.weeks
        if self.geo:  # national totals split over geos by historical spend share
            shape = (self.n_draws, *self._share.shape)
            x = np.broadcast_to(weekly * self._share / self._media_scale, shape)
            response, grad = self._function(np.ascontiguousarray(x), self._mask, *self._params)
            return response, (grad * self._share / (self._media_scale * self.weeks)).sum(axis=1)
        x = np.broadcast_to(weekly / self._media_scale, (self.n_draws, len(self.channels)))
        response, grad = self._function(np.ascontiguousarray(x), self._mask, *self._params)
        scale = self._target_scale
        return response * scale, grad * scale / (self._media_scale * self.weeks)

    def total(self, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Total response over channels per draw ``(draw,)`` and its gradient ``(draw, channel)``."""
        response, grad = self.per_channel(totals)
        return response.sum(axis=1), grad


def marginal_roas(mmm: MMM, step: float = 0.01) -> xr.DataArray:
    """Marginal ROAS per draw at the historical spend: the return of the next unit of spend.

    A central difference of the channel's total training-period contribution when its
    whole historical spend pattern is scaled by ``1 ± step``, divided by the change in
    spend. Channels do not interact, so all channels are perturbed in one evaluation.

    The media (exposure) and the spend scale together (each period at its own cost per unit); the
    change of the contribution is valued by each period's revenue per KPI where the data have
    one (revenue per unit of spend), else it is KPI per unit of spend (as :func:`roas_table`).

    Returns
    -------
    DataArray (chain, draw, channel).
    """
    if not 0 < step < 1:
        raise ValueError(f"step must be in (0, 1), got {step}")
    up, down = mmm.media_totals([1.0 + step, 1.0 - step], value=True)
    spend = mmm.data.channel_spend.sum(axis=0)
    mroas = (up - down) / (2.0 * step * spend)
    return mmm.to_chain_draw(mroas, ("channel",), {"channel": list(mmm.channels)})


def response_curves(
    mmm: MMM,
    multipliers: np.ndarray | None = None,
    hdi_prob: float = 0.9,
    max_draws: int | None = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Historical response curve of every channel, with HDIs.

    Each point scales the channel's historical spend pattern by a multiplier and reports
    the channel's total contribution over the training weeks. The curves are computed on
    a seeded subsample of ``max_draws`` posterior draws (all draws with ``None``): 1000
    draws pin a 90% band's edges to within a few percent of the band's width.

    The x axis is spend: a multiplier scales the channel's spend and its exposure alike (each
    period at its own cost per unit), and the curves act on the exposure.

    Returns
    -------
    Long table ``channel, multiplier, spend, response_mean, response_hdi_low,
    response_hdi_high`` (spend and response, in the target's units, are totals over the training
    weeks; the row with multiplier 1 is the current spend); where channels have exposure
    columns (``data.channels``) also ``exposure`` after ``spend`` (equal to it for a spend-only
    channel); with a revenue per KPI also ``revenue_mean,
    revenue_hdi_low, revenue_hdi_high`` (each period's response × its revenue per KPI).
    """
    from bayesmmm.evaluation.summaries import hdi

    if multipliers is None:  # denser near zero, where concave curves bend most
        multipliers = np.concatenate([np.linspace(0.0, 2.0, 41), [0.01, 0.025]])
    multipliers = np.unique(np.append(np.asarray(multipliers, dtype=float), 1.0))
    if (multipliers < 0).any():
        raise ValueError("multipliers must be >= 0")
    spend = mmm.data.channel_spend.sum(axis=0)
    exposure = mmm.data.media.sum(axis=0)
    has_exposure = mmm.data.spend is not None  # the short form's table is unchanged
    draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)

    def summarize(totals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # (multiplier, sample, channel)
        contrib = xr.DataArray(
            totals.transpose(1, 0, 2)[None], dims=("chain", "draw", "multiplier", "channel")
        )  # the subsample as one chain: HDIs and means pool the draws
        lo, hi = (b.to_numpy() for b in hdi(contrib, hdi_prob))
        return totals.mean(axis=1), lo, hi

    mean, lo, hi = summarize(mmm.media_totals(multipliers, draws))
    revenue = summarize(mmm.media_totals(multipliers, draws, value=True)) if mmm.data.has_revenue else None
    rows = [
        {
            "channel": ch,
            "multiplier": float(m),
            "spend": float(spend[c] * m),
            **({"exposure": float(exposure[c] * m)} if has_exposure else {}),
            "response_mean": float(mean[k, c]),
            "response_hdi_low": float(lo[k, c]),
            "response_hdi_high": float(hi[k, c]),
            **(
                {}
                if revenue is None
                else {
                    "revenue_mean": float(revenue[0][k, c]),
                    "revenue_hdi_low": float(revenue[1][k, c]),
                    "revenue_hdi_high": float(revenue[2][k, c]),
                }
            ),
        }
        for k, m in enumerate(multipliers)
        for c, ch in enumerate(mmm.channels)
    ]
    order = {ch: i for i, ch in enumerate(mmm.channels)}
    table = pd.DataFrame(rows)
    table = table.sort_values(["channel", "multiplier"], key=lambda c: c.map(order) if c.name == "channel" else c)
    table = table.reset_index(drop=True)
    table.attrs["hdi_prob"] = hdi_prob
    return table


def adstock_weights(mmm: MMM, hdi_prob: float = 0.9, max_draws: int | None = 1000, seed: int = 0) -> pd.DataFrame:
    """Posterior of the adstock lag weights per channel.

    Returns
    -------
    Long table ``channel, lag, weight_mean, weight_hdi_low, weight_hdi_high``.
    """
    import pytensor

    from bayesmmm.components.base import numpy_mode
    from bayesmmm.evaluation.summaries import hdi

    draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
    params = {p: draws[v] for p, v in mmm.adstock.variable_names.items()}  # (sample, channel)
    weights = pytensor.function([], mmm.adstock.weights(**params), mode=numpy_mode())()  # (lag, sample, channel)
    da = xr.DataArray(
        np.moveaxis(weights, 0, 1)[None],  # (chain=1, draw, lag, channel)
        dims=("chain", "draw", "lag", "channel"),
        coords={"lag": np.arange(weights.shape[0]), "channel": list(mmm.channels)},
    )
    lo, hi = hdi(da, hdi_prob)
    mean = da.mean(("chain", "draw"))
    frame = pd.DataFrame(
        {
            "channel": np.repeat(list(mmm.channels), weights.shape[0]),
            "lag": np.tile(np.arange(weights.shape[0]), len(mmm.channels)),
            "weight_mean": mean.transpose("channel", "lag").to_numpy().ravel(),
            "weight_hdi_low": lo.transpose("channel", "lag").to_numpy().ravel(),
            "weight_hdi_high": hi.transpose("channel", "lag").to_numpy().ravel(),
        }
    )
    return frame


def organic_totals(mmm: MMM, multipliers, draws) -> np.ndarray:
    """Each organic medium's contribution over the training weeks (national) with its historical activity
    scaled by each multiplier: (multiplier, sample, organic). The model's own mean function
    (:meth:`~bayesmmm.model.predictive.Predictive.evaluate`, component ``organic``): adstock and saturation
    with the organic media's own parameters."""
    spec = mmm.require_spec()
    dates, media, block = spec.history_inputs()
    sizes = [len(cols) for _name, cols in spec.input_blocks]
    start = sizes[0]
    stop = start + sizes[1]
    out = []
    for m in multipliers:
        scaled = block.copy()
        scaled[..., start:stop] *= float(m)
        comps = mmm.evaluate(dates, media, scaled, draws=draws, components=("organic",))
        organic = comps["organic"]  # (sample, date, [geo,] organic)
        out.append(organic.sum(axis=tuple(range(1, organic.ndim - 1))))
    return np.stack(out)


def organic_response_curves(
    mmm: MMM,
    multipliers: np.ndarray | None = None,
    hdi_prob: float = 0.9,
    max_draws: int | None = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Historical response curve of every organic medium, with HDIs (like :func:`response_curves`).

    Each point scales the medium's historical activity (sends, posts) by a multiplier and reports its
    total contribution over the training weeks; multiplier 1 is the contribution in ``roles.csv``.
    Organic media have no spend, so no ROAS: the curve is against ``activity`` (the column's total).

    Returns
    -------
    Long table ``organic, multiplier, activity, response_mean, response_hdi_low, response_hdi_high``
    (empty, with these columns, for a model without organic media).
    """
    from bayesmmm.evaluation.summaries import hdi

    columns = ["organic", "multiplier", "activity", "response_mean", "response_hdi_low", "response_hdi_high"]
    spec = mmm.require_spec()
    if not spec.organic:
        return pd.DataFrame(columns=columns)
    if multipliers is None:
        multipliers = np.concatenate([np.linspace(0.0, 2.0, 21), [0.025]])
    multipliers = np.unique(np.append(np.asarray(multipliers, dtype=float), 1.0))
    if (multipliers < 0).any():
        raise ValueError("multipliers must be >= 0")
    activity = spec.data.organic.sum(axis=0)
    draws = mmm.posterior_draws(max_draws=max_draws, seed=seed)
    totals = organic_totals(mmm, multipliers, draws)  # (multiplier, sample, organic)
    contrib = xr.DataArray(totals.transpose(1, 0, 2)[None], dims=("chain", "draw", "multiplier", "organic"))
    lo, hi = (b.to_numpy() for b in hdi(contrib, hdi_prob))
    mean = totals.mean(axis=1)
    rows = [
        {
            "organic": name,
            "multiplier": float(m),
            "activity": float(activity[c] * m),
            "response_mean": float(mean[k, c]),
            "response_hdi_low": float(lo[k, c]),
            "response_hdi_high": float(hi[k, c]),
        }
        for c, name in enumerate(spec.organic)
        for k, m in enumerate(multipliers)
    ]
    table = pd.DataFrame(rows, columns=columns)
    table.attrs["hdi_prob"] = hdi_prob
    return table
