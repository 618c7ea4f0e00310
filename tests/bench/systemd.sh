#!/bin/sh
# Under a real systemd in the cgroup v2 VM (through with-systemd.sh): what
# the systemd cgroup driver costs per container lifecycle (create, start,
# the program `true` runs, delete) against the cgroupfs driver on the same
# VM, berth and runc alike, interleaved. Prints a table and writes
# /host/target/bench-systemd.json.
# usage: tests/vm/vm.py run --systemd "$PWD" sh /host/tests/bench/systemd.sh BERTH ROOTFS [N]
set -u
berth=$1; rootfs=$2; n=${3:-30}
b=/tmp/sdbench; rm -rf $b; mkdir -p $b; cp -a "$rootfs" $b/rootfs
"$berth" spec -b $b >/dev/null
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/; s/"ociVersion": "1.3.0"/"ociVersion": "1.0.2"/' $b/config.json
# Milliseconds from /proc/uptime (10 ms steps; the guest's busybox date
# has no %N), read once around each run of n lifecycles.
now() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }
one() { # RUNTIME DRIVER-FLAG ID: one lifecycle
    "$1" --root /tmp/sdbench-root $2 create -b $b $3 >/dev/null 2>&1 </dev/null &&
    "$1" --root /tmp/sdbench-root $2 start $3 >/dev/null 2>&1 &&
    "$1" --root /tmp/sdbench-root $2 delete -f $3 >/dev/null 2>&1
}
total() { # NAME RUNTIME FLAG: total ms of n lifecycles
    i=0; s=$(now)
    while [ $i -lt $n ]; do
        one $2 "$3" $1-$i || echo "failed: $1 $i" >&2; i=$((i + 1))
    done
    echo $(( $(now) - s ))
}
# Warm-up: page cache, systemd's slice, the first D-Bus connection.
for r in "$berth" runc; do total warm $r "" >/dev/null; total warm $r --systemd-cgroup >/dev/null; done
bf=0; bs=0; rf=0; rs=0
for round in 1 2 3; do
    bf=$((bf + $(total bf "$berth" "")))
    bs=$((bs + $(total bs "$berth" --systemd-cgroup)))
    rf=$((rf + $(total rf runc "")))
    rs=$((rs + $(total rs runc --systemd-cgroup)))
done
m=$((3 * n))
awk -v bf=$bf -v bs=$bs -v rf=$rf -v rs=$rs -v m=$m 'BEGIN {
    printf "per lifecycle (ms), %d each:\n", m
    printf "  berth cgroupfs %.2f  berth systemd %.2f  ratio %.2f\n", bf/m, bs/m, bs/bf
    printf "  runc  cgroupfs %.2f  runc  systemd %.2f  ratio %.2f\n", rf/m, rs/m, rs/rf
    printf "  berth systemd / runc systemd %.2f\n", bs/rs
    printf "{\"lifecycles\": %d, \"berth_cgroupfs_ms\": %.3f, \"berth_systemd_ms\": %.3f, \"runc_cgroupfs_ms\": %.3f, \"runc_systemd_ms\": %.3f}\n", m, bf/m, bs/m, rf/m, rs/m > "/host/target/bench-systemd.json"
}'
