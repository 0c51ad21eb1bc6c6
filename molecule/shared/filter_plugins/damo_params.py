# Copyright: (c) 2026, linux_mm.damon contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter for the molecule verify step: compare damo's view of a kdamond with the request.

``damo report damon --damon_params --format json --raw`` (damo 3.4.x) prints the live
kdamonds. ``--raw`` prints plain numbers, but in damo's own units: intervals and
``apply_interval_us`` in microseconds, quota ``time_ms``/``reset_interval_ms`` and
watermark ``interval_us`` in nanoseconds, access counts as ``"<n> samples"``, ages as
``"<n> aggr_intervals"``, weights and watermarks as floats. The filter converts them
and fills the request with linux_mm.damon.kdamond's defaults, so every compared field is
explicit.

    {{ damo_json | damo_params_diff(request, kdamond_pid=pid) }}  ->  ["field: asked X, damo reports Y", ...]
"""

from __future__ import annotations

import re

U32_MAX = 2 ** 32 - 1
U64_MAX = 2 ** 64 - 1
NS_PER_US = 1000
NS_PER_MS = 1000 * 1000

ATTR_DEFAULTS = {"sample_us": 5000, "aggr_us": 100000, "update_us": 1000000,
                 "min_nr_regions": 10, "max_nr_regions": 1000}
PATTERN_DEFAULTS = {"min_size": 0, "max_size": U64_MAX, "min_nr_accesses": 0,
                    "max_nr_accesses": U32_MAX, "min_age": 0, "max_age": U32_MAX}
QUOTA_DEFAULTS = {"ms": 0, "bytes": 0, "reset_interval_ms": 0}
WEIGHT_DEFAULTS = {"sz_permil": 0, "nr_accesses_permil": 0, "age_permil": 0}
WATERMARK_DEFAULTS = {"metric": "none", "interval_us": 0, "high": 0, "mid": 0, "low": 0}

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def _num(value):
    """damo's raw number (int, "5000", "5 samples", "100.000000") as an int or float."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    match = _NUMBER.match(str(value))
    if not match:
        raise ValueError("not a number: %r" % (value,))
    text = match.group(1)
    number = float(text) if "." in text else int(text)
    return int(number) if isinstance(number, float) and number.is_integer() else number


def _with_defaults(given, defaults):
    out = dict(defaults)
    out.update(dict((k, v) for k, v in (given or {}).items() if v is not None))
    return out


def _compare(diffs, field, asked, reported, scale=1):
    try:
        got = _num(reported) if scale is not None else reported
    except ValueError:
        diffs.append("%s: asked %r, damo reports %r (not a number)" % (field, asked, reported))
        return
    if scale not in (None, 1):
        got = got / float(scale)
        got = int(got) if got == int(got) else got
    if isinstance(got, str):
        got = got.strip()
    if got != asked:
        diffs.append("%s: asked %r, damo reports %r" % (field, asked, reported))


def _get(tree, *keys):
    for key in keys:
        if not isinstance(tree, (dict, list)):
            return None
        if isinstance(tree, list):
            tree = tree[key] if -len(tree) <= key < len(tree) else None
        else:
            tree = tree.get(key)
    return tree


