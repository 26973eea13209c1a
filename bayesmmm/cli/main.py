"""Command-line interface: ``bayesmmm demo | simulate | fit | predict | select | compare | sweep | bench |
optimize | report | schema | datasets`` here; ``serve | register | models | compare-models | promote`` in
:mod:`bayesmmm.cli.serve`.

Global options: ``--version``; ``-q/--quiet`` (errors and warnings only: no progress messages, bars
or summary tables; commands whose output is the result, like ``schema``, still print it);
``-v/--verbose`` (``-vv``: log messages of bayesmmm and its libraries at INFO / DEBUG); ``--debug``.

Exit codes: 0 success; 2 bad input (config, data, files); 3 the diagnostics gate
failed with ``diagnostics.on_fail: fail`` (or a promotion was refused); 4 some runs of a
sweep failed; 1 an unexpected error (``--debug`` shows the traceback).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

from bayesmmm.workflows.demo import ChildFit, input_errors

app = typer.Typer(
    name="bayesmmm",
    help="Bayesian marketing mix modelling: simulate, fit, diagnose, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STATE = {"debug": False}

# options shared by the commands that fit
DataOpt = Annotated[Path | None, typer.Option("--data", help="CSV to use instead of data.path")]
SamplerOpt = Annotated[str | None, typer.Option("--sampler", help="auto | nutpie | pymc | numpyro | blackjax")]
DrawsOpt = Annotated[int | None, typer.Option("--draws", help="posterior draws per chain")]
TuneOpt = Annotated[int | None, typer.Option("--tune", help="warm-up draws per chain")]
ChainsOpt = Annotated[int | None, typer.Option("--chains")]
SeedOpt = Annotated[int | None, typer.Option("--seed")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="cpu | gpu | auto (numpyro and blackjax; sampler.device)")
]
MlflowOpt = Annotated[
    str | None,
    typer.Option(
        "--mlflow", help="track the fit in MLflow at this URI, e.g. sqlite:///mlflow.db (tracking.mlflow.tracking_uri)"
    ),
]

EXIT_INPUT = 2
EXIT_DIAGNOSTICS = 3


def echo_error(msg: str) -> None:
    typer.echo(msg, err=True)


def _echo(msg: str = "") -> None:
    """Print a progress message or result to stdout, unless -q was given (errors use :func:`echo_error`)."""
    from bayesmmm.progress import is_quiet

    if not is_quiet():
        typer.echo(msg)


def _version(value: bool) -> None:
    if value:
        from bayesmmm import __version__

        typer.echo(f"bayesmmm {__version__}")
        raise typer.Exit()


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn known input errors into one clear line and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            echo_error("interrupted: finished runs are complete; the unfinished one left nothing behind")
            raise typer.Exit(130) from None
        except input_errors() as exc:
            if _STATE["debug"]:
                raise
            echo_error(f"error: {exc}")
            raise typer.Exit(EXIT_INPUT) from None
        except Exception as exc:
            if _STATE["debug"]:
                raise
            echo_error(f"unexpected error ({type(exc).__name__}): {exc}\nrun again with --debug for the traceback")
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="print errors and warnings only (no progress, no tables)")
    ] = False,
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="log messages of bayesmmm and its libraries (-vv: debug)")
    ] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Bayesian marketing mix modelling."""
    from bayesmmm.progress import set_verbosity

    _STATE["debug"] = debug
    set_verbosity(0 if quiet and verbose else -1 if quiet else verbose)
    if quiet and verbose:
        echo_error("error: give -q/--quiet or -v/--verbose, not both")
        raise typer.Exit(EXIT_INPUT)
    if not debug:  # warnings as one line each ("warning: ..."), without the source line
        import warnings

        warnings.formatwarning = lambda message, *_args, **_kwargs: f"warning: {message}\n"


def _sampler_overrides(
    sampler: str | None,
    draws: int | None,
    tune: int | None,
    chains: int | None,
    seed: int | None,
    device: str | None = None,
) -> dict[str, Any]:
    values = {"backend": sampler, "draws": draws, "tune": tune, "chains": chains, "seed": seed, "device": device}
    return {f"sampler.{k}": v for k, v in values.items() if v is not None}


