"""JSON Schema of the experiment YAML, for editors (completion, checks) and ``bayesmmm schema``.

Generated from the pydantic :class:`~bayesmmm.config.experiment.ExperimentConfig`, then adjusted where
the YAML accepts a shorter form than the model's fields: a prior's parameters are written
beside ``dist`` (``{dist: Beta, alpha: 1, beta: 3}``) and a transform may be just its name
(``saturation: hill``). A copy is committed as ``configs/experiment.schema.json`` (a test keeps
it equal to this output); the shipped YAML files point at it with a first line
``# yaml-language-server: $schema=experiment.schema.json``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = ["SCHEMA_FILE", "experiment_json_schema", "schema_text"]

SCHEMA_FILE = "experiment.schema.json"

_PARAM_VALUE = {"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]}


def _prior_schema(generated: dict[str, Any]) -> dict[str, Any]:
    """A prior as written in YAML: ``dist``, its parameters beside it, optional ``dims``."""
    props = generated["properties"]
    return {
        "title": "Prior",
        "description": (
            "A PyMC distribution and its parameters, written beside dist: {dist: Beta, alpha: 1, beta: 3}; "
            "a parameter is a number or one number per element of the dim, e.g. sigma: [1, 1, 2]"
        ),
        "type": "object",
        "properties": {
            "dist": {
                "type": "string",
                "description": "a PyMC distribution name: Normal, HalfNormal, Beta, Gamma, LogNormal, StudentT, ...",
                "examples": ["HalfNormal", "Beta", "Gamma", "Normal", "LogNormal"],
            },
            "params": {**props["params"], "description": "the parameters as a mapping (or write them beside dist)"},
            "dims": props["dims"],
        },
        "required": ["dist"],
        "additionalProperties": _PARAM_VALUE,
    }


def experiment_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an experiment YAML file.

    Returns
    -------
    dict
        A schema every valid experiment YAML satisfies; unknown keys are errors, as in
        :func:`bayesmmm.config.experiment.load_experiment`. Semantic checks (transform and distribution
        names, column roles, data set names) stay with the loader.
    """
    from bayesmmm.config.experiment import ExperimentConfig

    schema = copy.deepcopy(ExperimentConfig.model_json_schema())
    defs = schema["$defs"]
    defs["Prior"] = _prior_schema(defs["Prior"])
    for field in ("adstock", "saturation"):
        prop = defs["ModelConfig"]["properties"][field]
        ref = prop.pop("$ref")
        prop["anyOf"] = [
            {"$ref": ref},
            {"type": "string", "description": f"shorthand for {{name: ...}}: a registered {field} name"},
        ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "bayesmmm experiment",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def schema_text() -> str:
    """The schema as the committed file holds it: 2-space ASCII JSON, keys in generation order, final newline."""
    return json.dumps(experiment_json_schema(), indent=2) + "\n"
