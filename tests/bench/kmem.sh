#!/bin/sh
# Inside the cgroup v2 VM (quiet, unlike the host): kernel memory per
# container. For each runtime, N containers (`sleep`) are started with
# `run -d`; the growth of the kernel's own memory (Slab + KernelStack +
# PageTables + Percpu in /proc/meminfo, reclaimable caches dropped before
# each reading) divided by N is what one container costs the kernel.
# usage: tests/vm/vm.py run "$PWD" sh /host/tests/bench/kmem.sh BERTH ROOTFS [N]
set -u
berth=$1; rootfs=$2; n=${3:-50}
b=/tmp/kmem; rm -rf $b; mkdir -p $b; cp -a "$rootfs" $b/rootfs
"$berth" spec -b $b >/dev/null
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sleep", "1000"/; s/"ociVersion": "1.3.0"/"ociVersion": "1.0.2"/' $b/config.json
kmem() {
    sync; echo 2 > /proc/sys/vm/drop_caches
    awk '/^(Slab|KernelStack|PageTables|Percpu):/ { s += $2 } END { print s }' /proc/meminfo
}
start_all() { # RUNTIME ROOT COUNT: prints the failures
    i=0; fail=0
    while [ $i -lt $3 ]; do
        "$1" --root $2 run -d -b $b k$i >/dev/null 2>&1 </dev/null || fail=$((fail + 1))
        i=$((i + 1))
    done
    echo $fail
}
delete_all() { # RUNTIME ROOT COUNT
    i=0
    while [ $i -lt $3 ]; do "$1" --root $2 delete -f k$i >/dev/null 2>&1; i=$((i + 1)); done
}
# Warm-up: one-time kernel allocations (slab caches, the runtimes' parent
# cgroups, eBPF JIT packs) must not be charged to whichever runs first.
for rt in "$berth" crun runc; do
    root=/tmp/kmem-root-$(basename $rt)
    start_all $rt $root 5 >/dev/null; delete_all $rt $root 5
done
for rt in "$berth" crun runc; do
    root=/tmp/kmem-root-$(basename $rt)
    before=$(kmem)
    fail=$(start_all $rt $root $n)
    after=$(kmem)
    delete_all $rt $root $n
    echo "kmem $(basename $rt) $(((after - before) / n)) KiB per container ($n containers, $fail failed)"
done
