# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Say "needs root (become: true)" before the first write, not on the first EACCES.

DAMON's sysfs files are root-only (0600), THP's are root-writable, and other
processes' smaps/pagemap need ptrace read access. A run without the privilege
would otherwise fail part-way, on whichever file it touches first.
"""

from __future__ import annotations

import os

# include/uapi/linux/capability.h
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21
CAP_SYS_NICE = 23
CAP_NAMES = {CAP_SYS_PTRACE: "CAP_SYS_PTRACE", CAP_SYS_ADMIN: "CAP_SYS_ADMIN", CAP_SYS_NICE: "CAP_SYS_NICE"}


def effective_caps(status_path="/proc/self/status"):
    """The effective capability set of this process (CapEff), 0 when it cannot be read."""
    try:
        with open(status_path) as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def needs_root(module, purpose, euid=None, caps=None, enough_cap=None):
    """None when this process may go on, else the message to fail with.

    ``module``: short module name; ``purpose``: what needs the privilege ("write
    DAMON sysfs files"). ``enough_cap``: a capability that does instead of root
    (CAP_SYS_NICE for process_madvise). ``euid`` and ``caps`` default to this
    process's; tests inject them.
    """
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return None
    if enough_cap is not None:
        caps = effective_caps() if caps is None else caps
        if caps >> enough_cap & 1:
            return None
    msg = "linux_mm.damon.%s needs root (become: true) to %s; it runs as uid %d" % (module, purpose, euid)
    if enough_cap is not None:
        msg += " without %s" % CAP_NAMES.get(enough_cap, "capability %d" % enough_cap)
    return msg + "; nothing was changed"


def fail_unless_root(ansible_module, module, purpose, enough_cap=None, euid=None, caps=None, **result):
    """``ansible_module.fail_json`` with :func:`needs_root`'s message when the privilege is missing."""
    msg = needs_root(module, purpose, euid=euid, caps=caps, enough_cap=enough_cap)
    if msg is not None:
        ansible_module.fail_json(msg=msg, **result)