def _load_experiment(
    experiment: Path,
    data: Path | None,
    sampler: str | None,
    draws: int | None,
    tune: int | None,
    chains: int | None,
    seed: int | None,
    device: str | None = None,
):
    """Read an experiment YAML with the command line's overrides applied before validation."""
    from bayesmmm.config.experiment import load_experiment

    overrides = _sampler_overrides(sampler, draws, tune, chains, seed, device)
    if data is not None:
        overrides["data.path"] = str(data.resolve())
    return load_experiment(experiment, _quiet_sampler(overrides))


def _quiet_sampler(overrides: dict[str, Any]) -> dict[str, Any]:
    """With -q, the sampler's own progress bar is off too."""
    from bayesmmm.progress import is_quiet

    return {**overrides, "sampler.progressbar": False} if is_quiet() else overrides


def _print_summary(result: Any, truth: dict[str, Any] | None = None) -> None:
    import pandas as pd

    roas = result.roas
    prob = roas.attrs.get("hdi_prob", 0.9)
    table = pd.DataFrame(
        {
            "channel": roas["channel"],
            "spend": roas["spend"].map("{:,.0f}".format),
            "contribution": roas["contribution_mean"].map("{:,.1f}".format),
            "ROAS mean": roas["roas_mean"].map("{:.4g}".format),
            # runs written before the medians existed have none
            "median": roas["roas_median"].map("{:.4g}".format) if "roas_median" in roas else "–",
            f"ROAS {prob:.0%} HDI": [
                f"[{lo:.4g}, {hi:.4g}]" for lo, hi in zip(roas.roas_hdi_low, roas.roas_hdi_high, strict=True)
            ],
            "share": roas["share_mean"].map("{:.1%}".format),
        }
    )
    if "cost_per_kpi_median" in roas:  # runs written before cost per KPI have none
        table["cost/KPI median"] = roas["cost_per_kpi_median"].map("{:.4g}".format)
    unit = str(roas["roas_unit"].iloc[0]) if "roas_unit" in roas else "KPI per unit of spend"
    if unit.startswith("revenue"):
        unit += " (each week's contribution × its revenue per KPI)"
    else:
        unit += " (no data.revenue_per_kpi_column: the target's own units)"
    footer = []
    if truth:
        true = [truth["channels"][ch]["roas"] for ch in roas["channel"]]
        ok = [lo <= t <= hi for t, lo, hi in zip(true, roas.roas_hdi_low, roas.roas_hdi_high, strict=True)]
        table["true ROAS"] = [f"{t:.4g}" for t in true]
        table["covered"] = ["yes" if o else "no" for o in ok]
        footer.append(f"  the {prob:.0%} HDI covers the true ROAS for {sum(ok)} of {len(ok)} channels")
    lines = ["", f"ROAS (contribution / spend): {unit}", table.to_string(index=False), *footer]
    d = result.diagnostics
    verdict = "PASSED" if d["passed"] else "FAILED: " + "; ".join(d["problems"])
    lines.append(
        f"\nDiagnostics {verdict} (max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
        f"min tail ESS {d['min_ess_tail']:.0f}, divergences {d['divergences']})"
    )
    lines.extend(_calibration_lines(d))
    m = result.metrics
    t = result.timings
    lines.append(f"Fit: R² {m['r2']:.3f}, MAPE {m['mape']:.2%}, NRMSE {m['nrmse']:.3f}")
    lines.append(
        f"Time: compile {t.get('compile_s', 0):.1f} s, sampling {t.get('sample_s', 0):.1f} s, "
        f"total {t.get('total_s', 0):.1f} s"
    )
    lines.append(f"Run folder: {result.run_dir}")
    _echo("\n".join(lines))


def _start_tracking(config: Any, uri: str | None) -> Any:
    """The MLflow settings when tracking is on (YAML or --mlflow), its store opened before any fitting."""
    if uri is None and config.tracking.mlflow is None:
        return None
    from bayesmmm.workflows.tracking import mlflow_config, start_tracking

    settings = mlflow_config(config, uri)
    start_tracking(settings, config)
    return settings


def _track(result: Any, settings: Any, config: Any) -> None:
    if settings is None:
        return
    from bayesmmm.workflows.tracking import log_run

    run_id = log_run(result.run_dir, settings, config)
    _echo(f"MLflow run {run_id} (experiment {settings.experiment or config.name or 'bayesmmm'})")


