"""Serving commands: ``bayesmmm serve | register | models | promote | compare-models``.

:func:`add_commands` adds them to a typer app (:mod:`bayesmmm.cli` adds them to the main
one). FastAPI and uvicorn are imported only when ``serve`` runs. The registry folder defaults to ``$BAYESMMM_REGISTRY``
or ``./registry``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

from bayesmmm.cli.main import echo_error, handle_errors

REGISTRY_ENV = "BAYESMMM_REGISTRY"
EXIT_REFUSED = 3

RegistryOpt = Annotated[
    Path | None,
    typer.Option("--registry", help=f"registry folder (default ${REGISTRY_ENV} or ./registry)"),
]
HoldoutOpt = Annotated[
    Path | None,
    typer.Option("--holdout", help="CSV of weeks after both training periods, with the target: hold-out error"),
]


def _registry(path: Path | None):
    from bayesmmm.serving.model_registry import ModelRegistry

    return ModelRegistry(path or Path(os.environ.get(REGISTRY_ENV) or "registry"))


def registry_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """ModelRegistry errors → one line and exit 2; a refused promotion → exit 3."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bayesmmm.serving.model_registry import PromotionRefused, RegistryError

        try:
            return fn(*args, **kwargs)
        except PromotionRefused as exc:
            _print_comparison(exc.comparison)
            echo_error(f"refused: {exc} (use --force to promote anyway)")
            raise typer.Exit(EXIT_REFUSED) from None
        except RegistryError as exc:
            echo_error(f"error: {exc}")
            raise typer.Exit(2) from None

    return wrapper


