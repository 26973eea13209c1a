"""Every error answer of the service: one JSON shape (:class:`~bayesmmm.serving.schemas.ErrorBody`), a message
that names the field and the fix.

:func:`add_error_handlers` installs the handlers: invalid requests (422, each of pydantic's
errors as one sentence), HTTP errors, input the model cannot use (422: a
:class:`~bayesmmm.serving.service.ServiceInputError`, a bad plan, bad data), a full work
pool (429 with ``Retry-After``) and a timeout (504).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bayesmmm.serving.pools import Overloaded, RequestTimeout
from bayesmmm.serving.schemas import MAX_ROWS, RANGE_FACTOR, jsonable, row_keys
from bayesmmm.serving.service import ServiceInputError

if TYPE_CHECKING:
    from bayesmmm.serving.service import ModelService

__all__ = ["add_error_handlers"]


def _loc(loc: tuple | list) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _describe(err: dict[str, Any], service: ModelService) -> str:
    """One pydantic error of a request as a sentence: where, what, and how to fix it for this model."""
    where = _loc(err.get("loc", ()))
    kind = err.get("type", "")
    msg = err.get("msg", "invalid")
    keys = row_keys(service.mmm)  # the columns the curves act on: exposure, or spend (reach and frequency)
    columns = ["date", *keys, *service.mmm.controls]
    if where == "body" and kind in ("missing", "json_invalid", "model_attributes_type", "dict_type"):
        if kind == "missing":
            return 'the request body is empty: send a JSON object like {"new_media_spend": [{...}], "hdi_prob": 0.9}'
        if kind == "json_invalid":
            return f"the request body is not valid JSON ({err.get('ctx', {}).get('error', msg)})"
        return "the request body must be a JSON object"
    if kind == "json_invalid":
        return f"the request body is not valid JSON ({err.get('ctx', {}).get('error', msg)})"
    hint = ""
    if kind == "missing" and where.startswith("new_media_spend["):
        hint = f"; every row needs {', '.join(columns)}"
    elif kind == "extra_forbidden" and where.startswith("new_media_spend["):
        hint = f"; this model's columns are {', '.join(columns)}"
    elif kind == "extra_forbidden":
        hint = "; remove it (see /docs for the fields)"
    elif kind in ("greater_than_equal", "greater_than") and where.startswith("new_media_spend["):
        hint = " (spend and exposure cannot be negative)" if where.split(".")[-1] in keys else ""
        if hint == "":
            hint = f" (more than {RANGE_FACTOR:g} × the largest absolute value in the training data)"
    elif kind in ("less_than_equal", "less_than") and where.startswith("new_media_spend["):
        hint = f" (more than {RANGE_FACTOR:g} × the largest value in the training data: outside the model's range)"
    elif kind.startswith("date"):
        hint = " (use ISO dates like 2024-01-01)"
    elif kind in ("too_short", "too_long") and where == "new_media_spend":
        hint = f" (send 1 to {MAX_ROWS} rows)"
    elif where == "hdi_prob":
        hint = " (hdi_prob must be a number strictly between 0 and 1, e.g. 0.9)"
    got = ""
    if "input" in err and kind not in ("missing",) and not isinstance(err["input"], dict | list):
        got = f", got {json.dumps(err['input'], default=str)}"
    return f"{where}: {msg}{got}{hint}"


def _input_error_types() -> tuple[type[Exception], ...]:
    """Errors that mean 'this request cannot be served' (422 with their message); any other error is a 500."""
    from bayesmmm.config.experiment import ConfigError
    from bayesmmm.data.loading import DataError
    from bayesmmm.decisions.optimizer import OptimizationError
    from bayesmmm.serving.model_registry import RegistryError

    return (ServiceInputError, OptimizationError, DataError, RegistryError, ConfigError)


def _error_response(status: int, message: str, details: Any = None) -> JSONResponse:
    """The JSON answer of an error: ``message`` and ``detail`` (the details, else the message)."""
    content: dict[str, Any] = {"detail": details if details is not None else message, "message": message}
    return JSONResponse(status_code=status, content=jsonable(content))


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    messages = list(dict.fromkeys(_describe(e, request.app.state.service) for e in errors))
    shown = "; ".join(messages[:5]) + (f"; and {len(messages) - 5} more" if len(messages) > 5 else "")
    details = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in errors[:50]]
    return _error_response(422, shown, details)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    response = _error_response(exc.status_code, message)
    for k, v in (exc.headers or {}).items():
        response.headers[k] = v
    return response


async def _input(request: Request, exc: Exception) -> JSONResponse:
    # input the model cannot use: the message says what to change. Any other ValueError is a bug: the
    # gate answers 500 with the request id, never the raw text
    return _error_response(422, str(exc))


async def _busy(request: Request, exc: Overloaded) -> JSONResponse:
    request.app.state.metrics.rejected.labels(exc.pool, "busy").inc()
    response = _error_response(429, str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _timeout(request: Request, exc: RequestTimeout) -> JSONResponse:
    request.app.state.metrics.rejected.labels(exc.pool, "timeout").inc()
    return _error_response(504, str(exc))


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON (its ``state`` holds the ``service`` and the ``metrics``)."""
    app.add_exception_handler(RequestValidationError, _validation)
    # also FastAPI's subclass and Starlette's own (e.g. bad JSON)
    app.add_exception_handler(StarletteHTTPException, _http)
    for kind in _input_error_types():
        app.add_exception_handler(kind, _input)
    app.add_exception_handler(Overloaded, _busy)
    app.add_exception_handler(RequestTimeout, _timeout)