def _calibration_lines(d: dict[str, Any]) -> list[str]:
    """The summary's lines on lift tests and identifiability (diagnostics.json)."""
    lines = []
    for t in d.get("calibration", {}).get("lift_tests", []):
        lo, hi = t["model_lift_hdi"]
        lines.append(
            f"Lift test {t['channel']}{' ' + t['geo'] if t.get('geo') else ''}: measured {t['delta_y']:+,.1f} "
            f"± {t['sigma']:,.1f}, model {t['model_lift_mean']:+,.1f} [{lo:+,.1f}, {hi:+,.1f}] (z {t['z']:+.1f})"
        )
    ident = d.get("identifiability")
    if ident:
        parts = []
        for ch, e in ident["channels"].items():
            value = e.get("log_contraction") if e.get("log_contraction") is not None else e["contraction"]
            parts.append(f"{ch} {value:.3f}" + (" PRIOR-DRIVEN" if e["prior_driven"] else ""))
        lines.append(
            f"Identifiability (share of the prior's log-ROAS variance the data removed; prior-driven below "
            f"{ident['threshold']:g}): " + ", ".join(parts)
        )
        lines.extend(f"  {e['advice']}" for e in ident["channels"].values() if e.get("advice"))
        lines.extend(_extrapolation_lines(ident))
    return lines


def _extrapolation_lines(ident: dict[str, Any]) -> list[str]:
    """The summary's lines on the extrapolated contribution (none for runs written before the check)."""
    shares = {**ident["channels"], **ident.get("organic", {})}
    parts = [
        f"{name} {e['extrapolated_share']:.2f}" + (" EXTRAPOLATED" if e.get("extrapolated") else "")
        for name, e in shares.items()
        if e.get("extrapolated_share") is not None
    ]
    if not parts:
        return []
    lines = [
        "Extrapolated contribution (share below the lowest input the data show, decided by the curve's form; "
        f"flagged from {ident.get('extrapolated_threshold', 0.5):g}): " + ", ".join(parts)
    ]
    lines.extend(f"  {e['extrapolation_advice']}" for e in shares.values() if e.get("extrapolation_advice"))
    return lines


def _finish(result: Any, on_fail: str) -> None:
    if not result.diagnostics["passed"] and on_fail == "fail":
        echo_error("error: the diagnostics gate failed (diagnostics.on_fail: fail); see diagnostics.json")
        raise typer.Exit(EXIT_DIAGNOSTICS)


@app.command()
@handle_errors
def simulate(
    scenario: Annotated[
        str,
        typer.Argument(
            help="scenario YAML, or a built-in name: four_channel, intermittent, ten_channel, geo_panel, "
            "daily_exposure, effect_change, reach_frequency"
        ),
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder")],
) -> None:
    """Simulate a scenario: writes OUT/data.csv and OUT/truth.json (OUT/lift_tests.csv if it asks for tests,
    OUT/experiment.yaml if it has an experiment template)."""
    from bayesmmm.workflows.simulate import load_scenario, write_simulation

    config = load_scenario(_scenario_path(scenario))
    data_path, truth_path = write_simulation(config, out)
    lift = f" and {data_path.parent / 'lift_tests.csv'}" if config.lift_tests is not None else ""
    experiment = f" and {data_path.parent / 'experiment.yaml'}" if config.experiment is not None else ""
    _echo(f"wrote {data_path}, {truth_path}{lift}{experiment}")


def _scenario_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists() or name_or_path.endswith((".yaml", ".yml")):
        return path
    from bayesmmm.workflows.simulate import builtin_scenario

    return builtin_scenario(name_or_path)


@app.command()
@handle_errors
def fit(
    experiment: Annotated[Path, typer.Argument(help="experiment YAML")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="run folder (default runs/NAME-TIME)")] = None,
    data: DataOpt = None,
    sampler: SamplerOpt = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    mlflow: MlflowOpt = None,
) -> None:
    """Fit an experiment YAML and write a run folder (and track it in MLflow, with --mlflow or tracking:)."""
    from bayesmmm.workflows.experiment import default_run_dir, run_experiment

    config = _load_experiment(experiment, data, sampler, draws, tune, chains, seed, device)
    tracking = _start_tracking(config, mlflow)
    run_dir = out or default_run_dir(config)
    result = run_experiment(config, run_dir, log=_echo)
    _print_summary(result)
    _track(result, tracking, config)
    _finish(result, config.diagnostics.on_fail)


