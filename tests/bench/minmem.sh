#!/bin/sh
# Inside the cgroup v2 VM: the smallest memory limit (KiB) with which each
# runtime still starts a busybox /bin/true container (binary search; the
# limit covers the runtime's init as it sets the container up).
# usage: tests/vm/vm.py run "$PWD" sh /host/tests/bench/minmem.sh /host/target/x86_64-unknown-linux-gnu/release/berth /host/target/fixtures/busybox
set -u
berth=$1; rootfs=$2
b=/tmp/minmem; rm -rf $b; mkdir -p $b; cp -a "$rootfs" $b/rootfs
"$berth" spec -b $b >/dev/null
# terminal off, /bin/true, ociVersion crun knows, a memory limit placeholder
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"true"/; s/"ociVersion": "1.3.0"/"ociVersion": "1.0.2"/' $b/config.json
starts() { # RUNTIME KIB
    sed "s/\"resources\": {/\"resources\": {\"memory\": {\"limit\": $(($2 * 1024)), \"swap\": $(($2 * 1024))},/" $b/config.json > $b/config.json.try
    cp $b/config.json $b/config.json.orig; cp $b/config.json.try $b/config.json
    "$1" --root /tmp/minmem-root run -b $b mm$$ >/dev/null 2>&1; rc=$?
    "$1" --root /tmp/minmem-root delete -f mm$$ >/dev/null 2>&1
    cp $b/config.json.orig $b/config.json
    return $rc
}
for rt in "$berth" crun runc; do
    lo=64; hi=65536
    starts "$rt" $hi || { echo "$(basename $rt): does not start even with $hi KiB"; continue; }
    while [ $((hi - lo)) -gt 16 ]; do
        mid=$(((lo + hi) / 2))
        if starts "$rt" $mid; then hi=$mid; else lo=$mid; fi
    done
    echo "minmem $(basename $rt) ${hi} KiB"
done