@handle_errors
@registry_errors
def serve(
    target: Annotated[Path, typer.Argument(help="run folder, or registry folder (then --model)")],
    model: Annotated[str | None, typer.Option("--model", help="model name in the registry")] = None,
    version: Annotated[str, typer.Option("--version", help="current (promoted) | latest | vN")] = "current",
    host: Annotated[str, typer.Option("--host", help="interface to bind; 0.0.0.0 exposes it to the network")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port")] = 8000,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Host header the server answers to (repeat; *.example.com, * for any); "
            "default $BAYESMMM_ALLOWED_HOSTS (comma-separated) or localhost, 127.0.0.1, ::1",
        ),
    ] = None,
    hdi_prob: Annotated[float, typer.Option("--hdi-prob", help="probability of the ROAS/contribution HDIs")] = 0.9,
    dashboard: Annotated[bool, typer.Option("--dashboard/--no-dashboard", help="render the dashboard at GET /")] = True,
    docs: Annotated[bool, typer.Option("--docs/--no-docs", help="Swagger UI at /docs (/openapi.json stays)")] = True,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="largest request body accepted")] = 256 * 1024,
    max_draws: Annotated[
        int, typer.Option("--max-draws", help="posterior draws per forecast, thinned evenly (0: all)")
    ] = 1000,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", help="seconds a request may wait for model work (then 504)")
    ] = 30.0,
    predict_queue: Annotated[
        int, typer.Option("--predict-queue", help="forecasts waiting beyond the running one (then 429)")
    ] = 32,
    optimize_queue: Annotated[
        int, typer.Option("--optimize-queue", help="optimizations waiting beyond the running one (then 429)")
    ] = 2,
    optimize_process: Annotated[
        bool,
        typer.Option(
            "--optimize-process/--optimize-thread",
            help="run optimizations in a worker process (off this process's GIL) or in a thread",
        ),
    ] = True,
    watch_interval: Annotated[
        float,
        typer.Option("--watch-interval", help="seconds between checks for a promoted version (0: SIGHUP only)"),
    ] = 2.0,
    log_level: Annotated[str, typer.Option("--log-level", help="debug | info | warning | error")] = "info",
    plugin: Annotated[
        list[str] | None,
        typer.Option(
            "--plugin",
            help="plugin file or module the model's components come from (repeat); the service never imports "
            "code from a model folder on its own",
        ),
    ] = None,
) -> None:
    """Serve a fitted model over HTTP: /predict, /optimize, /roas, /contributions, dashboard at /.

    Set BAYESMMM_API_TOKEN to require 'Authorization: Bearer <token>' on every endpoint
    but /health and the docs. Serving a registry's current version, the server picks up a
    promoted version by itself (checked every --watch-interval seconds) or on SIGHUP,
    without dropping requests. Logs are JSON lines on stderr.
    """
    import uvicorn

    from bayesmmm.config.experiment import ConfigError
    from bayesmmm.serving.gate import HOSTS_ENV, TOKEN_ENV, check_hosts, check_token
    from bayesmmm.serving.logs import configure_logging, service_log
    from bayesmmm.serving.pools import ServeLimits
    from bayesmmm.serving.reload import ServingApp

    # every option is checked before the model loads: a bad one fails in a second, with exit code 2
    if not 0 < hdi_prob < 1:
        raise ConfigError(f"--hdi-prob must be between 0 and 1 (exclusive), got {hdi_prob}")
    if max_draws < 0:
        raise ConfigError(f"--max-draws must be >= 0 (0 uses every draw), got {max_draws}")
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be 1-65535, got {port}")
    if max_body_bytes < 1:
        raise ConfigError(f"--max-body-bytes must be a number of bytes >= 1, got {max_body_bytes}")
    if watch_interval < 0:
        raise ConfigError(f"--watch-interval must be >= 0 seconds (0: no file watch), got {watch_interval}")
    if log_level.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise ConfigError(f"--log-level must be debug, info, warning or error, got {log_level!r}")
    try:
        token = check_token(os.environ.get(TOKEN_ENV), TOKEN_ENV)
        if allowed_host:
            hosts = check_hosts(allowed_host, "--allowed-host")
        elif os.environ.get(HOSTS_ENV):
            hosts = check_hosts([h for h in os.environ[HOSTS_ENV].split(",") if h.strip()], HOSTS_ENV)
        else:
            hosts = check_hosts(None)
        limits = ServeLimits(
            request_timeout_s=request_timeout,
            predict_queue=predict_queue,
            optimize_queue=optimize_queue,
            optimize_processes=optimize_process,
        )
    except ValueError as exc:
        message = str(exc)
        for field, option in (
            ("request_timeout_s", "--request-timeout"),
            ("predict_queue", "--predict-queue"),
            ("optimize_queue", "--optimize-queue"),
        ):
            message = message.replace(field, option)
        raise ConfigError(message) from None
    configure_logging(log_level)
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        service_log.warning(f"listening on {host} without a token: anyone who can reach the port can use the API")
    from bayesmmm.components.plugins import load_plugins

    plugins = tuple(r.spec if r.kind == "file" else r.module for r in load_plugins(plugin or []))
    serving = ServingApp.from_target(
        target,
        plugins=plugins,
        name=model,
        version=version,
        hdi_prob=hdi_prob,
        dashboard=dashboard,
        max_draws=max_draws or None,
        watch_interval=watch_interval,
        limits=limits,
        token=token or "",
        max_body_bytes=max_body_bytes,
        allowed_hosts=list(hosts),
        docs=docs,
    )
    serving.install_sighup()  # uvicorn handles SIGINT/SIGTERM only; SIGHUP reloads
    serving.start_watching()
    service_log.info(
        "serving",
        extra={
            "url": f"http://{host}:{port}",
            "model_version": serving.model_version,
            "watch_interval_s": watch_interval or None,
        },
    )
    try:
        uvicorn.run(serving, host=host, port=port, log_config=None, access_log=False, log_level=log_level.lower())
    finally:
        serving.close()  # the watcher thread and the optimizer process


@handle_errors
@registry_errors
def register(
    run_dir: Annotated[Path, typer.Argument(help="run folder written by `bayesmmm fit`")],
    name: Annotated[str, typer.Option("--name", help="model name (letters, digits, . _ -)")],
    registry: RegistryOpt = None,
    candidate: Annotated[
        bool, typer.Option("--candidate", help="register without promoting it (check it with `bayesmmm promote`)")
    ] = False,
) -> None:
    """Copy a run folder into the registry as NAME/vN, with metadata (data hash, config, versions, fit)."""
    reg = _registry(registry)
    entry = reg.register(run_dir, name, promote=not candidate)
    status = "registered as a candidate" if candidate else "registered and promoted to current"
    typer.echo(f"{entry.label} {status}: {entry.path}")