@app.command()
@handle_errors
def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="folder for data/ and run/")] = Path("runs/demo"),
    sampler: SamplerOpt = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
    mlflow: MlflowOpt = None,
    calibrate: Annotated[
        bool, typer.Option("--calibrate/--no-calibrate", help="also fit with the simulated lift tests and compare")
    ] = True,
) -> None:
    """Simulate the four-channel scenario, fit it, compare ROAS with the truth, optimize and report.

    Writes OUT/data (data.csv, truth.json, lift_tests.csv), OUT/run (the run folder, with
    report.html) and OUT/optimization (12 weeks at the historical average budget, ±50% per
    channel). With ``--calibrate`` (default) it fits again with the simulated lift tests
    (every channel but tv) into OUT/run_calibrated and prints both fits' ROAS next to the truth.
    """
    import json

    from bayesmmm.config.experiment import load_experiment
    from bayesmmm.decisions.optimizer import optimize_budget
    from bayesmmm.reporting.report import write_optimization, write_report
    from bayesmmm.workflows.experiment import load_run, run_experiment
    from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, true_flight_response, write_simulation

    # the calibrated fit and its report run in a child process beside the first fit: each fit is
    # mostly one core of Python and XLA compilation, so two side by side use both cores. Started
    # first, so that its imports overlap the simulation; it gets its experiment once the data exist.
    child = ChildFit(out / "run_calibrated") if calibrate else None
    try:
        scenario = load_scenario(builtin_scenario("four_channel"))
        data_path, truth_path = write_simulation(scenario, out / "data")
        _echo(f"Simulated {scenario.n_weeks} weeks of {', '.join(scenario.channels)} → {data_path}")
        overrides = _sampler_overrides(sampler, draws, tune, chains, seed)
        overrides["data.path"] = str(data_path.resolve())
        config = load_experiment(builtin_scenario("four_channel_experiment"), _quiet_sampler(overrides))
        lift_path = data_path.parent / "lift_tests.csv"
        calibrated = None
        if child is not None and lift_path.exists():
            calibration = {"name": "four_channel_calibrated", "calibration.lift_tests.path": str(lift_path.resolve())}
            cal_config = load_experiment(
                builtin_scenario("four_channel_experiment"), _quiet_sampler({**overrides, **calibration})
            )
            calibrated = child.start(cal_config.to_yaml())
        elif child is not None:
            child.cancel()
        tracking = _start_tracking(config, mlflow)
        result = run_experiment(config, out / "run", log=_echo)
        truth = json.loads(truth_path.read_text())
        _print_summary(result, truth)
        mmm, weeks = result.model, 12
        budget = float(mmm.data.channel_spend.sum(axis=1).mean() * weeks)
        opt = optimize_budget(mmm, budget, weeks, max_change=0.5, progressbar=True)
        write_optimization(opt, out / "optimization", run_dir=result.run_dir)
        _print_optimization(opt, None)
        spends = opt.allocation.set_index("channel")
        true = {
            plan: sum(true_flight_response(truth, spends[col].to_dict(), weeks).values())
            for plan, col in (("current", "current_spend"), ("optimized", "optimized_spend"))
        }
        _echo(
            f"TRUE response of the plans (simulator's curves): current {true['current']:,.1f}, "
            f"optimized {true['optimized']:,.1f} ({true['optimized'] / true['current'] - 1:+.1%})"
        )
        _echo(f"Report: {write_report(result.run_dir, model=result.model)}")
        _track(result, tracking, config)  # after the report, so the logged run folder holds it
        if calibrated is not None:
            _echo(f"\nCalibrated fit: the same model with the lift tests of {lift_path}")
            run_dir, caught = calibrated.result()  # the child's error, if any, is raised here
            for message in caught:  # the child's warnings, here rather than in the middle of the first summary
                echo_error(f"warning: {message}")
            cal_result = load_run(run_dir)
            _print_summary(cal_result, truth)
            _print_calibration_comparison(result.roas, cal_result.roas, truth)
            _echo(f"Report: {Path(run_dir) / 'report.html'}")
    except BaseException:  # this process failed or was interrupted: so is the calibrated fit
        if child is not None:
            child.stop()
        raise
    _finish(result, config.diagnostics.on_fail)


