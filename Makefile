# Developer entry points. `make demo` and `make test` are the two set-up commands of the
# README: they work on a fresh machine and install (without root) what the build lacks.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/venv/bin:$(HOME)/.cargo/bin:$(PATH)

FUZZ_SECONDS ?= 20
FUZZ_TARGETS = $(shell ls fuzz/fuzz_targets 2>/dev/null | sed 's/\.rs$$//')

.PHONY: tools web-test-deps demo test bench lint fmt fuzz fuzz-asan fuzz-build loadgen pesq-tools jitterbench

tools:
	@scripts/ensure-tools.sh

## A real call through a real supernode, on embedded defaults (the demo runs the `edge`
## binary that sits next to `supernode`, so both are built first, in one cargo call; the
## demo then runs the built binary: a second `cargo run` would rebuild the relay crates
## with the feature set of `-p supernode` alone).
## With Chromium, node and npm installed the demo adds a browser (supernode demo --browser:
## headless Chromium calls an edge client); without them it says how to get them.
demo: tools
	cargo build --release -p supernode -p supernode-edge
	@if [ -x /usr/bin/chromium ] && command -v node >/dev/null && command -v npm >/dev/null; then \
	  $(MAKE) --no-print-directory web-test-deps && ./target/release/supernode demo --browser; \
	else \
	  echo "make demo: no Chromium/node/npm, so no browser call in this demo (Debian: apt-get install chromium nodejs npm, then make demo again)"; \
	  ./target/release/supernode demo; \
	fi

## The browser tests' npm packages (playwright-core, pinned by web/tests/package-lock.json);
## the tests skip without them (and without /usr/bin/chromium) unless
## SUPERNODE_REQUIRE_EXTERNAL=1.
web-test-deps:
	@if command -v npm >/dev/null; then \
	  [ -d web/tests/node_modules/playwright-core ] || (cd web/tests && npm ci --no-audit --no-fund); \
	else echo "make: no npm: the browser tests will skip (apt-get install nodejs npm chromium)"; fi

## All tests of the workspace (the browser tests in supernode/tests/web_browser.rs included).
## (The hostile-client tests hold ~2,000 connections open: the open-file limit is raised to
## the hard limit, at most 20000, for the test run.)
test: tools web-test-deps
	hard=$$(ulimit -Hn); if [ "$$hard" = unlimited ] || [ "$$hard" -gt 20000 ]; then hard=20000; fi; \
	[ "$$(ulimit -n)" -ge "$$hard" ] || ulimit -n "$$hard" 2>/dev/null || true; \
	cargo test --workspace

## Criterion benchmarks (figures in target/criterion).
bench: tools
	cargo bench -p supernode-benches

## Relay packet-rate benchmark: relay vs bare forwarder vs rtpengine (see loadgen --help).
loadgen: tools
	@test -x /usr/bin/rtpengine || echo "loadgen: no /usr/bin/rtpengine, its row will read 'not measured' (Debian: apt-get install rtpengine-daemon)"
	cargo run --release -p supernode-benches --bin loadgen -- --pin $(LOADGEN_ARGS)

## Python packages jitterbench's PESQ scoring needs (numpy, pesq from PyPI) in .tools/venv.
pesq-tools: tools
	@test -x .tools/venv/bin/python3 || python3 -m venv .tools/venv
	@.tools/venv/bin/python3 -c 'import numpy, pesq' 2>/dev/null || \
	  .tools/venv/bin/pip install --quiet --disable-pip-version-check numpy pesq

## Jitter buffers on every emulator profile, scored with PESQ and the E-model.
jitterbench: pesq-tools
	cargo run --release -p supernode-benches --bin jitterbench -- $(JITTERBENCH_ARGS)

lint: tools
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

fuzz-build: tools
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && cargo fuzz build --sanitizer none

## Runs every fuzz target for FUZZ_SECONDS each (stable toolchain, no sanitizer).
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
	  mkdir -p fuzz/corpus/$$t; \
	  (cd fuzz && cargo fuzz run --sanitizer none $$t -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done

## The same with AddressSanitizer (a nightly feature: RUSTC_BOOTSTRAP on the stable toolchain);
## e.g. `make fuzz-asan FUZZ_SECONDS=1800 FUZZ_TARGETS="relay_core srtp"`. Not in CI (the
## budget is 30 min per target): run by hand, a few targets per session.
fuzz-asan: tools
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz (ASan) $$t for $(FUZZ_SECONDS)s"; \
	  mkdir -p fuzz/corpus/$$t; \
	  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer address $$t -- -max_total_time=$(FUZZ_SECONDS)) || exit 1; \
	done
