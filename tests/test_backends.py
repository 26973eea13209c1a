"""Every NUTS backend fits the four-channel simulation, with one output layout and agreeing ROAS.

Agreement is judged against Monte Carlo error: two backends' posterior mean ROAS of a
channel may differ by at most ``Z`` combined Monte Carlo standard errors (ArviZ's
``mcse`` of the mean, which accounts for autocorrelation), ``Z`` chosen so that the
family of comparisons fails by chance with probability below 1%.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import xarray as xr

from bayesmmm import MMM
from bayesmmm.config.experiment import ConfigError, SamplerConfig
from bayesmmm.inference.base import SAMPLE_STATS, SamplerError, backend_names
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate

# JAX, NumPyro and BlackJAX are core dependencies: a missing one fails these tests rather than skipping them.
# find_spec, not import: importing numpyro starts JAX's backend before bayesmmm can ask
# for one XLA host device per core (chains in parallel)
assert all(importlib.util.find_spec(m) for m in ("jax", "blackjax", "numpyro")), "reinstall bayesmmm (JAX is core)"

DATA = {
    "channel_columns": ["search", "social", "ctv", "tv"],
    "control_columns": ["prime_day", "mothers_day"],
}
# a lean structure of the four-channel scenario: small graphs compile fast on every backend
MODEL = {
    "adstock": {"name": "geometric", "l_max": 4},
    "saturation": "logistic",
    "yearly_seasonality": 1,
    "trend": "linear",
}
QUICK = {"chains": 2, "draws": 150, "tune": 150, "seed": 4, "progressbar": False}
# |Δ mean| ≤ Z · sqrt(mcse_a² + mcse_b²): two-sided normal tail 1e-4 per comparison, at most
# 3 × 4 comparisons against the reference → family-wise false alarm below 0.2%
Z = 3.9


@pytest.fixture(scope="module")
def frame():
    data, _ = simulate(load_scenario(builtin_scenario("four_channel")))
    return data


_FITS: dict[str, MMM] = {}


def fit(frame, backend: str, **kwargs) -> MMM:
    key = f"{backend}-{sorted(kwargs.items())}"
    if key not in _FITS:
        mmm = MMM(DATA, MODEL)
        mmm.fit(frame, {**QUICK, "backend": backend, **kwargs})
        _FITS[key] = mmm
    return _FITS[key]


def roas_draws(mmm: MMM) -> xr.DataArray:
    contribution = mmm.posterior_components()["media"].sum("date")
    spend = xr.DataArray(mmm.data.media.sum(axis=0), dims="channel", coords={"channel": list(mmm.channels)})
    return contribution / spend


def agreement(a: MMM, b: MMM) -> xr.DataArray:
    """|difference of posterior mean ROAS| in units of the combined Monte Carlo standard error."""
    import arviz as az

    ra, rb = roas_draws(a), roas_draws(b)
    se = np.sqrt(az.mcse(ra, method="mean") ** 2 + az.mcse(rb, method="mean") ** 2)
    return abs(ra.mean(("chain", "draw")) - rb.mean(("chain", "draw"))) / se


def test_every_backend_fits_with_one_layout_and_agrees_on_roas(frame):
    """One test, so that xdist runs every fit in the same worker (each fit compiles)."""
    fits = {backend: fit(frame, backend) for backend in backend_names()}
    ref = fits["nutpie"].idata["posterior"]
    for backend, mmm in fits.items():
        tree = mmm.idata
        stats = tree["sample_stats"]
        assert list(stats.data_vars) == list(SAMPLE_STATS), backend
        assert {k: str(v.dtype) for k, v in stats.data_vars.items()} == SAMPLE_STATS, backend
        assert all(v.dims == ("chain", "draw") for v in stats.data_vars.values())
        assert dict(stats.sizes) == {"chain": 2, "draw": 150}
        assert (stats["n_steps"] >= 1).all() and (stats["tree_depth"] >= 1).all(), backend
        assert (stats["step_size"] > 0).all() and np.isfinite(stats["energy"]).all(), backend
        post = tree["posterior"]
        assert {k: v.dims for k, v in post.data_vars.items()} == {k: v.dims for k, v in ref.data_vars.items()}
        assert post["beta"].dims == ("chain", "draw", "channel")
        assert list(post["channel"].values) == DATA["channel_columns"]
        assert {"log_likelihood", "observed_data", "constant_data"} <= set(tree.children)
        assert set(mmm.timings) >= {"compile_s", "sample_s", "total_s"}
        if backend != "nutpie":
            z = agreement(mmm, fits["nutpie"])
            assert float(z.max()) < Z, (backend, z.to_series().round(2).to_dict())


def test_auto_mass_matrix_is_dense_for_small_models_only():
    from bayesmmm.inference.base import get_backend

    assert SamplerConfig().mass_matrix == "auto"
    for name in ("nutpie", "pymc", "numpyro", "blackjax", "nutpie_numba"):
        backend = get_backend(name)
        limit = backend.dense_max_dim
        assert backend.mass_matrix("auto", 25) == backend.mass_matrix("auto", limit) == "dense", name
        assert backend.mass_matrix("auto", limit + 1) == "diag", name
        assert backend.mass_matrix("dense", 10_000) == "dense" and backend.mass_matrix("diag", 5) == "diag"
    with pytest.raises(ValueError, match="mass_matrix"):
        SamplerConfig(mass_matrix="full")


@pytest.mark.parametrize("backend", ["numpyro", "nutpie"])
def test_diagonal_mass_matrix_agrees(frame, backend):
    """A backend's other mass matrix (diagonal; the defaults here are dense, nutpie's low-rank)
    samples the same posterior as another backend's defaults."""
    other = fit(frame, backend, mass_matrix="diag")
    reference = fit(frame, "blackjax" if backend == "nutpie" else "nutpie")
    z = agreement(other, reference)
    assert float(z.max()) < Z, z.to_series().round(2).to_dict()


