"""Schemathesis over the generated OpenAPI document, against the WSGI application (every operation,
valid and invalid inputs), with every check it has (``--checks all``): no 5xx, every response in the
declared status codes, content types and schemas, valid requests accepted and invalid ones refused. Bounded examples (15 per operation; WUYIQU_SCHEMATHESIS_EXAMPLES for a deeper run), so
that it runs in well under two minutes."""

from __future__ import annotations

import os

import pytest
import schemathesis
import schemathesis.specs.openapi.checks  # noqa: F401  (registers the OpenAPI checks)
import time_machine
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from test_applications_world import NOW

from wuyiqu.api.actions import do_create_api_token
from wuyiqu.api.models import FACT_KINDS, SCOPES

# Every check schemathesis has (its `--checks all`): besides no 5xx and conforming responses, a request
# the document allows is accepted (positive_data_acceptance: the document declares every constraint the
# server enforces) and one it forbids is refused (negative_data_rejection), auth is not ignored, a
# method the path lacks is a 405 with Allow, and the rest.
CHECKS = REGISTERED_CHECKS.get_all()
assert len(CHECKS) >= 14 and {c.__name__ for c in CHECKS} >= {"positive_data_acceptance", "negative_data_rejection"}
SECRET: dict[str, str] = {}


@pytest.fixture(autouse=True)
def world_and_token(world, carol):
    # The WSGI handler would close the test's connection (and its transaction) after each request,
    # as Django's own test client avoids: the same here.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # The document's examples name 文龙社区 (500110002015), inside the token's street.
    with time_machine.travel(NOW, tick=True):
        _t, SECRET["value"] = do_create_api_token(actor=None, name="st", unit=world, kinds=list(FACT_KINDS),
                                                  scopes=list(SCOPES), acts_as=carol, days=30)
        try:
            yield
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


# The document needs no database: it is loaded once, at collection.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@schema.auth(refresh_interval=None)  # each test makes its own token: never reuse one
class BearerToken:
    """The token as schemathesis knows it, so that its ignored_auth check can take it away."""

    def get(self, case, ctx):
        return SECRET.get("value", "")  # set by the fixture before any call

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=int(os.environ.get("WUYIQU_SCHEMATHESIS_EXAMPLES", "15")), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_conforms_to_its_document(case):
    case.call_and_validate(checks=CHECKS)