def _print_calibration_comparison(uncalibrated: Any, calibrated: Any, truth: dict[str, Any]) -> None:
    """ROAS of both fits next to the truth, with each one's relative error."""
    import numpy as np
    import pandas as pd

    tested = {t["channel"] for t in truth.get("lift_tests", [])}
    true = np.array([truth["channels"][ch]["roas"] for ch in uncalibrated["channel"]])
    err_u = uncalibrated["roas_mean"].to_numpy() / true - 1
    err_c = calibrated["roas_mean"].to_numpy() / true - 1
    med_err_u = uncalibrated["roas_median"].to_numpy() / true - 1  # both fits are this run's: medians present
    med_err_c = calibrated["roas_median"].to_numpy() / true - 1
    table = pd.DataFrame(
        {
            "channel": uncalibrated["channel"],
            "lift test": ["yes" if ch in tested else "no" for ch in uncalibrated["channel"]],
            "true ROAS": [f"{t:.4g}" for t in true],
            "uncalibrated": [f"{r:.4g} ({e:+.0%})" for r, e in zip(uncalibrated["roas_mean"], err_u, strict=True)],
            "calibrated": [f"{r:.4g} ({e:+.0%})" for r, e in zip(calibrated["roas_mean"], err_c, strict=True)],
        }
    )
    _echo("\nROAS against the truth (posterior mean, relative error):")
    _echo(table.to_string(index=False))
    med_u, med_c = np.median(np.abs(err_u)), np.median(np.abs(err_c))
    _echo(f"  median absolute error: uncalibrated {med_u:.0%}, calibrated {med_c:.0%}")
    by_u, by_c = np.median(np.abs(med_err_u)), np.median(np.abs(med_err_c))
    _echo(f"  by the posterior median instead: uncalibrated {by_u:.0%}, calibrated {by_c:.0%}")


@app.command()
@handle_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(help="run folder written by `bayesmmm fit` (or a posterior.nc)")],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="CSV of future periods: date, the channels' media (exposure, or spend), controls, role columns",
        ),
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="output CSV")],
    hdi_prob: Annotated[float, typer.Option("--hdi-prob", help="interval probability")] = 0.9,
    contributions: Annotated[bool, typer.Option("--contributions", help="add per-channel contributions")] = False,
    seed: SeedOpt = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="what-if: COLUMN=VALUE sets a treatment, event, control or organic column in every future row "
            "(repeatable), e.g. --set price_index=1.05",
        ),
    ] = None,
) -> None:
    """Forecast future periods (of the data's frequency) from a fitted run (posterior predictive mean and HDI)."""
    from bayesmmm.config.experiment import ConfigError
    from bayesmmm.data.frequency import period_name
    from bayesmmm.data.loading import read_csv
    from bayesmmm.data.roles import RoleError, parse_settings, set_columns
    from bayesmmm.evaluation.summaries import forecast_table
    from bayesmmm.io import write_text
    from bayesmmm.model.mmm import MMM

    if not 0 < hdi_prob < 1:
        raise ConfigError(f"--hdi-prob must be between 0 and 1 (exclusive), got {hdi_prob}")
    mmm = MMM.load(run_dir)  # a finished run folder or a posterior.nc
    frame = read_csv(data)
    if set_:
        try:
            frame = set_columns(frame, parse_settings(set_), mmm.data_config)
        except RoleError as exc:
            raise ConfigError(str(exc)) from None
    table = forecast_table(mmm, frame, hdi_prob, contributions, seed or 0)
    write_text(out, table.to_csv(index=False))
    _echo(f"wrote {len(table)} {period_name(mmm.data.frequency, plural=True)} of forecasts to {out}")


@app.command()
@handle_errors
def select(
    experiment: Annotated[Path, typer.Argument(help="experiment YAML with a selection: block")],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="output folder (default runs/NAME-select-TIME)")
    ] = None,
    data: DataOpt = None,
    jobs: Annotated[int | None, typer.Option("--jobs", help="candidates fitted at once (Dask LocalCluster)")] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address")] = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
) -> None:
    """Fit every candidate functional form and rank them (LOO, WAIC, BIC, hold-out)."""
    from bayesmmm.workflows.experiment import default_run_dir
    from bayesmmm.workflows.selection import run_selection

    config = _load_experiment(experiment, data, None, draws, tune, chains, seed)
    if config.selection is None:
        from bayesmmm.config.experiment import ConfigError

        raise ConfigError(
            f"{experiment} has no 'selection:' block; add e.g. "
            "selection: {adstock: [geometric, weibull_cdf], saturation: [logistic, hill], criterion: loo}"
        )
    out_dir = out or default_run_dir(config, kind="select")
    table = run_selection(config, out_dir, jobs=jobs, scheduler=scheduler, log=_echo)
    _print_comparison(table, out_dir)


