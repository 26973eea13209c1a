"""What a request and an answer of the service look like, and how a body is parsed.

- request models: :class:`OptimizeRequest`, and per model :func:`request_models` (one spend
  row and the body of ``POST /predict``, named after the model's columns, with every value's
  range; :func:`input_caps`);
- answer models: :class:`PredictResponse`, :class:`Health`, :class:`ErrorBody` (every 4xx/5xx,
  :data:`ERROR_RESPONSES`), and :func:`jsonable` / :func:`records` (plain JSON, NaN as null);
- :class:`StrictJSONRoute`: a JSON body with a duplicate key or ``NaN``/``Infinity`` is
  refused (:func:`strict_json`).
"""

# no ``from __future__ import annotations``: pydantic and FastAPI read these annotations at run time
import datetime as dt
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from bayesmmm.data.frequency import next_dates

if TYPE_CHECKING:
    from bayesmmm.model.mmm import MMM

__all__ = [
    "ERROR_RESPONSES",
    "MAX_ROWS",
    "RANGE_FACTOR",
    "DuplicateKeyError",
    "ErrorBody",
    "Health",
    "OptimizeRequest",
    "PredictResponse",
    "StrictJSONRoute",
    "example_row",
    "input_caps",
    "jsonable",
    "media_keys",
    "records",
    "request_models",
    "rf_keys",
    "row_keys",
    "row_media",
    "strict_json",
]

MAX_ROWS = 520  # ten years of weeks, seventeen months of days
# spend, budgets and controls beyond this many times the largest value per period of the training data are
# refused (422): far outside anything the model saw, and near 1e308 the arithmetic overflows to null
RANGE_FACTOR = 1e6


def _iso_date_string(value: Any) -> Any:
    # pydantic's lax date would also take numbers (Unix time); a period is named by its ISO date
    if not isinstance(value, str | dt.date):
        raise ValueError(f"must be an ISO date string like 2024-01-01, not {type(value).__name__}")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date_string)]
Probability = Annotated[float, Field(gt=0, lt=1, strict=True, description="interval probability, in (0, 1)")]
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class ErrorBody(BaseModel):
    """Body of every 4xx/5xx answer."""

    message: str = Field(description="what is wrong and how to fix it, naming the field")
    detail: Any = Field(None, description="the message, or FastAPI-style [{loc, msg, type}] per invalid field")


class PredictResponse(BaseModel):
    """Answer of ``POST /predict``: one value per requested period (null where not finite)."""

    model_version: str
    hdi_prob: float
    dates: list[str]
    sales_pred_mean: list[float | None]
    sales_pred_hdi_low: list[float | None]
    sales_pred_hdi_high: list[float | None]
    contributions: dict[str, list[float | None]] | None = Field(
        None, description="posterior-mean contribution of each channel (with contributions: true)"
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed request (a bad Content-Length, a Host this server is not)"},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token (when the server requires one)"},
    404: {"model": ErrorBody, "description": "Not available on this server (no registry, dashboard off)"},
    413: {"model": ErrorBody, "description": "Request body over the size limit"},
    422: {"model": ErrorBody, "description": "Invalid request: the message names the field and the fix"},
    429: {"model": ErrorBody, "description": "Busy: the model's work queue is full; retry after Retry-After seconds"},
    500: {"model": ErrorBody, "description": "Internal error (logged with the request id)"},
    504: {"model": ErrorBody, "description": "The model work took longer than the server's per-request timeout"},
}


class Health(BaseModel):
    """Answer of ``GET /health``."""

    status: Literal["ok"]
    model_version: str


