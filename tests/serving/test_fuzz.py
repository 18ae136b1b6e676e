"""Schema-driven fuzzing of the published OpenAPI spec (schemathesis): no 5xx, answers match the spec.

Requests are generated from the app's own /openapi.json, valid ones (positive) and ones that break it
(negative), sent through TestClient so the lifespan has run, and every answer goes through
schemathesis's checks: never a server error, documented status codes and content types, responses that
match their schemas, invalid data rejected. Bounded: a few dozen examples per operation.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from toolcast.serving import create_app

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.core.parameters import ParameterLocation  # noqa: E402
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance  # noqa: E402

TOKEN = "fuzz-token"
OPERATIONS = [("/v1/predict", "POST", 40), ("/v1/predict/batch", "POST", 25), ("/v1/model", "GET", 5),
              ("/healthz", "GET", 3), ("/readyz", "GET", 3), ("/metrics", "GET", 3),
              ("/v1/predict/native", "POST", 40)]
# A native record's schema is "an object or a list" (every provider's format); whether it reads is the
# importers' call, so a schema-valid record may rightly get a 422 naming its field.
BEYOND_SCHEMA = {"/v1/predict/native": [positive_data_acceptance]}
_SENT = ("method", "url", "headers", "params", "json", "content", "data", "cookies")


@pytest.mark.parametrize("token", [None, TOKEN], ids=["open", "token"])
@pytest.mark.parametrize(("path", "method", "examples"), OPERATIONS,
                         ids=[f"{m} {p}" for p, m, _ in OPERATIONS])
def test_fuzzed_requests_never_get_a_5xx(batch_fake, settings, path, method, examples, token):
    app = create_app(settings(batch_fake, token=token, max_k=8, max_events=64, max_batch_items=8))
    schema = schemathesis.openapi.from_dict(app.openapi())
    operation = schema[path][method]
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    strategy = st.one_of(*(operation.as_strategy(generation_mode=m) for m in modes))
    auth = {"Authorization": f"Bearer {TOKEN}"} if token else None

    with TestClient(app, raise_server_exceptions=False) as client:

        @given(case=strategy)
        @hypothesis_settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            # A case that breaks the Authorization header on purpose is sent as generated.
            broken_auth = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
            headers = None if broken_auth else auth
            sent = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
            response = client.request(**{k: v for k, v in sent.items() if k in _SENT})
            assert response.status_code < 500, response.text
            # With a token, ignored_auth cannot tell the token we add from one it generated; the token
            # itself is tested exactly in test_limits_auth.py.
            excluded = [*([ignored_auth] if token else []), *BEYOND_SCHEMA.get(path, [])]
            case.validate_response(response, excluded_checks=excluded or None)

        check()

