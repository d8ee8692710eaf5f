"""A favicon: every page links it, the file is among the static files, /favicon.ico leads to it."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static

pytestmark = pytest.mark.django_db


def test_pages_link_the_icon_and_favicon_ico_is_no_404(client, world, alice, client_for):
    icon = static("wuyiqu/favicon.svg")
    assert finders.find("wuyiqu/favicon.svg")
    for c, url in ((client, "/accounts/login/"), (client_for(alice), "/")):
        html = c.get(url, follow=True).content.decode()
        assert f'<link rel="icon" href="{icon}"' in html, url
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == icon
