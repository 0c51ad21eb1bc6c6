"""Scenario files: initial state and access model of one emulated host.

Keys (all optional)::

    speed: 1.0                 # virtual seconds per real second; 0 = move only via advance
    modules: {damon_stat: true}    # exclusive modules enabled at boot (profile default:
                                   # damon_stat on where it exists, as Debian ships it)
    thp: {enabled: madvise, defrag: madvise, khugepaged: {pages_to_scan: 4096}}
    metrics: {some_mem_psi_us: 0}  # current values of non-user quota goal metrics
    action_costs_us_per_mib: {collapse: 500}   # drives time-quota (`ms`) conversion
    targets: [...]             # the access model, see access_model.py
    kdamonds: [...]            # pre-existing kdamonds, written through the sysfs files

``kdamonds`` entries mirror the sysfs tree: a mapping is a directory, a list is an
``nr_*`` directory (its length is written to the ``nr_*`` file first), a scalar is a
file value (booleans become Y/N). ``state`` is written last, e.g. ``state: "on"``.
"""

from __future__ import annotations

import copy
import json
import os

KNOWN_KEYS = {"speed", "modules", "thp", "metrics", "action_costs_us_per_mib", "targets", "kdamonds"}

# What the development host runs (read from its /sys, never written): a foreign
# paddr kdamond 0 with a pageout scheme. Useful to test coexistence.
FOREIGN_PADDR_KDAMOND = {
    "contexts": [{
        "operations": "paddr",
        "monitoring_attrs": {
            "intervals": {"sample_us": 500000, "aggr_us": 5000000},
            "nr_regions": {"min": 1024, "max": 8192},
        },
        "targets": [{"pid_target": 0, "regions": [{"start": 4294967296, "end": 6845104128}]}],
        "schemes": [{
            "action": "pageout",
            "access_pattern": {"sz": {"min": 0, "max": 2**64 - 1},
                               "nr_accesses": {"min": 0, "max": 1},
                               "age": {"min": 12, "max": 2**32 - 1}},
            "quotas": {"ms": 50, "bytes": 134217728, "reset_interval_ms": 1000,
                       "weights": {"age_permil": 1000}},
        }],
    }],
    "state": "on",
}


def parse(text: str):
    """JSON or YAML text (None when empty); ValueError when it is neither.

    JSON, what EmulatedSysfs and the tests write, is read without importing PyYAML: that import
    was a third of an emulator's start-up, and tests start about 170 emulators (issue 11).
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml  # pylint: disable=import-outside-toplevel

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(str(e)) from e


def load(source) -> dict:
    """A scenario from None, a dict, or a YAML/JSON file path."""
    if source is None:
        data = {}
    elif isinstance(source, dict):
        data = copy.deepcopy(source)
    else:
        with open(os.fspath(source)) as f:
            data = parse(f.read()) or {}
    if not isinstance(data, dict):
        raise ValueError("a scenario is a mapping, got %r" % type(data).__name__)
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise ValueError("unknown scenario keys: %s (known: %s)"
                         % (", ".join(sorted(unknown)), ", ".join(sorted(KNOWN_KEYS))))
    return data


def _text(value) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    return str(value)


def apply_kdamonds(kernel, specs: list) -> None:
    """Write the scenario's kdamonds through the emulated files (same checks as users get)."""
    if not specs:
        return
    if kernel.admin is None:
        raise ValueError("kernel %s has no DAMON: cannot create kdamonds" % kernel.profile.name)
    kdamonds = kernel.admin.kdamonds
    _store(kdamonds, kdamonds.nr_name, len(specs), "kdamonds")
    for i, spec in enumerate(specs):
        _apply(kdamonds[i], spec, "kdamonds/%d" % i)
    for i, spec in enumerate(specs):
        if "state" in spec:
            _store(kdamonds[i], "state", spec["state"], "kdamonds/%d" % i)


def _apply(node, spec: dict, where: str) -> None:
    for key, value in spec.items():
        if key == "state":
            continue
        path = "%s/%s" % (where, key)
        if isinstance(value, list):
            child = node.dirs.get(key)
            if child is None or not hasattr(child, "nr_name"):
                raise ValueError("%s: not an nr_* directory on this kernel" % path)
            _store(child, child.nr_name, len(value), path)
            for i, item in enumerate(value):
                _apply(child[i], item, "%s/%d" % (path, i))
        elif isinstance(value, dict):
            child = node.dirs.get(key)
            if child is None:
                raise ValueError("%s: no such directory on this kernel" % path)
            _apply(child, value, path)
        else:
            _store(node, key, value, where)


def _store(node, name: str, value, where: str) -> None:
    attr = node.files.get(name)
    if attr is None:
        raise ValueError("%s/%s: no such file on this kernel" % (where, name))
    try:
        attr.store(_text(value))
    except OSError as e:
        raise ValueError("%s/%s: writing %r failed: %s" % (where, name, value, os.strerror(e.errno))) from None
