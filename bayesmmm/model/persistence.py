"""Saving and loading fitted models: one NetCDF file (``posterior.nc``), never a pickle.

The file is an ``xarray.DataTree`` with ``posterior``, ``sample_stats``, ``observed_data``,
``constant_data`` and ``log_likelihood``. ``constant_data`` holds ``spend`` (the channels' spend),
plus ``exposure`` where the curves act on exposure (impressions for reach & frequency channels),
``rf_frequency`` with reach & frequency channels and ``revenue_per_kpi`` where the target is
valued; in a file without ``exposure`` (every file of earlier versions), ``spend`` is also what
the curves act on. Its attributes hold the data and model configs (JSON), the training scales,
package versions, the lift tests of a calibrated model (``bayesmmm_calibration``, JSON; absent
otherwise) and the records of the plugins the model's components come from
(:mod:`bayesmmm.components.plugins`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr

from bayesmmm.components.plugins import PluginError, PluginRecord, ensure_plugins
from bayesmmm.config.experiment import DataConfig, ModelConfig
from bayesmmm.data.loading import MMMData
from bayesmmm.model.scales import Scales

if TYPE_CHECKING:
    from bayesmmm.model.spec import ModelSpec

__all__ = ["ModelFileError", "load_model", "package_versions", "save_model", "saved_model_config", "to_datatree"]


class ModelFileError(ValueError):
    """A saved model file is missing, corrupt or not a bayesmmm model."""


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a saved model depends on.

    Read from the package metadata: importing ArviZ only to read its version would add
    seconds to every fit.
    """
    from importlib.metadata import PackageNotFoundError, version

    from bayesmmm import __version__

    out = {"bayesmmm": __version__}
    for name in ("pymc", "pytensor", "arviz", "numpy", "pandas", "xarray"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - a dependency installed without metadata
            out[name] = "unknown"
    return out


def to_datatree(spec: ModelSpec, idata: Any, lift_tests: pd.DataFrame | None, plugins: Sequence[PluginRecord]) -> Any:
    """The model file's tree: posterior and sample_stats of ``idata`` plus observed/constant data and
    metadata (the model adds the log-likelihood, computed from this tree's posterior)."""
    from xarray import DataTree

    model = spec
    data = spec.data
    date = pd.DatetimeIndex(data.dates)
    if model.is_geo:
        geo_coords = {"geo": list(model.geos)}
        constant = xr.Dataset(
            {
                "spend": (("date", "geo", "channel"), data.geo_media),
                "control_data": (("date", "geo", "control"), data.geo_controls),
            },
            coords={"date": date, "channel": list(model.channels), "control": list(model.controls), **geo_coords},
        )
        if data.population is not None:
            constant["population"] = ("geo", data.population)
        if data.geo_spend is not None:  # curves on exposure: "spend" holds the money, "exposure" the media
            constant["spend"] = (("date", "geo", "channel"), data.geo_spend)
            constant["exposure"] = (("date", "geo", "channel"), data.geo_media)
        if data.geo_revenue_per_kpi is not None:
            constant["revenue_per_kpi"] = (("date", "geo"), data.geo_revenue_per_kpi)
        if data.geo_rf_frequency is not None:  # reach & frequency channels (absent in earlier files)
            constant["rf_frequency"] = (("date", "geo", "channel"), data.geo_rf_frequency)
        observed = xr.Dataset({"y": (("date", "geo"), data.geo_target)}, coords={"date": date, **geo_coords})
    else:
        constant = xr.Dataset(
            {
                "spend": (("date", "channel"), data.media),
                "control_data": (("date", "control"), data.controls),
            },
            coords={"date": date, "channel": list(model.channels), "control": list(model.controls)},
        )
        if data.spend is not None:  # curves on exposure: "spend" holds the money, "exposure" the media
            constant["spend"] = (("date", "channel"), data.spend)
            constant["exposure"] = (("date", "channel"), data.media)
        if data.revenue_per_kpi is not None:
            constant["revenue_per_kpi"] = ("date", data.revenue_per_kpi)
        if data.rf_frequency is not None:  # reach & frequency channels (absent in earlier files)
            constant["rf_frequency"] = (("date", "channel"), data.rf_frequency)
        observed = xr.Dataset({"y": ("date", data.target)}, coords={"date": date})
    geo = ("geo",) if model.is_geo else ()
    for name, dim, names, national, panel in (
        ("organic_data", "organic", data.organic_names, data.organic, data.geo_organic),
        ("treatment_data", "treatment", data.treatment_names, data.treatments, data.geo_treatments),
        ("event_data", "event", data.event_names, data.events, data.geo_events),
    ):
        if names:  # absent in models without the role (and in files written before roles existed)
            values = panel if model.is_geo else national
            constant[name] = xr.DataArray(values, dims=("date", *geo, dim), coords={dim: list(names)})
    tree = DataTree.from_dict(
        {
            "posterior": idata["posterior"].to_dataset(),
            "sample_stats": idata["sample_stats"].to_dataset(),
            "observed_data": observed,
            "constant_data": constant,
        }
    )
    tree.attrs.update(
        {
            "bayesmmm_data_config": model.data_config.model_dump_json(),
            # a geo model's options written out in full: a later default cannot change its meaning
            "bayesmmm_model_config": (
                model.model_config.model_copy(update={"geo": model.geo_config}) if model.is_geo else model.model_config
            ).model_dump_json(),
            "bayesmmm_scales": json.dumps(model.scales.__dict__),
            "bayesmmm_versions": json.dumps(package_versions()),
            "bayesmmm_plugins": json.dumps([r.to_dict() for r in plugins]),
            "bayesmmm_frequency": data.frequency,
            # the training rows' treatment baselines and event levels (bayesmmm.data.roles)
            "bayesmmm_roles": data.encoding.to_json(),
        }
    )
    if lift_tests is not None:  # the calibration the posterior was fitted with
        from bayesmmm.model.calibration import lift_tests_to_json

        tree.attrs["bayesmmm_calibration"] = lift_tests_to_json(lift_tests)
    return tree


# ---------------------------------------------------------- post-processing


def save_model(tree: Any, path: str | Path) -> Path:
    """Write a fitted model's tree (:func:`to_datatree`: posterior, data, config, scales, versions) to
    NetCDF, atomically."""
    from bayesmmm.io import atomic_path

    if tree is None:
        raise RuntimeError("nothing to save: fit the model first")
    path = Path(path)
    with atomic_path(path) as tmp:
        tree.to_netcdf(tmp, engine="netcdf4")
    return path


def saved_model_config(text: str, data_config: DataConfig) -> dict[str, Any]:
    """The model config of a saved model, with the defaults of the version that wrote it.

    Options added since keep the meaning they had when a file lacks them: ``center_media``
    off, ``center_day_of_week`` off, ``media_prior`` of type ``coefficient`` (the ``beta`` prior) with ``pooling: none``
    (independent channels), and for a geo model ``geo.sigma: shared`` (one noise scale),
    ``geo.beta_pooling: noncentered``, ``geo.saturation: shared``, ``geo.param_sigma: 0.3``, ``geo.param_pooling:
    noncentered`` and ``geo.param_spread: learned``. (Geo models are saved with every ``geo`` option written
    out; the media prior type and pooling saved are the ones resolved at fit time.)
    """
    config = {
        "center_media": False,
        "center_day_of_week": False,
        "media_prior": {"type": "coefficient"},
        **json.loads(text),
    }
    config["media_prior"] = {"pooling": "none", **(config.get("media_prior") or {})}
    if data_config.geo_column is not None:
        geo = dict(config.get("geo") or {})
        geo.setdefault("sigma", "shared")
        geo.setdefault("beta_pooling", "noncentered")
        geo.setdefault("saturation", "shared")  # the default before issue 25's geo coverage study
        geo.setdefault("param_sigma", 0.3)
        geo.setdefault("param_pooling", "noncentered")
        geo.setdefault("param_spread", "learned")
        config["geo"] = geo
    return config


def load_model[M](cls: type[M], path: str | Path, *, import_plugins: bool = True) -> M:
    """Load a model written by :meth:`save`; it predicts exactly what the original did.

    ``cls`` is the model class to build (``MMM``; passed in, so this module does not import it).

    ``path`` is a ``posterior.nc`` or a finished run folder (one holding
    ``metadata.json``, written last); the hidden ``*.partial`` folder of an
    unfinished fit is refused. Only NetCDF is read: nothing is ever unpickled.

    The plugins the model's components come from are recorded in the file; with
    ``import_plugins`` (default) a plugin not loaded yet is imported from its recorded
    file (checked against its SHA-256) or module. ``import_plugins=False`` (the service)
    only checks that the components are registered already. A missing or changed plugin
    raises :class:`~bayesmmm.components.plugins.PluginError` naming it and the fix.
    """
    from xarray import open_datatree

    from bayesmmm.io import MARKER, PARTIAL_SUFFIX

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if folder.name.endswith(PARTIAL_SUFFIX):
        raise ModelFileError(
            f"{folder} is the temporary folder of a fit that did not finish; fit again (it can be deleted)"
        )
    if path.is_dir():
        if not (path / MARKER).exists():
            raise ModelFileError(
                f"{path} is not a finished run folder (no {MARKER}); pass the folder written by `bayesmmm fit`"
            )
        path = path / "posterior.nc"
    if not path.exists():
        raise ModelFileError(f"model file {str(path)!r} does not exist")
    try:
        with open_datatree(path, engine="netcdf4") as tree:
            tree = tree.load()
    except Exception as exc:  # h5py/netCDF raise many types for corrupt files
        raise ModelFileError(f"{path} is not a readable NetCDF model file ({type(exc).__name__}: {exc})") from None
    attrs = tree.attrs
    needed = ["bayesmmm_data_config", "bayesmmm_model_config", "bayesmmm_scales"]
    if any(k not in attrs for k in needed) or "posterior" not in tree.children:
        raise ModelFileError(f"{path} is a NetCDF file but not a bayesmmm model (no bayesmmm metadata or posterior)")
    try:
        plugins = json.loads(attrs.get("bayesmmm_plugins", "[]"))
    except ValueError:
        raise ModelFileError(f"{path} has a damaged plugin record (bayesmmm_plugins); fit again") from None
    try:
        ensure_plugins(plugins, import_code=import_plugins)
    except PluginError as exc:
        raise PluginError(f"{path}: {exc}") from None
    try:
        data_config = DataConfig.model_validate_json(attrs["bayesmmm_data_config"])
        mmm = cls(
            data_config, ModelConfig.model_validate(saved_model_config(attrs["bayesmmm_model_config"], data_config))
        )
        const = tree["constant_data"]
        frequency = str(attrs.get("bayesmmm_frequency", "weekly"))  # files written before frequencies: weekly
        # files before exposure channels: "spend" is the media the curves act on, and there is no "exposure"
        media_name = "exposure" if "exposure" in const else "spend"
        roles = _saved_roles(const, attrs, mmm.is_geo)
        if mmm.is_geo:
            n_dates, n_geos = const.sizes["date"], const.sizes["geo"]
            data = MMMData.from_panel(
                dates=pd.DatetimeIndex(const["date"].values),
                geos=tuple(str(g) for g in const["geo"].values),
                target=tree["observed_data"]["y"].transpose("date", "geo").to_numpy(),
                media=const[media_name].transpose("date", "geo", "channel").to_numpy(),
                controls=const["control_data"].to_numpy().reshape(n_dates, n_geos, -1),
                channels=mmm.channels,
                control_names=mmm.controls,
                population=const["population"].to_numpy() if "population" in const else None,
                frequency=frequency,
                spend=const["spend"].transpose("date", "geo", "channel").to_numpy() if "exposure" in const else None,
                revenue_per_kpi=(
                    const["revenue_per_kpi"].transpose("date", "geo").to_numpy() if "revenue_per_kpi" in const else None
                ),
                rf_frequency=(
                    const["rf_frequency"].transpose("date", "geo", "channel").to_numpy()
                    if "rf_frequency" in const
                    else None
                ),
                **roles,
            )
        else:
            data = MMMData(
                dates=pd.DatetimeIndex(const["date"].values),
                target=tree["observed_data"]["y"].to_numpy(),
                media=const[media_name].to_numpy(),
                controls=const["control_data"].to_numpy().reshape(const.sizes["date"], -1),
                channels=mmm.channels,
                control_names=mmm.controls,
                frequency=frequency,
                spend=const["spend"].to_numpy() if "exposure" in const else None,
                revenue_per_kpi=const["revenue_per_kpi"].to_numpy() if "revenue_per_kpi" in const else None,
                rf_frequency=const["rf_frequency"].to_numpy() if "rf_frequency" in const else None,
                **roles,
            )
        mmm.bind(data, Scales(**json.loads(attrs["bayesmmm_scales"])))
        if "bayesmmm_calibration" in attrs:  # absent in uncalibrated and older files
            from bayesmmm.model.calibration import lift_tests_from_json

            mmm.lift_tests = lift_tests_from_json(attrs["bayesmmm_calibration"])
    except (KeyError, ValueError, TypeError) as exc:  # damaged or hand-edited metadata
        first = _first_problem(exc)
        raise ModelFileError(
            f"{path} has bayesmmm metadata that cannot be read ({type(exc).__name__}: {first}); fit again"
        ) from None
    mmm.idata = tree
    return mmm


def _saved_roles(const: Any, attrs: Mapping[str, Any], is_geo: bool) -> dict[str, Any]:
    """The role blocks of a saved model's ``constant_data`` (organic, treatments, events; absent: none) and
    its :class:`~bayesmmm.data.roles.RoleEncoding` (absent in files written before roles existed)."""
    from bayesmmm.data.roles import RoleEncoding

    out: dict[str, Any] = {"encoding": RoleEncoding.from_json(attrs.get("bayesmmm_roles"))}
    for name, key, dim in (
        ("organic_data", "organic", "organic"),
        ("treatment_data", "treatments", "treatment"),
        ("event_data", "events", "event"),
    ):
        if name in const:
            order = ("date", "geo", dim) if is_geo else ("date", dim)
            out[key] = const[name].transpose(*order).to_numpy()
            out[f"{dim}_names"] = tuple(str(v) for v in const[dim].values)
    return out


def _first_problem(exc: Exception) -> str:
    """The first problem of an exception in one line (a pydantic error's first message, with its key)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        return f"{loc}: {err['msg'].removeprefix('Value error, ')}" if loc else err["msg"]
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