def damo_params_diff(damo, request, kdamond_pid=None, kdamond_index=0):
    """Differences between damo's report and a linux_mm.damon.kdamond request.

    ``damo`` is the parsed JSON (a list of kdamonds); ``request`` holds the module's
    ``operations``, ``monitoring_attrs``, ``targets`` and ``schemes`` options. Returns a
    list of readable lines (empty when everything matches).
    """
    diffs = []
    if not isinstance(damo, list) or len(damo) <= kdamond_index:
        return ["damo reports %d kdamond(s), expected one at index %d" % (
            len(damo) if isinstance(damo, list) else 0, kdamond_index)]
    kdamond = damo[kdamond_index]
    _compare(diffs, "state", "on", kdamond.get("state"), scale=None)
    if kdamond_pid is not None:
        _compare(diffs, "kdamond pid", int(kdamond_pid), kdamond.get("pid"))
    contexts = kdamond.get("contexts") or []
    if len(contexts) != 1:
        return diffs + ["contexts: asked 1, damo reports %d" % len(contexts)]
    ctx = contexts[0]
    _compare(diffs, "operations", request.get("operations") or "vaddr", ctx.get("ops"), scale=None)

    attrs = _with_defaults(request.get("monitoring_attrs"), ATTR_DEFAULTS)
    intervals = ctx.get("intervals") or {}
    for ours, theirs in (("sample_us", "sample_us"), ("aggr_us", "aggr_us"), ("update_us", "ops_update_us")):
        _compare(diffs, "monitoring_attrs.%s" % ours, attrs[ours], intervals.get(theirs))
    _compare(diffs, "monitoring_attrs.min_nr_regions", attrs["min_nr_regions"], _get(ctx, "nr_regions", "min"))
    _compare(diffs, "monitoring_attrs.max_nr_regions", attrs["max_nr_regions"], _get(ctx, "nr_regions", "max"))

    targets = request.get("targets") or []
    reported = ctx.get("targets") or []
    if len(reported) != len(targets):
        diffs.append("targets: asked %d, damo reports %d" % (len(targets), len(reported)))
    for i, (target, got) in enumerate(zip(targets, reported)):
        if target.get("pid") is not None:
            _compare(diffs, "targets[%d].pid" % i, int(target["pid"]), got.get("pid"))
        regions = target.get("regions") or []
        got_regions = got.get("regions") or []
        if len(regions) != len(got_regions):
            diffs.append("targets[%d].regions: asked %d, damo reports %d" % (i, len(regions), len(got_regions)))

    schemes = request.get("schemes") or []
    reported = ctx.get("schemes") or []
    if len(reported) != len(schemes):
        diffs.append("schemes: asked %d, damo reports %d" % (len(schemes), len(reported)))
    for i, (scheme, got) in enumerate(zip(schemes, reported)):
        _compare_scheme(diffs, "schemes[%d]" % i, scheme, got)
    return diffs


def _compare_scheme(diffs, where, scheme, got):
    _compare(diffs, where + ".action", scheme["action"], got.get("action"), scale=None)
    pattern = _with_defaults(scheme.get("access_pattern"), PATTERN_DEFAULTS)
    for ours, path in (("min_size", ("sz_bytes", "min")), ("max_size", ("sz_bytes", "max")),
                       ("min_nr_accesses", ("nr_accesses", "min")), ("max_nr_accesses", ("nr_accesses", "max")),
                       ("min_age", ("age", "min")), ("max_age", ("age", "max"))):
        _compare(diffs, "%s.access_pattern.%s" % (where, ours), pattern[ours], _get(got, "access_pattern", *path))
    _compare(diffs, where + ".apply_interval_us", scheme.get("apply_interval_us") or 0, got.get("apply_interval_us"))
    quotas = _with_defaults(scheme.get("quotas"), QUOTA_DEFAULTS)
    _compare(diffs, where + ".quotas.ms", quotas["ms"], _get(got, "quotas", "time_ms"), scale=NS_PER_MS)
    _compare(diffs, where + ".quotas.bytes", quotas["bytes"], _get(got, "quotas", "sz_bytes"))
    _compare(diffs, where + ".quotas.reset_interval_ms", quotas["reset_interval_ms"],
             _get(got, "quotas", "reset_interval_ms"), scale=NS_PER_MS)
    weights = _with_defaults((scheme.get("quotas") or {}).get("weights"), WEIGHT_DEFAULTS)
    for name in ("sz_permil", "nr_accesses_permil", "age_permil"):
        _compare(diffs, "%s.quotas.weights.%s" % (where, name), weights[name], _get(got, "quotas", "weights", name))
    marks = _with_defaults(scheme.get("watermarks"), WATERMARK_DEFAULTS)
    _compare(diffs, where + ".watermarks.metric", marks["metric"], _get(got, "watermarks", "metric"), scale=None)
    _compare(diffs, where + ".watermarks.interval_us", marks["interval_us"], _get(got, "watermarks", "interval_us"),
             scale=NS_PER_US)
    for name in ("high", "mid", "low"):
        _compare(diffs, "%s.watermarks.%s" % (where, name), marks[name], _get(got, "watermarks", name + "_permil"))
    filters = scheme.get("filters") or []
    if len(got.get("filters") or []) != len(filters):
        diffs.append("%s.filters: asked %d, damo reports %d" % (where, len(filters), len(got.get("filters") or [])))


class FilterModule(object):  # pylint: disable=too-few-public-methods
    """Filters of the molecule scenarios (not part of the collection's plugins)."""

    def filters(self):
        return {"damo_params_diff": damo_params_diff}