def test_a_background_precompile_is_reused_by_the_next_fit(frame):
    """``MMM.precompile`` on another thread (as the demo does) leaves a program the fit reuses."""
    import threading

    sampler = {**QUICK, "backend": "numpyro", "draws": 140}  # a program no other test compiles
    errors = []

    def work():
        try:
            assert MMM(DATA, MODEL).precompile(frame, sampler)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    from bayesmmm.inference.sampling import import_backend

    import_backend(SamplerConfig(**sampler))
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors, errors
    mmm = MMM(DATA, MODEL)
    mmm.fit(frame, sampler)
    assert mmm.timings["compile_reused"] == 1
    z = agreement(mmm, fit(frame, "nutpie"))
    assert float(z.max()) < Z, z.to_series().round(2).to_dict()
    assert MMM(DATA, MODEL).precompile(frame, {**sampler, "backend": "pymc"}) is False  # nothing to compile


@pytest.mark.parametrize("backend", ["blackjax", "numpyro", "nutpie"])
def test_backends_are_reproducible(frame, backend):
    first = fit(frame, backend)
    again = MMM(DATA, MODEL)
    again.fit(frame, {**QUICK, "backend": backend})
    assert again.timings["compile_reused"] == 1  # same structure: the compiled program is reused
    for var in ("beta", "adstock_alpha", "saturation_lam", "sigma"):
        np.testing.assert_array_equal(first.idata["posterior"][var], again.idata["posterior"][var])
    np.testing.assert_array_equal(first.idata["sample_stats"]["n_steps"], again.idata["sample_stats"]["n_steps"])
    other = MMM(DATA, MODEL)
    other.fit(frame, {**QUICK, "backend": backend, "seed": 5})
    assert not np.array_equal(first.idata["posterior"]["beta"], other.idata["posterior"]["beta"])