@app.command()
@handle_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(help="run folders written by `bayesmmm fit`")],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="folder for comparison.csv and comparison.png")
    ] = None,
    criterion: Annotated[str, typer.Option("--criterion", help="loo | waic | bic")] = "loo",
) -> None:
    """Rank already-fitted runs by PSIS-LOO (with WAIC, BIC and stacking weights)."""
    from bayesmmm.config.experiment import ConfigError
    from bayesmmm.workflows.selection import compare_runs

    if criterion not in ("loo", "waic", "bic"):
        raise ConfigError(f"--criterion must be loo, waic or bic (hold-out needs `bayesmmm select`), got {criterion!r}")
    if len(runs) < 2:
        raise ConfigError("compare needs at least two run folders")
    table = compare_runs(runs, criterion)
    if out is not None:
        from bayesmmm.io import write_text
        from bayesmmm.reporting.plots import plot_comparison

        write_text(out / "comparison.csv", table.to_csv(index=False))
        plot_comparison(table, out / "comparison.png")
    _print_comparison(table, out)


def _print_comparison(table: Any, out_dir: Path | None) -> None:
    from bayesmmm.workflows.selection import COMPARISON_COLUMNS

    shown = ["rank", "candidate", *[c for c in COMPARISON_COLUMNS if c not in ("rank", "adstock", "saturation")]]
    cols = [c for c in [*shown, "status"] if c in table]
    _echo("\n" + table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if out_dir is not None:
        _echo(f"\nWrote {out_dir / 'comparison.csv'}")


@app.command()
@handle_errors
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="sweep YAML: base experiment + grid/runs")],
    out: Annotated[Path | None, typer.Option("-o", "--out", help="output folder (default runs/SWEEPNAME)")] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="LocalCluster workers (default: cores // chains)")
    ] = None,
) -> None:
    """Fit every run of a sweep on Dask; writes OUT/results.csv and one run folder per run.

    Exit code 4 when some runs failed (the others still finish).
    """
    from bayesmmm.workflows.sweep import run_sweep

    out_dir = out or Path("runs") / sweep_file.stem
    table = run_sweep(sweep_file, out_dir, scheduler=scheduler, workers=workers, log=_echo)
    cols = [
        c for c in ["run_id", "overrides", "status", "wall_s", "elpd", "max_rhat", "divergences", "error"] if c in table
    ]
    _echo("\n" + table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}", max_colwidth=60))
    failed = int((table["status"] != "ok").sum())
    _echo(f"\n{len(table) - failed} ok, {failed} failed · results: {out_dir / 'results.csv'}")
    if failed:
        raise typer.Exit(4)


@app.command()
@handle_errors
def bench(
    suite_file: Annotated[Path, typer.Argument(help="benchmark suite YAML (see benchmarks/suites/)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder: results.csv, results.md, results.png")],
) -> None:
    """Benchmark data sets × backends × seeds, each fit in its own process (cold and warm caches)."""
    from bayesmmm.workflows.bench import load_suite, results_markdown, run_suite

    suite = load_suite(suite_file)
    table = run_suite(suite, out, log=_echo)
    _echo("\n" + results_markdown(table))
    _echo(f"Wrote {out / 'results.csv'}, {out / 'results.md'} and {out / 'results.png'}")


