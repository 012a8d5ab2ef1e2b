"""Fixtures for the hardening tests: a small two-model explorer (1-channel default, RGB Tiny VGG)."""

from __future__ import annotations

import pytest

from hardening_helpers import make_registry


@pytest.fixture(scope="module")
def registry():
    return make_registry()


@pytest.fixture(scope="module")
def client(registry):
    from fastapi.testclient import TestClient

    from convscope.server import create_app

    with TestClient(create_app(registry=registry), raise_server_exceptions=False) as c:
        yield c
