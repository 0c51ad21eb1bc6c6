# -*- coding: utf-8 -*-
# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bring one kdamond that we own to a desired state: slot, configuration, on/off.

``plan_kdamond`` only reads and returns a ``KdamondPlan``; ``apply_plan``
writes it. Check mode is therefore the same code path minus the writes.
"""

from __future__ import annotations

import os

from ansible_collections.linux_mm.damon.plugins.module_utils._damon_features import (
    EXCLUSIVE_MODULES, exclusive_modules,
)
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_layout import KDAMOND, SpecError, from_tree, to_tree
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_spec import validate_context
from ansible_collections.linux_mm.damon.plugins.module_utils._damon_sysfs import (
    apply, digest, kdamonds_dir, plan, read_kdamond, read_kdamonds,
)


class KdamondError(Exception):
    """The request cannot be carried out; nothing was written."""


class KdamondPlan(object):
    def __init__(self, name, index):
        self.name = name
        self.index = index
        self.writes = []  # ordered (path, value)
        self.before = None
        self.after = None
        self.warnings = []
        self.release = False  # the slot goes back to the idle pool
        self.stop_modules = []  # exclusive modules we disable before 'on'
        self.new_idle_slots = []  # extra slots created for later kdamonds (a pool)
        self.restore_modules = []  # exclusive modules we re-enable at the end
        self.intent = None  # (state, spec) the planned slot is meant to reach
        self.rewritten = {}  # index -> spec of owned slots rewritten because nr_kdamonds grows
        self.repaired = []  # owned stopped slots rewritten from an interrupted run's intent
        self.wipe_all = False  # nr_kdamonds goes to 0: every slot was an idle one of ours


def _config(kd):
    """What a kdamond is configured to be, in the shape of ``KdamondPlan.after`` (diffs compare like with like)."""
    return {"state": kd.state, "refresh_ms": from_tree(KDAMOND, kd.tree).get("refresh_ms"), "context": kd.context}


def _foreign_message(foreign):
    names = "; ".join(kd.describe() for kd in foreign)
    return ("a new kdamond needs a new slot, and adding one rewrites nr_kdamonds, which would renumber or wipe "
            "kdamonds this collection does not own: %s. Stop and remove them yourself (or let us reuse one of "
            "our idle slots by stopping one of our kdamonds with state=absent)" % names)


def _empty_spec():
    return {"refresh_ms": 0, "contexts": []}


def _intent_writes(kd, spec, features):
    """Writes that turn live ``kd`` into an intent's spec; None when this kernel cannot express it."""
    try:
        return plan(kd.tree, to_tree(KDAMOND, spec, features), kd.path)
    except SpecError:
        return None


def _claim(kds, own, features):
    """(The indices we own, those of them to commit again). Slots whose intent the live tree fulfils are
    recorded as done; a running one among them is committed again: its files may have been written by a
    run whose commit failed (EINVAL) or was never reached, so the kernel may still run the old values."""
    ours, recommit = set(), set()
    for i in list(own.slots):
        kd, intent = kds[i], own.slots[i].get("intent")
        live = digest(kd.tree)
        matches = intent is not None and _intent_writes(kd, intent["spec"], features) == []
        if not own.owns(kd, live, matches):
            if own.slots[i].get("name") is None:  # someone else took an idle slot of ours: it is theirs now
                del own.slots[i]
                own.dirty = True
            continue
        ours.add(i)
        if matches and kd.running == (intent["state"] == "on"):
            own.adopt(kd, live)  # e.g. a run killed after 'on', before its final save
            if kd.running:
                recommit.add(i)
    return ours, recommit


