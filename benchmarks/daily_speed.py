"""Wall time of a national fit on daily data, as a user runs it: the whole `bayesmmm fit` process.

Simulates (NumPy, here) ``--days`` days (default 1095: three years) of ``--channels`` channels
(default 10) with geometric carry-over, logistic saturation, a day-of-week pattern, yearly
seasonality, a trend and noise; writes the CSV and an experiment YAML (``data.frequency: auto``,
``adstock: geometric, l_max`` ``--l-max`` days, yearly seasonality 2, day-of-week seasonality
of the default order for daily data) and times ``bayesmmm fit`` in a fresh Python process
(import, compile, warm-up, sampling, diagnostics, writing the run folder), 4 chains × 1000
draws + 1000 warm-up by default. Then prints the run's own timings (``metadata.json``).

``--scaling`` also times one log-density gradient (JAX, jitted, float64) for 1, 2 and 3
years of days: the cost must grow at most linearly in the number of periods.

Run with ``OMP_NUM_THREADS=1`` on an otherwise idle machine; ``--cores`` caps the chains run at
once (default 2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def simulate_daily(days: int, channels: int, seed: int = 0, l_max: int = 28) -> pd.DataFrame:
    """A daily data set with known structure (NumPy only)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2022-01-01", periods=days, freq="D")
    t = np.arange(days)
    names = [f"ch{c}" for c in range(channels)]
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d")})
    sales = 1000.0 + 0.05 * t
    sales = sales + 80 * np.sin(2 * np.pi * t / 365.25) + 40 * np.cos(2 * np.pi * t / 365.25)
    sales = sales + np.array([30, 10, 0, -5, 20, 60, 50])[dates.day_of_week]
    for c, name in enumerate(names):
        base = rng.uniform(50, 500)
        on = rng.random(days) < (0.6 if c % 3 == 0 else 1.0)  # some channels flighted
        spend = base * np.exp(rng.normal(0, 0.4, days)) * on
        alpha = rng.uniform(0.3, 0.85)
        w = alpha ** np.arange(l_max)
        w /= w.sum()
        ad = np.convolve(spend, w)[:days]
        lam = rng.uniform(0.5, 2.0)
        x = ad / spend[spend > 0].mean()
        sales = sales + rng.uniform(20, 80) * (1 - np.exp(-lam * x)) / (1 + np.exp(-lam * x))
        frame[name] = np.round(spend, 2)
    frame["sales"] = np.round(sales + rng.normal(0, 15, days), 2)
    return frame


def experiment_yaml(
    csv: Path, channels: int, l_max: int, chains: int, draws: int, tune: int, sampler: str, precondition: str = ""
) -> str:
    names = ", ".join(f"ch{c}" for c in range(channels))
    extra = f", precondition: {precondition}" if precondition else ""
    return f"""name: daily_speed
data:
  path: {csv}
  frequency: auto
  target_column: sales
  channel_columns: [{names}]
model:
  adstock: {{name: geometric, l_max: {l_max}}}
  saturation: {{name: logistic}}
  yearly_seasonality: 2
  trend: linear
sampler: {{backend: {sampler}, chains: {chains}, draws: {draws}, tune: {tune}, seed: 1{extra}}}
output: {{figures: false}}
"""


def time_fit(args: argparse.Namespace, folder: Path) -> tuple[float, dict]:
    csv = folder / "daily.csv"
    simulate_daily(args.days, args.channels, l_max=args.l_max).to_csv(csv, index=False)
    yaml_path = folder / "daily.yaml"
    yaml_path.write_text(
        experiment_yaml(
            csv, args.channels, args.l_max, args.chains, args.draws, args.tune, args.sampler, args.precondition
        )
    )
    out = folder / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-c", "from bayesmmm.cli import run; run()", "fit", str(yaml_path), "-o", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"bayesmmm fit failed (exit {proc.returncode})")
    meta_path = out / "metadata.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["sampler_stats"] = sampler_stats(out / "posterior.nc")
    diag_path = out / "diagnostics.json"  # max_rhat, min_ess_bulk, divergences, ...
    if diag_path.exists():
        meta["diagnostics"] = json.loads(diag_path.read_text())
    return wall, meta


