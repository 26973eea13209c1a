"""REST payload fuzzing: schemathesis against the service's own OpenAPI spec.

Every operation gets generated requests (valid and invalid); the service must never
answer 5xx, must reject schema-violating payloads, and its answers must match its spec
(status codes, content types, headers, response schemas).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(fitted_example):
    """The service's OpenAPI spec, served in-process (ASGI) on the session's fitted example model."""
    from bayesmmm.serving.factory import create_app
    from bayesmmm.serving.service import ModelService

    # schemathesis' in-process transport sends Host: testserver (the server answers only to the hosts it is told)
    app = create_app(ModelService(fitted_example, "fuzz", dashboard=False), token="", allowed_hosts=["testserver"])
    return schemathesis.openapi.from_asgi("/openapi.json", app)


EXAMPLES = 15  # per operation and generation mode


def test_rest_payloads_never_break_the_service(api_schema):
    """Schema-valid (positive) and schema-violating (negative) requests to every operation.

    Never a 5xx; schema-violating payloads rejected; status codes, content types, response
    bodies and headers exactly as the spec documents them.
    """
    from schemathesis import GenerationMode
    from schemathesis.checks import (
        content_type_conformance,
        negative_data_rejection,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        negative_data_rejection,
        content_type_conformance,
        status_code_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {"/predict", "/optimize", "/roas", "/health"} <= {op.path for op in operations}
    failures: list[str] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
                derandomize=True,  # the same cases every run: CI is reproducible
            )
            def check(case):
                case.validate_response(case.call(), checks=checks)

            try:
                check()
            except Unsatisfiable:  # no parameters or body: nothing to get wrong
                assert mode == GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup: collect, report all
                failures.append(f"{mode.value} {operation.label}: {_first_lines(exc, 8)}")
    assert not failures, "\n".join(failures)


def _first_lines(exc: BaseException, n: int) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " / ".join(lines[1:n])
