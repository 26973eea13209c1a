"""Bundled data sets: listing, loading, licences, use by name from an experiment YAML."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from bayesmmm import ConfigError, load_experiment
from bayesmmm.datasets import DATASETS, dataset_path, list_datasets, load_dataset

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ROOT / "bayesmmm" / "datasets"

# (rows, columns) as documented in each folder's PROVENANCE.md
SHAPES = {
    "pymc_marketing_example": (179, 8),
    "robyn_simulated": (208, 12),
    "meridian_national_media": (156, 13),
    "meridian_national_all_channels": (156, 17),
    "meridian_geo_media": (3120, 15),
    "meridian_geo_all_channels": (6240, 20),
}


def test_list_datasets_names_every_bundled_file():
    assert list_datasets() == sorted(SHAPES)
    bundled = {p.relative_to(PACKAGE_DATA).as_posix() for p in PACKAGE_DATA.rglob("*.csv")}
    assert bundled == {info.file for info in DATASETS.values()}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_load_dataset_reads_the_file_as_fit_does(name):
    frame = load_dataset(name)
    assert frame.shape == SHAPES[name]
    pd.testing.assert_frame_equal(frame, pd.read_csv(dataset_path(name)))


def test_every_source_folder_has_its_licence_and_provenance():
    for folder in {(PACKAGE_DATA / info.file).parent for info in DATASETS.values()}:
        licence = (folder / "LICENSE").read_text()
        provenance = (folder / "PROVENANCE.md").read_text()
        assert "Apache License" in licence or "MIT License" in licence
        for name, info in DATASETS.items():
            if (PACKAGE_DATA / info.file).parent == folder:
                assert name in provenance and info.licence in provenance


def test_unknown_dataset_suggests_the_nearest_name():
    with pytest.raises(ValueError, match="did you mean 'meridian_national_media'"):
        load_dataset("meridian_national_medai")


def _write(tmp_path: Path, data: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"data: {data}\n")
    return path


def test_experiment_names_a_bundled_dataset(tmp_path):
    config = load_experiment(_write(tmp_path, "{dataset: pymc_marketing_example, channel_columns: [x1, x2]}"))
    assert config.data.path is None and config.data.dataset == "pymc_marketing_example"
    assert config.data.source_path == dataset_path("pymc_marketing_example")
    # the resolved config round-trips (run folders store it as config.yaml)
    assert type(config).from_yaml(config.to_yaml()) == config


def test_misspelt_dataset_is_one_line_with_did_you_mean(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_experiment(_write(tmp_path, "{dataset: robyn_simulatd, channel_columns: [tv_S]}"))
    message = str(info.value)
    assert message.count("\n") == 0
    assert "data.dataset" in message and "did you mean 'robyn_simulated'" in message


def test_path_and_dataset_together_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="keep one"):
        load_experiment(_write(tmp_path, "{path: d.csv, dataset: robyn_simulated, channel_columns: [tv_S]}"))


def test_data_override_replaces_the_dataset(tmp_path):
    """``--data CSV`` (a data.path override) wins over the experiment's bundled data set."""
    path = _write(tmp_path, "{dataset: robyn_simulated, channel_columns: [tv_S]}")
    config = load_experiment(path, {"data.path": str(tmp_path / "mine.csv")})
    assert config.data.dataset is None and config.data.source_path == tmp_path / "mine.csv"


def test_path_still_resolves_against_the_yaml_folder(tmp_path):
    config = load_experiment(_write(tmp_path, "{path: data/d.csv, channel_columns: [a]}"))
    assert config.data.dataset is None and config.data.source_path == (tmp_path / "data" / "d.csv").resolve()


def test_shipped_configs_read_only_files_inside_the_repository():
    """No config depends on a file outside the repository (a fresh clone has nothing beside it)."""
    checked = 0
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if "data" not in raw:
            continue  # a scenario
        source = load_experiment(path).data.source_path
        if raw["data"].get("dataset"):
            assert source is not None and source.is_file(), path.name
            checked += 1
        if source is not None:
            installed = Path(dataset_path(list_datasets()[0])).parents[1]  # the installed package's datasets/
            assert source.resolve().is_relative_to(ROOT) or source.resolve().is_relative_to(installed), path.name
    assert checked == len(DATASETS)  # every bundled data set has its shipped experiment


def test_bundled_data_example_fits(tmp_path, capsys):
    """examples/bundled_data.py end to end (tiny sampler; the session's example structure, so no recompile)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bundled_data", ROOT / "examples" / "bundled_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(tmp_path / "run", draws=60, tune=100, chains=2)
    assert set(result.roas["channel"]) == {"x1", "x2"} and (tmp_path / "run" / "metadata.json").exists()
    meta = yaml.safe_load((tmp_path / "run" / "metadata.json").read_text())
    assert meta["dataset"] == "pymc_marketing_example" and meta["data_path"] == str(dataset_path(meta["dataset"]))
    assert "179 weeks" in capsys.readouterr().out
