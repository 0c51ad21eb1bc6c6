# linux_mm.damon — the single entry point.
#
#   make deps       the Debian/Ubuntu packages of every target (.ci/bootstrap-host all; root or passwordless sudo)
#   make venv       .venv (requirements/test.txt) and .venv-lint (requirements/lint.txt), all pinned
#   make test       THE test command: fast pytest + ansible-test sanity + ansible-lint + galaxy build + guest tests
#   make test-fast  pytest only, without guest (QEMU) tests; PYTEST_WORKERS processes (default 4, 0: serial)
#   make test-guests  guest tests (QEMU TCG): image build/check, tests/vm smoke, emulator conformance, molecule
#   make test-apps  guest tests with real applications (redis, PostgreSQL) and the MADV_COLLAPSE facts (not in make test)
#   make images     build (or reuse) the Debian guest images damon-6.12, damon-7.3, no-damon (cached, keyed)
#   make molecule   the molecule scenarios only (SCENARIOS="damon-6.12 damon-7.3 no-damon" by default)
#   make sanity     ansible-test sanity --venv --python 3.11 (no ignore files allowed)
#   make lint       ansible-lint --offline --profile production (from .venv-lint)
#   make build      ansible-galaxy collection build into build/ + install check
#   make demo       the main job: redis under skewed GET load in a real Linux 7.3 DAMON guest, tuned by playbooks/hugepage.yml
#   make demo-emulated  the same playbooks (hugepage.yml with report, stop.yml) on an emulated Linux 6.12 DAMON, no guest
#   make bench      benchmarks vs the published anchors (guests, host speed-up, fleet); results in bench/results/ (BENCH_ARGS: --quick, --only SECTION)
#   make clean      remove build output, tests/output, caches, temporary collection trees
#
# Every target first runs .ci/bootstrap-host with the package groups it needs (HOST_GROUPS):
# nothing to do when they are installed; otherwise it installs them (root or passwordless
# sudo) or stops before anything else and prints the one command to run.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
LINT_VENV := $(CURDIR)/.venv-lint
PY := $(VENV)/bin/python
PIP_INSTALL := -m pip install --disable-pip-version-check --no-input
PYTEST_ARGS ?=
# make test-fast runs the tests in this many processes (pytest-xdist), test by test (--dist
# loadgroup: a whole file in one process left one long file running alone at the end); tests
# marked xdist_group(NAME) (a shared module fixture, tests that compare results) stay in one
# process. 0 runs them serially.
PYTEST_WORKERS ?= 4
# Parts of `make test`, run in this order; each one runs even if an earlier one failed.
TEST_PARTS ?= test-fast sanity lint build test-guests
# Everything that boots guests tries twice by default: a TCG boot of the Debian kernels occasionally panics
# in its first second (seen: set_next_task_fair, 1 of about 16 boots on 2026-11-27). SCENARIOS narrows
# `make molecule` (default: all).
BOOT_ENV := LINUX_MM_DAMON_BOOT_ATTEMPTS=$${LINUX_MM_DAMON_BOOT_ATTEMPTS:-2}
GUEST_ENV := LINUX_MM_DAMON_GUEST_TESTS=1 $(BOOT_ENV)
SCENARIOS ?=

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help deps host-packages venv test test-fast test-guests test-apps images molecule pytest sanity lint build demo demo-emulated clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# --- system packages and environments ---------------------------------------------

# Package groups of .ci/bootstrap-host (which holds the package lists) per target. A target's
# value also holds for its prerequisites, so host-packages runs once per make, first.
HOST_GROUPS := base
test test-guests test-apps pytest bench: HOST_GROUPS := all
test-fast demo-emulated: HOST_GROUPS := base emulator workloads
images molecule demo: HOST_GROUPS := base workloads guests

host-packages:
	@$(CURDIR)/.ci/bootstrap-host $(HOST_GROUPS)

deps:
	@$(CURDIR)/.ci/bootstrap-host all

venv: host-packages $(VENV)/.installed $(LINT_VENV)/.installed