def plan_kdamond(sysfs_root, features, own, name, state, context, refresh_ms=0, exclusive="fail", pool_size=1):
    """Compute what to write; raises KdamondError/SpecError before any write.

    When a new slot is needed, nr_kdamonds grows to at least ``pool_size``: the
    kernel refuses to grow it while any kdamond runs, so slots for kdamonds
    started later must be created now. Owned stopped slots that an interrupted
    run left half-written are rewritten to what their intent says.
    """
    kds = read_kdamonds(sysfs_root, features)
    own.forget_missing(len(kds))
    ours, recommit = _claim(kds, own, features)
    index = own.index_of(name)
    if index is not None and index not in ours:
        raise KdamondError(
            "kdamond %d was created by linux_mm.damon as %r but was changed or restarted by someone else since "
            "(%s); it is left untouched. Remove its entry from %s to forget it" % (index, name, kds[index].describe(), own.path))
    p = KdamondPlan(name, index)
    kd = kds[index] if index is not None else None
    p.before = _config(kd) if kd else None
    others_running = any(k.running for k in kds if k.index != index)
    _plan_repairs(p, kds, own, ours, features, index)

    if state == "absent":
        if kd is None:
            return p
        if kd.running:
            p.writes.append((kd.path + "/state", "off"))
        idle = [i for i in ours if i != index and own.slots[i].get("name") is None and not kds[i].running]
        if len(ours) == len(kds) and len(idle) == len(kds) - 1:
            p.writes = [w for w in p.writes if w[0].startswith(kd.path + "/")]  # the wipe makes repairs moot
            p.writes.append((kdamonds_dir(sysfs_root) + "/nr_kdamonds", "0"))  # nothing but our idle slots left
            p.wipe_all = True
        elif kd.tree.lists["contexts/nr_contexts"][1]:
            p.writes.append((kd.path + "/contexts/nr_contexts", "0"))
        p.release = True
        p.intent = ("off", _empty_spec())
        _plan_restore(p, sysfs_root, own, others_running)
        return p

    validate_context(context, features, p.warnings)
    desired = to_tree(KDAMOND, {"refresh_ms": refresh_ms, "contexts": [context]}, features)
    spec = from_tree(KDAMOND, desired)
    p.after = {"state": "on" if state == "running" else "off", "refresh_ms": spec.get("refresh_ms"),
               "context": spec["contexts"][0]}
    p.intent = (p.after["state"], spec)
    if kd is None:
        free = sorted(i for i in ours if own.slots[i].get("name") is None and not kds[i].running)
        if free:
            kd = kds[free[0]]
            p.writes = [w for w in p.writes if not w[0].startswith(kd.path + "/")]  # rewritten below anyway
            p.repaired = [i for i in p.repaired if i != kd.index]
        else:
            foreign = [k for k in kds if k.index not in ours]
            if foreign:
                raise KdamondError(_foreign_message(foreign))
            if others_running:
                running = "; ".join(k.describe() for k in kds if k.running)
                raise KdamondError(
                    "a new kdamond needs nr_kdamonds to grow, which the kernel refuses (EBUSY) while any kdamond "
                    "runs: %s. Stop them first (state=stopped), or free a slot with state=absent" % running)
            count = max(len(kds) + 1, pool_size)
            # The kernel rebuilds every kdamond directory when nr_kdamonds changes:
            # our stopped slots are rewritten from their recorded intent.
            p.writes = [(kdamonds_dir(sysfs_root) + "/nr_kdamonds", str(count))]
            p.repaired = []
            for k in kds:
                kspec = own.slots[k.index].get("intent") or {}
                kspec = kspec.get("spec") or from_tree(KDAMOND, k.tree)
                p.writes.extend(plan(None, to_tree(KDAMOND, kspec, features), k.path))
                p.rewritten[k.index] = kspec
            p.new_idle_slots = list(range(len(kds) + 1, count))
        p.index = kd.index if kd else len(kds)
    base = os.path.join(kdamonds_dir(sysfs_root), str(p.index))
    running = kd is not None and kd.running
    if state == "stopped" and running:
        p.writes.append((base + "/state", "off"))
    config_writes = plan(kd.tree if kd is not None else None, desired, base)
    p.writes.extend(config_writes)
    if state == "running":
        if running:
            if config_writes or p.index in recommit:
                p.writes.append((base + "/state", "commit"))
        else:
            _plan_exclusive(p, sysfs_root, exclusive)
            p.writes.append((base + "/state", "on"))
    else:
        _plan_restore(p, sysfs_root, own, others_running)
    return p


def _plan_repairs(p, kds, own, ours, features, index):
    """Rewrite owned stopped slots (not the one planned) that a killed run left unlike their intent."""
    for i in sorted(ours):
        intent = own.slots[i].get("intent")
        if i == index or intent is None or kds[i].running:
            continue
        writes = _intent_writes(kds[i], intent["spec"], features)
        if writes:
            p.writes.extend(writes)
            p.repaired.append(i)


def _plan_exclusive(p, sysfs_root, policy):
    enabled = [(n, m) for n, m in exclusive_modules(sysfs_root).items() if m["enabled"]]
    if not enabled:
        return
    labels = ", ".join("%s (%s = Y)" % (m["label"], m["path"]) for unused, m in enabled)
    if policy == "fail":
        raise KdamondError(
            "%s is running; DAMON runs it exclusively, so the kernel refuses to start any sysfs kdamond (EBUSY). "
            "Set exclusive_modules=stop to let this module disable it now and re-enable it when our kdamonds "
            "stop, or disable it yourself" % labels)
    for name, m in enabled:
        p.writes.append((m["path"], "N"))
        p.stop_modules.append(name)


def _plan_restore(p, sysfs_root, own, others_running):
    """Re-enable the exclusive modules we stopped once none of our kdamonds runs."""
    if not own.stopped_modules:
        return
    if others_running:
        p.warnings.append("not re-enabling %s yet: other kdamonds still run" % ", ".join(
            EXCLUSIVE_MODULES.get(n, n) for n in own.stopped_modules))
        return
    for name in own.stopped_modules:
        p.writes.append((os.path.join(sysfs_root, "module", name, "parameters", "enabled"), "Y"))
        p.restore_modules.append(name)


def apply_plan(sysfs_root, features, own, p, applied):
    """Write the plan; the record states every touched slot's intent before the first write."""
    if not p.writes:
        return
    for index, spec in p.rewritten.items():
        slot = own.slots[index]
        own.intend(index, slot.get("name"), "off", spec)
    for index in p.new_idle_slots:
        own.intend(index, None, "off", _empty_spec())
    if p.index is not None:
        own.intend(p.index, None if p.release else p.name, p.intent[0], p.intent[1])
    own.stopped_modules = sorted(set(own.stopped_modules) | set(p.stop_modules))
    own.save()  # fails (RecordError) before any sysfs write when the record cannot be written
    apply(p.writes, applied)
    own.stopped_modules = [m for m in own.stopped_modules if m not in p.restore_modules]
    if p.wipe_all:
        own.slots = {}
    else:
        for index in sorted(set(p.rewritten) | set(p.new_idle_slots) | set(p.repaired) | {p.index} - {None}):
            kd = read_kdamond(sysfs_root, index, features)
            own.adopt(kd, digest(kd.tree))
    own.save()


def current(sysfs_root, features, p):
    """The live state of the planned slot after apply, for the module's result."""
    if p.index is None or p.release:
        return None
    kd = read_kdamond(sysfs_root, p.index, features)
    out = _config(kd)
    out.update(index=kd.index, pid=kd.pid)
    return out
