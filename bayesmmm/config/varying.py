"""``model.time_varying_media``: which channels' effects change over time, and how."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bayesmmm.components.priors import Prior

__all__ = ["PLAN_LEVELS", "TimeVaryingMediaConfig"]

#: the named planning levels of ``plan``
PLAN_LEVELS = ("latest", "average")


class TimeVaryingMediaConfig(BaseModel):
    """A smooth multiplier over time on the chosen channels' contributions (the others stay constant).

    ``kind`` names a registered multiplier component (:mod:`bayesmmm.components.multiplier`:
    ``hsgp``, ``spline`` or a plugin's), ``options`` its settings and ``priors`` overrides of its
    variables' priors. The multiplier averages 1 over the training dates, weighted by the
    channel's contribution, so the channel's coefficient and its ROAS / share priors keep their
    meaning (:mod:`bayesmmm.model.multiplier`).

    ``plan`` is the level the budget optimizer and the flight responses plan on: ``latest``
    (default: each draw's mean multiplier over the last ``plan_periods`` training periods),
    ``average`` (the training average, 1) or a number (a stated multiplier of the training
    average, for every time-varying channel).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    channels: list[str] = Field(..., min_length=1, description="the channels whose effect varies over time")
    kind: str = Field("hsgp", description="a registered multiplier component: hsgp, spline (or a plugin's)")
    options: dict[str, Any] = Field(
        default_factory=dict, description="settings of the kind: hsgp {m, c, kernel}, spline {n_knots, horizon}"
    )
    priors: dict[str, Prior] = Field(default_factory=dict, description="priors of the kind's tvm_* variables")
    plan: Literal["latest", "average"] | float = Field(
        "latest",
        description="level the optimizer plans on: latest (mean multiplier over the last plan_periods), "
        "average (1) or a stated multiplier (> 0)",
    )
    plan_periods: int = Field(13, ge=1, description="training periods averaged by plan: latest")

    @field_validator("channels")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"time_varying_media.channels names a channel twice: {value}")
        return value

    @field_validator("plan")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if not isinstance(value, str) and not value > 0:
            raise ValueError(f"time_varying_media.plan must be latest, average or a multiplier > 0, got {value}")
        return value

    @model_validator(mode="after")
    def _registered(self) -> TimeVaryingMediaConfig:
        from bayesmmm.components.multiplier import MULTIPLIERS

        component = MULTIPLIERS.get(self.kind)
        component.check_options(self.options)
        unknown = sorted(set(self.priors) - set(component.default_priors))
        if unknown:
            raise ValueError(
                f"time_varying_media.priors: multiplier {self.kind!r} has no variable {unknown[0]!r}; "
                f"its variables: {', '.join(component.default_priors) or 'none'}"
            )
        return self

    def build(self) -> Any:
        """The bound multiplier component."""
        from bayesmmm.components.multiplier import MULTIPLIERS

        component = MULTIPLIERS.get(self.kind)
        return component(self.channels, self.priors, **component.check_options(self.options))