@handle_errors
@registry_errors
def models(
    registry: RegistryOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="only this model")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the registry's models and versions (* marks the current one)."""
    reg = _registry(registry)
    table = reg.table()
    if name is not None:
        from bayesmmm.serving.model_registry import check_name

        table = table[table["name"] == check_name(name)]
    if as_json:
        typer.echo(json.dumps(table.to_dict(orient="records"), indent=2, default=str))
        return
    if table.empty:
        typer.echo(f"no models in {reg.root}")
        return
    shown = table.drop(columns=["source_run"]).copy()
    shown["current"] = shown["current"].map({True: "*", False: ""})
    typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def _print_comparison(comparison: dict[str, Any]) -> None:
    cur, cand = comparison["current"], comparison["candidate"]
    lines = [f"{'':24}{cur['version']:>18}{cand['version']:>18}"]
    for key in ("elpd", "holdout_rmse", "holdout_mape", "holdout_crps", "holdout_coverage", "diagnostics_passed"):
        if key in cur:
            lines.append(f"{key:24}{cur[key]!s:>18.8}{cand[key]!s:>18.8}")
    if comparison["same_data"]:
        lines.append(f"elpd_diff {comparison['elpd_diff']:.2f} ± {comparison['dse']:.2f} (candidate − current)")
    else:
        lines.append("fitted on different data: ELPDs are not comparable")
    verdict = "candidate can be promoted" if comparison["promote"] else "; ".join(comparison["reasons"])
    lines.append(f"verdict: {verdict}")
    typer.echo("\n".join(lines))


def _holdout(path: Path | None):
    if path is None:
        return None
    from bayesmmm.data.loading import read_csv

    return read_csv(path)


@handle_errors
@registry_errors
def compare_models(
    name: Annotated[str, typer.Argument(help="model name")],
    candidate: Annotated[str, typer.Argument(help="candidate version, e.g. v3")],
    against: Annotated[str, typer.Option("--against", help="version to compare with")] = "current",
    registry: RegistryOpt = None,
    holdout: HoldoutOpt = None,
    hdi_prob: Annotated[float, typer.Option("--hdi-prob")] = 0.9,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Compare a candidate version with the current one: ELPD, hold-out error and coverage, diagnostics."""
    from bayesmmm.serving.model_registry import compare_versions

    reg = _registry(registry)
    comparison = compare_versions(
        reg.get(name, against), reg.get(name, candidate), holdout=_holdout(holdout), hdi_prob=hdi_prob
    )
    if as_json:
        typer.echo(json.dumps(comparison, indent=2, default=str))
    else:
        _print_comparison(comparison)


@handle_errors
@registry_errors
def promote(
    name: Annotated[str, typer.Argument(help="model name")],
    version: Annotated[str, typer.Argument(help="version to promote, e.g. v3")],
    registry: RegistryOpt = None,
    holdout: HoldoutOpt = None,
    hdi_prob: Annotated[float, typer.Option("--hdi-prob")] = 0.9,
    tolerance: Annotated[float, typer.Option("--tolerance", help="allowed relative rise of hold-out RMSE")] = 0.05,
    force: Annotated[bool, typer.Option("--force", help="promote even if the comparison fails")] = False,
) -> None:
    """Make VERSION the current one if it compares well with it (exit 3 when refused)."""
    reg = _registry(registry)
    comparison = reg.promote(
        name, version, holdout=_holdout(holdout), hdi_prob=hdi_prob, tolerance=tolerance, force=force
    )
    _print_comparison(comparison)
    typer.echo(f"{name}/{reg.get(name, 'current').label.split('/')[-1]} is now current")


def add_commands(app: typer.Typer) -> None:
    """Add the serving and registry commands to ``app``: serve, register, models, compare-models, promote."""
    app.command()(serve)
    app.command()(register)
    app.command()(models)
    app.command("compare-models")(compare_models)
    app.command()(promote)
