"""Reach & frequency channels: their data, pure NumPy (``data.channels.<name>: {spend, reach, frequency}``).

A reach & frequency (R&F) channel is bought as people reached (``reach``) and exposures per person
reached (``frequency``, >= 1 wherever reach > 0). Its **impressions** ``reach × frequency`` are its
exposure: the spend side (cost per impression, the budget, lift tests in spend) treats an R&F
channel like any exposure channel (:mod:`bayesmmm.data.exposure`), with the cost per unit read as
the cost per impression. The curves see reach and frequency apart (Meridian's form, see
``docs/reach_frequency.md``): ``contribution = beta · adstock(reach · hill(frequency))``.

In the model's arrays (:class:`~bayesmmm.data.loading.MMMData`) an R&F channel's ``media`` column
holds its impressions and ``rf_frequency`` its frequency; reach is ``impressions / frequency``.
Periods without reach have frequency 1 (and impressions 0). Channels without reach & frequency
have frequency 1 everywhere (unused).

The functions here return error messages rather than raising, so that the loader
(:mod:`bayesmmm.data.loading`) raises its ``DataError`` without an import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesmmm.data.exposure import recent_mask

if TYPE_CHECKING:
    from bayesmmm.config.experiment import DataConfig

__all__ = [
    "add_impressions",
    "frequency_columns",
    "hill",
    "national_frequency",
    "optimal_frequency_hill",
    "recent_frequency",
]


def hill(frequency: np.ndarray, slope: np.ndarray, ec: np.ndarray) -> np.ndarray:
    """Meridian's Hill curve of frequency, ``f^s / (f^s + ec^s)`` (NumPy, broadcasting)."""
    f = np.asarray(frequency, dtype=float)
    return f**slope / (f**slope + np.asarray(ec, dtype=float) ** slope)


def optimal_frequency_hill(slope: float | np.ndarray, ec: float | np.ndarray, lower: float = 1.0) -> np.ndarray:
    """The frequency maximising ``hill(f) / f`` (the response per impression), closed form.

    With impressions held fixed, reach is ``impressions / f`` and the contribution is proportional
    to ``hill(f) / f``; for ``slope > 1`` its maximum is at ``ec · (slope − 1)^(1/slope)``; for
    ``slope <= 1`` it decreases, so the smallest allowed frequency (``lower``) is best. The result
    is never below ``lower``.
    """
    s, k = np.asarray(slope, dtype=float), np.asarray(ec, dtype=float)
    inner = np.where(s > 1, k * np.maximum(s - 1, 1e-300) ** (1 / s), lower)
    return np.maximum(inner, lower)


def _shown(value: object) -> str:
    """A cell as a message shows it: ``empty`` for a missing value, else its text."""
    return "empty" if pd.isna(value) else repr(value.item() if isinstance(value, np.generic) else value)


def frequency_columns(config: DataConfig) -> list[str | None]:
    """Each channel's frequency column (None for channels without reach & frequency)."""
    if config.channels is None:
        return [None] * len(config.channel_names)
    return [c.frequency for c in config.channels.values()]


def add_impressions(
    frame: pd.DataFrame, config: DataConfig, file_rows: Sequence[int]
) -> tuple[pd.DataFrame, str | None]:
    """``frame`` with each R&F channel's impressions column (``reach × frequency``, named by
    :attr:`~bayesmmm.config.experiment.ChannelColumns.impressions_column`) added, and an error
    message (None when the columns are valid).

    Checks: the reach and frequency columns are present and numeric, reach >= 0, frequency >= 1
    wherever reach > 0 (a person reached saw the ad at least once). Where reach is 0 the frequency
    may be anything, empty included (it is set to 1). ``file_rows[i]`` is the 0-based data row
    of frame row ``i`` (messages count CSV lines, header = 1).
    """
    if config.channels is None or not config.rf_channels:
        return frame, None
    frame = frame.copy()
    rows = np.asarray(file_rows)
    for name, channel in config.channels.items():
        if not channel.is_rf:
            continue
        missing = [c for c in (channel.reach, channel.frequency) if c not in frame.columns]
        if missing:
            return frame, (
                f"reach & frequency channel {name!r}: column(s) {missing} not in the data; add them, or fix "
                f"data.channels.{name}.reach / frequency"
            )
        reach = pd.to_numeric(frame[channel.reach], errors="coerce").to_numpy(dtype=float)
        freq = pd.to_numeric(frame[channel.frequency], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(reach)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            return frame, (
                f"reach column {channel.reach!r} of channel {name!r} has a missing or non-numeric value "
                f"{_shown(frame[channel.reach].iloc[r])} at row {rows[r] + 2}; give the people reached (0 if none)"
            )
        if (reach < 0).any():
            r = int(np.flatnonzero(reach < 0)[0])
            return frame, (
                f"reach column {channel.reach!r} of channel {name!r} is negative ({reach[r]:g}) at row "
                f"{rows[r] + 2}; reach counts people and must be >= 0: fix the row"
            )
        reached = reach > 0
        low = reached & ~(np.isfinite(freq) & (freq >= 1.0))
        if low.any():
            r = int(np.flatnonzero(low)[0])
            value = _shown(frame[channel.frequency].iloc[r])
            where = f"at row {rows[r] + 2}, where reach is {reach[r]:g}"
            return frame, (
                f"frequency column {channel.frequency!r} of channel {name!r} is {value} {where}; frequency is "
                "exposures per person reached and must be >= 1 wherever reach > 0 (check that the column is "
                "frequency, not impressions or a share)"
            )
        freq = np.where(reached, freq, 1.0)
        frame[channel.frequency] = freq
        frame[channel.impressions_column] = np.where(reached, reach * freq, 0.0)
    return frame, None


def national_frequency(impressions: np.ndarray, frequency: np.ndarray) -> np.ndarray:
    """A panel's national frequency (date, channel) from per-geo ``(date, geo, channel)`` arrays:
    total impressions ÷ total reach (geos reach different people); 1 where nobody is reached."""
    imp = np.asarray(impressions, dtype=float)
    reach = imp / np.asarray(frequency, dtype=float)
    total_reach = reach.sum(axis=1)
    return np.divide(imp.sum(axis=1), total_reach, out=np.ones(total_reach.shape), where=total_reach > 0)


def recent_frequency(impressions: np.ndarray, frequency: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    """Each channel's recent average frequency, (channel,): impressions ÷ reach summed over the recent
    window (:func:`~bayesmmm.data.exposure.recent_mask`), else over the whole history; 1 where the
    channel never reaches anyone. National arrays ``(date, channel)`` or a panel's ``(date, geo,
    channel)`` (summed over geos)."""
    imp = np.asarray(impressions, dtype=float)
    reach = imp / np.asarray(frequency, dtype=float)
    if imp.ndim == 3:
        imp, reach = imp.sum(axis=1), reach.sum(axis=1)
    out = np.ones(imp.shape[-1])
    for mask in (np.ones(len(imp), dtype=bool), recent_mask(dates)):
        r, i = reach[mask].sum(axis=0), imp[mask].sum(axis=0)
        out = np.where(r > 0, np.divide(i, r, out=np.ones_like(r), where=r > 0), out)
    return np.maximum(out, 1.0)
