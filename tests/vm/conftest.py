"""pytest wiring for the QEMU guest tests (tests/vm/).

Guest tests carry ``@pytest.mark.guest`` (and ``vm``, which ``make test-fast`` deselects).
They are skipped unless ``LINUX_MM_DAMON_GUEST_TESTS=1``: they boot Debian guests under
QEMU TCG, need root, qemu-system-x86, qemu-utils, mmdebstrap, e2fsprogs, gcc/libc6-dev
and openssh-client, and take minutes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

GUEST_ENV = "LINUX_MM_DAMON_GUEST_TESTS"
# Guest tests with real applications (redis, PostgreSQL) and the MADV_COLLAPSE fact sweep take
# 2-8 minutes each: `make test-apps` runs them; `make test` (and so CI) leaves them out to stay
# within its time budget.
REAL_APP_MODULES = ("test_collapse_facts_guest.py", "test_real_apps_guest.py", "test_redis_hugepage_guest.py")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"guest: boots a QEMU guest (tests/vm); skipped unless {GUEST_ENV}=1")
    config.addinivalue_line("markers", "vm: needs a QEMU guest (tests/vm)")
    config.addinivalue_line("markers", "apps: real applications or long fact sweeps in guests (make test-apps)")


def guest_tests_enabled() -> bool:
    return os.environ.get(GUEST_ENV) == "1"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in REAL_APP_MODULES:
            item.add_marker(pytest.mark.apps)
    if guest_tests_enabled():
        return
    skip = pytest.mark.skip(reason=f"guest test: set {GUEST_ENV}=1 to boot QEMU guests")
    for item in items:
        if "guest" in item.keywords:
            item.add_marker(skip)
