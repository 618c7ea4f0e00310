#!/bin/bash
# Real-client checks through containerd: a private containerd (own root,
# state dir and socket, CRI off) drives RUNTIME through containerd-shim-runc-v2
# (`ctr run --runc-binary`). Prints one line per check and exits non-zero if
# any failed. With CLIENT_SYSTEMD=1 (under systemd) the shim runs the runtime
# with --systemd-cgroup and each container gets a unit in system.slice.
# Usage: containerd.sh RUNTIME_BINARY BUSYBOX_DOCKER_ARCHIVE
set -u
rt=$(readlink -f "$1"); archive=$(readlink -f "$2")
name=$(basename "$rt")
client=containerd
tmp=$(mktemp -d /tmp/berth-test-ctrd-XXXXXX)
here=$(dirname "$(readlink -f "$0")")
. "$here/lib.sh"
ns=berth-test-$name
sock=$tmp/containerd.sock
# runc keeps its parent cgroups: removed after, with everything else the
# test made (containerd's own mounts, the shims' state), but only if it was
# not there before.
record_new /run/containerd "/run/containerd/runc/$ns" /run/berth /run/runc "cgroup:berth-test-$name"
cat > "$tmp/config.toml" <<C
version = 2
root = "$tmp/root"
state = "$tmp/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
C
containerd --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
daemon=$!
ctr() { command ctr --address "$sock" --namespace "$ns" "$@"; }
cleanup() {
    for c in $(ctr task ls -q 2>/dev/null); do ctr task kill -s KILL "$c" >/dev/null 2>&1; sleep 0.2; ctr task delete -f "$c" >/dev/null 2>&1; done
    for c in $(ctr container ls -q 2>/dev/null); do ctr container delete "$c" >/dev/null 2>&1; done
    kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
    # Shims of deleted tasks exit on their own, shortly.
    for _ in $(seq 50); do pgrep -f "address $sock" >/dev/null || break; sleep 0.1; done
    remove_new
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
ctr images import "$archive" >/dev/null || { echo "FAIL $name containerd: import"; exit 1; }
img=$(ctr images ls -q | head -n 1)
# ctr run's options for container ID: the systemd cgroup driver's
# SLICE:PREFIX:NAME when CLIENT_SYSTEMD is set.
cg() {
    [ -n "${CLIENT_SYSTEMD:-}" ] && echo "--runc-systemd-cgroup --cgroup system.slice:berth-test-$name:$1"
}
run() { local img=$1 id=$2; shift 2; ctr run --runc-binary "$wrap" $(cg "$id") --rm "$img" "$id" "$@"; }

check "echo" "hello" "$(run "$img" c-echo echo hello 2>&1)"
run "$img" c-exit sh -c 'exit 7' >/dev/null 2>&1; check "exit code" "7" "$?"
# The error callers match on (runc's wording).
missing=$(run "$img" c-missing /does-not-exist 2>&1 | grep -c 'exec: "/does-not-exist": stat /does-not-exist: no such file or directory')
check "missing program: runc's error" "1" "$missing"
ctr container delete c-missing >/dev/null 2>&1
# ctr's default spec mounts no /sys/fs/cgroup: read the limit from the
# host side of the container's cgroup.
ctr run --runc-binary "$wrap" $(cg c-mem) -d --memory-limit 67108864 "$img" c-mem sleep 30 >/dev/null 2>&1
mpid=$(ctr task ls 2>/dev/null | awk '$1=="c-mem"{print $2}')
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mem=$(cat "/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$mpid/cgroup)/memory.max" 2>&1)
else
    mem=$(cat "/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' /proc/$mpid/cgroup)/memory.limit_in_bytes" 2>&1)
fi
check "memory limit in the container's cgroup" "67108864" "$mem"
ctr task kill -s KILL c-mem >/dev/null 2>&1; sleep 0.3; ctr task delete c-mem >/dev/null 2>&1; ctr container delete c-mem >/dev/null 2>&1
ctr run --runc-binary "$wrap" $(cg c-long) -d "$img" c-long sleep 60 >/dev/null 2>&1
check "task exec" "in-exec" "$(ctr task exec --exec-id e1 c-long sh -c 'echo in-exec' 2>&1)"
ctr task exec --exec-id e2 c-long sh -c 'exit 3' >/dev/null 2>&1; check "task exec exit code" "3" "$?"
pids=$(ctr task ps c-long 2>/dev/null | tail -n +2 | wc -l)
check "task ps" "1" "$pids"
ctr task pause c-long >/dev/null 2>&1; check "pause" "PAUSED" "$(ctr task ls 2>/dev/null | awk '$1=="c-long"{print $3}')"
ctr task resume c-long >/dev/null 2>&1; check "resume" "RUNNING" "$(ctr task ls 2>/dev/null | awk '$1=="c-long"{print $3}')"
ctr task kill -s KILL c-long >/dev/null 2>&1
for _ in $(seq 50); do [ "$(ctr task ls 2>/dev/null | awk '$1=="c-long"{print $3}')" = STOPPED ] && break; sleep 0.1; done
check "task kill" "STOPPED" "$(ctr task ls 2>/dev/null | awk '$1=="c-long"{print $3}')"
ctr task delete c-long >/dev/null 2>&1; check "task delete" "0" "$?"
ctr container delete c-long >/dev/null 2>&1
tty=$(python3 "$here/pty-run.py" 0 '' ctr --address "$sock" --namespace "$ns" run --runc-binary "$wrap" $(cg c-tty) --rm -t "$img" c-tty sh -c 'tty; exit 0' 2>&1 | grep -c '/dev/pts/')
check "tty run (-t)" "1" "$tty"
[ -n "${ARGV_LOG:-}" ] && cp "$tmp/argv.log" "$ARGV_LOG"
exit $fail