def _parse_bounds(values: list[str] | None) -> dict[str, tuple[float, float]]:
    from bayesmmm.decisions.optimizer import OptimizationError

    bounds: dict[str, tuple[float, float]] = {}
    for item in values or []:
        name, sep, rng = item.partition("=")
        lo, sep2, hi = rng.partition(":")
        try:
            if not (sep and sep2 and name.strip()):
                raise ValueError
            bounds[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise OptimizationError(f"--bound {item!r} is not CHANNEL=LOW:HIGH (e.g. --bound tv=0:50000)") from None
    return bounds


def _parse_changes(text: str | None) -> list[float] | None:
    from bayesmmm.decisions.optimizer import OptimizationError

    if text is None:
        return None
    try:
        changes = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise OptimizationError(
            f"--scenarios {text!r} is not a comma-separated list of fractions like -0.2,0,0.2"
        ) from None
    if not changes:
        raise OptimizationError("--scenarios is empty; give fractions like -0.2,0,0.2")
    return changes


@app.command()
@handle_errors
def optimize(
    run_dir: Annotated[Path, typer.Argument(help="run folder written by `bayesmmm fit`")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder: allocation.csv, summary.json, figures")],
    weeks: Annotated[
        int,
        typer.Option(
            "--periods",
            "--weeks",
            help="horizon in periods of the data (days, weeks, months; flat pacing); --weeks is the same option",
        ),
    ],
    budget: Annotated[float | None, typer.Option("--budget", help="total spend over the horizon, all channels")] = None,
    max_change: Annotated[
        float | None, typer.Option("--max-change", help="each channel within ± this fraction of its current spend")
    ] = None,
    bound: Annotated[
        list[str] | None, typer.Option("--bound", help="CHANNEL=LOW:HIGH total spend bounds; repeatable")
    ] = None,
    fixed: Annotated[list[str] | None, typer.Option("--fixed", help="channel held at its current spend")] = None,
    objective: Annotated[str, typer.Option("--objective", help="mean | cvar | mean_sd")] = "mean",
    risk: Annotated[float | None, typer.Option("--risk", help="cvar tail fraction q or mean_sd weight λ")] = None,
    scenarios: Annotated[
        str | None, typer.Option("--scenarios", help="budget changes to compare, e.g. -0.2,0,0.2")
    ] = None,
    target_response: Annotated[
        float | None, typer.Option("--target-response", help="least spend reaching this expected response")
    ] = None,
    target_roas: Annotated[
        float | None, typer.Option("--target-roas", help="largest spend (<= budget) at this expected ROAS")
    ] = None,
    hdi_prob: Annotated[float, typer.Option("--hdi-prob", help="interval probability")] = 0.9,
    max_draws: Annotated[int, typer.Option("--max-draws", help="posterior draws used")] = 1000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    geo: Annotated[str | None, typer.Option("--geo", help="geo models: optimize this geo's budget")] = None,
) -> None:
    """Allocate a budget across channels over the next N periods of the data, with uncertainty."""
    from bayesmmm.decisions.optimizer import OptimizationError, optimize_budget, run_scenarios
    from bayesmmm.model.mmm import MMM
    from bayesmmm.reporting.report import write_optimization

    if max_draws < 10:
        raise OptimizationError(f"--max-draws must be at least 10, got {max_draws}")
    if weeks < 1:
        raise OptimizationError(f"--periods (--weeks) must be a positive whole number, got {weeks}")
    changes = _parse_changes(scenarios)
    if changes is not None and budget is None:
        raise OptimizationError("--scenarios scales --budget: give a --budget too")
    mmm = MMM.load(run_dir)
    options = {
        "max_change": max_change,
        "bounds": _parse_bounds(bound),
        "fixed": list(fixed or []),
        "objective": objective,
        "risk": risk,
        "target_response": target_response,
        "target_roas": target_roas,
        "hdi_prob": hdi_prob,
        "max_draws": max_draws,
        "seed": seed,
        "geo": geo,
        "progressbar": True,  # on a terminal, unless -q
    }
    result = optimize_budget(mmm, budget, weeks, **options)
    table = None
    if changes is not None:
        table, _ = run_scenarios(mmm, budget, weeks, changes, **options)
    write_optimization(result, out, scenarios=table, run_dir=run_dir if run_dir.is_dir() else None)
    _print_optimization(result, table)
    _echo(f"Wrote {out / 'allocation.csv'} and {out / 'summary.json'}")


def _print_optimization(result: Any, table: Any) -> None:
    import numpy as np
    import pandas as pd

    from bayesmmm.data.frequency import period_name

    a = result.allocation
    s = result.summary
    pct = f"{s['hdi_prob']:.0%}"
    view = pd.DataFrame(
        {
            "channel": a["channel"],
            "current": a["current_spend"].map("{:,.0f}".format),
            "optimized": a["optimized_spend"].map("{:,.0f}".format),
            "change": a["change_pct"].map(lambda v: f"{v:+.0%}" if pd.notna(v) else "–"),
            "response now": a["current_response_mean"].map("{:,.1f}".format),
            "response opt.": a["optimized_response_mean"].map("{:,.1f}".format),
            "mROAS at opt.": a["optimized_marginal_roas_mean"].map("{:.3g}".format),
        }
    )
    r, up = s["response"], s["uplift_vs_current"]
    lines = [
        "",
        f"Allocation of {s['budget']:,.0f} over {s['weeks']} {period_name(s.get('frequency', 'weekly'), plural=True)} "
        f"(objective {s['objective']})" + (f" in geo {s['geo']}:" if s.get("geo") else ":"),
        view.to_string(index=False),
        f"Expected response: current {r['current']['mean']:,.1f}, equal split {r['equal_split']['mean']:,.1f}, "
        f"optimized {r['optimized']['mean']:,.1f} [{pct} HDI {r['optimized']['hdi_low']:,.1f}, "
        f"{r['optimized']['hdi_high']:,.1f}]",
        f"Uplift vs current {up['mean']:+,.1f} [{pct} HDI {up['hdi_low']:+,.1f}, {up['hdi_high']:+,.1f}], "
        f"P(gain) {up['prob_positive']:.0%}; {s['fraction_reallocated']:.0%} of the budget reallocated",
    ]
    if s.get("response_unit") == "revenue":
        rpk = s["revenue_per_kpi"]
        shown = f"{rpk:.4g}" if isinstance(rpk, float) else "per geo, " + ", ".join(f"{v:.4g}" for v in rpk)
        lines.append(f"Response in revenue: KPI × the recent revenue per KPI ({shown})")
    elif "response_unit" in s:
        lines.append("Response in KPI (the target's units; no data.revenue_per_kpi_column)")
    priced = {ch: v for ch, v in (s.get("cost_per_unit") or {}).items() if any(x != 1.0 for x in np.atleast_1d(v))}
    if priced:
        lines.append(
            "Spend buys exposure at a cost per unit of "
            + ", ".join(f"{ch} {v:.4g}" if isinstance(v, float) else f"{ch} (per geo)" for ch, v in priced.items())
        )
    if "target" in s:
        lines.append(f"Target {s['target']['mode']}: spend needed {s['target']['spend_needed']:,.0f}")
    if table is not None:
        lines.append("\nScenarios:")
        scen = pd.DataFrame(
            {
                "change": table["change"].map("{:+.0%}".format),
                "budget": table["budget"].map("{:,.0f}".format),
                "response (current mix)": table["current_response_mean"].map("{:,.1f}".format),
                "response (optimized)": table["optimized_response_mean"].map("{:,.1f}".format),
                "ROAS (optimized)": table["optimized_roas"].map("{:.4g}".format),
            }
        )
        lines.append(scen.to_string(index=False))
    _echo("\n".join(lines))


@app.command()
@handle_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="run folder written by `bayesmmm fit`")],
    optimization: Annotated[
        Path | None, typer.Option("--optimization", help="optimization folder (default: the run's latest)")
    ] = None,
    hdi_prob: Annotated[float | None, typer.Option("--hdi-prob", help="default: the run's output.hdi_prob")] = None,
) -> None:
    """Write RUN_DIR/report.html: one self-contained page for stakeholders (figures embedded)."""
    from bayesmmm.config.experiment import ConfigError
    from bayesmmm.reporting.report import write_report

    if hdi_prob is not None and not 0 < hdi_prob < 1:
        raise ConfigError(f"--hdi-prob must be between 0 and 1 (exclusive), got {hdi_prob}")
    path = write_report(run_dir, optimization, hdi_prob)
    _echo(f"Wrote {path} (and insights.json, insights.csv, figures/)")


@app.command()
@handle_errors
def schema(
    out: Annotated[Path | None, typer.Option("-o", "--out", help="write the schema to this file")] = None,
) -> None:
    """Print the JSON Schema of the experiment YAML (editor completion and checks).

    A copy is configs/experiment.schema.json; start a YAML file with
    `# yaml-language-server: $schema=PATH/experiment.schema.json` to use it.
    """
    from bayesmmm.config.schema import schema_text

    if out is None:
        typer.echo(schema_text(), nl=False)
    else:
        from bayesmmm.io import write_text

        write_text(out, schema_text())
        _echo(f"wrote {out}")


@app.command()
@handle_errors
def datasets() -> None:
    """List the public data sets bundled with bayesmmm (use one with `data: {dataset: NAME}`)."""
    from bayesmmm.datasets import DATASETS

    width = max(map(len, DATASETS))
    for name in sorted(DATASETS):
        info = DATASETS[name]
        typer.echo(f"{name:<{width}}  {info.source} ({info.licence}): {info.description}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
