#!/bin/bash
# Real-client checks through containerd: a private containerd (own root,
# state dir and socket, CRI off) drives RUNTIME through containerd-shim-runc-v2
# (`ctr run --runc-binary`). Prints one line per check and exits non-zero if
# any failed. Usage: containerd.sh RUNTIME_BINARY BUSYBOX_DOCKER_ARCHIVE
set -u
rt=$(readlink -f "$1"); archive=$(readlink -f "$2")
name=$(basename "$rt")
tmp=$(mktemp -d /tmp/berth-test-ctrd-XXXXXX)
ns=berth-test-$name
sock=$tmp/containerd.sock
fail=0
# Log every runtime invocation (argv) for docs/compatibility.md.
wrap=$tmp/runtime
cat > "$wrap" <<W
#!/bin/sh
echo "\$*" >> $tmp/argv.log
exec $rt "\$@"
W
chmod +x "$wrap"
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
# What the clients and runtimes create outside $tmp and leave behind
# (runc keeps its parent cgroups, podman its libpod_parent): removed after,
# but only what did not exist before the test.
new_paths=()
for p in "/run/containerd" "/run/berth" "/run/runc" $(awk -v d="berth-test-$name" '$9=="cgroup"||$9=="cgroup2"{print $5"/"d}' /proc/self/mountinfo); do
    [ -e "$p" ] || new_paths+=("$p")
done
cleanup() {
    for c in $(ctr task ls -q 2>/dev/null); do ctr task kill -s KILL "$c" >/dev/null 2>&1; sleep 0.2; ctr task delete -f "$c" >/dev/null 2>&1; done
    for c in $(ctr container ls -q 2>/dev/null); do ctr container delete "$c" >/dev/null 2>&1; done
    kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
    # Shims of deleted tasks exit on their own, shortly.
    for _ in $(seq 50); do pgrep -f "address $sock" >/dev/null || break; sleep 0.1; done
    # containerd's own mounts (snapshots) and the shims' state
    grep " $tmp" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "/run/containerd/runc/$ns" "$tmp"
    for p in "${new_paths[@]}"; do
        case $p in
            /sys/fs/cgroup/*)
                for _ in $(seq 50); do
                    [ -d "$p" ] || break
                    find "$p" -depth -type d -exec rmdir {} \; 2>/dev/null
                    sleep 0.1
                done ;;
            *) rm -rf "$p" ;;
        esac
    done
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
check() { # NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok   $name containerd: $1"; else echo "FAIL $name containerd: $1: expected [$2], got [$3]"; fail=1; fi
}
ctr images import "$archive" >/dev/null || { echo "FAIL $name containerd: import"; exit 1; }
img=$(ctr images ls -q | head -n 1)
run() { ctr run --runc-binary "$wrap" --rm "$@"; }

check "echo" "hello" "$(run "$img" c-echo echo hello 2>&1)"
run "$img" c-exit sh -c 'exit 7' >/dev/null 2>&1; check "exit code" "7" "$?"
# ctr's default spec mounts no /sys/fs/cgroup: read the limit from the
# host side of the container's cgroup.
ctr run --runc-binary "$wrap" -d --memory-limit 67108864 "$img" c-mem sleep 30 >/dev/null 2>&1
mpid=$(ctr task ls 2>/dev/null | awk '$1=="c-mem"{print $2}')
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mem=$(cat "/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$mpid/cgroup)/memory.max" 2>&1)
else
    mem=$(cat "/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' /proc/$mpid/cgroup)/memory.limit_in_bytes" 2>&1)
fi
check "memory limit in the container's cgroup" "67108864" "$mem"
ctr task kill -s KILL c-mem >/dev/null 2>&1; sleep 0.3; ctr task delete c-mem >/dev/null 2>&1; ctr container delete c-mem >/dev/null 2>&1
ctr run --runc-binary "$wrap" -d "$img" c-long sleep 60 >/dev/null 2>&1
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
here=$(dirname "$(readlink -f "$0")")
tty=$(python3 "$here/pty-run.py" 0 '' ctr --address "$sock" --namespace "$ns" run --runc-binary "$wrap" --rm -t "$img" c-tty sh -c 'tty; exit 0' 2>&1 | grep -c '/dev/pts/')
check "tty run (-t)" "1" "$tty"
[ -n "${ARGV_LOG:-}" ] && cp "$tmp/argv.log" "$ARGV_LOG"
exit $fail