@pytest.mark.parametrize("chains", [1, 3, 4])
def test_chain_layouts_on_host_devices(frame, chains):
    """One chain (unbatched program), chains that do not divide the devices (vmap on one),
    and more chains than devices where they divide (pmap of vmap): all give one
    ``chain`` axis of distinct, finite chains."""
    mmm = MMM(DATA, MODEL)
    mmm.fit(frame, {**QUICK, "backend": "numpyro", "chains": chains, "draws": 40, "tune": 40})
    beta = mmm.idata["posterior"]["beta"]
    assert beta.sizes["chain"] == chains and beta.sizes["draw"] == 40
    assert mmm.idata["sample_stats"]["n_steps"].shape == (chains, 40)
    assert np.isfinite(beta).all()
    flat = beta.values.reshape(chains, -1)
    assert len({row.tobytes() for row in flat}) == chains  # every chain its own key and start


def test_gpu_request_without_gpu_is_a_clear_error(frame):
    jax = pytest.importorskip("jax")
    try:
        has_gpu = bool(jax.devices("gpu"))
    except RuntimeError:
        has_gpu = False
    if has_gpu:
        pytest.skip("a GPU is present")
    with pytest.raises(SamplerError, match="no GPU"):
        MMM(DATA, MODEL).fit(frame, {**QUICK, "backend": "blackjax", "device": "gpu"})


def test_jax_only_options_rejected_for_other_backends():
    with pytest.raises(ValueError, match=r"device: gpu needs a backend that runs on a GPU.*numpyro or blackjax"):
        SamplerConfig(backend="nutpie", device="gpu")
    with pytest.raises(ValueError, match="precision: float32 needs a backend"):
        SamplerConfig(backend="pymc", precision="float32")
    SamplerConfig(backend="blackjax", device="gpu", precision="float32")


# ------------------------------------------------------------------------------ the registry
def _toy_sample(model, config, cache_key, prepare):
    """A third-party backend: independent draws of the toy model's ``x`` (no MCMC), its own stat names."""
    rng = np.random.default_rng(config.seed)
    shape = (config.chains, config.draws)
    posterior = xr.Dataset({"x": (("chain", "draw"), rng.normal(size=shape))})
    stats = xr.Dataset(
        {
            "divergent": (("chain", "draw"), np.zeros(shape, bool)),
            "depth": (("chain", "draw"), np.full(shape, 2)),
            "n_steps": (("chain", "draw"), np.full(shape, 3)),
        }
    )
    idata = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})
    return idata, {"compile_s": 0.0, "sample_s": 0.0, "total_s": 0.0, "compile_reused": 0}


@pytest.fixture
def toy_backend():
    from bayesmmm.inference.base import Capabilities, register_backend, unregister_backend

    started = []
    backend = register_backend(
        "toy",
        "tests.test_backends:_toy_sample",  # by path, imported on first use, like the built-ins
        stat_names={"diverging": "divergent", "tree_depth": "depth"},
        capabilities=Capabilities(gpu=True),
        start=lambda config: started.append(config.backend),
    )
    yield backend, started
    unregister_backend("toy")


def _toy_model():
    import pymc as pm

    with pm.Model() as model:
        pm.Normal("x")
    return model


