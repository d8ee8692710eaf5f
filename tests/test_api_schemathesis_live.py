"""Schemathesis against a LIVE server (a real HTTP server in a thread, over loopback), with the
document the server itself serves: no 5xx, and every response in the declared status codes,
content types and schemas. Fewer examples than the WSGI run (`test_api_schemathesis.py`), which
explores deeper; this one proves the same holds over real HTTP."""

from __future__ import annotations

import importlib
import os

import pytest
import schemathesis
import time_machine
from django.apps import apps
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from test_api_schemathesis import CHECKS
from test_applications_world import NOW

from wuyiqu.api.actions import do_create_api_token
from wuyiqu.api.models import FACT_KINDS, SCOPES

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The operations are known from the document at collection; the calls go to the live server.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


SECRET: dict[str, str] = {}


@schema.auth(refresh_interval=None)  # each test makes its own token: never reuse one
class BearerToken:
    """The token as schemathesis knows it, so that its ignored_auth check can take it away."""

    def get(self, case, ctx):
        return SECRET.get("value", "")  # set by the fixture before any call

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def secret(live_server, world, carol):
    # The live server's database is emptied between tests (a transactional test case): the policy
    # profile its migration seeded is put back, as the evaluations need it (else 404 no_profile).
    importlib.import_module("wuyiqu.standards.migrations.0002_seed_wenlong_2022").seed(apps, None)
    with time_machine.travel(NOW, tick=True):
        _token, SECRET["value"] = do_create_api_token(actor=None, name="live", unit=world, kinds=list(FACT_KINDS),
                                                      scopes=list(SCOPES), acts_as=carol, days=30)
    return SECRET["value"]


@schema.parametrize()
@settings(max_examples=int(os.environ.get("WUYIQU_SCHEMATHESIS_LIVE_EXAMPLES", "8")), deadline=None,
          suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_live_server_conforms_to_its_document(case, live_server, secret):
    # The server thread runs with the real clock; the world's facts are dated relative to NOW.
    with time_machine.travel(NOW, tick=True):
        response = case.call(base_url=f"{live_server.url}/api/v1" if not case.path.startswith("/api/v1")
                             else live_server.url)
        assert response.request.url.startswith(f"{live_server.url}/api/v1/"), response.request.url  # real HTTP
        assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
        case.validate_response(response, checks=CHECKS)
