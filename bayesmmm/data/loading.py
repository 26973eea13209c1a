"""Loading and validating MMM data into named, scaled arrays."""

from __future__ import annotations

import difflib
import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayesmmm.config.experiment import DataConfig
from bayesmmm.data.frequency import FrequencyError, check_grid, full_grid, period_name
from bayesmmm.data.reach import add_impressions, frequency_columns, national_frequency
from bayesmmm.data.roles import RoleEncoding, RoleError, encode_events

__all__ = [
    "DataError",
    "MMMData",
    "check_exposure",
    "exposure_spend_columns",
    "file_hash",
    "frame_to_data",
    "panel_to_data",
    "read_csv",
    "spend_scale",
]


def spend_scale(spend: np.ndarray) -> np.ndarray:
    """Scale of each channel: its mean spend over the periods with spend > 0 (axis 0).

    Saturation parameters are in units of this scale ("a typical active period"). Using
    active periods only keeps the default priors meaningful for intermittent (flighted)
    channels, whose plain mean is diluted by the periods off; for always-on channels it
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
    if path.is_dir():
        raise DataError(f"data path {str(path)!r} is a folder; point data.path or --data at a CSV file")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(path)!r} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"data file {str(path)!r} is not a readable CSV ({first}); save it as comma-separated UTF-8 text"
        ) from None
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


def _numeric(frame: pd.DataFrame, col: str, role: str, file_rows: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    """Column ``col`` as finite floats; ``file_rows[i]`` is the 0-based data row of frame row ``i``."""
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = values.isna() & frame[col].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{role} column {col!r} has a non-numeric value {frame[col].iloc[row]!r} at row {file_rows[row] + 2} "
            f"of the file (date {dates[row].date()}); make the column numeric"
        )
    arr = values.to_numpy(dtype=float)
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr))[0])
        what = "a missing" if np.isnan(arr[row]) else "an infinite"
        raise DataError(
            f"{role} column {col!r} has {what} value at row {file_rows[row] + 2} of the file "
            f"(date {dates[row].date()}); fill or drop that row"
        )
    return arr


@dataclass(frozen=True)
class MMMData:
    """Validated model inputs in original units, with named dims.

    Attributes
    ----------
    dates : DatetimeIndex (date,)
    target : ndarray (date,)
    media : ndarray (date, channel) — what the channels' curves act on: the exposure of a
        channel with an exposure column, the spend of a spend-only channel
    controls : ndarray (date, control)
    channels, control_names : channel names and control column names
    geos : geo names of a geo panel (empty for national data)
    geo_target, geo_media, geo_controls : the panel, ``(date, geo[, channel|control])``;
        for a panel ``target`` and ``media`` are the national totals over geos and
        ``controls`` the mean over geos (the national view used by reports)
    population : ndarray (geo,) or None
    frequency : the dates' frequency: ``daily``, ``weekly`` (the default: data of earlier
        versions), ``monthly`` or ``"<N>D"`` (:mod:`bayesmmm.data.frequency`)
    spend, geo_spend : the channels' spend (money), ``(date, channel)`` / ``(date, geo, channel)``,
        or None where it equals ``media`` (every channel spend-only): read it through
        :attr:`channel_spend` / :attr:`geo_channel_spend`, which fall back to the media
    revenue_per_kpi, geo_revenue_per_kpi : revenue per unit of the target per period,
        ``(date,)`` / ``(date, geo)``, or None (ROAS is then KPI per unit of spend); a panel's
        national ``revenue_per_kpi`` is the target-weighted mean over geos
    organic, organic_names, geo_organic : organic media (date, organic), original units
        (:mod:`bayesmmm.data.roles`); national view: sums over geos
    treatments, treatment_names, geo_treatments : treatment values (date, treatment), original
        units (not yet centred on their baselines); national view: mean over geos
    events, event_names, geo_events : 0/1 indicators of the non-reference event levels (date,
        event), named ``column[level]``; national view: mean over geos
    encoding : the treatments' baselines and the event levels fixed by the training rows
    rf_frequency, geo_rf_frequency : the channels' frequency (exposures per person reached), ``(date,
        channel)`` / ``(date, geo, channel)``, or None without reach & frequency channels
        (:mod:`bayesmmm.data.reach`); a reach & frequency channel's ``media`` is its impressions
        (reach × frequency); 1 for other channels and periods without reach; national view: total
        impressions ÷ total reach
    """

    dates: pd.DatetimeIndex
    target: np.ndarray | None
    media: np.ndarray
    controls: np.ndarray
    channels: tuple[str, ...]
    control_names: tuple[str, ...]
    geos: tuple[str, ...] = ()
    geo_target: np.ndarray | None = None
    geo_media: np.ndarray | None = None
    geo_controls: np.ndarray | None = None
    population: np.ndarray | None = None
    #: the dates' frequency (:mod:`bayesmmm.data.frequency`): daily, weekly, monthly or "<N>D"
    frequency: str = "weekly"
    spend: np.ndarray | None = None
    geo_spend: np.ndarray | None = None
    revenue_per_kpi: np.ndarray | None = None
    geo_revenue_per_kpi: np.ndarray | None = None
    organic: np.ndarray | None = None
    organic_names: tuple[str, ...] = ()
    geo_organic: np.ndarray | None = None
    treatments: np.ndarray | None = None
    treatment_names: tuple[str, ...] = ()
    geo_treatments: np.ndarray | None = None
    events: np.ndarray | None = None
    event_names: tuple[str, ...] = ()
    geo_events: np.ndarray | None = None
    encoding: RoleEncoding = field(default_factory=RoleEncoding)
    rf_frequency: np.ndarray | None = None
    geo_rf_frequency: np.ndarray | None = None

    def __post_init__(self) -> None:  # absent roles: empty blocks, so every consumer can index them
        n = len(self.dates)
        for name in ("organic", "treatments", "events"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros((n, 0)))
            if self.geo_media is not None and getattr(self, f"geo_{name}") is None:
                object.__setattr__(self, f"geo_{name}", np.zeros((n, self.geo_media.shape[1], 0)))

    @property
    def n_dates(self) -> int:
        return len(self.dates)

    @property
    def channel_spend(self) -> np.ndarray:
        """The channels' spend (date, channel): :attr:`spend`, or the media of spend-only channels."""
        return self.media if self.spend is None else self.spend

    @property
    def geo_channel_spend(self) -> np.ndarray | None:
        """A panel's spend (date, geo, channel): :attr:`geo_spend`, or its media (None for national data)."""
        return self.geo_media if self.geo_spend is None else self.geo_spend

    @property
    def has_revenue(self) -> bool:
        """Whether the target is valued by a revenue per KPI (``data.revenue_per_kpi_column``)."""
        return self.revenue_per_kpi is not None

    @property
    def is_panel(self) -> bool:
        """Whether this is a geo panel (arrays with a ``geo`` axis)."""
        return self.geo_media is not None

    @classmethod
    def from_panel(
        cls,
        dates: pd.DatetimeIndex,
        geos: tuple[str, ...],
        target: np.ndarray | None,
        media: np.ndarray,
        controls: np.ndarray,
        channels: tuple[str, ...],
        control_names: tuple[str, ...],
        population: np.ndarray | None = None,
        frequency: str = "weekly",
        spend: np.ndarray | None = None,
        revenue_per_kpi: np.ndarray | None = None,
        *,
        organic: np.ndarray | None = None,
        organic_names: tuple[str, ...] = (),
        treatments: np.ndarray | None = None,
        treatment_names: tuple[str, ...] = (),
        events: np.ndarray | None = None,
        event_names: tuple[str, ...] = (),
        encoding: RoleEncoding | None = None,
        rf_frequency: np.ndarray | None = None,
    ) -> MMMData:
        """A geo panel with its national view (totals over geos; controls averaged; revenue per KPI
        weighted by each geo's target, or averaged without a target)."""
        national_rpk = None
        if revenue_per_kpi is not None:
            weights = None if target is None or not (np.abs(target).sum(axis=1) > 0).all() else np.abs(target)
            national_rpk = np.average(revenue_per_kpi, axis=1, weights=weights)
        n, n_geos = len(dates), len(geos)

        def block(arr: np.ndarray | None) -> np.ndarray:
            return np.zeros((n, n_geos, 0)) if arr is None else np.asarray(arr, dtype=float)

        organic, treatments, events = block(organic), block(treatments), block(events)
        return cls(
            dates=pd.DatetimeIndex(dates),
            target=None if target is None else target.sum(axis=1),
            media=media.sum(axis=1),
            controls=controls.mean(axis=1),
            channels=tuple(channels),
            control_names=tuple(control_names),
            geos=tuple(geos),
            geo_target=target,
            geo_media=media,
            geo_controls=controls,
            population=population,
            frequency=frequency,
            spend=None if spend is None else spend.sum(axis=1),
            geo_spend=spend,
            revenue_per_kpi=national_rpk,
            geo_revenue_per_kpi=revenue_per_kpi,
            organic=organic.sum(axis=1),
            organic_names=tuple(organic_names),
            geo_organic=organic,
            treatments=treatments.mean(axis=1),
            treatment_names=tuple(treatment_names),
            geo_treatments=treatments,
            events=events.mean(axis=1),
            event_names=tuple(event_names),
            geo_events=events,
            encoding=encoding or RoleEncoding(),
            rf_frequency=None if rf_frequency is None else national_frequency(media, rf_frequency),
            geo_rf_frequency=rf_frequency,
        )


