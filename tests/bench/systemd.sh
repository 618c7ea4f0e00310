#!/bin/sh
# Under a real systemd in the cgroup v2 VM (through with-systemd.sh): what
# the systemd cgroup driver costs per container lifecycle (create, start,
# the program `true` runs, delete) against the cgroupfs driver on the same
# VM, berth, runc and crun alike, interleaved. Prints a table and writes
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
# berth, runc and (when installed) crun, each with both drivers.
rts="$berth runc"; command -v crun >/dev/null && rts="$rts crun"
# Warm-up: page cache, systemd's slice, the first D-Bus connection.
for r in $rts; do total warm $r "" >/dev/null; total warm $r --systemd-cgroup >/dev/null; done
json="{\"lifecycles\": $((3 * n))"
for r in $rts; do eval "f_$(basename $r)=0 s_$(basename $r)=0"; done
for round in 1 2 3; do
    for r in $rts; do
        k=$(basename $r)
        eval "f_$k=\$((f_$k + $(total f$k $r '')))"
        eval "s_$k=\$((s_$k + $(total s$k $r --systemd-cgroup)))"
    done
done
m=$((3 * n))
echo "per lifecycle (ms), $m each:"
for r in $rts; do
    k=$(basename $r); eval "f=\$f_$k s=\$s_$k"
    awk -v k=$k -v f=$f -v s=$s -v m=$m 'BEGIN { printf "  %-6s cgroupfs %8.2f  systemd %8.2f  ratio %.2f\n", k, f/m, s/m, s/f }'
    json="$json, \"${k}_cgroupfs_ms\": $(awk -v f=$f -v m=$m 'BEGIN {printf "%.3f", f/m}'), \"${k}_systemd_ms\": $(awk -v s=$s -v m=$m 'BEGIN {printf "%.3f", s/m}')"
done
echo "$json}" > /host/target/bench-systemd.json
cat /host/target/bench-systemd.json
