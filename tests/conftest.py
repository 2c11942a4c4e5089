"""Shared fixtures: propmubi.testing's, with the reference plugin loaded by default."""

from typing import Any

import pytest

import tests.refplugin

pytest_plugins = ["propmubi.testing"]


@pytest.fixture(scope="session")
def template_plugins() -> list[Any]:
    return [tests.refplugin]


@pytest.fixture
def extra_plugins() -> list[Any]:
    return [tests.refplugin]