def frame_to_data(
    frame: pd.DataFrame,
    config: DataConfig,
    *,
    require_target: bool = True,
    min_rows: int = 1,
    file_rows: np.ndarray | None = None,
    encoding: RoleEncoding | None = None,
) -> MMMData:
    """Validate a data frame against the column spec and return :class:`MMMData`.

    Checks, in order, each failing with a one-line :class:`DataError` that names the
    column or row and the fix: columns present (with close matches), parseable and
    unique dates, a regular grid of ``config.frequency`` (``auto``: inferred from the dates;
    gaps are filled with zero spend when ``config.missing_weeks == "fill_zero"``), enough
    rows, numeric and finite values,
    no negative spend (clipped to 0 when ``config.negative_spend == "clip"``). Rows
    are sorted by date. Row numbers in messages are lines of the CSV file (header = 1);
    ``file_rows[i]`` is the 0-based data row of frame row ``i`` (default: ``i``).

    With ``config.geo_column`` the frame is a long-format geo panel: see
    :func:`panel_to_data`.

    Role columns (:mod:`bayesmmm.data.roles`): organic media are checked like spend, treatments
    like controls; event columns are text. ``encoding`` (a trained model's
    :class:`~bayesmmm.data.roles.RoleEncoding`: treatment baselines, event levels) is applied to
    the rows; without it, it is fitted on them (training data).
    """
    available = [str(c) for c in frame.columns]
    if not available or len(frame) == 0:
        raise DataError("the data has no rows; supply a CSV with a header and one row per period")
    if config.geo_column is not None:
        return panel_to_data(frame, config, require_target=require_target, min_rows=min_rows, encoding=encoding)
    rows_of = np.arange(len(frame)) if file_rows is None else np.asarray(file_rows)
    frame, problem = add_impressions(frame, config, rows_of)  # reach & frequency channels' exposure
    if problem:
        raise DataError(problem)
    required = {"date": [config.date_column], "channel": config.media_columns, "control": config.control_columns}
    required.update(
        {"organic": config.organic_columns, "treatment": config.treatment_columns, "event": config.event_columns}
    )
    if require_target:
        required["target"] = [config.target_column]
    # spend of exposure channels and the revenue per KPI: required to fit, optional for new rows
    spend_cols, wants_spend = exposure_spend_columns(config), config.has_exposure
    if spend_cols and not require_target:
        wants_spend = all(c in frame.columns for c in spend_cols)
    elif spend_cols:
        required["channel spend"] = spend_cols
    rpk_col = config.revenue_per_kpi_column
    wants_rpk = rpk_col is not None and (require_target or rpk_col in frame.columns)
    if wants_rpk and require_target:
        required["revenue_per_kpi"] = [rpk_col]
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
            f"{frame[config.date_column].iloc[row]!r} at row {rows_of[row] + 2}; use ISO dates like 2024-01-01"
        )
    order = np.argsort(dates.to_numpy(), kind="stable")
    file_order = rows_of[order]
    frame = frame.iloc[order].reset_index(drop=True)
    dates = pd.DatetimeIndex(dates.iloc[order].to_numpy())
    dupes = np.flatnonzero(dates.duplicated())
    if len(dupes):
        day = dates[dupes[0]]
        rows = sorted(int(file_order[i]) + 2 for i in np.flatnonzero(dates == day))
        raise DataError(
            f"date {day.date()} appears more than once (rows {', '.join(map(str, rows))}); keep one row per date "
            "(sum or drop the duplicates)"
        )
    frequency, missing = _check_grid(dates, config)
    media_roles = [
        "channel exposure" if m != sp else "channel"
        for m, sp in zip(config.media_columns, config.spend_columns, strict=True)
    ]
    media = np.column_stack(
        [_numeric(frame, c, r, file_order, dates) for c, r in zip(config.media_columns, media_roles, strict=True)]
    )
    rf_cols = frequency_columns(config)
    rf_frequency = None
    if config.rf_channels:  # validated by add_impressions: >= 1, and 1 where nobody is reached
        ones = np.ones(len(frame))
        rf_frequency = np.column_stack([ones if c is None else frame[c].to_numpy(dtype=float) for c in rf_cols])
    spend = None
    if wants_spend:
        spend = np.column_stack([_numeric(frame, c, "channel spend", file_order, dates) for c in config.spend_columns])
    rpk = _numeric(frame, rpk_col, "revenue_per_kpi", file_order, dates) if wants_rpk else None
    if config.control_columns:
        controls = np.column_stack([_numeric(frame, c, "control", file_order, dates) for c in config.control_columns])
    else:
        controls = np.zeros((len(frame), 0))
    target = _numeric(frame, config.target_column, "target", file_order, dates) if require_target else None
    roles = _role_columns(frame, config, file_order, dates, encoding)
    media = _non_negative(media, config.media_columns, config, file_order, dates)
    if spend is not None:
        spend = _non_negative(spend, config.spend_columns, config, file_order, dates)
        check_exposure(media, spend, config, dates)
    if rpk is not None and (rpk < 0).any():
        r = int(np.flatnonzero(rpk < 0)[0])
        raise DataError(
            f"revenue_per_kpi column {rpk_col!r} has a negative value {rpk[r]:g} at row {file_order[r] + 2} "
            f"(date {dates[r].date()}); revenue per unit of the target must be >= 0: fix the row"
        )
    if len(missing):
        old_dates = dates
        full = full_grid(dates[0], dates[-1], frequency)
        baselines = np.array([roles["encoding"].baselines[c] for c in config.treatment_columns])
        for key, fill in (("organic", 0.0), ("treatments", baselines), ("events", 0.0)):
            roles[key] = _fill_rows(full, dates, roles[key], fill)
        if rf_frequency is not None:  # a missing period reaches nobody: frequency 1
            rf_frequency = _fill_rows(full, dates, rf_frequency, 1.0)
        dates, media, controls, target = _fill_periods(dates, frequency, media, controls, target)
        spend, rpk = _fill_extra(old_dates, dates, spend, rpk)
    if len(dates) < min_rows:
        periods = period_name(frequency, plural=True)
        raise DataError(
            f"the data has {len(dates)} {periods}; this model needs at least {min_rows} "
            f"(supply more {periods}, or simplify the model: fewer channels, lower yearly_seasonality, trend, l_max)"
        )
    return MMMData(
        dates=dates,
        target=target,
        media=media,
        controls=controls,
        channels=tuple(config.channel_names),
        control_names=tuple(config.control_columns),
        frequency=frequency,
        spend=spend,
        revenue_per_kpi=rpk,
        organic=roles["organic"],
        organic_names=tuple(config.organic_columns),
        treatments=roles["treatments"],
        treatment_names=tuple(config.treatment_columns),
        events=roles["events"],
        event_names=roles["encoding"].event_names,
        encoding=roles["encoding"],
        rf_frequency=rf_frequency,
    )


