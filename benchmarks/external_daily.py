"""A second daily data generator, written independently of bayesmmm's simulator (issue 25).

The developers' guide asks that recovery be checked on a generator other than our own: this
one is plain NumPy, shares no code with :mod:`bayesmmm.workflows.simulate`, and makes other
choices wherever our simulator (and model) make one:

- carry-over: UNNORMALIZED adstock, a geometric recursion ``a_t = x_t + λ a_{t-1}`` with
  infinite memory for search, social and the newsletter, and a delayed (peaked) kernel
  ``w_l = λ^((l - θ)²)``, ``l < 21``, for tv;
- saturation: Hill on the adstocked exposure in its own units, half-saturation
  ``K = k × median`` of the positive adstocked exposure;
- cost per unit: regimes (piecewise constant in logs, 2-5 change points) plus AR(1) noise,
  social's cost up ~30% in November-December; exposure = spend / cost;
- spend: search paced by weekday (less at weekends), social in campaign bursts, tv in
  fixed four-week flights of random level; newsletter sends every Wednesday to a growing
  list (organic, no spend);
- price index: slow drift plus 7-day promotions at 0.85-0.9 (a treatment; true effect
  linear, against its mean); sale events on each year's real Black Friday weekend and a
  random week of March and July, effects drawn per data set;
- revenue per conversion: a price list that changes in steps, higher baskets at weekends;
- baseline: an integrated random-walk trend, yearly seasonality from smoothed monthly
  effects, day-of-week effects drawn per data set; Student-t noise (ν = 6).

The columns are those of the built-in ``daily_exposure`` scenario (same experiment), and
``truth.json`` has the same keys (``channels``: spend, contribution in KPI and revenue,
``roas`` = ``roas_revenue``, ``roas_kpi``; ``organic``; ``treatments``; ``categorical_events``).

    python benchmarks/external_daily.py --seed 1 -o runs/external_daily
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

START = "2023-01-02"  # a Monday
N_DAYS = 1092  # 156 weeks
COLUMNS = {
    "search": {"spend": "search_spend", "exposure": "search_clicks"},
    "social": {"spend": "social_spend", "exposure": "social_impressions"},
    "tv": {"spend": "tv_spend"},
}


def geometric_carryover(x: np.ndarray, lam: float) -> np.ndarray:
    """Unnormalized geometric adstock with infinite memory: a_t = x_t + lam · a_{t-1}."""
    out = np.empty_like(x, dtype=float)
    acc = 0.0
    for t, v in enumerate(x):
        acc = v + lam * acc
        out[t] = acc
    return out


def delayed_carryover(x: np.ndarray, lam: float, theta: float, length: int = 21) -> np.ndarray:
    """Unnormalized delayed adstock: Σ_l lam^((l - theta)²) x_{t-l}, l < length."""
    w = lam ** ((np.arange(length) - theta) ** 2)
    out = np.zeros(len(x))
    for lag in range(length):
        out[lag:] += w[lag] * x[: len(x) - lag]
    return out


def hill(a: np.ndarray, half: float, slope: float) -> np.ndarray:
    """Hill curve a^s / (a^s + half^s), on the series' own units."""
    return a**slope / (a**slope + half**slope)


def _regimes(n: int, rng: np.random.Generator, sd: float) -> np.ndarray:
    """Piecewise-constant log level with 2-5 change points."""
    cuts = np.sort(rng.choice(np.arange(60, n - 60), size=int(rng.integers(2, 6)), replace=False))
    level = np.zeros(n)
    for c in cuts:
        level[c:] += rng.normal(0.0, sd)
    return level


def _ar1(n: int, rng: np.random.Generator, rho: float, sd: float) -> np.ndarray:
    out = np.zeros(n)
    for t in range(1, n):
        out[t] = rho * out[t - 1] + rng.normal(0.0, sd)
    return out


def _black_friday_weekend(year: int) -> pd.DatetimeIndex:
    """Friday after the 4th Thursday of November, to the Monday after."""
    nov = pd.date_range(f"{year}-11-01", f"{year}-11-30", freq="D")
    thanksgiving = nov[nov.day_of_week == 3][3]
    return pd.date_range(thanksgiving + pd.Timedelta(days=1), periods=4, freq="D")


