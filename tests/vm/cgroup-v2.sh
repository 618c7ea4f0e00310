#!/bin/sh
# Runs inside the cgroup-v2-only VM (tests/vm/vm.py): integration test
# binaries built on the host, against the berth binary built on the host,
# so every check also holds on a unified cgroup v2 host. One boot runs them
# all: each TESTBIN with its FILTERs, groups separated by `--next`; the
# first failing group stops the run.
# Usage (from the repository root, by `make test-vm`):
#   vm.py run "$PWD" sh /host/tests/vm/cgroup-v2.sh TESTBIN [FILTER...] [--next TESTBIN [FILTER...]]...
set -eu
[ $# -ge 1 ] || { echo "usage: $0 TESTBIN [FILTER...] [--next TESTBIN [FILTER...]]..." >&2; exit 2; }
[ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "not a cgroup v2 host" >&2; exit 1; }
export BERTH_BIN=${BERTH_BIN:-/host/target/x86_64-unknown-linux-gnu/debug/berth} BERTH_REPO=/host
# Fixtures (built on the host by `make fixtures`) are read from the share;
# bundles, rootfs copies and image stores go to the guest's tmpfs.
export BERTH_FIXTURES=/host/target/fixtures TMPDIR=/tmp
. /host/tests/vm/netfilter.sh
while [ $# -gt 0 ]; do
    bin=$1
    shift
    n=0
    for a in "$@"; do [ "$a" = --next ] && break; n=$((n + 1)); done
    filters=
    i=0
    for a in "$@"; do
        [ $i -lt $n ] || break
        filters="$filters $(printf %s "$a")"
        i=$((i + 1))
    done
    shift $n
    [ "${1:-}" != --next ] || shift
    echo "cgroup v2 VM: $(basename "$bin")$filters"
    # shellcheck disable=SC2086 # filters are test-name prefixes, no spaces
    "$bin" --test-threads=1 $filters
done