def _role_columns(
    frame: pd.DataFrame,
    config: DataConfig,
    file_order: np.ndarray,
    dates: pd.DatetimeIndex,
    encoding: RoleEncoding | None,
) -> dict:
    """Organic, treatment and event blocks of sorted rows, with the encoding (fitted here without one)."""
    n = len(frame)

    def stack(cols: list[str], role: str) -> np.ndarray:
        if not cols:
            return np.zeros((n, 0))
        return np.column_stack([_numeric(frame, c, role, file_order, dates) for c in cols])

    organic = stack(config.organic_columns, "organic")
    neg = np.argwhere(organic < 0)
    if len(neg):
        r, c = neg[0]
        raise DataError(
            f"organic column {config.organic_columns[c]!r} has a negative value {organic[r, c]:g} at row "
            f"{file_order[r] + 2} (date {dates[r].date()}); organic media (sends, posts, visits) must be >= 0"
        )
    treatments = stack(config.treatment_columns, "treatment")
    try:
        if encoding is None:
            encoding = RoleEncoding.fit(
                dict(zip(config.treatment_columns, treatments.T, strict=True)),
                {c: frame[c].to_numpy() for c in config.event_columns},
                config.treatment_baseline,
            )
        missing = [c for c in config.treatment_columns if c not in encoding.baselines]
        missing += [c for c in config.event_columns if c not in encoding.events]
        if missing:
            raise RoleError(f"the model has no encoding of the role column(s) {missing}; refit the model")
        parts = [encode_events(c, frame[c].to_numpy(), *encoding.events[c]) for c in config.event_columns]
    except RoleError as exc:
        raise DataError(str(exc)) from None
    events = np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))
    return {"organic": organic, "treatments": treatments, "events": events, "encoding": encoding}


