"""The refresh / validate loop: ``bayesmmm refresh | validate``.

:func:`add_commands` adds them to a typer app (:mod:`bayesmmm.cli` adds them to the main one).
The work is in :mod:`bayesmmm.workflows.refresh` and :mod:`bayesmmm.workflows.validate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bayesmmm.cli.main import EXIT_DIAGNOSTICS, echo_error, handle_errors

SamplerOpt = Annotated[str | None, typer.Option("--sampler", help="auto | nutpie | pymc | numpyro | blackjax")]
DrawsOpt = Annotated[int | None, typer.Option("--draws", help="posterior draws per chain")]
TuneOpt = Annotated[int | None, typer.Option("--tune", help="warm-up draws per chain")]
ChainsOpt = Annotated[int | None, typer.Option("--chains")]
SeedOpt = Annotated[int | None, typer.Option("--seed")]


def _echo(msg: str = "") -> None:
    from bayesmmm.progress import is_quiet

    if not is_quiet():
        typer.echo(msg)


def _overrides(sampler: str | None, draws: int | None, tune: int | None, chains: int | None, seed: int | None):
    from bayesmmm.progress import is_quiet

    values = {"backend": sampler, "draws": draws, "tune": tune, "chains": chains, "seed": seed}
    out: dict[str, Any] = {f"sampler.{k}": v for k, v in values.items() if v is not None}
    if is_quiet():
        out["sampler.progressbar"] = False
    return out


@handle_errors
def refresh(
    run_dir: Annotated[Path, typer.Argument(help="run folder written by `bayesmmm fit` (or an earlier refresh)")],
    data: Annotated[
        Path, typer.Option("--data", help="CSV of the first fit's periods followed by the new ones (same columns)")
    ],
    lift_tests: Annotated[
        Path | None,
        typer.Option("--lift-tests", help="lift-test CSV for the refit (default: the first run's tests, if any)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="new run folder (default runs/NAME-refresh-TIME)")
    ] = None,
    prior_from_posterior: Annotated[
        bool,
        typer.Option(
            "--prior-from-posterior",
            help="the first posterior becomes the prior: by default the joint sequential update (an MvNormal "
            "over all the first fit's parameters, likelihood of the new periods and new lift tests only); see "
            "--prior-from-posterior-kind",
        ),
    ] = False,
    prior_kind: Annotated[
        str,
        typer.Option(
            "--prior-from-posterior-kind",
            help="with --prior-from-posterior: joint (the sequential update, default) or marginal (moment-matched "
            "marginals of the time-invariant parameters, likelihood over every period: the earlier behaviour)",
        ),
    ] = "joint",
    warm_metric: Annotated[
        bool,
        typer.Option(
            "--warm-metric/--no-warm-metric",
            help="start the chains at draws of the first posterior with its mass matrix and step size and a "
            "shorter warm-up (numpyro); --no-warm-metric: posterior means as the start and the full --tune",
        ),
    ] = True,
    warm_tune: Annotated[
        int | None,
        typer.Option(
            "--warm-tune",
            min=0,
            help="warm-up draws per chain when warm-started (sampler.warm_tune; default tune / 5, at least 100)",
        ),
    ] = None,
    sampler: SamplerOpt = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
) -> None:
    """Refit a run on new periods with the same structure and scales, warm-started; writes the new run
    folder and NEW_RUN/changes.csv (old vs new ROAS, mROAS, contribution)."""
    from bayesmmm.workflows.refresh import refresh_run

    overrides = _overrides(sampler, draws, tune, chains, seed)
    if warm_tune is not None:
        overrides["sampler.warm_tune"] = warm_tune
    result = refresh_run(
        run_dir,
        data,
        out,
        lift_tests=lift_tests,
        prior_from_posterior=prior_from_posterior,
        prior_kind=prior_kind,
        warm_metric=warm_metric,
        overrides=overrides,
        log=_echo,
    )
    _print_changes(result)
    run = result.run
    import yaml

    on_fail = ((yaml.safe_load((run.run_dir / "config.yaml").read_text()) or {}).get("diagnostics") or {}).get(
        "on_fail", "warn"
    )
    if not run.diagnostics["passed"] and on_fail == "fail":
        echo_error("error: the diagnostics gate failed (diagnostics.on_fail: fail); see diagnostics.json")
        raise typer.Exit(EXIT_DIAGNOSTICS)


def _print_changes(result: Any) -> None:
    import pandas as pd

    c = result.changes
    prob = c.attrs.get("hdi_prob", 0.9)

    def iv(q: str, which: str) -> list[str]:
        return [
            f"{m:.4g} [{lo:.4g}, {hi:.4g}]"
            for m, lo, hi in zip(
                c[f"{q}_{which}_mean"], c[f"{q}_{which}_hdi_low"], c[f"{q}_{which}_hdi_high"], strict=True
            )
        ]

    table = pd.DataFrame(
        {
            "channel": c["channel"],
            f"ROAS old [{prob:.0%} HDI]": iv("roas", "old"),
            "ROAS new": iv("roas", "new"),
            "change": c["roas_change"].map("{:+.1%}".format),
            "P(moved >10%)": c["roas_prob_moved"].map("{:.0%}".format),
            "mROAS change": c["mroas_change"].map("{:+.1%}".format),
        }
    )
    d = result.run.diagnostics
    verdict = "PASSED" if d["passed"] else "FAILED: " + "; ".join(d["problems"])
    t = result.run.timings
    _echo(
        "\n".join(
            [
                "",
                f"What changed over the first fit's {result.provenance['old_periods']} periods (changes.csv):",
                table.to_string(index=False),
                f"\nDiagnostics {verdict} (max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
                f"divergences {d['divergences']})",
                f"Time: compile {t.get('compile_s', 0):.1f} s, sampling {t.get('sample_s', 0):.1f} s, "
                f"total {t.get('total_s', 0):.1f} s",
                f"Run folder: {result.run.run_dir} (`bayesmmm report` adds a 'What changed' section)",
            ]
        )
    )


@handle_errors
def validate(
    experiment: Annotated[Path, typer.Argument(help="experiment YAML")],
    folds: Annotated[int, typer.Option("--folds", help="rolling-origin folds K")] = 3,
    horizon: Annotated[int, typer.Option("--horizon", help="periods each fold predicts N")] = 13,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="output folder (default runs/NAME-validate-TIME)")
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help="CSV to use instead of data.path")] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="folds fitted at once (Dask LocalCluster)")] = 1,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    ] = None,
    sampler: SamplerOpt = None,
    draws: DrawsOpt = None,
    tune: TuneOpt = None,
    chains: ChainsOpt = None,
    seed: SeedOpt = None,
) -> None:
    """Rolling-origin time-slice cross-validation: fold k fits periods [0, T-(K-k)N) and predicts the next N;
    writes DIR/folds.csv (CRPS, MAPE, predictive-interval coverage) and DIR/stability.csv (ROAS, mROAS)."""
    from bayesmmm.config.experiment import ConfigError, load_experiment
    from bayesmmm.workflows.experiment import default_run_dir
    from bayesmmm.workflows.validate import run_validation

    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    overrides = _overrides(sampler, draws, tune, chains, seed)
    if data is not None:
        overrides["data.path"] = str(data.resolve())
    config = load_experiment(experiment, overrides)
    out_dir = out or default_run_dir(config, kind="validate")
    result = run_validation(config, out_dir, folds=folds, horizon=horizon, jobs=jobs, scheduler=scheduler, log=_echo)
    cols = ["fold", "test_start", "test_end", "crps", "mape", "coverage", "divergences", "status"]
    _echo("\n" + result.folds[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    s = result.summary
    if s["folds_ok"]:
        _echo(
            f"\nMean over {s['folds_ok']} folds: CRPS {s['mean_crps']:.4g}, MAPE {s['mean_mape']:.1%}, "
            f"{s['interval_prob']:.0%} predictive coverage {s['mean_coverage']:.0%} of {s['held_out_periods']} "
            "held-out periods"
        )
    _echo(f"Wrote {out_dir / 'folds.csv'} and {out_dir / 'stability.csv'}")
    if s["folds_ok"] < folds:
        raise typer.Exit(4)


def add_commands(app: typer.Typer) -> None:
    """Add ``refresh`` and ``validate`` to ``app``."""
    app.command()(refresh)
    app.command()(validate)
