"""Property-based requests generated from the served /openapi.json (Schemathesis) against the real server.

Valid and invalid bodies for every documented operation, with an admin key (every route is open to
it). Checked: no 5xx, the status code is documented for the operation, the content type and the body
match the documented response. Bounded: a fixed number of examples per operation, derandomized
(the same examples every run), so it takes seconds and never flakes on a new random draw.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import ADMIN, running_server

EXAMPLES = 30  # per operation and mode: about 300 requests in all
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.slow
def test_generated_requests_get_no_5xx_and_match_the_schema(trained):
    # Strategies under a plain test, not `schema.parametrize`: Schemathesis' pytest integration
    # cannot rename test nodes under pytest 9.
    with running_server(trained) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.path for op in operations} >= {"/predict", "/predict_history", "/export", "/admin/reload"}
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=EXAMPLES,
                    derandomize=True,
                    deadline=None,
                    database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                def answers_as_documented(case):
                    case.call_and_validate(base_url=url, headers=ADMIN, timeout=30, checks=CHECKS)

                answers_as_documented()
