"""Generated requests (schemathesis) against every service's OpenAPI, through the
gateway, with a valid token of a suitable role: valid and invalid data alike must
never get a 5xx, and every answer must match its documented schema.

``OPR_SECURITY_EXAMPLES`` sets the examples per operation and mode (default 2,
to stay within the suite's time budget; ``make test-security-deep`` runs 40).

A few operations are left out because a random call would change what every other
test shares (a signing-key rotation, replaying every dead letter, inviting every
admitted student, closing an intake), and the dead-letter listings, which take no
input and read a whole topic each; the authorisation matrix calls them all. The
intake calendar is fuzzed on a year nobody uses.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

pytestmark = [pytest.mark.e2e, pytest.mark.security]

SERVICES = ("identity", "registration", "documents", "notifier", "card")
EXAMPLES = int(os.environ.get("OPR_SECURITY_EXAMPLES", "2"))
LEFT_OUT = {
    "POST /api/identity/signing-keys/rotate",
    "POST /api/identity/invitations",
    "POST /api/registration/intakes/{year}/close",
    *(f"POST /api/{s}/admin/dead-letters/replay" for s in SERVICES),
    # Nothing to generate, and each call reads a whole topic: the matrix calls them.
    *(f"GET /api/{s}/admin/dead-letters" for s in SERVICES),
}
UNUSED_YEAR = 2098


def caller_for(path: str) -> str:
    """Students call their own ("me") endpoints; an administrator calls the rest."""
    return "student_c" if "/me/" in path or path.endswith("/me") else "admin"


def fuzz_operation(
    operation: Any, base_url: str, headers: dict[str, str], tally: Counter[str]
) -> list[str]:
    problems: list[str] = []
    fixed = {"year": UNUSED_YEAR} if "{year}" in operation.path else None
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        try:
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)
        except Exception as exc:  # an operation with nothing to generate in this mode
            tally["strategies_skipped"] += 1
            problems.append(f"{mode.value}: no strategy ({type(exc).__name__}: {exc})")
            continue

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=60)
            tally["requests"] += 1
            tally[f"status_{response.status_code // 100}xx"] += 1
            if response.status_code >= 500:
                tally["server_errors"] += 1
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            run()
        except Unsatisfiable:  # nothing invalid to send (no parameters, no body)
            tally["modes_without_inputs"] += 1
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            problems.append(f"{mode.value}: {str(exc).strip()[:1500]}")
    return problems


def test_generated_requests_get_no_5xx_and_answers_match_the_schema(
    cast: Any, figures: Any
) -> None:
    tally: Counter[str] = Counter()
    failures: list[str] = []
    operations = 0
    durations: dict[str, float] = {}
    for service in SERVICES:
        spec = httpx.get(f"{cast.gateway_url}/api/{service}/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(spec)
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            if label in LEFT_OUT:
                continue
            operations += 1
            headers = cast.headers(caller_for(operation.path))
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problems = fuzz_operation(operation, cast.gateway_url, headers, tally)
            durations[label] = round(time.perf_counter() - started, 2)
            failures += [f"{label} [{problem}]" for problem in problems]
    figures.record(
        "fuzzing.schemathesis",
        operations=operations,
        examples_per_mode=EXAMPLES,
        requests=tally["requests"],
        server_errors=tally["server_errors"],
        answers_2xx=tally["status_2xx"],
        answers_4xx=tally["status_4xx"],
        failing_operations=len(failures),
        slowest=sorted(durations.items(), key=lambda d: -d[1])[:5],
        seconds=round(sum(durations.values()), 1),
    )
    assert tally["requests"] >= operations, "too few requests were generated"
    assert not failures, "\n\n".join(failures)