def test_a_registered_backend_is_used_by_name_everywhere(toy_backend, tmp_path):
    """``sample``, ``precompile``, ``import_backend``, config validation and bench suites find a
    registered backend by name; its statistics come back under the common names and dtypes."""
    from bayesmmm.inference.sampling import import_backend, precompile, sample
    from bayesmmm.workflows.bench import BenchSuite

    backend, started = toy_backend
    assert "toy" in backend_names() and backend.function("sample") is _toy_sample
    config = SamplerConfig(backend="toy", chains=2, draws=50, device="gpu")  # toy says it runs on a GPU
    tree, timings = sample(_toy_model(), config)
    assert timings["backend"] == "toy"
    stats = tree["sample_stats"]
    assert {k: str(v.dtype) for k, v in stats.data_vars.items()} == SAMPLE_STATS
    assert int(stats["tree_depth"].min()) == 2 and int(stats["n_steps"].min()) == 3
    assert not stats["diverging"].any() and not stats["reached_max_treedepth"].any()
    assert np.isnan(stats["energy"]).all()  # a statistic the backend does not report
    assert precompile(_toy_model(), config, "key") is False  # registered without a precompile
    import_backend(config)
    assert started == ["toy"]
    with pytest.raises(ValueError, match="float32 needs a backend"):
        SamplerConfig(backend="toy", precision="float32")  # not among toy's capabilities
    with pytest.raises(ValueError, match="mass_matrix: dense is not supported by toy"):
        SamplerConfig(backend="toy", mass_matrix="dense")
    suite = {"backends": ["toy"], "datasets": [{"name": "d", "experiment": str(tmp_path / "e.yaml")}]}
    assert BenchSuite.model_validate(suite).backends == ["toy"]
    with pytest.raises(ValueError, match="unknown sampler backend"):
        BenchSuite.model_validate({**suite, "backends": ["stan"]})


def test_a_backend_name_must_be_identifier_like():
    from bayesmmm.inference.base import register_backend

    for name in ("", "auto", "my backend"):
        with pytest.raises(ValueError, match="identifier-like"):
            register_backend(name, _toy_sample)


def test_builtin_backends_and_their_defaults():
    """What each built-in can do, and its ``mass_matrix: auto`` (chosen by measurement: benchmarks/README.md,
    "Backends at their defaults (issue 24)"): a dense metric (nutpie: its low-rank one) up to 200 parameters."""
    from bayesmmm.inference.base import get_backend

    assert backend_names()[:5] == ["nutpie", "pymc", "numpyro", "blackjax", "nutpie_numba"]
    assert get_backend("auto").name == "numpyro"  # JAX is a core dependency
    for name in backend_names():
        caps = get_backend(name).capabilities
        assert caps.mass_matrices == ("diag", "dense"), name
        assert get_backend(name).dense_max_dim == 200, name
        assert caps.reproducible, name
        assert caps.gpu == caps.float32 == (name in ("numpyro", "blackjax")), name
        assert (get_backend(name).precompile is None) == (name == "pymc"), name


@pytest.mark.parametrize(
    ("backend", "library", "argument", "auto", "diag"),
    [
        ("nutpie", "nutpie", "adaptation", "low_rank", "diag"),
        ("pymc", "pymc", "init", "jitter+adapt_full", "jitter+adapt_diag"),
    ],
)
def test_auto_mass_matrix_reaches_the_library(frame, monkeypatch, backend, library, argument, auto, diag):
    """``mass_matrix: auto`` asks nutpie for its low-rank adaptation and PyMC for a full mass matrix
    (the sampler itself is stubbed: only its arguments are looked at)."""
    import importlib

    module = importlib.import_module(library)
    seen = []

    def stub(*args, **kwargs):
        seen.append(kwargs[argument])
        raise KeyboardInterrupt  # stop before sampling

    monkeypatch.setattr(module, "sample", stub)
    for mass_matrix in ("auto", "diag"):
        with pytest.raises(KeyboardInterrupt):
            MMM(DATA, MODEL).fit(frame, {**QUICK, "backend": backend, "mass_matrix": mass_matrix})
    assert seen == [auto, diag]


def test_cli_rejects_an_unknown_sampler(tmp_path):
    from bayesmmm.config.experiment import load_experiment

    path = tmp_path / "exp.yaml"
    path.write_text("data: {channel_columns: [a]}\nsampler: {backend: stan}\n")
    with pytest.raises(ConfigError, match="blackjax"):
        load_experiment(path)


