# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read-only tripwire: did the host's DAMON/THP state change during a test session?

The audit-hook guard (tests/guard/sitecustomize.py) only sees Python code; a
test that shelled out (``echo off > /sys/...``) would get past it. So
tests/conftest.py snapshots these files at session start and end (reading
only) and fails the session if anything differs.

It also watches the host's default ownership record and learned-state files: a test that runs a module
without its own ``ownership_file`` would save an emulator's values there, which
a later ``restore`` on the real host would write back (and concurrent test
processes, ``make test-fast`` runs two, would share it).
"""

from __future__ import annotations

DEFAULT_OWNERSHIP_FILE = "/run/linux_mm_damon/ownership.json"  # plugins/module_utils/_options.py OWNERSHIP_FILE
# hugepage_step's learned_file default (beside the record) and the hugepage role's hugepage_learned_file
DEFAULT_LEARNED_FILES = ("/run/linux_mm_damon/learned.json", "/var/lib/linux_mm_damon/learned.json")

TRIPWIRE_FILES = (
    "/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds",
    "/sys/kernel/mm/damon/admin/kdamonds/0/state",
    "/sys/kernel/mm/damon/admin/kdamonds/0/pid",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/sys/kernel/mm/transparent_hugepage/defrag",
    DEFAULT_OWNERSHIP_FILE,
) + DEFAULT_LEARNED_FILES


def snapshot(files=TRIPWIRE_FILES) -> dict:
    """Map each file to its stripped content, or ``<error text>`` if it cannot be read."""
    snap = {}
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                snap[path] = fh.read().strip()
        except OSError as exc:
            snap[path] = "<%s>" % (exc.strerror or type(exc).__name__)
    return snap


def compare(before: dict, after: dict):
    """None if nothing changed, else a loud multi-line message naming every change."""
    changed = {p: (before.get(p), after.get(p)) for p in set(before) | set(after) if before.get(p) != after.get(p)}
    if not changed:
        return None
    lines = ["", "!" * 78, "HOST SYSFS TRIPWIRE: the host's DAMON/THP state changed during the test session!"]
    lines += ["  %s: %r -> %r" % (p, b, a) for p, (b, a) in sorted(changed.items())]
    lines += ["Some test (or something outside the tests) wrote the host's sysfs or its default ownership",
              "record or learned state. Tests must use the emulator or a guest, never shell out to write /sys,",
              "give every module that keeps a record its own ownership_file, and every run of the hugepage",
              "role its own hugepage_learned_file. Failing the session.", "!" * 78, ""]
    return "\n".join(lines)
