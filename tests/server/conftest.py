"""Fixtures for the explorer: a registry of small models, a TestClient, and a live server."""

from __future__ import annotations

import pytest

from server_helpers import small_loader


@pytest.fixture(scope="session")
def registry():
    from convscope.server import Registry

    return Registry(["default", "functional", "resnet"], loader=small_loader)


@pytest.fixture(scope="session")
def client(registry):
    from fastapi.testclient import TestClient

    from convscope.server import create_app

    with TestClient(create_app(registry=registry)) as c:
        yield c
