"""Model registry: versioned, immutable copies of run folders, with metadata and promotion.

Layout of a registry folder::

    REGISTRY/
      NAME/
        v1/            a copy of a run folder (posterior.nc, config.yaml, ...) + model.json
        v2/
        current.json   the promoted version: {"version": "v2", "promoted_at": ..., "history": [...]}

``model.json`` is written last into a version folder, which is built in a hidden sibling
and renamed into place, so a reader never sees a half-registered version. Versions are
never overwritten. ``current`` is the version a server serves by default: registering
promotes the new version unless it is registered as a candidate, and
:func:`compare_versions` checks a candidate against the current one (ELPD, hold-out
error and coverage) before :meth:`ModelRegistry.promote` moves the pointer.

Model names are plain identifiers (letters, digits, ``._-``); a name or version can
never resolve to a path outside the registry (no separators, no ``..``, no symlinks out,
checked for the model folder, the version folder and the files read from it). A version
that is unreadable or links out is left out of listings (and named when asked for), so
it never hides the model's other versions. Folders and files are written with the
process umask's permissions (a registry written by one user can be served by another);
``current.json`` is read, changed and replaced under an exclusive lock on the model's
folder (``flock``), so concurrent promotions never lose a history entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesmmm.data.frequency import next_dates
from bayesmmm.io import fsync_dir

__all__ = [
    "MODEL_FILE",
    "ModelRegistry",
    "ModelVersion",
    "PromotionRefused",
    "RegistryError",
    "compare_versions",
    "resolve_model",
]

MODEL_FILE = "model.json"  # written last into a version folder: its presence means the version is complete
CURRENT_FILE = "current.json"
REQUIRED_RUN_FILES = ("posterior.nc", "metadata.json", "diagnostics.json", "config.yaml")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION_RE = re.compile(r"^v([1-9][0-9]{0,8})$")
SELECTORS = ("current", "latest")

log = logging.getLogger("bayesmmm.serving.model_registry")


def _umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class RegistryError(ValueError):
    """A bad model name or version, a missing registry entry or an unusable run folder."""


class PromotionRefused(RegistryError):
    """The candidate is worse than the current version (see the comparison's ``reasons``)."""

    def __init__(self, message: str, comparison: dict[str, Any]) -> None:
        super().__init__(message)
        self.comparison = comparison


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: ``NAME/vN`` and its ``model.json`` metadata."""

    name: str
    version: int
    path: Path
    metadata: dict[str, Any]

    @property
    def label(self) -> str:
        """``NAME/vN``: the model version reported by the service."""
        return f"{self.name}/v{self.version}"

    @property
    def posterior(self) -> Path:
        return self.path / "posterior.nc"


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise :class:`RegistryError`."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or VERSION_RE.fullmatch(name):
        raise RegistryError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (and not shaped like a version, vN)"
        )
    return name


def parse_version(version: str | int) -> int:
    """``3``, ``"3"`` or ``"v3"`` → 3; anything else raises :class:`RegistryError`."""
    text = str(version)
    if text.isdigit():
        text = f"v{text}"
    match = VERSION_RE.fullmatch(text)
    if not match:
        raise RegistryError(f"invalid version {version!r}: use vN (e.g. v3), 'current' or 'latest'")
    return int(match.group(1))


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read {path}: {exc}") from None


class ModelRegistry:
    """A registry folder of named, versioned models.

    Parameters
    ----------
    root : the registry folder (created on the first :meth:`register`).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        # (name, number) -> why that version is unusable (unreadable model.json, a link out, ...)
        self.problems: dict[tuple[str, int], str] = {}

    # ------------------------------------------------------------------ lookup
    def _inside(self, path: Path) -> Path:
        """``path`` resolved, refused unless it lies inside the registry (symlinks included)."""
        root = self.root.resolve()
        resolved = path.resolve()
        if resolved != root and not resolved.is_relative_to(root):
            raise RegistryError(f"{path} resolves outside the registry {root}; refusing to use it")
        return resolved

    def model_dir(self, name: str) -> Path:
        """Folder of model ``name`` (validated; it may not exist yet)."""
        return self._inside(self.root / check_name(name))

    def names(self) -> list[str]:
        """Registered model names, sorted (entries that are links or not valid names are skipped)."""
        if not self.root.is_dir():
            return []
        names = []
        for p in self.root.iterdir():
            if p.is_dir() and not p.is_symlink() and NAME_RE.fullmatch(p.name) and not VERSION_RE.fullmatch(p.name):
                with contextlib.suppress(RegistryError):
                    if self.versions(p.name):
                        names.append(p.name)
        return sorted(names)

    def versions(self, name: str) -> list[ModelVersion]:
        """Complete versions of ``name``, oldest first (an unknown name has none)."""
        folder = self.model_dir(name)
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            match = VERSION_RE.fullmatch(child.name)
            if match and child.is_dir() and (child / MODEL_FILE).exists():
                number = int(match.group(1))
                try:
                    path = self._inside(child)
                    for f in (MODEL_FILE, *REQUIRED_RUN_FILES):  # every file a server reads: no link out
                        if (path / f).exists() or (path / f).is_symlink():
                            self._inside(path / f)
                    metadata = _read_json(path / MODEL_FILE)
                    if not isinstance(metadata, dict):
                        raise RegistryError(f"{path / MODEL_FILE} does not hold a JSON object")
                except RegistryError as exc:  # one bad version must not hide the others
                    if self.problems.get((name, number)) != str(exc):
                        log.warning(
                            "skipping an unusable registry version",
                            extra={"version": f"{name}/v{number}", "reason": str(exc)},
                        )
                    self.problems[(name, number)] = str(exc)
                    continue
                self.problems.pop((name, number), None)
                found.append(ModelVersion(name, number, path, metadata))
        return sorted(found, key=lambda v: v.version)

    def current_version(self, name: str) -> int | None:
        """Number of the promoted version, or None when nothing was promoted."""
        pointer = self.model_dir(name) / CURRENT_FILE
        if not pointer.exists():
            return None
        return parse_version(_read_json(self._inside(pointer)).get("version", ""))

    def get(self, name: str, version: str | int = "current") -> ModelVersion:
        """A version of ``name``: ``"current"`` (promoted; the latest if none was), ``"latest"`` or ``vN``."""
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"no model named {name!r} in registry {self.root} (registered: {known})")
        if version == "latest":
            return versions[-1]
        if version == "current":
            number = self.current_version(name)
            if number is None:
                return versions[-1]
        else:
            number = parse_version(version)
        for v in versions:
            if v.version == number:
                return v
        if (name, number) in self.problems:
            raise RegistryError(f"{name}/v{number} cannot be used: {self.problems[(name, number)]}")
        have = ", ".join(f"v{v.version}" for v in versions)
        raise RegistryError(f"model {name!r} has no version v{number} (versions: {have})")

    def table(self) -> pd.DataFrame:
        """One row per version of every model: the listing of ``bayesmmm models``."""
        rows = []
        for name in self.names():
            current = self.current_version(name)
            versions = self.versions(name)
            current = versions[-1].version if current is None else current
            for v in versions:
                m = v.metadata
                fit = m.get("fit_metrics") or {}
                rows.append(
                    {
                        "name": name,
                        "version": f"v{v.version}",
                        "current": v.version == current,
                        "created_at": m.get("created_at"),
                        "data_sha256": (m.get("data_sha256") or "")[:12],
                        "r2": fit.get("r2"),
                        "mape": fit.get("mape"),
                        "elpd": (m.get("loo") or {}).get("elpd"),
                        "diagnostics_passed": (m.get("diagnostics") or {}).get("passed"),
                        "source_run": m.get("source_run"),
                    }
                )
        return pd.DataFrame(rows, columns=[
            "name", "version", "current", "created_at", "data_sha256", "r2", "mape", "elpd",
            "diagnostics_passed", "source_run",
        ])  # fmt: skip

    # ------------------------------------------------------------------ writes
    def register(self, run_dir: str | Path, name: str, *, promote: bool = True) -> ModelVersion:
        """Copy a finished run folder into ``NAME/vN`` (N = the next number) with ``model.json``.

        Parameters
        ----------
        run_dir : a folder written by ``bayesmmm fit`` (it must hold posterior.nc,
            metadata.json, diagnostics.json and config.yaml).
        name : model name.
        promote : make the new version the current one (without a comparison; use
            ``promote=False`` to register a candidate and :meth:`promote` it later).
        """
        from bayesmmm.io import write_json

        check_name(name)
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RegistryError(f"run folder {run_dir} does not exist (pass a folder written by `bayesmmm fit`)")
        missing = [f for f in REQUIRED_RUN_FILES if not (run_dir / f).is_file()]
        if missing:
            raise RegistryError(
                f"{run_dir} is not a finished run folder: {', '.join(missing)} missing (run `bayesmmm fit` first)"
            )
        metadata = _version_metadata(run_dir, name)
        folder = self.model_dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".register-", suffix=".partial", dir=folder))
        mask = _umask()
        try:
            os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700: another uid (a container) could not read it
            for item in sorted(run_dir.iterdir()):
                # regular, visible files only: never follow a link out of the run folder
                if item.is_file() and not item.is_symlink() and not item.name.startswith("."):
                    shutil.copy2(item, tmp / item.name)
                    os.chmod(tmp / item.name, 0o666 & ~mask)  # the registry's own permissions, not the run's
            number = self._next_number(name)
            while True:
                metadata.update(version=f"v{number}", created_at=datetime.now(UTC).isoformat(timespec="seconds"))
                write_json(tmp / MODEL_FILE, metadata)
                os.chmod(tmp / MODEL_FILE, 0o666 & ~mask)
                fsync_dir(tmp)
                target = folder / f"v{number}"
                try:
                    target.mkdir()  # claims the number; fails if another process took it
                except FileExistsError:
                    number += 1
                    continue
                os.replace(tmp, target)
                fsync_dir(folder)
                break
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        version = ModelVersion(name, number, self._inside(folder / f"v{number}"), metadata)
        if promote:
            self._set_current(name, number, reason="registered")
        return version

    def _next_number(self, name: str) -> int:
        folder = self.model_dir(name)
        numbers = [int(m.group(1)) for c in folder.iterdir() if (m := VERSION_RE.fullmatch(c.name))]
        return max(numbers, default=0) + 1

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """An exclusive ``flock`` on the model's folder (other processes and threads wait)."""
        fd = os.open(self.model_dir(name), os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _set_current(self, name: str, number: int, reason: str, comparison: dict[str, Any] | None = None) -> None:
        from bayesmmm.io import write_json

        pointer = self.model_dir(name) / CURRENT_FILE
        with self._locked(name):  # read-modify-write: a concurrent promotion must not lose this entry
            history = _read_json(self._inside(pointer)).get("history", []) if pointer.exists() else []
            now = datetime.now(UTC).isoformat(timespec="seconds")
            entry = {"version": f"v{number}", "promoted_at": now, "reason": reason}
            if comparison is not None:
                entry["comparison"] = comparison
            write_json(pointer, {"version": f"v{number}", "promoted_at": now, "history": [*history, entry]})

    def promote(
        self,
        name: str,
        version: str | int,
        *,
        holdout: pd.DataFrame | None = None,
        hdi_prob: float = 0.9,
        tolerance: float = 0.05,
        force: bool = False,
    ) -> dict[str, Any]:
        """Compare ``version`` with the current one and make it current if it is not worse.

        Raises :class:`PromotionRefused` (carrying the comparison) when the checks fail
        and ``force`` is false. Returns the comparison.
        """
        candidate = self.get(name, version)
        current = self.get(name, "current")
        comparison = compare_versions(current, candidate, holdout=holdout, hdi_prob=hdi_prob, tolerance=tolerance)
        if not comparison["promote"] and not force:
            raise PromotionRefused(
                f"{candidate.label} was not promoted over {current.label}: " + "; ".join(comparison["reasons"]),
                comparison,
            )
        self._set_current(name, candidate.version, reason="forced" if force else "compared", comparison=comparison)
        return comparison


def resolve_model(
    target: str | Path, name: str | None = None, version: str = "current"
) -> tuple[Path, str, ModelVersion | None]:
    """What a server should load: ``(posterior path, model version label, registry entry)``.

    ``target`` is a run folder (it holds posterior.nc), a version folder, a model's folder
    in a registry or a registry folder (then ``name`` is needed unless it holds one
    model). Run folders are labelled ``run:<folder>@<sha256 prefix of posterior.nc>``.
    """
    from bayesmmm.data.loading import file_hash

    target = Path(target)
    if not target.exists():
        raise RegistryError(f"{target} does not exist: pass a run folder or a registry folder")
    if (target / "posterior.nc").is_file() and (target / MODEL_FILE).exists() and name is None:
        meta = _read_json(target / MODEL_FILE)
        return target / "posterior.nc", f"{meta.get('name')}/{meta.get('version')}", None
    if (target / "posterior.nc").is_file() and name is None:
        sha = file_hash(target / "posterior.nc")[:12]
        return target / "posterior.nc", f"run:{target.resolve().name}@{sha}", None
    if target.is_file():
        raise RegistryError(f"{target} is a file: pass a run folder or a registry folder")
    registry = ModelRegistry(target)
    if name is None:
        if (target / CURRENT_FILE).exists() or any(VERSION_RE.fullmatch(c.name) for c in target.iterdir()):
            registry, name = ModelRegistry(target.parent), target.name  # a model's own folder
        else:
            names = registry.names()
            if len(names) != 1:
                raise RegistryError(
                    f"registry {target} holds {len(names)} models ({', '.join(names) or 'none'}); "
                    "choose one with --model"
                )
            name = names[0]
    entry = registry.get(name, version)
    return entry.posterior, entry.label, entry


# ---------------------------------------------------------------- metadata
def _version_metadata(run_dir: Path, name: str) -> dict[str, Any]:
    import platform

    import yaml

    from bayesmmm.data.loading import file_hash
    from bayesmmm.model.mmm import MMM
    from bayesmmm.model.persistence import package_versions

    run_meta = _read_json(run_dir / "metadata.json")
    diag = _read_json(run_dir / "diagnostics.json")
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"cannot read {run_dir / 'config.yaml'}: {exc}") from None
    mmm = MMM.load(run_dir / "posterior.nc")  # refuses a file that is not a bayesmmm model
    dates = mmm.data.dates
    keys = ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "chains", "draws", "passed", "problems")
    return {
        "name": name,
        "version": None,
        "created_at": None,
        "source_run": str(run_dir.resolve()),
        "run_created_at": run_meta.get("created_at"),
        "posterior_sha256": file_hash(run_dir / "posterior.nc"),
        "data_sha256": run_meta.get("data_sha256"),
        "data_path": run_meta.get("data_path"),
        "n_dates": int(mmm.data.n_dates),
        "date_range": [str(dates[0].date()), str(dates[-1].date())],
        "channels": list(mmm.channels),
        "controls": list(mmm.controls),
        "config": config,
        "versions": {
            "training": run_meta.get("versions", {}),
            "registry": {**package_versions(), "python": platform.python_version()},
        },
        "fit_metrics": diag.get("fit", {}),
        "loo": diag.get("loo", {}),
        "diagnostics": {k: diag[k] for k in keys if k in diag},
    }


