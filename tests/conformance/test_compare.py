"""Fast tests of the conformance comparison (no emulator, no guest)."""

from __future__ import annotations

from tests.conformance import compare


def test_normalise_drops_what_differs_between_runs():
    record = {
        "time": "x", "kernel": {"uname_r": "6.12"}, "probe_version": 2,
        "tree": {"kdamonds/0/pid": {"type": "file", "mode": "0400", "value": "812\n"},
                 "kdamonds/0/state": {"type": "file", "mode": "0600", "value": "on\n"},
                 "kdamonds/0/contexts/0/schemes/0/tried_regions/3/start": {"type": "file", "value": "1"}},
        "state_words_on": {"commit": {"result": "ok", "seconds": 0.2}},
        "module_params": {"damon_stat": {"kdamond_pid": {"type": "file", "mode": "0400", "value": "44\n"}}},
    }
    out = compare.normalise(record)
    assert "time" not in out and "kernel" not in out
    assert out["tree"] == {"kdamonds/0/pid": {"type": "file", "mode": "0400"},
                           "kdamonds/0/state": {"type": "file", "mode": "0600", "value": "on\n"}}
    assert out["state_words_on"] == {"commit": "ok"}
    assert out["module_params"] == {"damon_stat": {"kdamond_pid": {"type": "file", "mode": "0400"}}}


def test_differences_are_readable_leaf_by_leaf():
    real = {"probe_version": 2, "bad_writes": [{"path": "a", "result": "EINVAL"}],
            "tree": {"x": {"mode": "0600"}, "gone": {"mode": "0400"}}, "kernel_only": 1}
    emulated = {"probe_version": 2, "bad_writes": [{"path": "a", "result": "ERANGE"}],
                "tree": {"x": {"mode": "0644"}, "extra": {"mode": "0400"}}, "emu_only": 1}
    lines = compare.differences(emulated, real, "kernel")
    assert lines == [
        'bad_writes [0]/result: kernel "EINVAL", emulator "ERANGE"',
        "emu_only: only the emulator records this section",
        "kernel_only: only the kernel records this section",
        'tree extra/mode: only in the emulator ("0400")',
        'tree gone/mode: missing in the emulator (kernel: "0400")',
        'tree x/mode: kernel "0600", emulator "0644"',
    ]
    assert compare.differences(real, real) == []


def test_report_caps_long_diffs():
    text = compare.report(["line %d" % i for i in range(compare.MAX_DIFF_LINES + 5)], "emulator 7.3 vs kernel")
    assert text.startswith("emulator 7.3 vs kernel: %d difference(s)" % (compare.MAX_DIFF_LINES + 5))
    assert text.endswith("... and 5 more")
    assert compare.report([], "t") == "t: no differences"
