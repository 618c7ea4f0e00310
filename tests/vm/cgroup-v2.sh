#!/bin/sh
# Runs inside the cgroup-v2-only VM (../shared/vm/run-in-vm.sh): an
# integration test binary built on the host, against the berth binary built
# on the host, so every check also holds on a unified cgroup v2 host.
# Usage (from the repository root, by `make test`):
#   run-in-vm.sh "$PWD" sh /host/tests/vm/cgroup-v2.sh TESTBIN [FILTER...]
set -eu
testbin=${1:?usage: $0 TESTBIN [FILTER...]}
shift
[ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "not a cgroup v2 host" >&2; exit 1; }
export BERTH_BIN=${BERTH_BIN:-/host/target/x86_64-unknown-linux-gnu/debug/berth} BERTH_REPO=/host
# Fixtures (built on the host by `make fixtures`) are read from the share;
# bundles, rootfs copies and image stores go to the guest's tmpfs.
export BERTH_FIXTURES=/host/target/fixtures BERTH_SPECS=/host/target/specs TMPDIR=/tmp
exec "$testbin" --test-threads=1 "$@"