# -------------------------------------------------------------- comparison
def _holdout_scores(mmm: Any, holdout: pd.DataFrame, start: pd.Timestamp, hdi_prob: float) -> dict[str, float]:
    """Hold-out error and coverage of ``mmm`` on the rows of ``holdout`` dated ``start`` or later.

    Rows between the model's training end and ``start`` are predicted too (they carry
    adstock into the scored periods) but not scored.
    """
    from bayesmmm.data.loading import frame_to_data
    from bayesmmm.evaluation.criteria import holdout_scores

    cfg = mmm.data_config
    frame = holdout.copy()
    frame["_date"] = pd.to_datetime(frame[cfg.date_column], errors="coerce")
    frame = frame[frame["_date"] > mmm.data.dates[-1]].drop(columns="_date")
    if frame.empty:
        raise RegistryError(f"the hold-out data has no rows after the training data ending {mmm.data.dates[-1].date()}")
    observed = frame_to_data(frame, cfg)  # validates the target too
    pred = mmm.predict(frame, noise=True, seed=0)
    keep = pd.DatetimeIndex(pred["date"].values) >= start
    draws = pred["y"].to_numpy().reshape(-1, len(keep))[:, keep]
    y = observed.target[keep]
    scores = holdout_scores(draws, y, hdi_prob)
    scores["holdout_weeks"] = int(keep.sum())  # periods of the data (the key's name is historical)
    return scores