def _fill_rows(full: pd.DatetimeIndex, dates: pd.DatetimeIndex, values: np.ndarray, fill) -> np.ndarray:
    """``values`` on the rows of ``full`` (a superset of ``dates``); inserted rows get ``fill``."""
    out = np.empty((len(full), values.shape[1]))
    out[:] = fill
    out[full.get_indexer(dates)] = values
    return out


def _panel_encoding(frame: pd.DataFrame, config: DataConfig) -> RoleEncoding:
    """The role encoding of a whole panel's rows (baselines and event levels over every geo)."""
    treatments = {}
    for c in config.treatment_columns:
        values = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
        treatments[c] = values[np.isfinite(values)] if np.isfinite(values).any() else np.zeros(1)
    try:
        return RoleEncoding.fit(
            treatments, {c: frame[c].to_numpy() for c in config.event_columns}, config.treatment_baseline
        )
    except RoleError as exc:
        raise DataError(str(exc)) from None


def exposure_spend_columns(config: DataConfig) -> list[str]:
    """The spend columns of the channels whose curves act on an exposure column (empty in the short form)."""
    return [sp for sp, m in zip(config.spend_columns, config.media_columns, strict=True) if sp != m]


def _non_negative(
    values: np.ndarray, columns: list[str], config: DataConfig, file_order: np.ndarray, dates: pd.DatetimeIndex
) -> np.ndarray:
    """``values`` (date, channel) with negatives refused, or clipped to 0 with ``negative_spend: clip``."""
    neg = np.argwhere(values < 0)
    if len(neg) and config.negative_spend == "error":
        r, c = neg[0]
        what = "spend" if columns[c] in config.spend_columns else "exposure"
        raise DataError(
            f"channel {columns[c]!r} has negative {what} {values[r, c]:g} at row {file_order[r] + 2} "
            f"(date {dates[r].date()}); {what} must be >= 0: fix the row, or set data.negative_spend: clip "
            f"to treat negative {what} as 0"
        )
    if len(neg):
        cols = sorted({columns[c] for c in neg[:, 1]})
        what = "spend" if all(c in config.spend_columns for c in cols) else "exposure"
        warnings.warn(
            f"data.negative_spend: clip set {len(neg)} negative {what} value(s) to 0 in {', '.join(cols)}",
            UserWarning,
            stacklevel=3,
        )
        values = np.clip(values, 0.0, None)
    return values