def generate(seed: int, n_days: int = N_DAYS, start: str = START) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One data set and its truth (see the module docstring)."""
    rng = np.random.default_rng([seed, 4242])
    dates = pd.date_range(start, periods=n_days, freq="D")
    n = n_days
    dow = dates.day_of_week.to_numpy()
    months = dates.month.to_numpy()
    weekend = dow >= 5

    # baseline: integrated random-walk trend, smoothed monthly seasonality, day of week
    slope = np.cumsum(rng.normal(0.0, 0.004, n))
    trend = 550 + 40 * rng.normal() + np.cumsum(slope - slope.mean())
    month_fx = rng.normal(0.0, 35.0, 12)
    month_fx[10:] += 60  # November-December peak
    season = np.convolve(np.pad(month_fx[months - 1], 15, mode="edge"), np.ones(31) / 31, mode="valid")
    dow_fx = rng.normal(0.0, 15.0, 7)
    dow_fx[5:] -= 25
    base = trend + season + dow_fx[dow]

    # spend and cost per unit
    pacing = np.where(weekend, 0.6, 1.1)
    search_spend = rng.lognormal(np.log(1800), 0.35, n) * pacing
    bursts = np.repeat(rng.uniform(0.3, 1.8, n // 14 + 1), 14)[:n]
    social_spend = rng.gamma(3.0, 450.0, n) * bursts
    tv_on = np.zeros(n, dtype=bool)
    t = int(rng.integers(0, 30))
    while t < n:
        tv_on[t : t + 28] = True
        t += 28 + int(rng.integers(21, 70))
    flight_level = np.repeat(rng.uniform(4000, 12000, n // 28 + 2), 28)[:n]
    tv_spend = np.where(tv_on, flight_level * rng.uniform(0.8, 1.2, n), 0.0)

    cpc = 1.1 * np.exp(_regimes(n, rng, 0.25) + _ar1(n, rng, 0.9, 0.05))
    q4 = np.isin(months, [11, 12])
    cpm = 7.0 * np.exp(_regimes(n, rng, 0.2) + 0.3 * q4 + _ar1(n, rng, 0.9, 0.05))
    search_clicks = search_spend / cpc
    social_impressions = social_spend / (cpm / 1000.0)

    # media truth: parameters drawn per data set
    params = {
        "search": {"lam": rng.uniform(0.1, 0.4), "k": rng.uniform(0.6, 1.4), "s": rng.uniform(0.9, 1.4)},
        "social": {"lam": rng.uniform(0.3, 0.6), "k": rng.uniform(0.6, 1.4), "s": rng.uniform(1.0, 1.8)},
        "tv": {"lam": rng.uniform(0.6, 0.8), "theta": rng.uniform(1.0, 4.0), "k": rng.uniform(0.8, 1.6)},
    }
    params["tv"]["s"] = rng.uniform(1.2, 2.2)
    peak = {"search": rng.uniform(120, 200), "social": rng.uniform(60, 140), "tv": rng.uniform(150, 300)}
    adstocked = {
        "search": geometric_carryover(search_clicks, params["search"]["lam"]),
        "social": geometric_carryover(social_impressions, params["social"]["lam"]),
        "tv": delayed_carryover(tv_spend, params["tv"]["lam"], params["tv"]["theta"]),
    }
    media = {}
    for ch, a in adstocked.items():
        half = params[ch]["k"] * np.median(a[a > 0])
        params[ch]["half_saturation"] = float(half)
        params[ch]["peak"] = float(peak[ch])
        media[ch] = peak[ch] * hill(a, half, params[ch]["s"])

    # organic newsletter: Wednesdays, to a growing list
    list_size = np.linspace(50_000, 50_000 * rng.uniform(1.3, 1.8), n)
    sends = np.where(dow == 2, list_size * rng.uniform(0.85, 1.0, n), 0.0)
    news_lam, news_k, news_peak = rng.uniform(0.3, 0.6), rng.uniform(0.5, 1.2), rng.uniform(30, 80)
    news_a = geometric_carryover(sends, news_lam)
    news_half = news_k * np.median(news_a[news_a > 0])
    newsletter = news_peak * hill(news_a, news_half, 1.0)

    # price index: drift plus 7-day promotions; linear effect against the mean
    price = 1.0 + _ar1(n, rng, 0.995, 0.003)
    for s in rng.choice(np.arange(0, n - 7), size=10, replace=False):
        price[s : s + 7] = rng.uniform(0.85, 0.9)
    price_effect = -rng.uniform(400, 900)
    price_contribution = price_effect * (price - price.mean())

    # categorical sale events
    event = np.full(n, "none", dtype=object)
    level_days: dict[str, list[pd.Timestamp]] = {"black_friday": [], "spring_sale": [], "summer_sale": []}
    for year in sorted(set(dates.year)):
        level_days["black_friday"] += list(_black_friday_weekend(year))
        for level, month in (("spring_sale", 3), ("summer_sale", 7)):
            first = pd.Timestamp(f"{year}-{month:02d}-01") + pd.Timedelta(days=int(rng.integers(0, 22)))
            level_days[level] += list(pd.date_range(first, periods=7, freq="D"))
    effects = {
        "black_friday": rng.uniform(150, 300),
        "spring_sale": rng.uniform(40, 100),
        "summer_sale": rng.uniform(60, 150),
    }
    index = pd.Series(np.arange(n), index=dates)
    for level, days in level_days.items():
        hit = index.reindex(pd.DatetimeIndex(days)).dropna().astype(int).to_numpy()
        event[hit] = level
    event_contribution = np.array([0.0 if v == "none" else effects[v] for v in event])

    # revenue per conversion: a stepped price list, bigger weekend baskets
    rpk = 38.0 * np.exp(_regimes(n, rng, 0.1) + 0.08 * weekend + rng.normal(0.0, 0.03, n))

    noise = 35.0 * rng.standard_t(6, n)
    conversions = base + sum(media.values()) + newsletter + price_contribution + event_contribution + noise
    frame = pd.DataFrame(
        {
            "date": dates.strftime("%Y-%m-%d"),
            "conversions": conversions,
            "search_spend": search_spend,
            "search_clicks": search_clicks,
            "social_spend": social_spend,
            "social_impressions": social_impressions,
            "tv_spend": tv_spend,
            "newsletter_sends": sends,
            "price_index": price,
            "event": event,
            "revenue_per_conversion": rpk,
        }
    )
    spends = {"search": search_spend, "social": social_spend, "tv": tv_spend}
    channels = {}
    for ch, contribution in media.items():
        spend = float(spends[ch].sum())
        revenue = float(np.sum(contribution * rpk))
        channels[ch] = {
            "spend_column": COLUMNS[ch]["spend"],
            **({"exposure_column": COLUMNS[ch]["exposure"]} if "exposure" in COLUMNS[ch] else {}),
            "params": params[ch],
            "spend": spend,
            "contribution": float(contribution.sum()),
            "contribution_revenue": revenue,
            "roas_kpi": float(contribution.sum()) / spend,
            "roas_revenue": revenue / spend,
            "roas": revenue / spend,
            "period_contribution": contribution.round(6).tolist(),
        }
    levels = {}
    for level, effect in effects.items():
        mask = event == level
        levels[level] = {
            "effect": float(effect),
            "periods": int(mask.sum()),
            "contribution": float(effect * mask.sum()),
            "contribution_revenue": float(effect * rpk[mask].sum()),
        }
    truth = {
        "generator": "external_daily",
        "seed": seed,
        "frequency": "daily",
        "kpi": {"column": "conversions", "revenue_per_kpi_column": "revenue_per_conversion"},
        "channels": channels,
        "organic": {
            "newsletter": {
                "column": "newsletter_sends",
                "params": {"lam": news_lam, "half_saturation": float(news_half), "peak": news_peak},
                "contribution": float(newsletter.sum()),
                "contribution_revenue": float(np.sum(newsletter * rpk)),
                "period_contribution": newsletter.round(6).tolist(),
            }
        },
        "treatments": {
            "price_index": {
                "effect": float(price_effect),
                "baseline": "mean",
                "baseline_value": float(price.mean()),
                "contribution": float(price_contribution.sum()),
                "contribution_revenue": float(np.sum(price_contribution * rpk)),
            }
        },
        "categorical_events": {"event": {"reference": "none", "levels": levels}},
    }
    return frame, truth


def write(seed: int, out: Path) -> tuple[Path, Path]:
    """Write ``out/data.csv`` and ``out/truth.json``."""
    frame, truth = generate(seed)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "data.csv", index=False)
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return out / "data.csv", out / "truth.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/external_daily"))
    args = parser.parse_args()
    data, truth = write(args.seed, args.out)
    print(f"wrote {data}, {truth}")


if __name__ == "__main__":
    main()