# Order-only: the packages come first but do not make the environment out of date.
$(VENV)/.installed: requirements/test.txt | host-packages
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) -r requirements/test.txt
	@touch $@

$(LINT_VENV)/.installed: requirements/lint.txt | host-packages
	@test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python $(PIP_INSTALL) -r requirements/lint.txt
	@touch $@

# --- tests ----------------------------------------------------------------------

test: host-packages venv
	@failed=(); \
	for part in $(TEST_PARTS); do \
	  start=$$SECONDS; \
	  echo "=== make test: $$part"; \
	  if $(MAKE) --no-print-directory $$part; then status=ok; else status=FAILED; failed+=("$$part"); fi; \
	  echo "=== make test: $$part $$status in $$((SECONDS - start))s"; \
	done; \
	if (( $${#failed[@]} )); then echo "=== make test: FAILED: $${failed[*]}"; exit 1; fi; \
	echo "=== make test: all passed ($(TEST_PARTS))"

# All pytest suites (guest tests only with LINUX_MM_DAMON_GUEST_TESTS=1). Exit code 5
# (nothing collected) is a failure like any other non-zero code.
pytest: host-packages $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: host-packages $(VENV)/.installed
	LINUX_MM_DAMON_GUEST_TESTS= $(PY) -m pytest -m "not vm" -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# --- guest tests (QEMU TCG; never the host kernel) -------------------------------

# Resolves package versions against the mirror and builds what changed (first run ≈ 3 min);
# later steps then use the cached images without asking the mirror again.
images: host-packages $(VENV)/.installed
	$(PY) -m tests.vm.images build all --prune

test-guests: host-packages images
	$(GUEST_ENV) LINUX_MM_DAMON_IMAGES_OFFLINE=1 $(PY) -m pytest -m "vm and not apps" --durations=0 $(PYTEST_ARGS)

# Real applications (redis, PostgreSQL) and the MADV_COLLAPSE fact sweep in the guests (~25 min; not in `make test`).
test-apps: host-packages images
	$(GUEST_ENV) LINUX_MM_DAMON_IMAGES_OFFLINE=1 $(PY) -m pytest -m apps --durations=0 $(PYTEST_ARGS)

molecule: host-packages $(VENV)/.installed
	PATH="$(VENV)/bin:$$PATH" LINUX_MM_DAMON_BOOT_ATTEMPTS=$${LINUX_MM_DAMON_BOOT_ATTEMPTS:-2} \
	  $(PY) -m tests.vm.run_molecule $(SCENARIOS)

sanity: $(VENV)/.installed
	$(PY) -m tests.tooling.sanity

lint: $(LINT_VENV)/.installed
	$(PY) -m tests.tooling.lint

build: $(VENV)/.installed
	$(PY) -m tests.tooling.build --output build

# The main job: a real Linux 7.3 DAMON guest under QEMU with redis under GET load (DEMO_ARGS: --kernel damon-6.12,
# --app hotcold for the synthetic workload, --policy stepdown).
demo: host-packages $(VENV)/.installed
	$(BOOT_ENV) $(PY) -m tests.demo $(DEMO_ARGS)

# The same flow on an emulated Linux 6.12 DAMON sysfs: a real workload on this host, real user-space collapse.
demo-emulated: host-packages $(VENV)/.installed
	$(PY) -m tests.demo_emulated

# Benchmarks (bench/README.md): matplotlib from bench/requirements.txt into .venv, then all sections.
.PHONY: bench
bench: host-packages $(VENV)/.installed
	$(PY) $(PIP_INSTALL) -q -r bench/requirements.txt
	$(BOOT_ENV) $(PY) -m bench $(BENCH_ARGS)

# --- housekeeping ---------------------------------------------------------------

clean:
	-@test -x $(PY) && $(PY) -m tests.tooling.collection_tree --clean || true
	rm -rf build tests/output .pytest_cache .hypothesis .cache
	find . -path ./.git -prune -o -path './.venv*' -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV) $(LINT_VENV)