def check_exposure(media: np.ndarray, spend: np.ndarray, config: DataConfig, dates: pd.DatetimeIndex) -> None:
    """Check each exposure channel's exposure against its spend (date, channel).

    Exposure without spend (earned or bonus impressions, a pre-paid flight) is fine. A channel
    that spends but never has exposure is an error (the wrong exposure column, most likely: its
    curves would see nothing); periods with spend but zero exposure warn (the spend there
    buys nothing in the model).
    """
    for c, name in enumerate(config.channel_names):
        if config.media_columns[c] == config.spend_columns[c]:
            continue
        paid, seen = spend[:, c] > 0, media[:, c] > 0
        rf = (config.channels or {}).get(name)
        column = f"exposure column {config.media_columns[c]!r}"
        if rf is not None and rf.is_rf:  # reach & frequency: its exposure is reach x frequency
            column = f"reach column {rf.reach!r}"
        if paid.any() and not seen.any():
            raise DataError(
                f"channel {name!r} has spend ({config.spend_columns[c]!r}) but its {column} is zero in every "
                "period; check the column, or drop it to model the channel on its spend"
            )
        blind = paid & ~seen
        if blind.any():
            first = dates[int(np.flatnonzero(blind)[0])].date()
            what = "reach" if rf is not None and rf.is_rf else "exposure"
            warnings.warn(
                f"channel {name!r} has spend but zero {what} in {int(blind.sum())} period(s) (first {first}); "
                f"that spend buys nothing in the model (check the {column})",
                UserWarning,
                stacklevel=3,
            )


