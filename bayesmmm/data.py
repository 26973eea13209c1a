"""Loading and validating MMM data into named, scaled arrays."""

from __future__ import annotations

import difflib
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmmm.config import DataConfig

__all__ = ["DataError", "MMMData", "file_hash", "frame_to_data", "read_csv", "spend_scale"]


def spend_scale(spend: np.ndarray) -> np.ndarray:
    """Scale of each channel: its mean spend over the weeks with spend > 0 (axis 0).

    Saturation parameters are in units of this scale ("a typical active week"). Using
    active weeks only keeps the default priors meaningful for intermittent (flighted)
    channels, whose plain mean is diluted by the weeks off; for always-on channels it
    is the plain mean. A channel with no spend at all gets 0.
    """
    spend = np.asarray(spend, dtype=float)
    active = spend > 0
    counts = active.sum(axis=0)
    totals = np.where(active, spend, 0.0).sum(axis=0)
    return np.divide(totals, counts, out=np.zeros_like(totals, dtype=float), where=counts > 0)


class DataError(ValueError):
    """The input data cannot be used; the message names the column/row and the fix."""


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV with a clear error for a missing, empty or unreadable file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist; fix data.path or pass --data")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(path)!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"data file {str(path)!r} is not a readable CSV: {exc}") from None
    if frame.empty:
        raise DataError(f"data file {str(path)!r} has a header but no rows")
    return frame


def _missing_column_message(missing: list[str], available: list[str], role: str) -> str:
    parts = []
    for col in missing:
        close = difflib.get_close_matches(col, available, n=1)
        parts.append(f"{col!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (
        f"{role} column(s) {', '.join(parts)} not found in the data. "
        f"Available columns: {', '.join(map(str, available))}. Fix the column names under 'data:'."
    )


def _numeric(frame: pd.DataFrame, col: str, role: str) -> np.ndarray:
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = values.isna() & frame[col].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{role} column {col!r} has a non-numeric value {frame[col].iloc[row]!r} at row {row + 2} of the file; "
            "make the column numeric"
        )
    arr = values.to_numpy(dtype=float)
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise DataError(
            f"{role} column {col!r} has a missing or infinite value at row {row + 2} "
            f"(date {frame.iloc[row, 0]}); fill or drop that row"
        )
    return arr


@dataclass(frozen=True)
class MMMData:
    """Validated model inputs in original units, with named dims.

    Attributes
    ----------
    dates : DatetimeIndex (date,)
    target : ndarray (date,)
    media : ndarray (date, channel) — spend
    controls : ndarray (date, control)
    channels, control_names : column names
    """

    dates: pd.DatetimeIndex
    target: np.ndarray | None
    media: np.ndarray
    controls: np.ndarray
    channels: tuple[str, ...]
    control_names: tuple[str, ...]

    @property
    def n_dates(self) -> int:
        return len(self.dates)


def frame_to_data(
    frame: pd.DataFrame, config: DataConfig, *, require_target: bool = True, min_rows: int = 1
) -> MMMData:
    """Validate a data frame against the column spec and return :class:`MMMData`.

    Checks: columns present (with suggestions), numeric and finite values, no
    negative spend, parseable and unique dates on a regular weekly grid; rows are
    sorted by date.
    """
    available = [str(c) for c in frame.columns]
    required = {"date": [config.date_column], "channel": config.channel_columns, "control": config.control_columns}
    if require_target:
        required["target"] = [config.target_column]
    for role, cols in required.items():
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataError(_missing_column_message(missing, available, role))
    with warnings.catch_warnings():  # mixed formats are parsed one by one; unparseable ones are reported below
        warnings.simplefilter("ignore", UserWarning)
        dates = pd.to_datetime(frame[config.date_column], errors="coerce")
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(
            f"date column {config.date_column!r} has an unparseable value "
            f"{frame[config.date_column].iloc[row]!r} at row {row + 2}; use ISO dates like 2024-01-01"
        )
    order = np.argsort(dates.to_numpy(), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    dates = pd.DatetimeIndex(dates.iloc[order].to_numpy())
    dupes = dates[dates.duplicated()]
    if len(dupes):
        raise DataError(f"date {dupes[0].date()} appears more than once; keep one row per week")
    if len(frame) < min_rows:
        raise DataError(f"the data has {len(frame)} rows; the model needs at least {min_rows}")
    if len(dates) > 1:
        steps = np.diff(dates.values).astype("timedelta64[D]").astype(int)
        if not (steps == 7).all():
            i = int(np.flatnonzero(steps != 7)[0])
            kind = "a gap" if steps[i] > 7 and steps[i] % 7 == 0 else "a non-weekly step"
            raise DataError(
                f"dates must be consecutive weeks: {kind} of {steps[i]} days between {dates[i].date()} and "
                f"{dates[i + 1].date()}; add the missing weeks (zero spend) or aggregate to weekly data"
            )
    media = np.column_stack([_numeric(frame, c, "channel") for c in config.channel_columns])
    neg = np.argwhere(media < 0)
    if len(neg):
        r, c = neg[0]
        raise DataError(
            f"channel {config.channel_columns[c]!r} has negative spend {media[r, c]} on {dates[r].date()}; "
            "spend must be >= 0"
        )
    if config.control_columns:
        controls = np.column_stack([_numeric(frame, c, "control") for c in config.control_columns])
    else:
        controls = np.zeros((len(frame), 0))
    target = _numeric(frame, config.target_column, "target") if require_target else None
    return MMMData(
        dates=dates,
        target=target,
        media=media,
        controls=controls,
        channels=tuple(config.channel_columns),
        control_names=tuple(config.control_columns),
    )
