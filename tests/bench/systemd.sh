#!/bin/sh
# Under a real systemd in the cgroup v2 VM (through with-systemd.sh): what
# the systemd cgroup driver costs per container lifecycle (create, start,
# the program `true` runs, delete) against the cgroupfs driver on the same
# VM, berth and runc alike, interleaved. Prints a table and writes
# /host/target/bench-systemd.json.
# usage: with-systemd.sh sh /host/tests/bench/systemd.sh BERTH ROOTFS [N]
set -u
berth=$1; rootfs=$2; n=${3:-30}
b=/tmp/sdbench; rm -rf $b; mkdir -p $b; cp -a "$rootfs" $b/rootfs
"$berth" spec -b $b >/dev/null
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/; s/"ociVersion": "1.3.0"/"ociVersion": "1.0.2"/' $b/config.json
now() { date +%s%N; }
one() { # RUNTIME DRIVER-FLAG ID: one lifecycle
    "$1" --root /tmp/sdbench-root $2 create -b $b $3 >/dev/null 2>&1 </dev/null &&
    "$1" --root /tmp/sdbench-root $2 start $3 >/dev/null 2>&1 &&
    "$1" --root /tmp/sdbench-root $2 delete -f $3 >/dev/null 2>&1
}
total() { # NAME RUNTIME FLAG: total ns of n lifecycles
    i=0; t=0
    while [ $i -lt $n ]; do
        s=$(now); one $2 "$3" $1-$i || echo "failed: $1 $i" >&2; e=$(now)
        t=$((t + e - s)); i=$((i + 1))
    done
    echo $t
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
    printf "  berth cgroupfs %.2f  berth systemd %.2f  ratio %.2f\n", bf/m/1e6, bs/m/1e6, bs/bf
    printf "  runc  cgroupfs %.2f  runc  systemd %.2f  ratio %.2f\n", rf/m/1e6, rs/m/1e6, rs/rf
    printf "  berth systemd / runc systemd %.2f\n", bs/rs
    printf "{\"lifecycles\": %d, \"berth_cgroupfs_ms\": %.3f, \"berth_systemd_ms\": %.3f, \"runc_cgroupfs_ms\": %.3f, \"runc_systemd_ms\": %.3f}\n", m, bf/m/1e6, bs/m/1e6, rf/m/1e6, rs/m/1e6 > "/host/target/bench-systemd.json"
}'
