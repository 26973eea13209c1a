"""bayesmmm vs PyMC-Marketing's MMM on the same data, interleaved, as ratios.

Run through nox (``nox -s bench_peers``), which builds PyMC-Marketing's own virtualenv
and passes its interpreter as ``--peer-python``; our fits run in this interpreter.
Every fit is a fresh process with empty compilation caches (cold: what a user waits
for on a first fit). Fits alternate — ours, theirs, ours, theirs — so machine load
hits both alike. Model on both sides: geometric adstock (l_max 8), logistic
saturation, yearly seasonality 2, linear trend, the data set's controls; same chains,
draws, tune and target_accept. Prints a markdown table and writes
``OUT/peers.csv`` and ``OUT/peers.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bayesmmm.bench import cache_env, run_child
from bayesmmm.config import load_experiment
from bayesmmm.simulate import builtin_scenario, load_scenario, write_simulation

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    # name: (scenario, experiment, overrides giving the common model)
    "four_channel": (
        "four_channel",
        ROOT / "configs" / "four_channel.yaml",
        {"model.saturation": "logistic", "model.trend": "linear"},
    ),
    "ten_channel": ("ten_channel", ROOT / "configs" / "ten_channel.yaml", {}),
}
PEER_FIT = ROOT / "benchmarks" / "peer_fit.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peer-python", required=True, help="interpreter of PyMC-Marketing's environment")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--ours", nargs="+", default=["blackjax", "numpyro", "nutpie"], help="our backends")
    parser.add_argument("--theirs", nargs="+", default=["numpyro", "nutpie"], help="PyMC-Marketing's backends")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--target-accept", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/bench-peers"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.datasets:
        scenario, experiment, overrides = DATASETS[name]
        data_path, _ = write_simulation(load_scenario(builtin_scenario(scenario)), args.out / "data" / name)
        data_cfg = load_experiment(experiment, {"data.path": str(data_path)}).data
        jobs = []
        for i in range(max(len(args.ours), len(args.theirs))):  # interleave: ours, theirs, ours, ...
            if i < len(args.ours):
                jobs.append(("bayesmmm", args.ours[i]))
            if i < len(args.theirs):
                jobs.append(("pymc-marketing", args.theirs[i]))
        for rep in range(args.reps):
            for who, backend in jobs:
                seed = args.seed + rep
                with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
                    env = cache_env(Path(cache))
                    if who == "bayesmmm":
                        spec = {
                            "experiment": str(experiment),
                            "data_path": str(data_path.resolve()),
                            "overrides": {
                                **overrides,
                                "sampler.backend": backend,
                                "sampler.seed": seed,
                                "sampler.chains": args.chains,
                                "sampler.draws": args.draws,
                                "sampler.tune": args.tune,
                                "sampler.target_accept": args.target_accept,
                                "sampler.progressbar": False,
                            },
                        }
                        result = run_child(spec, env, 3600)
                    else:
                        spec = {
                            "data_path": str(data_path.resolve()),
                            "date_column": data_cfg.date_column,
                            "target_column": data_cfg.target_column,
                            "channels": data_cfg.channel_columns,
                            "controls": data_cfg.control_columns,
                            "chains": args.chains,
                            "draws": args.draws,
                            "tune": args.tune,
                            "seed": seed,
                            "target_accept": args.target_accept,
                            "nuts_sampler": backend,
                        }
                        code = PEER_FIT.read_text()
                        result = run_child(spec, env, 3600, python=args.peer_python, module=code)
                row = {"dataset": name, "library": who, "backend": backend, "rep": rep, **result}
                rows.append(row)
                print(json.dumps(row), flush=True)
                pd.DataFrame(rows).to_csv(args.out / "peers.csv", index=False)
    table = pd.DataFrame(rows)
    md = summary_markdown(table, args)
    (args.out / "peers.md").write_text(md)
    print("\n" + md)


def summary_markdown(table: pd.DataFrame, args: argparse.Namespace) -> str:
    """All runs, then per data set our best backend vs theirs (min bulk ESS per wall second)."""
    cols = [
        "dataset",
        "library",
        "backend",
        "rep",
        "wall_s",
        "compile_s",
        "min_ess_bulk",
        "ess_per_s",
        "ess_per_1k_grad",
        "divergences",
        "max_rhat",
        "peak_mem_mb",
        "status",
    ]
    ok = table[table["status"] == "ok"]
    lines = [
        f"{args.chains} chains × {args.tune} tune × {args.draws} draws, target_accept {args.target_accept}, "
        "cold caches, every fit in a fresh process, ours and theirs interleaved.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for _, r in table.reindex(columns=cols).iterrows():
        lines.append("| " + " | ".join(_cell(r[c]) for c in cols) + " |")
    lines += [
        "",
        "| data | ours (best) | ESS/s | div. | PyMC-Marketing (best) | ESS/s | div. | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(table["dataset"]):
        part = ok[ok["dataset"] == name].groupby(["library", "backend"])[["ess_per_s", "divergences"]].median()
        if "bayesmmm" not in part.index.get_level_values(0) or "pymc-marketing" not in part.index.get_level_values(0):
            continue
        ours = part.loc["bayesmmm"].sort_values("ess_per_s").iloc[-1:]
        theirs = part.loc["pymc-marketing"].sort_values("ess_per_s").iloc[-1:]
        o, t = ours.iloc[0], theirs.iloc[0]
        lines.append(
            f"| {name} | {ours.index[0]} | {o.ess_per_s:.1f} | {o.divergences:.0f} | {theirs.index[0]} | "
            f"{t.ess_per_s:.1f} | {t.divergences:.0f} | {o.ess_per_s / t.ess_per_s:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.4g}"
    return "" if v is None else str(v)


if __name__ == "__main__":
    sys.exit(main())
