#!/bin/bash
# Real-client checks through podman (conmon): private --root and --runroot,
# cgroupfs manager (systemd with CLIENT_SYSTEMD=1, under systemd), no
# network stack (--network none). Prints one line per check; exits non-zero
# if any failed.
# Usage: podman.sh RUNTIME_BINARY BUSYBOX_DOCKER_ARCHIVE
set -u
rt=$(readlink -f "$1"); archive=$(readlink -f "$2")
name=$(basename "$rt")
client=podman
tmp=$(mktemp -d /tmp/berth-test-podman-XXXXXX)
here=$(dirname "$(readlink -f "$0")")
. "$here/lib.sh"
manager=cgroupfs; [ -n "${CLIENT_SYSTEMD:-}" ] && manager=systemd
pm() {
    command podman --root "$tmp/root" --runroot "$tmp/run" --runtime "$wrap" \
        --cgroup-manager $manager --events-backend file --storage-driver overlay \
        --tmpdir "$tmp/libpod" "$@"
}
# runc keeps its parent cgroups, podman its libpod_parent: removed after,
# with everything else the test made, but only if it was not there before.
record_new /run/containers /var/lib/containers /run/libpod /run/berth /run/runc cgroup:libpod_parent
cleanup() {
    pm rm -af -t 0 >/dev/null 2>&1
    pm system reset -f >/dev/null 2>&1 || true
    remove_new
}
trap cleanup EXIT
loaded=$(pm load -q -i "$archive" 2>&1)
img=$(printf '%s\n' "$loaded" | sed -n 's/^Loaded image[s]*: *//p' | head -n 1)
[ -n "$img" ] || { echo "FAIL $name podman: load: $loaded"; exit 1; }
# --ulimit nofile=1024:1024 --ulimit nproc=1024:1024: podman would raise the hard RLIMIT_NOFILE, which needs
# CAP_SYS_RESOURCE, absent from this machine's bounding set (runc and
# berth both fail that way).
# (runc's warnings, such as "skipping device ... for systemd" where the VM
# lacks a device podman lists, are not the container's output.)
run() {
    pm run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$@" \
        2> >(grep -v '^time=".*" level=warning msg=' >&2)
}
check "echo" "hello" "$(run "$img" echo hello 2>&1)"
run "$img" sh -c 'exit 7' >/dev/null 2>&1; check "exit code" "7" "$?"
mem=$(run --memory 64m "$img" sh -c 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes' 2>&1)
check "--memory" "67108864" "$mem"
cpu=$(run --cpus 0.5 "$img" sh -c 'cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us' 2>&1)
check "--cpus" "50000" "${cpu%% *}"
check "-e" "bar" "$(run -e FOO=bar "$img" sh -c 'echo $FOO' 2>&1)"
check "-w" "/tmp" "$(run -w /tmp "$img" pwd 2>&1)"
check "--user" "1000:1000" "$(run --user 1000:1000 "$img" sh -c 'echo $(id -u):$(id -g)' 2>&1)"
check "--hostname" "h1" "$(run --hostname h1 "$img" hostname 2>&1)"
check "--network none" "lo" "$(run "$img" ls /sys/class/net 2>&1)"
# Exit codes podman maps from the runtime's error wording (runc's).
run "$img" /does-not-exist >/dev/null 2>&1; check "missing program exits 127" "127" "$?"
run "$img" /etc/passwd >/dev/null 2>&1; check "non-executable program exits 126" "126" "$?"
run "$img" /tmp >/dev/null 2>&1; check "directory as program exits 126" "126" "$?"
pm run -d --name c-long --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$img" sleep 60 >/dev/null 2>&1
check "exec into a detached container" "in-exec" "$(pm exec c-long sh -c 'echo in-exec' 2>&1)"
pm exec c-long sh -c 'exit 3' >/dev/null 2>&1; check "exec exit code" "3" "$?"
pm stop -t 1 c-long >/dev/null 2>&1; check "stop" "exited" "$(pm inspect -f '{{.State.Status}}' c-long 2>&1)"
pm rm c-long >/dev/null 2>&1; check "rm" "0" "$?"
pm run -d --name c-kill --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$img" sleep 60 >/dev/null 2>&1
pm kill c-kill >/dev/null 2>&1; pm wait c-kill >/dev/null 2>&1
check "kill" "exited" "$(pm inspect -f '{{.State.Status}}' c-kill 2>&1)"
pm rm c-kill >/dev/null 2>&1
# -it through a pty: type into the container, read its terminal.
out=$(python3 "$here/pty-run.py" 2 'echo typed-$((6*7))\rexit\r' podman --root "$tmp/root" --runroot "$tmp/run" \
    --runtime "$wrap" --cgroup-manager $manager --events-backend file --storage-driver overlay --tmpdir "$tmp/libpod" \
    run -it --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$img" sh 2>&1 | grep -c '^typed-42')
check "run -it through a pty" "1" "$out"
# Checkpoint and restore (CLIENT_CRIU: where CRIU works, the VMs), in
# place and exported to a file then imported under a new name: the
# counter in the container's memory goes on from where it was.
if [ -n "${CLIENT_CRIU:-}" ]; then
    count() { pm exec "$1" cat /dev/shm/n 2>/dev/null || echo 0; }
    pm run -d --name c-ck --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$img" \
        sh -c 'i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.1; done' >/dev/null 2>&1
    for _ in $(seq 100); do [ "$(count c-ck)" -ge 5 ] && break; sleep 0.2; done
    pm container checkpoint c-ck >/dev/null 2>&1
    check "checkpoint" "exited" "$(pm inspect -f '{{.State.Status}}' c-ck 2>&1)"
    pm container restore c-ck >/dev/null 2>&1
    check "restore" "running" "$(pm inspect -f '{{.State.Status}}' c-ck 2>&1)"
    n=$(count c-ck)
    check "restored counter goes on" "yes" "$([ "$n" -ge 5 ] && echo yes || echo "no: $n")"
    pm container checkpoint --export "$tmp/c-ck.tar.gz" c-ck >/dev/null 2>&1
    pm container restore --import "$tmp/c-ck.tar.gz" --name c-ck2 >/dev/null 2>&1
    check "restore --import" "running" "$(pm inspect -f '{{.State.Status}}' c-ck2 2>&1)"
    m=$(count c-ck2)
    check "imported counter goes on" "yes" "$([ "$m" -ge "$n" ] && echo yes || echo "no: $m < $n")"
    pm rm -f c-ck c-ck2 >/dev/null 2>&1
fi
[ -n "${ARGV_LOG:-}" ] && cp "$tmp/argv.log" "$ARGV_LOG"
exit $fail