def test_cli_device_option(tmp_path, frame):
    """``fit --device`` sets sampler.device: refused for a non-JAX backend before any work,
    and a clear error (exit 2, nothing written) where JAX finds no GPU."""
    from typer.testing import CliRunner

    from bayesmmm.cli.main import app

    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "exp.yaml").write_text(
        "data: {path: data.csv, date_column: date, target_column: sales, "
        "channel_columns: [search, social, ctv, tv]}\nmodel: {adstock: {name: geometric, l_max: 4}}\n"
    )
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["fit", str(tmp_path / "exp.yaml"), "--device", "gpu", "--sampler", "nutpie", "-o", str(out)]
    )
    assert result.exit_code == 2 and "needs a backend that runs on a GPU" in result.output, result.output
    if not _has_gpu():
        args = ["fit", str(tmp_path / "exp.yaml"), "--device", "gpu", "--sampler", "numpyro", "--draws", "20"]
        result = runner.invoke(app, [*args, "--tune", "20", "-o", str(out)])
        assert result.exit_code == 2 and "finds no GPU" in result.output, result.output
    assert not out.exists()


def _has_gpu() -> bool:
    from bayesmmm.inference.jax.runtime import configure_jax

    try:
        return bool(configure_jax().devices("gpu"))
    except RuntimeError:
        return False


@pytest.mark.slow
def test_float32_matches_float64(frame):
    z = agreement(fit(frame, "blackjax", precision="float32"), fit(frame, "blackjax"))
    assert float(z.max()) < Z


@pytest.mark.slow
@pytest.mark.parametrize("backend", [b for b in backend_names() if b != "nutpie"])
def test_backends_agree_on_roas_long_chains(frame, backend):
    """4 chains × 1000 draws of the experiment's own structure (Hill saturation, piecewise trend)."""
    model = {
        "adstock": {"name": "geometric", "l_max": 8},
        "saturation": "hill",
        "yearly_seasonality": 2,
        "trend": "piecewise",
    }
    long = {"chains": 4, "draws": 1000, "tune": 1000, "seed": 8, "progressbar": False}
    fits = {}
    for name in ("nutpie", backend):
        mmm = MMM(DATA, model)
        mmm.fit(frame, {**long, "backend": name})
        fits[name] = mmm
    z = agreement(fits[backend], fits["nutpie"])
    assert float(z.max()) < Z, z.to_series().round(2).to_dict()


_TRANSLATE_SCRIPT = """
import json, sys
from bayesmmm import MMM
from bayesmmm.workflows.simulate import builtin_scenario, load_scenario, simulate
from tests.test_backends import DATA, MODEL, QUICK
frame, _ = simulate(load_scenario(builtin_scenario("four_channel")))
mmm = MMM(DATA, MODEL)
mmm.fit(frame, {**QUICK, "backend": "numpyro", "draws": 60, "tune": 60})
print("RESULT", json.dumps({"translation": mmm.timings["translation"],
                            "beta": mmm.idata["posterior"]["beta"].values.ravel().tolist()}))
"""


def test_the_translation_is_cached_on_disk_for_the_next_process(tmp_path):
    """A second process with the same structure loads the exported translation from the cache folder
    (skipping the graph build and PyTensor's rewrites) and samples exactly the same draws."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "BAYESMMM_JAX_CACHE": str(tmp_path / "jax"), "PYTHONPATH": str(Path(__file__).parents[1])}
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", _TRANSLATE_SCRIPT], capture_output=True, text=True, env=env, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
        runs.append(json.loads(line.split(" ", 1)[1]))
    assert [r["translation"] for r in runs] == ["new", "disk"]
    assert runs[0]["beta"] == runs[1]["beta"]
    # StableHLO and JSON, no pickle (tests/test_artifacts.py: nothing is ever unpickled)
    assert sorted(p.suffix for p in (tmp_path / "jax" / "translations").iterdir()) == [".bin", ".bin", ".json"]
