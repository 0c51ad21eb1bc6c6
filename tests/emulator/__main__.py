"""``python -m tests.emulator --kernel 7.3 [--scenario file.yaml] [--exclusive damon_stat=N] [--hosts N] MOUNTPOINT``

Runs the emulator in the foreground until unmounted (``fusermount3 -u MOUNTPOINT``)
or interrupted. ``--hosts N``: N independent hosts, ``MOUNTPOINT/h000`` ... (multihost.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
import time

from . import build_kernel
from .fs import mount
from .kernel_input import kstrtobool
from .multihost import MultiHostOperations, host_names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__.split("\n")[2])
    parser.add_argument("--kernel", default="7.3", help="kernel version to emulate (6.1 = no DAMON, "
                        "6.6, 6.12, 6.18, 7.3, or any X.Y)")
    parser.add_argument("--scenario", help="YAML/JSON scenario file (see tests/emulator/scenario.py)")
    parser.add_argument("--exclusive", action="append", default=[], metavar="MODULE=Y|N",
                        help="enable/disable an exclusive DAMON module at boot, e.g. damon_stat=N")
    parser.add_argument("--speed", type=float, help="virtual seconds per real second (0 = frozen)")
    parser.add_argument("--hosts", type=int, help="serve this many independent hosts, one directory each "
                        "(h000, h001, ...), all built from the same scenario")
    parser.add_argument("--debug", action="store_true", help="FUSE debug output")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="unmount and exit when the starting process dies (used by EmulatedSysfs)")
    parser.add_argument("mountpoint")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="emulator: %(levelname)s %(message)s")
    overrides = {}
    for item in args.exclusive:
        name, unused, value = item.partition("=")
        try:
            overrides[name] = kstrtobool(value or "Y")
        except OSError:
            print("--exclusive %s: value must be Y or N" % item, file=sys.stderr)
            return 2
    try:
        if args.hosts:  # one kernel per host, each with its own clock, model and kdamonds
            kernel = MultiHostOperations({name: build_kernel(args.kernel, args.scenario, modules=overrides,
                                                             speed=args.speed) for name in host_names(args.hosts)})
        else:
            kernel = build_kernel(args.kernel, args.scenario, modules=overrides, speed=args.speed)
    except (ValueError, OSError) as e:
        print("emulator: bad scenario: %s" % e, file=sys.stderr)
        return 2
    if args.exit_with_parent:
        watch_parent(args.mountpoint)
    mount(kernel, args.mountpoint, foreground=True, debug=args.debug)
    return 0


def watch_parent(mountpoint: str) -> None:
    """If the test process is killed without cleaning up, do not leave a mount behind."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        subprocess.run(["fusermount3", "-u", mountpoint], timeout=10,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
