"""Boot each guest, run probe_sysfs.py inside it and store the JSON under fixtures/.

    python -m tests.vm.record_fixtures [damon-6.12 damon-7.3 no-damon]

The fixtures are ground truth for the DAMON sysfs emulator (tests/emulator/).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .guest import Guest
from .images import IMAGE_NAMES

HERE = Path(__file__).resolve().parent
PROBE = HERE / "probe_sysfs.py"
FIXTURES = HERE / "fixtures"


def record(name: str) -> dict:
    with Guest(name) as g:
        t = time.monotonic()
        r = g.python(PROBE.read_text(), timeout=600)
        if r.rc != 0 and not r.stdout.strip():
            raise SystemExit(f"probe failed on {name} (rc {r.rc}):\n{r.stderr}")
        data = json.loads(r.stdout)
        data["probe_seconds"] = round(time.monotonic() - t, 1)
        data["image"] = {"name": name, "key": g.image.manifest["key"],
                         "kernel_package": g.image.manifest["kernel_package"],
                         "kernel_version": g.image.manifest["packages"].get(
                             g.image.manifest["kernel_package"], "")}
        if r.stderr.strip():
            data["probe_stderr"] = r.stderr[-4000:]
    out = FIXTURES / f"{name}.json"
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{name}: wrote {out} ({data['kernel']['uname_r']}, probe {data['probe_seconds']}s)")
    return data


def main(argv: list) -> int:
    names = argv or list(IMAGE_NAMES)
    for n in names:
        record(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