def sampler_stats(path: Path) -> dict[str, float]:
    """Leapfrog steps per draw, step size and divergences of a run's ``posterior.nc`` (``sample_stats``)."""
    import xarray as xr

    if not path.exists():
        return {}
    try:
        stats = xr.open_datatree(path)["sample_stats"].to_dataset()
    except (KeyError, OSError, ValueError):
        return {}
    out = {"divergences": int(stats["diverging"].sum())}
    for name, key in (("n_steps", "steps_per_draw"), ("step_size", "step_size"), ("tree_depth", "tree_depth")):
        if name in stats:
            out[key] = float(stats[name].mean())
    return out


def gradient_us(days: int, channels: int, l_max: int, n: int = 500) -> float:
    """µs per log-density gradient (JAX, float64, jitted loop) of the benchmark model on ``days`` days."""
    from bayesmmm import MMM
    from bayesmmm.inference.jax import runtime
    from bayesmmm.inference.jax.translate import jax_model

    frame = simulate_daily(days, channels, l_max=l_max)
    mmm = MMM(
        {"channel_columns": [f"ch{c}" for c in range(channels)], "target_column": "sales"},
        {"adstock": {"name": "geometric", "l_max": l_max}, "saturation": "logistic", "yearly_seasonality": 2},
    )
    model = mmm.build_model(frame)
    jax = runtime.configure_jax()
    import jax.numpy as jnp

    jm = jax_model(model)
    data = [jnp.asarray(v) for v in jm.data_values]
    position = [jnp.asarray(jm.initial_point[k]) for k in jm.value_names]
    vg = jax.value_and_grad(lambda p: jm.logp(p, data))

    @jax.jit
    def loop(position):
        def body(i, carry):
            value, grads = vg([p + 1e-9 * i for p in position])
            return carry + value + sum(g.sum() for g in grads)

        return jax.lax.fori_loop(0, n, body, jnp.zeros(()))

    loop(position).block_until_ready()
    start = time.perf_counter()
    loop(position).block_until_ready()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--l-max", type=int, default=28, help="adstock lags in days (default 28)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--sampler", default="auto")
    parser.add_argument(
        "--precondition", default="", help="sampler.precondition (laplace or none; default: the config's default)"
    )
    parser.add_argument("--grad-days", action="store_true", help="time one gradient at --days for the summary line")
    parser.add_argument("--scaling", action="store_true", help="also time one gradient at 1, 2, 3 years of days")
    parser.add_argument("--no-fit", action="store_true", help="skip the whole-process fit")
    args = parser.parse_args()
    if not args.no_fit:
        with tempfile.TemporaryDirectory() as tmp:
            wall, meta = time_fit(args, Path(tmp))
        print(
            f"bayesmmm fit, {args.days} days × {args.channels} channels, geometric l_max {args.l_max}, "
            f"{args.chains} chains × {args.draws} draws + {args.tune} warm-up, sampler {args.sampler}: "
            f"{wall:.1f} s whole process"
        )
        timings = meta.get("timings") or {}
        if timings:
            print("run timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items() if isinstance(v, float)))
        diag = meta.get("diagnostics") or {}
        if diag:
            keys = ("max_rhat", "min_ess_bulk", "divergences")
            print("diagnostics: " + ", ".join(f"{k} {diag[k]}" for k in keys if k in diag))
        st = meta.get("sampler_stats") or {}
        grad = gradient_us(args.days, args.channels, args.l_max) if args.grad_days else float("nan")
        load = " ".join(f"{v:.1f}" for v in os.getloadavg())
        print(
            f"SUMMARY days {args.days} channels {args.channels} chains {args.chains}x{args.draws}+{args.tune}: "
            f"wall {wall:.1f} s, steps/draw {st.get('steps_per_draw', float('nan')):.1f}, "
            f"step size {st.get('step_size', float('nan')):.3f}, grad {grad:.1f} us, "
            f"R-hat max {diag.get('max_rhat', float('nan')):.3f}, "
            f"ESS min {diag.get('min_ess_bulk', float('nan')):.0f}, "
            f"divergences {st.get('divergences', diag.get('divergences', -1))}, load {load}"
        )
    if args.scaling:
        rows = ["| days | µs per gradient | µs per gradient per day |", "|---|---|---|"]
        for days in (365, 730, 1095):
            us = gradient_us(days, args.channels, args.l_max)
            rows.append(f"| {days} | {us:.1f} | {us / days:.3f} |")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
