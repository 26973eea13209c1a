"""Data roles beyond paid media and controls: organic media, treatments and categorical events.

- **Organic media** (``data.organic_columns``): numeric, >= 0, no spend. They enter the model
  with adstock and saturation of their own (their own dim ``organic``); they are never part of
  ``channel``, so ROAS, mROAS, the optimizer, lift tests and the media priors never see them.
- **Treatments** (``data.treatment_columns``): numeric non-media levers (a price index, a
  promotion's depth, distribution). A treatment's contribution is measured against its
  baseline ``b`` (``data.treatment_baseline``: ``min``, ``mean`` or a number, per column or for
  all): ``contribution_t = gamma · (x_t − b) / s`` (scaled; ``s = max_t |x_t − b|`` over the
  training rows), i.e. what the treatment did relative to being at its baseline all along.
- **Events** (``data.event_columns``): categorical (text) columns. Each level other than the
  reference gets one 0/1 indicator and one effect, named ``column[level]``; the reference is the
  most frequent level in the training rows (ties: the first in sorted order). An empty or
  missing value is the level ``"na"`` (Robyn's spelling of "no event"), so "no event" is
  usually the reference. A level not seen in training is refused in a forecast.

What a model learns from its training rows (the baselines and the event levels) is a
:class:`RoleEncoding`, stored with the model and applied unchanged to every later frame.
This module is pure: arrays in, arrays out; it raises :class:`RoleError` (a ``ValueError``),
which :mod:`bayesmmm.data.loading` reports as a ``DataError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MISSING_LEVEL",
    "RoleEncoding",
    "RoleError",
    "encode_events",
    "event_levels",
    "event_name",
    "event_values",
    "parse_settings",
    "set_columns",
    "treatment_baseline_value",
    "what_if_columns",
]

#: the level of an empty or missing event value
MISSING_LEVEL = "na"


class RoleError(ValueError):
    """A role column cannot be used; the message names the column and the fix."""


def event_name(column: str, level: str) -> str:
    """The name of one event level's indicator and effect: ``column[level]``."""
    return f"{column}[{level}]"


