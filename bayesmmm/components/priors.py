"""YAML-friendly prior specifications that become PyMC distributions.

A prior is written as the name of a PyMC distribution plus its parameters::

    {dist: Beta, alpha: 1, beta: 3}
    {dist: HalfNormal, sigma: [1.0, 1.0, 2.0]}   # one value per channel
    {dist: Normal, mu: 0, sigma: 0.5, dims: [channel]}

Parameter names are checked against the distribution's signature when the spec is
validated, so a misspelt parameter fails before any model is built.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_serializer, model_validator

__all__ = ["Prior"]

_RESERVED = {"dist", "params", "dims"}


def _pm():
    import pymc as pm

    return pm


def _distribution_names() -> list[str]:
    pm = _pm()
    return sorted(
        name
        for name in dir(pm.distributions)
        if isinstance(getattr(pm.distributions, name), type)
        and issubclass(getattr(pm.distributions, name), pm.Distribution)
        and not name.startswith("_")
    )


def _distribution(name: str):
    pm = _pm()
    cls = getattr(pm.distributions, name, None)
    if not (isinstance(cls, type) and issubclass(cls, pm.Distribution)):
        valid = _distribution_names()
        close = difflib.get_close_matches(name, valid, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown distribution {name!r}.{hint} Use a PyMC distribution name, e.g. Normal, HalfNormal, Beta, Gamma."
        )
    return cls


class Prior(BaseModel):
    """A prior distribution: a PyMC distribution name, its parameters and optional dims.

    Parameters
    ----------
    dist : str
        Name of a PyMC distribution (``Normal``, ``HalfNormal``, ``Beta``, ``Gamma``...).
    params : dict
        Parameters of the distribution. Scalars or one value per element of the dim
        (lists). In YAML they are written beside ``dist``.
    dims : tuple of str, optional
        Named dims of the variable. Models fill these in; set them only to override.

    Examples
    --------
    >>> Prior(dist="Beta", alpha=1, beta=3).to_dict()
    {'dist': 'Beta', 'alpha': 1.0, 'beta': 3.0}
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dist: str
    params: dict[str, float | list[float]] = {}
    dims: tuple[str, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _collect_params(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            params = dict(data.pop("params", None) or {})
            for key in [k for k in data if k not in _RESERVED]:
                params[key] = data.pop(key)
            data["params"] = params
        return data

    @field_validator("dist")
    @classmethod
    def _check_dist(cls, value: str) -> str:
        _distribution(value)
        return value

    @model_validator(mode="after")
    def _check_params(self) -> Prior:
        dist_cls = _distribution(self.dist)
        sig = inspect.signature(dist_cls.dist)
        allowed = {
            name
            for name, p in sig.parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and name not in {"cls", "size", "shape"}
        }
        for name in self.params:
            if name not in allowed:
                close = difflib.get_close_matches(name, sorted(allowed), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"{self.dist} has no parameter {name!r}.{hint} Valid parameters: {', '.join(sorted(allowed))}."
                )
        return self

    @model_serializer
    def _serialize(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dist": self.dist, **self.params}
        if self.dims is not None:
            out["dims"] = list(self.dims)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the YAML/dict form (``{"dist": ..., <params>, "dims": ...}``)."""
        return self.model_dump()

    def with_dims(self, dims: Sequence[str] | None) -> Prior:
        """Return a copy with ``dims`` set, unless dims were set explicitly."""
        if self.dims is not None:
            return self
        return self.model_copy(update={"dims": tuple(dims) if dims else None})

    def distribution(self, size: Any = None):
        """An unnamed PyMC variable of this prior (``pm.<Dist>.dist(..., size=size)``), e.g. for ``pm.draw``."""
        return _distribution(self.dist).dist(**self.params, size=size)

    def create(self, name: str, dims: Sequence[str] | None = None):
        """Create the random variable ``name`` in the current PyMC model context.

        Parameters
        ----------
        name : str
            Variable name in the model.
        dims : sequence of str, optional
            Dims used unless the spec set its own.
        """
        dist_cls = _distribution(self.dist)
        use_dims = self.dims if self.dims is not None else (tuple(dims) if dims else None)
        return dist_cls(name, **self.params, dims=use_dims)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.dist}({args})"
