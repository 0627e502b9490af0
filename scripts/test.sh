#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one:
#   1. install (or find cached) every server and tool the tests need,
#   2. format and lint checks, build the tests,
#   3. start the real servers on loopback ports of their own,
#   4. run every test in the workspace against them, then the manifest checks,
#   5. stop the servers (also on failure or Ctrl-C).
# Caches live under $TT_CACHE (default ~/.cache/twinkle-ticket).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack/common.sh
started=$SECONDS
step() { printf '\n\033[1;32m==> %s\033[0m (%ss)\n' "$*" "$((SECONDS - started))" >&2; }

step "installing the test stack (cached under $TT_CACHE)"
scripts/stack/install.sh
if ! command -v terraform >/dev/null; then
  # terraform is not on any registry this machine reaches as a package; its
  # checks are skipped loudly, never passed silently.
  printf '\n\033[1;33m%s\033[0m\n\n' "NOTICE: terraform is not installed: terraform fmt checks are SKIPPED" >&2
  export TT_TERRAFORM_MISSING=1
fi

# One target directory per machine, shared by every clone: a fresh CI clone
# rebuilds only the workspace crates, not the dependency graph.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TT_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "building tests"
cargo test --workspace --locked --no-run

step "starting the real servers"
trap 'step "stopping the servers"; scripts/stack/down.sh' EXIT
scripts/stack/up.sh
source "$TT_RUN/env.sh"

step "cargo test (every test in the workspace, against the real servers)"
cargo test --workspace --locked -- --test-threads="${TT_TEST_THREADS:-4}"

step "all tests passed in $((SECONDS - started))s"