def event_values(values: Sequence[Any] | pd.Series) -> np.ndarray:
    """An event column as text levels: missing or empty values (after stripping) become :data:`MISSING_LEVEL`."""
    series = pd.Series(values, dtype=object)
    text = series.map(lambda v: MISSING_LEVEL if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    text = text.str.strip().replace("", MISSING_LEVEL)
    return text.to_numpy(dtype=object)


def event_levels(column: str, values: Sequence[Any] | pd.Series) -> tuple[str, tuple[str, ...]]:
    """``(reference, other levels)`` of an event column's training values.

    The reference is the most frequent level (ties: the first in sorted order); the other levels
    are sorted. A column with a single level is refused: it cannot be told apart from the intercept.
    """
    levels = event_values(values)
    counts = pd.Series(levels).value_counts()
    if len(counts) < 2:
        only = counts.index[0] if len(counts) else MISSING_LEVEL
        raise RoleError(
            f"event column {column!r} has one level only ({only!r} in every row): it cannot be told apart from "
            "the intercept; drop it from event_columns"
        )
    top = counts.max()
    reference = sorted(str(k) for k, v in counts.items() if v == top)[0]
    others = tuple(sorted(str(k) for k in counts.index if str(k) != reference))
    return reference, others


def encode_events(column: str, values: Sequence[Any] | pd.Series, reference: str, levels: Sequence[str]) -> np.ndarray:
    """0/1 indicators ``(row, level)`` of ``values`` for each non-reference level (the reference: all zero).

    Raises :class:`RoleError` for a level neither the reference nor one of ``levels`` (not seen in
    training: the model has no effect for it).
    """
    text = event_values(values)
    known = {reference, *levels}
    unknown = sorted({str(v) for v in text} - known)
    if unknown:
        raise RoleError(
            f"event column {column!r} has level(s) {unknown} the model was not trained on; known levels: "
            f"{', '.join(sorted(known))} (reference {reference!r}); use a known level, or refit with data that "
            "contain it"
        )
    return np.column_stack([text == level for level in levels]).astype(float) if levels else np.zeros((len(text), 0))


def treatment_baseline_value(column: str, values: np.ndarray, rule: str | float) -> float:
    """The baseline of one treatment: the minimum or mean of its training ``values``, or the stated number."""
    values = np.asarray(values, dtype=float)
    if rule == "min":
        return float(np.min(values))
    if rule == "mean":
        return float(np.mean(values))
    try:
        value = float(rule)
    except (TypeError, ValueError):
        raise RoleError(f"treatment_baseline of {column!r} is {rule!r}; use min, mean or a number") from None
    if not np.isfinite(value):
        raise RoleError(f"treatment_baseline of {column!r} must be finite, got {rule!r}")
    return value


@dataclass(frozen=True)
class RoleEncoding:
    """What the training rows fix about the role columns, applied unchanged to later frames.

    Attributes
    ----------
    baselines : treatment column → its baseline value (original units).
    events : event column → ``(reference level, other levels)``.
    """

    baselines: Mapping[str, float] = field(default_factory=dict)
    events: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        treatments: Mapping[str, np.ndarray],
        events: Mapping[str, Sequence[Any]],
        baseline: str | float | Mapping[str, str | float],
    ) -> RoleEncoding:
        """The encoding of training values: each treatment's baseline by ``baseline`` (one rule, or one per
        column with ``min`` for unnamed columns) and each event column's levels (:func:`event_levels`)."""
        rules = baseline if isinstance(baseline, Mapping) else dict.fromkeys(treatments, baseline)
        return cls(
            baselines={c: treatment_baseline_value(c, v, rules.get(c, "min")) for c, v in treatments.items()},
            events={c: event_levels(c, v) for c, v in events.items()},
        )

    @property
    def event_names(self) -> tuple[str, ...]:
        """Every event effect's name, ``column[level]``, columns in order."""
        return tuple(event_name(c, lvl) for c, (_ref, levels) in self.events.items() for lvl in levels)

    def to_json(self) -> str:
        return json.dumps(
            {"baselines": dict(self.baselines), "events": {c: [r, list(lv)] for c, (r, lv) in self.events.items()}}
        )

    @classmethod
    def from_json(cls, text: str | None) -> RoleEncoding:
        """Read :meth:`to_json` (empty for ``None``: a model saved before roles existed)."""
        if not text:
            return cls()
        raw = json.loads(text)
        return cls(
            baselines={str(k): float(v) for k, v in raw.get("baselines", {}).items()},
            events={str(c): (str(r), tuple(str(x) for x in lv)) for c, (r, lv) in raw.get("events", {}).items()},
        )


def what_if_columns(config: Any) -> tuple[str, ...]:
    """The columns a what-if may set in every future row (``--set COL=VALUE``, the service's ``set``):
    treatments, events, controls and organic media of the data config ``config``."""
    return (*config.treatment_columns, *config.event_columns, *config.control_columns, *config.organic_columns)


def parse_settings(items: Sequence[str]) -> dict[str, str]:
    """``["COL=VALUE", ...]`` (the ``--set`` option) as ``{COL: VALUE}`` (text; see :func:`set_columns`)."""
    out: dict[str, str] = {}
    for item in items:
        col, sep, value = item.partition("=")
        if not sep or not col.strip() or not value.strip():
            raise RoleError(f"--set {item!r}: write COLUMN=VALUE, e.g. --set price_index=1.05")
        out[col.strip()] = value.strip()
    return out


def set_columns(frame: pd.DataFrame, settings: Mapping[str, Any], config: Any) -> pd.DataFrame:
    """A copy of ``frame`` with each column of ``settings`` set to its value in every row: a what-if.

    ``settings`` maps a column of :func:`what_if_columns` (a treatment such as ``price_index``, an event
    column, a control or an organic medium) to one value: a number, or for an event column a level
    name. Values given as text (from the command line) are read as numbers except for event columns.
    """
    allowed = what_if_columns(config)
    out = frame.copy()
    for col, value in settings.items():
        if col not in allowed:
            raise RoleError(
                f"cannot set {col!r}: a what-if sets a treatment, event, control or organic column of the model "
                f"({', '.join(allowed) or 'it has none'}); change channel spend in the rows themselves"
            )
        if col in config.event_columns:
            out[col] = str(value)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise RoleError(f"cannot set {col!r} to {value!r}: it is a numeric column; give a number") from None
        if not np.isfinite(number):
            raise RoleError(f"cannot set {col!r} to {value!r}: give a finite number")
        out[col] = number
    return out
