"""Conformance tests: tests/vm's guest wiring (markers, LINUX_MM_DAMON_GUEST_TESTS gate)."""

from tests.vm.conftest import pytest_collection_modifyitems, pytest_configure  # noqa: F401  pylint: disable=unused-import
