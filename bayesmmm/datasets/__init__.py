"""Public MMM data sets bundled with bayesmmm, loadable by name.

Byte-identical copies of data files published by open-source MMM projects, each folder with
its ``LICENSE`` and ``PROVENANCE.md`` (source, licence, checksums, columns):

==================================  ========================================  ===============
name                                file                                      source
==================================  ========================================  ===============
``pymc_marketing_example``          ``pymc_marketing/mmm_example.csv``        PyMC-Marketing, Apache-2.0
``robyn_simulated``                 ``robyn/dt_simulated_weekly.csv``         Meta Robyn, MIT
``meridian_national_media``         ``meridian/national_media.csv``           Google Meridian, Apache-2.0
``meridian_national_all_channels``  ``meridian/national_all_channels.csv``    Google Meridian, Apache-2.0
``meridian_geo_media``              ``meridian/geo_media.csv``                Google Meridian, Apache-2.0
``meridian_geo_all_channels``       ``meridian/geo_all_channels.csv``         Google Meridian, Apache-2.0
==================================  ========================================  ===============

An experiment YAML names one with ``data: {dataset: NAME, ...}`` instead of ``data.path``.

Examples
--------
>>> from bayesmmm.datasets import list_datasets, load_dataset
>>> "meridian_national_media" in list_datasets()
True
>>> load_dataset("pymc_marketing_example").shape
(179, 8)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import pandas as pd

__all__ = ["DATASETS", "DatasetInfo", "dataset_path", "list_datasets", "load_dataset", "unknown_dataset_message"]


@dataclass(frozen=True)
class DatasetInfo:
    """A bundled data set: its file (relative to this package), source, licence and a one-line description."""

    file: str
    source: str
    licence: str
    description: str


DATASETS: dict[str, DatasetInfo] = {
    "pymc_marketing_example": DatasetInfo(
        "pymc_marketing/mmm_example.csv",
        "PyMC-Marketing",
        "Apache-2.0",
        "179 weeks, 2 channels (x1, x2), 2 event controls; documented generating process (known truth)",
    ),
    "robyn_simulated": DatasetInfo(
        "robyn/dt_simulated_weekly.csv",
        "Meta Robyn",
        "MIT",
        "208 weeks, revenue, 5 spend channels (_S), competitor sales and newsletter controls",
    ),
    "meridian_national_media": DatasetInfo(
        "meridian/national_media.csv",
        "Google Meridian",
        "Apache-2.0",
        "156 weeks, conversions, 4 channels (impressions and spend), 2 controls",
    ),
    "meridian_national_all_channels": DatasetInfo(
        "meridian/national_all_channels.csv",
        "Google Meridian",
        "Apache-2.0",
        "156 weeks, 5 paid channels, 1 organic channel, a Promo treatment, 2 controls",
    ),
    "meridian_geo_media": DatasetInfo(
        "meridian/geo_media.csv",
        "Google Meridian",
        "Apache-2.0",
        "20 geos × 156 weeks (long format, geo and population columns), 4 channels, 2 controls",
    ),
    "meridian_geo_all_channels": DatasetInfo(
        "meridian/geo_all_channels.csv",
        "Google Meridian",
        "Apache-2.0",
        "40 geos × 156 weeks, 5 paid channels, organic and Promo; first column an unnamed row index",
    ),
}


def list_datasets() -> list[str]:
    """Names of the bundled data sets, sorted.

    Returns
    -------
    list of str
        The names :func:`load_dataset` and ``data.dataset`` accept.
    """
    return sorted(DATASETS)


def unknown_dataset_message(name: str) -> str:
    """One line for an unknown data set name: the nearest valid name, then all of them."""
    close = difflib.get_close_matches(name, list_datasets(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown data set {name!r}{hint} Bundled data sets: {', '.join(list_datasets())}"


def dataset_path(name: str) -> Path:
    """The file of a bundled data set on disk.

    Parameters
    ----------
    name : a name from :func:`list_datasets`.

    Returns
    -------
    Path
        The CSV inside the installed package.

    Raises
    ------
    ValueError
        ``name`` is not a bundled data set (the message suggests the nearest name).
    """
    if name not in DATASETS:
        raise ValueError(unknown_dataset_message(name))
    path = Path(str(files(__name__).joinpath(DATASETS[name].file)))
    if not path.is_file():
        raise FileNotFoundError(
            f"data set {name!r} is missing from this installation ({path}); reinstall bayesmmm with its package data"
        )
    return path


def load_dataset(name: str) -> pd.DataFrame:
    """Read a bundled data set as ``bayesmmm fit`` reads ``data.path`` (``pandas.read_csv`` defaults).

    Parameters
    ----------
    name : a name from :func:`list_datasets`.

    Returns
    -------
    pandas.DataFrame
        The file's rows and columns as published.
    """
    return pd.read_csv(dataset_path(name))
