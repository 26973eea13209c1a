"""Where a ``bayesmmm refresh`` (or ``fit``) process spends its time.

Runs one CLI command in this process with timers around its phases (each phase's inclusive wall
time; nested phases are indented) and prints the table, then the sampler's own timings. The
process start and the imports are timed too: ``python`` start-up up to this script's first line is
not (measure it with ``python -X importtime -c pass``: ~0.05 s).

Usage (a first run and the full data from ``benchmarks/refresh_study.py``, or any run)::

    OMP_NUM_THREADS=1 BAYESMMM_JAX_CACHE=/tmp/cache python benchmarks/profile_refresh.py -- \\
        refresh RUN_DIR --data FULL.csv -o /tmp/new_run

Give each profiled command its own copy of the JAX cache as the first fit left it, as the study does.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import contextlib  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: (label, depth, "module:attribute" or "module:Class.method")
PHASES = [
    ("load the first run", 1, "bayesmmm.workflows.refresh:_load_old"),
    ("experiment config", 1, "bayesmmm.workflows.refresh:refresh_config"),
    ("read the new CSV", 1, "bayesmmm.workflows.refresh:read_csv"),
    ("data checks (frame_to_data)", 1, "bayesmmm.workflows.refresh:frame_to_data"),
    ("data checks (grid, restated)", 1, "bayesmmm.workflows.refresh:check_extends"),
    ("posterior as prior", 1, "bayesmmm.model.posterior_priors:posterior_priors"),
    ("warm start values", 1, "bayesmmm.workflows.refresh:warm_start_values"),
    ("run_experiment", 1, "bayesmmm.workflows.experiment:run_experiment"),
    ("fit", 2, "bayesmmm.model.mmm:MMM.fit"),
    ("build the PyMC model", 3, "bayesmmm.model.mmm:MMM.build_model"),
    ("warm start: first posterior → mass matrix, starts", 3, "bayesmmm.model.warm_start:posterior_warm_start"),
    ("sample (backend)", 3, "bayesmmm.inference.sampling:sample"),
    ("translate to JAX (or reuse)", 4, "bayesmmm.inference.jax.program:jax_model"),
    ("trace + lower the program", 4, "bayesmmm.inference.jax.program:_lowered"),
    ("initial points", 4, "bayesmmm.inference.jax.program:initial_points"),
    ("posterior tree", 4, "bayesmmm.inference.jax.program:posterior_tree"),
    ("prepare post-processing (overlaps the compile)", 4, "bayesmmm.model.mmm:MMM._prepare_post_processing"),
    ("model file tree + log-likelihood", 3, "bayesmmm.model.mmm:MMM._complete_idata"),
    ("posterior components", 2, "bayesmmm.model.mmm:MMM.posterior_components"),
    ("roas table", 2, "bayesmmm.workflows.experiment:roas_table"),
    ("fit metrics", 2, "bayesmmm.workflows.experiment:fit_metrics"),
    ("diagnostics", 2, "bayesmmm.workflows.experiment:diagnostics"),
    ("PSIS-LOO", 2, "bayesmmm.workflows.experiment:loo_summary"),
    ("calibration diagnostics", 2, "bayesmmm.workflows.experiment:add_calibration_diagnostics"),
    ("save posterior.nc", 2, "bayesmmm.model.mmm:MMM.save"),
    ("summary.csv", 2, "bayesmmm.workflows.experiment:parameter_summary"),
    ("contributions.csv", 2, "bayesmmm.workflows.experiment:contributions_table"),
    ("changes.csv", 1, "bayesmmm.workflows.refresh:changes_table"),
]

_TIMES: dict[str, list[float]] = {}


def _timed(label: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _TIMES.setdefault(label, []).append(time.perf_counter() - start)

    return wrapper


def _patch(label: str, target: str) -> bool:
    module_name, _, path = target.partition(":")
    try:
        owner = importlib.import_module(module_name)
    except ImportError:
        return False
    *parents, attr = path.split(".")
    for p in parents:
        owner = getattr(owner, p, None)
        if owner is None:
            return False
    fn = getattr(owner, attr, None)
    if fn is None:
        return False
    setattr(owner, attr, _timed(label, fn))
    return True


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    t_import = time.perf_counter()
    from bayesmmm.cli import app

    # the modules the command imports lazily, imported now so that they can be patched (timed apart)
    for target in {t.partition(":")[0] for _, _, t in PHASES}:
        with contextlib.suppress(ImportError):
            importlib.import_module(target)
    imported = time.perf_counter()
    patched = [(label, depth) for label, depth, target in PHASES if _patch(label, target)]
    # the XLA compile of the sampling program runs on a worker thread: time ``Lowered.compile``
    try:
        from jax._src import stages

        stages.Lowered.compile = _timed("XLA compile of the program (worker thread)", stages.Lowered.compile)
        patched.insert(
            next(i for i, (lb, _) in enumerate(patched) if lb.startswith("trace")) + 1,
            (
                "XLA compile of the program (worker thread)",
                4,
            ),
        )
    except (ImportError, StopIteration):
        pass
    start = time.perf_counter()
    code = 0
    try:
        app(["-q", *args], standalone_mode=False)
    except SystemExit as exc:  # pragma: no cover - typer's exits
        code = int(exc.code or 0)
    end = time.perf_counter()
    rows = [("imports before the command (bayesmmm.cli + lazily imported modules)", 0, imported - t_import)]
    rows.append(("python start to main()", 0, t_import - T0))
    rows.append(("command (everything below)", 0, end - start))
    for label, depth in patched:
        if label in _TIMES:
            calls = len(_TIMES[label])
            rows.append((label + (f" ×{calls}" if calls > 1 else ""), depth, sum(_TIMES[label])))
    width = max(len(lb) + 2 * d for lb, d, _ in rows)
    print(f"{'phase':<{width}}  seconds")
    for label, depth, secs in rows:
        print(f"{'  ' * depth + label:<{width}}  {secs:7.2f}")
    print(f"{'whole (from the script start)':<{width}}  {end - T0:7.2f}")
    out = next((args[i + 1] for i, a in enumerate(args) if a in ("-o", "--out")), None)
    if out and (Path(out) / "metadata.json").exists():
        print("sampler timings:", json.loads((Path(out) / "metadata.json").read_text())["timings"])
    if out and (Path(out) / "refresh.json").exists():
        info = json.loads((Path(out) / "refresh.json").read_text())
        print("refresh.json warm start:", {k: v for k, v in info.items() if k.startswith("warm")})
    sys.exit(code)


if __name__ == "__main__":
    main()
