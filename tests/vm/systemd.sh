#!/bin/sh
# Runs under a real systemd in the cgroup-v2 VM (`tests/vm/vm.py run --systemd`,
# through tests/vm/with-systemd.sh): the runtime's cgroup tests,
# the systemd driver's own and the fault injection, all with
# --systemd-cgroup (BERTH_TEST_SYSTEMD: tests/common adds the flag, gives
# each container a unit in system.slice and checks no unit is left).
# Then, given CLIENTS_TESTBIN, containerd (the shim with --systemd-cgroup),
# podman (--cgroup-manager systemd) and Docker (native.cgroupdriver=systemd),
# given CRI_TESTBIN, the kubelet's CRI calls (SystemdCgroup = true,
# kubepods slices); given ROOTLESS_TESTBIN, rootless --systemd-cgroup
# through a user's manager, and rootless podman with its systemd cgroup
# manager. The clients drive berth alone here (BERTH_TEST_BERTH_ONLY), every
# check required to pass, and Docker runs only its checks that involve the
# cgroup driver (CLIENT_QUICK): the VM is emulated, and runc's pass of the
# same checks, the harness's proof, is the host's part of `make test`.
# Each step's output goes to SYSTEMD_LOG as it runs (with-systemd.sh
# prints the service's output only when it ends; `make test-vm` points it
# at target/vm/systemd.log, readable from the host meanwhile), and to
# stdout at the end.
# Usage: systemd.sh RUNTIME_TESTBIN RELIABILITY_TESTBIN [CLIENTS_TESTBIN [CRI_TESTBIN [ROOTLESS_TESTBIN]]]
set -u
runtime=${1:?usage: $0 RUNTIME_TESTBIN RELIABILITY_TESTBIN}
reliability=${2:?usage: $0 RUNTIME_TESTBIN RELIABILITY_TESTBIN}
[ -d /run/systemd/system ] || { echo "not under systemd" >&2; exit 1; }
export BERTH_TEST_SYSTEMD=1 BERTH_REPO=/host BERTH_FIXTURES=/host/target/fixtures TMPDIR=/tmp
export BERTH_BIN=${BERTH_BIN:-/host/target/x86_64-unknown-linux-gnu/debug/berth}
. /host/tests/vm/netfilter.sh
# podman's checkpoint and restore (tests/clients/podman.sh), where CRIU
# and its modules are in the guest.
if command -v criu >/dev/null && [ -e /sys/module/nf_conntrack_netlink ]; then
    export CLIENT_CRIU=1
fi
log=${SYSTEMD_LOG:-/tmp/systemd-suite.log}
: > "$log"
if [ -n "${CLIENT_CRIU:-}" ]; then
    echo "podman's checkpoint checks: on" >> "$log"
else
    echo "podman's checkpoint checks: off (no CRIU or its modules)" >> "$log"
fi
trap 'cat "$log"' EXIT
step() { # NAME COMMAND...: runs it, logged with its time; stops at a failure
    name=$1; shift
    start=$(date +%s)
    echo "== $name" >> "$log"
    "$@" >> "$log" 2>&1
    rc=$?
    echo "== $name: exit $rc after $(( $(date +%s) - start ))s" >> "$log"
    [ $rc = 0 ] || exit $rc
}
step "systemd driver: runtime cgroup and systemd tests" \
    "$runtime" --test-threads=1 cgroups:: systemd:: spec13::cgroup_unified
step "systemd driver: fault injection" \
    env BERTH_FAULT_ROUNDS=4 BERTH_FAULT_MAX_MS=600 "$reliability" --test-threads=1 sigkill_at_any_instant_leaves_nothing
# Docker's checks that do not involve the cgroup driver stay the host's.
export BERTH_TEST_BERTH_ONLY=1 CLIENT_QUICK=1
if [ -n "${3:-}" ]; then
    step "systemd driver: containerd, podman and Docker" "$3" --test-threads=1
fi
if [ -n "${4:-}" ]; then
    step "systemd driver: CRI (kubepods slices)" "$4" --test-threads=1
fi
if [ -n "${5:-}" ]; then
    step "systemd driver: rootless, the user's manager" \
        "$5" --test-threads=1 the_user_manager_takes_the_container rootless_podman
fi
