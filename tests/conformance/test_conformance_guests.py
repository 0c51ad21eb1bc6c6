"""The emulator against the real kernels, live: the same probe runs on the emulator profile
and inside the real damon-6.12 / damon-7.3 guest; any difference fails with a readable diff.

Guest test (``@pytest.mark.guest``): skipped unless LINUX_MM_DAMON_GUEST_TESTS=1. The raw
records are kept under ``$LINUX_MM_DAMON_CACHE/conformance/`` for inspection.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from tests.conformance import compare
from tests.vm._common import cache_root

pytestmark = [pytest.mark.guest, pytest.mark.vm, pytest.mark.timeout(900)]


def _save(kernel: str, name: str, data: dict) -> str:
    out = cache_root() / "conformance"
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("%s-%s.json" % (kernel, name))
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return str(path)


@pytest.mark.parametrize("kernel", [pytest.param(k, marks=pytest.mark.shares_guest("damon-" + k))
                                    for k in compare.KERNELS])
def test_emulator_conforms_to_the_real_kernel(kernel, request):
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        pytest.skip("FUSE (/dev/fuse, fusermount3) is not available")
    t0 = time.monotonic()
    emulated = compare.run_on_emulator(kernel)
    t1 = time.monotonic()
    # The session's shared guest of this kind (tests/vm/shared.py): the first test of its kind, so the
    # probe sees the tree as the kernel booted it; the probe ends with nr_kdamonds 0 and DAMON_STAT restored.
    g = request.getfixturevalue("shared_guest")
    t2 = time.monotonic()
    real = compare.run_in_guest(g)
    t3 = time.monotonic()
    assert real["kernel"]["uname_r"] == g.image.kernel_release
    print("conformance %s: emulator probe %.1fs, guest boot (or reuse) %.1fs, guest probe %.1fs"
          % (kernel, t1 - t0, t2 - t1, t3 - t2))
    saved = [_save(kernel, "emulator", emulated), _save(kernel, "guest", real)]
    lines = compare.differences(compare.normalise(emulated), compare.normalise(real), "kernel")
    assert not lines, compare.report(
        lines, "emulator %s vs real kernel %s" % (kernel, real["kernel"]["uname_r"])) + "\nrecords: %s" % saved
