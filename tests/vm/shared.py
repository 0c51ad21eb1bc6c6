"""One boot per guest kind: the guest tests of a session share a booted guest of each image.

Booting a guest under QEMU TCG takes 20-40 s; the smoke test (tests/vm/test_guest_boot.py),
the live conformance probe (tests/conformance/) and the hugepage playbooks in a real guest
(tests/vm/test_hugepage_guest.py) each used to boot their own damon-6.12 and damon-7.3 guest.
A test that can share one asks for it with a marker and the ``shared_guest`` fixture
(tests/conftest.py)::

    @pytest.mark.parametrize("kernel", [pytest.param("6.12", marks=pytest.mark.shares_guest("damon-6.12")), ...])
    def test_x(kernel, shared_guest):
        shared_guest.ssh(...)

The pool keeps at most ONE guest running (two TCG guests on two CPUs slow each other down
threefold): the session runs the tests of one kind one after the other (``order``), boots
the kind's guest for the first of them and stops it after the last one. Stopping it checks
what the smoke test checks of every teardown: no qemu process, no work directory or overlay
left (a failure is reported as an error of the last test that used the guest). Tests that
start guests of their own (teardown on exception or signal, molecule) run after the shared
ones, when no shared guest runs any more.

Tests that share a guest must leave it as they found it for the next one: stop the
processes they started, and restore what they changed (the probe ends with nr_kdamonds 0
and DAMON_STAT as it was; playbooks/stop.yml restores the DAMON modules and THP).
"""

from __future__ import annotations

import os
from pathlib import Path

MARKER = "shares_guest"


def kind_of(item):
    """The image kind an item shares (its ``shares_guest`` marker), or None."""
    marker = item.get_closest_marker(MARKER)
    return marker.args[0] if marker is not None else None


def order(items):
    """Sharing items first, grouped by kind in the order the kinds first appear (each group in collection
    order), then every other item in collection order. Sorts ``items`` in place."""
    kinds = []
    for item in items:
        kind = kind_of(item)
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    position = dict((id(item), i) for i, item in enumerate(items))

    def key(item):
        kind = kind_of(item)
        return (kinds.index(kind) if kind is not None else len(kinds), position[id(item)])

    items.sort(key=key)


def qemu_processes_on(path: Path) -> list:
    """PIDs of qemu-system processes whose command line names ``path``."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path("/proc/%s/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "qemu-system" in cmd and str(path) in cmd:
            out.append(int(pid))
    return out


class SharedGuests:
    """At most one running guest, of the kind the current test shares."""

    def __init__(self):
        self.guest = None
        self.boots = {}  # kind -> number of boots (1 each, unless a test stopped the guest)

    def get(self, kind):
        from tests.vm.guest import Guest, _pid_alive  # pylint: disable=import-outside-toplevel

        if self.guest is not None and (self.guest.name != kind or self.guest.pid is None
                                       or not _pid_alive(self.guest.pid)):
            self.stop()
        if self.guest is None:
            guest = Guest(kind)
            guest.start()
            self.guest = guest
            self.boots[kind] = self.boots.get(kind, 0) + 1
            print("[shared guest] %s booted in %ss (boot %d of this kind)" % (
                kind, guest.boot_seconds, self.boots[kind]))
        return self.guest

    def stop(self):
        """Stop the running guest, if any, and check that it left nothing behind."""
        from tests.vm.guest import _pid_alive  # pylint: disable=import-outside-toplevel

        guest, self.guest = self.guest, None
        if guest is None:
            return
        workdir, pid = guest.workdir, guest.pid
        overlay = guest.overlay if workdir is not None else None
        guest.stop()
        assert workdir is None or not workdir.exists(), "guest %s left its work directory %s" % (guest.name, workdir)
        assert overlay is None or not overlay.exists(), "guest %s left its overlay %s" % (guest.name, overlay)
        assert pid is None or not _pid_alive(pid), "qemu of guest %s (pid %s) still runs" % (guest.name, pid)
        assert workdir is None or qemu_processes_on(workdir) == [], "qemu processes of %s remain" % guest.name