class OptimizeRequest(BaseModel):
    """Body of ``POST /optimize``: the options of :func:`bayesmmm.decisions.optimizer.optimize_budget`.

    Strict types: ``"5"`` is not a number, ``"yes"`` not a boolean.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    budget: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="total spend over the horizon, all channels"
    )
    weeks: int = Field(
        ge=1,
        le=MAX_ROWS,
        strict=True,
        validation_alias=AliasChoices("weeks", "periods"),
        description="horizon in periods of the model's data (days, weeks or months; spend paced flat); "
        "'periods' is accepted as the same field",
    )
    max_change: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="each channel may move ± this fraction of its current spend"
    )
    bounds: dict[str, tuple[FiniteFloat, FiniteFloat]] | None = Field(
        None, description="absolute {channel: [low, high]} totals over the horizon"
    )
    fixed: list[str] = Field(default_factory=list, description="channels held at their current spend")
    objective: Literal["mean", "cvar", "mean_sd"] = "mean"
    risk: float | None = Field(None, gt=0, allow_inf_nan=False, description="CVaR tail fraction or mean_sd weight")
    target_response: float | None = Field(None, gt=0, allow_inf_nan=False)
    target_roas: float | None = Field(None, gt=0, allow_inf_nan=False)
    hdi_prob: Probability = 0.9
    max_draws: int = Field(1000, ge=10, le=4000, strict=True, description="posterior draws used")
    seed: int = Field(0, ge=0, strict=True)


def request_models(mmm: "MMM") -> tuple[type[BaseModel], type[BaseModel]]:
    """Pydantic models of one spend row and of ``POST /predict``'s body, named after the model's columns."""
    fields: dict[str, Any] = {
        "date": (IsoDate, Field(description="the period's date (as in the training data), ISO date (YYYY-MM-DD)")),
    }
    spend_cap, control_cap = input_caps(mmm)
    spend_columns = set(mmm.data_config.spend_columns)
    rf = rf_keys(mmm)
    for i, (ch, key) in enumerate(zip(mmm.channels, media_keys(mmm), strict=True)):
        if ch in rf:  # reach & frequency: two fields, reach (people, >= 0) and frequency (>= 1)
            reach, frequency = rf[ch]
            fields[f"channel_{i}"] = (
                float,
                Field(alias=reach, ge=0, strict=True, allow_inf_nan=False, description=f"reach of {ch} (people)"),
            )
            fields[f"channel_{i}_frequency"] = (
                float,
                Field(
                    alias=frequency, ge=1, strict=True, allow_inf_nan=False,
                    description=f"frequency of {ch}: exposures per person reached (>= 1; 1 where reach is 0)",
                ),
            )  # fmt: skip
            continue
        what = f"spend on {ch}" if key in spend_columns else f"exposure of {ch} (column {key})"
        fields[f"channel_{i}"] = (
            float,
            Field(
                alias=key, ge=0, le=spend_cap, strict=True, allow_inf_nan=False,
                description=f"{what} in that period (>= 0, at most {RANGE_FACTOR:g} × the largest value "
                "per period of the training data)",
            ),
        )  # fmt: skip
    for i, ctl in enumerate(mmm.controls):
        fields[f"control_{i}"] = (
            float,
            Field(
                alias=ctl, ge=-control_cap, le=control_cap, strict=True, allow_inf_nan=False,
                description=f"control {ctl} in that period",
            ),
        )  # fmt: skip
    dc = mmm.data_config
    for i, col in enumerate(dc.organic_columns):
        fields[f"organic_{i}"] = (
            float, Field(alias=col, ge=0, strict=True, allow_inf_nan=False, description=f"organic {col} that week"),
        )  # fmt: skip
    for i, col in enumerate(dc.treatment_columns):
        fields[f"treatment_{i}"] = (
            float, Field(alias=col, strict=True, allow_inf_nan=False, description=f"treatment {col} that week"),
        )  # fmt: skip
    for i, col in enumerate(dc.event_columns):
        ref, levels = mmm.data.encoding.events[col]
        fields[f"event_{i}"] = (
            str,
            Field(alias=col, description=f"event {col} that week: one of {', '.join([ref, *levels])} ({ref}: none)"),
        )
    config = ConfigDict(extra="forbid", populate_by_name=False)
    row = create_model("SpendRow", __config__=config, **fields)
    example = example_row(mmm)
    body = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [{"new_media_spend": [example]}]}),
        new_media_spend=(
            list[row],
            Field(
                min_length=1,
                max_length=MAX_ROWS,
                description="future periods of the model's frequency, in date order, one row per period",
            ),
        ),
        hdi_prob=(Probability, 0.9),
        contributions=(
            bool,
            Field(False, strict=True, description="add each channel's contribution (posterior mean); true or false"),
        ),
        seed=(int, Field(0, ge=0, strict=True, description="seed of the observation-noise draws")),
        set=(
            dict[str, float | str],
            Field(
                default_factory=dict,
                description="what-if: {column: value} set in every row (a treatment, event, control or organic "
                'column), e.g. {"price_index": 1.05}',
            ),
        ),
    )
    return row, body


def media_keys(mmm: "MMM") -> list[str]:
    """The key of each channel in a ``/predict`` row: the column its curves act on (the channel's
    exposure column, or its spend column; the channel's name in the short form ``channel_columns``)."""
    return list(mmm.data_config.media_columns)


def rf_keys(mmm: "MMM") -> dict[str, tuple[str, str]]:
    """The reach and frequency keys of each reach & frequency channel in a ``/predict`` row."""
    return {n: (c.reach, c.frequency) for n, c in (mmm.data_config.channels or {}).items() if c.is_rf}


def row_keys(mmm: "MMM") -> list[str]:
    """The paid-media keys of a ``/predict`` row: :func:`media_keys`, with a reach & frequency channel's
    reach and frequency in place of its impressions."""
    rf = rf_keys(mmm)
    return [k for ch, key in zip(mmm.channels, media_keys(mmm), strict=True) for k in rf.get(ch, (key,))]


def row_media(mmm: "MMM", rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """``(media, frequency)`` of validated rows, each ``(row, channel)``: what the curves act on (a reach &
    frequency channel's impressions, reach × frequency) and the channels' frequency (1 for others)."""
    rf = rf_keys(mmm)
    media = np.zeros((len(rows), len(mmm.channels)))
    frequency = np.ones_like(media)
    for c, (ch, key) in enumerate(zip(mmm.channels, media_keys(mmm), strict=True)):
        if ch in rf:
            reach = np.array([r[rf[ch][0]] for r in rows], dtype=float)
            freq = np.array([r[rf[ch][1]] for r in rows], dtype=float)
            frequency[:, c] = np.where(reach > 0, freq, 1.0)
            media[:, c] = reach * frequency[:, c]
        else:
            media[:, c] = [r[key] for r in rows]
    return media, frequency


def input_caps(mmm: "MMM") -> tuple[float, float]:
    """Largest spend and largest absolute control value a request may send (:data:`RANGE_FACTOR`)."""
    media = np.asarray(mmm.data.media, dtype=float)
    controls = np.asarray(mmm.data.controls, dtype=float)
    spend = float(np.nanmax(media)) if media.size else 0.0
    control = float(np.nanmax(np.abs(controls))) if controls.size else 0.0
    return RANGE_FACTOR * max(spend, 1.0), RANGE_FACTOR * max(control, 1.0)


def example_row(mmm: "MMM") -> dict[str, Any]:
    """The period after the training data, with the last training period's spend and controls."""
    data = mmm.data
    row: dict[str, Any] = {"date": str(next_dates(data.dates[-1], data.frequency, 1)[0].date())}
    row.update({key: round(float(v), 2) for key, v in zip(media_keys(mmm), data.media[-1], strict=True)})
    for ch, (reach, frequency) in rf_keys(mmm).items():
        index = mmm.channels.index(ch)
        f = float(data.rf_frequency[-1, index])
        row.pop(media_keys(mmm)[index], None)
        row.update({reach: round(float(data.media[-1, index]) / f, 2), frequency: round(f, 3)})
    row.update({c: float(v) for c, v in zip(mmm.controls, data.controls[-1], strict=True)})
    row.update({c: float(v) for c, v in zip(data.organic_names, data.organic[-1], strict=True)})
    row.update({c: float(v) for c, v in zip(data.treatment_names, data.treatments[-1], strict=True)})
    row.update({c: ref for c, (ref, _levels) in data.encoding.events.items()})
    return row


def jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN and infinities become null."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, pd.Timestamp | dt.date):
        return obj.isoformat()
    return obj


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as plain JSON objects (:func:`jsonable`)."""
    return jsonable(frame.to_dict(orient="records"))


# ------------------------------------------------------------------ strict JSON
class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r} in a JSON object: send each field once")
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON: send numbers only")


def strict_json(body: bytes | str) -> Any:
    """``json.loads`` that refuses duplicate keys (:class:`DuplicateKeyError`) and NaN/Infinity."""
    return json.loads(body, object_pairs_hook=_pairs, parse_constant=_constant)


class StrictJSONRoute(APIRoute):
    """A route whose JSON body may not repeat a key or hold NaN/Infinity (plain ``json`` takes the last
    value of a repeated key silently)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Any:
            if request.method in ("POST", "PUT", "PATCH"):
                body = await request.body()  # cached: FastAPI reads the same bytes next
                if body:
                    try:
                        strict_json(body)
                    except DuplicateKeyError as exc:
                        raise RequestValidationError(
                            [{"type": "duplicate_key", "loc": ("body",), "msg": str(exc), "input": None}]
                        ) from None
                    except ValueError as exc:
                        if "is not JSON" in str(exc):
                            raise RequestValidationError(
                                [
                                    {
                                        "type": "json_invalid",
                                        "loc": ("body",),
                                        "msg": str(exc),
                                        "ctx": {"error": str(exc)},
                                    }
                                ]
                            ) from None
                        # other malformed JSON: FastAPI's own message
            return await handler(request)

        return strict_handler
