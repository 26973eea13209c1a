"""The MLflow pyfunc model of a bayesmmm run, logged as an MLflow "model from code".

MLflow copies this file into the logged model and runs it when the model is loaded
(``mlflow.pyfunc.load_model``); nothing is pickled. Imported only by MLflow.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import set_model


class BayesMMMModel(mlflow.pyfunc.PythonModel):
    """A bayesmmm posterior (``posterior.nc``) behind MLflow's pyfunc interface.

    ``predict(frame, params={"hdi_prob": 0.9, "contributions": False, "seed": 0})`` takes the
    future weeks (date, channel spends, controls) and returns the forecast table of
    ``bayesmmm predict``.
    """

    def load_context(self, context) -> None:
        from bayesmmm import MMM  # the top-level API: stable across package layouts

        self.mmm = MMM.load(context.artifacts["posterior"])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from bayesmmm import forecast_table

        p = {"hdi_prob": 0.9, "contributions": False, "seed": 0, **(params or {})}
        return forecast_table(self.mmm, model_input, float(p["hdi_prob"]), bool(p["contributions"]), int(p["seed"]))


set_model(BayesMMMModel())