def _fill_extra(
    old_dates: pd.DatetimeIndex, dates: pd.DatetimeIndex, spend: np.ndarray | None, rpk: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Spend and revenue per KPI on the filled grid ``dates``: zero spend and the revenue per KPI
    interpolated linearly in the inserted periods (as the target)."""
    pos = pd.DatetimeIndex(dates).get_indexer(old_dates)
    if spend is not None:
        full = np.zeros((len(dates), spend.shape[1]))
        full[pos] = spend
        spend = full
    if rpk is not None:
        rpk = np.interp(np.arange(len(dates)), pos, rpk)
    return spend, rpk


def panel_to_data(
    frame: pd.DataFrame,
    config: DataConfig,
    *,
    require_target: bool = True,
    min_rows: int = 1,
    encoding: RoleEncoding | None = None,
) -> MMMData:
    """Validate a long-format geo panel (one row per date and geo) and return :class:`MMMData`.

    Each geo is validated like national data (:func:`frame_to_data`, messages prefixed
    with the geo); then the panel must be rectangular: every geo has the same
    dates. Geos keep their order of first appearance. ``config.population_column``, if
    set, must hold one positive value per geo.
    """
    geo_col = config.geo_column
    available = [str(c) for c in frame.columns]
    for role, col in (("geo", geo_col), ("population", config.population_column)):
        if col is not None and col not in frame.columns:
            raise DataError(_missing_column_message([col], available, role))
    labels = frame[geo_col]
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise DataError(f"geo column {geo_col!r} is empty at row {row + 2}; give every row its geo")
    labels = labels.astype(str)
    geos = tuple(pd.unique(labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dates = pd.to_datetime(frame[config.date_column], errors="coerce")
    key = pd.DataFrame({"geo": labels.to_numpy(), "date": dates.to_numpy()})
    dupes = key.duplicated(keep=False).to_numpy() & dates.notna().to_numpy()
    if dupes.any():
        first = int(np.flatnonzero(dupes)[0])
        same = np.flatnonzero((key == key.iloc[first]).all(axis=1).to_numpy())
        raise DataError(
            f"geo {key['geo'].iloc[first]!r} has date {key['date'].iloc[first].date()} more than once "
            f"(rows {', '.join(str(int(r) + 2) for r in same)}); keep one row per date and geo "
            "(sum or drop the duplicates)"
        )
    national = config.model_copy(update={"geo_column": None, "population_column": None})
    roles = [*config.organic_columns, *config.treatment_columns, *config.event_columns]
    missing_roles = [c for c in roles if c not in frame.columns]
    if missing_roles:
        raise DataError(_missing_column_message(missing_roles, available, "role"))
    if encoding is None and (config.treatment_columns or config.event_columns):
        encoding = _panel_encoding(frame, config)  # over every geo: one baseline and one set of levels
    parts: list[MMMData] = []
    population = []
    for geo in geos:
        rows = np.flatnonzero((labels == geo).to_numpy())
        sub = frame.iloc[rows].reset_index(drop=True)
        try:
            part = frame_to_data(
                sub, national, require_target=require_target, min_rows=min_rows, file_rows=rows, encoding=encoding
            )
        except DataError as exc:
            raise DataError(f"geo {geo!r}: {exc}") from None
        if parts and not part.dates.equals(parts[0].dates):
            ref = parts[0].dates
            missing, extra = ref.difference(part.dates), part.dates.difference(ref)
            what = (
                f"lacks {len(missing)} date(s) of geo {geos[0]!r} (first {missing[0].date()})"
                if len(missing)
                else f"has {len(extra)} date(s) geo {geos[0]!r} lacks (first {extra[0].date()})"
            )
            raise DataError(
                f"the geo panel is not rectangular: geo {geo!r} {what}; every geo needs the same dates "
                "(add the missing rows, or drop the geo)"
            )
        parts.append(part)
        if config.population_column is not None:
            values = pd.to_numeric(sub[config.population_column], errors="coerce").unique()
            if len(values) != 1 or not np.isfinite(values[0]) or values[0] <= 0:
                shown = ", ".join(map(str, sub[config.population_column].unique()[:3]))
                raise DataError(
                    f"population column {config.population_column!r} must hold one positive number per geo; "
                    f"geo {geo!r} has {shown}; fix the column or unset data.population_column"
                )
            population.append(float(values[0]))
    return MMMData.from_panel(
        dates=parts[0].dates,
        geos=geos,
        target=np.stack([p.target for p in parts], axis=1) if require_target else None,
        media=np.stack([p.media for p in parts], axis=1),
        controls=np.stack([p.controls for p in parts], axis=1),
        channels=tuple(config.channel_names),
        control_names=tuple(config.control_columns),
        population=np.asarray(population) if population else None,
        frequency=parts[0].frequency,
        spend=np.stack([p.spend for p in parts], axis=1) if parts[0].spend is not None else None,
        revenue_per_kpi=(
            np.stack([p.revenue_per_kpi for p in parts], axis=1) if parts[0].revenue_per_kpi is not None else None
        ),
        organic=np.stack([p.organic for p in parts], axis=1),
        organic_names=tuple(config.organic_columns),
        treatments=np.stack([p.treatments for p in parts], axis=1),
        treatment_names=tuple(config.treatment_columns),
        events=np.stack([p.events for p in parts], axis=1),
        event_names=parts[0].event_names,
        encoding=parts[0].encoding,
        rf_frequency=np.stack([p.rf_frequency for p in parts], axis=1) if parts[0].rf_frequency is not None else None,
    )


def _check_grid(dates: pd.DatetimeIndex, config: DataConfig) -> tuple[str, pd.DatetimeIndex]:
    """The data's frequency and the dates missing from its grid (:func:`~bayesmmm.data.frequency.check_grid`);
    raises unless the dates are regular, or missing periods are allowed (``missing_weeks: fill_zero``)."""
    try:
        frequency, missing = check_grid(dates, config.frequency)
    except FrequencyError as exc:
        raise DataError(str(exc)) from None
    if len(missing) and config.missing_weeks == "error":
        pos = np.searchsorted(dates.values, missing[0].to_datetime64())
        before, after = dates[pos - 1], dates[pos]
        name = period_name(frequency)
        raise DataError(
            f"dates must be consecutive {name}s: a gap of {(after - before).days} days between {before.date()} and "
            f"{after.date()} ({len(missing)} missing {name}(s) in all); add the missing rows, or set "
            f"data.missing_weeks: fill_zero to insert them with zero spend"
        )
    return frequency, missing


def _fill_periods(
    dates: pd.DatetimeIndex,
    frequency: str,
    media: np.ndarray,
    controls: np.ndarray,
    target: np.ndarray | None,
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray | None]:
    """Insert the missing periods: zero spend, zero controls, target interpolated linearly."""
    full = full_grid(dates[0], dates[-1], frequency)
    pos = full.get_indexer(dates)
    n_new = len(full) - len(dates)
    new_media = np.zeros((len(full), media.shape[1]))
    new_media[pos] = media
    new_controls = np.zeros((len(full), controls.shape[1]))
    new_controls[pos] = controls
    new_target = None
    if target is not None:
        new_target = np.interp(np.arange(len(full)), pos, target)
    shown = ", ".join(str(d.date()) for d in full.difference(dates)[:5]) + (", ..." if n_new > 5 else "")
    name = period_name(frequency)
    warnings.warn(
        f"data.missing_weeks: fill_zero inserted {n_new} missing {name}(s) with zero spend ({shown})"
        + (f"; their target is interpolated from the {name}s around them" if target is not None else ""),
        UserWarning,
        stacklevel=3,
    )
    return full, new_media, new_controls, new_target
