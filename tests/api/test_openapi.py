"""schemathesis over the whole OpenAPI schema: no server errors, no response off the schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import fresh_schema

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


MAX_EXAMPLES = 15


@pytest.fixture(params=["async", "sync"])
def api_schema(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    from dmitems.api import create_app
    from dmitems.config import load_settings

    settings_ = load_settings(
        flags={
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'openapi.db'}",
            "server_mode": request.param,
            "server_batch_max": 20,
        }
    )
    fresh_schema(settings_)
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings_))


def test_every_operation_matches_its_schema(api_schema: Any) -> None:
    # Driven through hypothesis directly: schemathesis' pytest plugin does not load under
    # this pytest version.
    failures: dict[str, str] = {}
    tested = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except Exception as failure:  # collect every operation's failure, then report all
            failures[operation.label] = str(failure)[:2000]
        tested += 1
    assert tested == 16  # 7 REST + 7 seed routes + health + livez
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