def compare_versions(
    current: ModelVersion,
    candidate: ModelVersion,
    *,
    holdout: pd.DataFrame | None = None,
    hdi_prob: float = 0.9,
    tolerance: float = 0.05,
    import_plugins: bool = True,
) -> dict[str, Any]:
    """Compare a candidate with the current version before promoting it.

    ``import_plugins=False`` (the service) loads the models without importing plugin code
    (see :meth:`~bayesmmm.model.mmm.MMM.load`).

    Checks, each adding a reason when it fails:

    - the candidate's convergence diagnostics passed;
    - ELPD (PSIS-LOO): when both were fitted on the same data, the candidate is not worse
      by more than two standard errors of the pointwise difference (``elpd_diff < -2 dse``);
      on different data the ELPDs are reported but not compared;
    - with ``holdout`` (weeks after both training periods, with the target): the
      candidate's hold-out RMSE is not more than ``tolerance`` (relative) above the current
      one's, and its interval coverage is not further from ``hdi_prob`` by more than 0.1.

    Returns
    -------
    JSON-able dict with ``current``, ``candidate`` (their figures), ``elpd_diff``, ``dse``,
    ``same_data``, ``promote`` (bool) and ``reasons`` (list of failed checks).
    """
    from bayesmmm.evaluation.criteria import loo
    from bayesmmm.model.mmm import MMM

    if not 0 < hdi_prob < 1:
        raise RegistryError(f"hdi_prob must be between 0 and 1, got {hdi_prob}")
    models = {
        "current": MMM.load(current.posterior, import_plugins=import_plugins),
        "candidate": MMM.load(candidate.posterior, import_plugins=import_plugins),
    }
    entries = {"current": current, "candidate": candidate}
    loos = {k: loo(m.idata) for k, m in models.items()}
    out: dict[str, Any] = {}
    for key, entry in entries.items():
        out[key] = {
            "version": entry.label,
            "elpd": float(loos[key].elpd),
            "elpd_se": float(loos[key].se),
            "diagnostics_passed": bool((entry.metadata.get("diagnostics") or {}).get("passed", False)),
            "data_sha256": entry.metadata.get("data_sha256"),
        }
    reasons: list[str] = []
    if not out["candidate"]["diagnostics_passed"]:
        reasons.append("the candidate's convergence diagnostics failed")
    a, b = models["current"], models["candidate"]
    same = (
        current.metadata.get("data_sha256") is not None
        and current.metadata.get("data_sha256") == candidate.metadata.get("data_sha256")
        and a.data.n_dates == b.data.n_dates
    )
    out["same_data"] = bool(same)
    out["elpd_diff"] = out["dse"] = None
    if same:
        diff = loos["candidate"].elpd_i.to_numpy().ravel() - loos["current"].elpd_i.to_numpy().ravel()
        out["elpd_diff"] = float(diff.sum())
        out["dse"] = float(np.sqrt(len(diff) * diff.var()))
        if out["elpd_diff"] < -2 * out["dse"]:
            reasons.append(f"ELPD is worse by {-out['elpd_diff']:.1f} (more than 2 × dse = {2 * out['dse']:.1f})")
    if holdout is not None:
        from bayesmmm.data.loading import frame_to_data

        frame_to_data(holdout, a.data_config)  # a clear error for a bad hold-out file before any prediction
        last = max(a.data.dates[-1], b.data.dates[-1])
        start = next_dates(last, a.data.frequency, 1)[0]
        for key, model in models.items():
            out[key].update(_holdout_scores(model, holdout, start, hdi_prob))
        cur, cand = out["current"], out["candidate"]
        if cand["holdout_rmse"] > cur["holdout_rmse"] * (1 + tolerance):
            reasons.append(
                f"hold-out RMSE {cand['holdout_rmse']:.4g} is more than {tolerance:.0%} above the current "
                f"{cur['holdout_rmse']:.4g}"
            )
        if abs(cand["holdout_coverage"] - hdi_prob) > abs(cur["holdout_coverage"] - hdi_prob) + 0.1:
            reasons.append(
                f"hold-out {hdi_prob:.0%} interval coverage {cand['holdout_coverage']:.2f} is further from "
                f"{hdi_prob} than the current {cur['holdout_coverage']:.2f}"
            )
    out["hdi_prob"] = hdi_prob
    out["promote"] = not reasons
    out["reasons"] = reasons
    return out
