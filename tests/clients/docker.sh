#!/bin/bash
# Real-client checks through Docker (Debian's docker.io, 20.10): a private
# dockerd (own data-root, exec-root, pidfile, socket and config file, its own
# managed containerd; no bridge, no iptables, no forwarding or masquerading,
# so the host's network is untouched) with RUNTIME added by --add-runtime and
# made the default, the cgroupfs driver under a cgroup parent of the test's
# (the systemd driver and a slice of the test's with CLIENT_SYSTEMD=1). Every
# container has --network none. Prints one line per check; exits non-zero if
# any failed.
# CLIENT_QUICK=1 (the emulated systemd VM) keeps the checks that involve
# the cgroup driver (limits, stats, top, pause, OOM, devices, restarts,
# removal) and leaves the rest to the host's run.
# Usage: docker.sh RUNTIME_BINARY BUSYBOX_DOCKER_ARCHIVE
set -u
rt=$(readlink -f "$1"); archive=$(readlink -f "$2")
name=$(basename "$rt")
client=docker
tmp=$(mktemp -d /tmp/berth-test-docker-XXXXXX)
here=$(dirname "$(readlink -f "$0")")
. "$here/lib.sh"
sock=$tmp/docker.sock
# The distribution's client, whatever else is first in PATH.
docker=/usr/bin/docker
if [ -n "${CLIENT_SYSTEMD:-}" ]; then
    driver=systemd; parent=berthtestdocker$name.slice
else
    driver=cgroupfs; parent=/berth-test-docker-$name
fi
# dockerd writes its trust key to /etc/docker/key.json and its containerd
# the shims' sockets to /run/containerd/s whatever their flags; runc and
# berth keep their state roots; runc its parent cgroups. Removed after,
# with everything else the test made, if they were not there before.
record_new /etc/docker/key.json /run/containerd /run/berth /run/runc /run/docker "cgroup:berth-test-docker-$name"
echo '{}' > "$tmp/daemon.json"
dockerd --config-file "$tmp/daemon.json" --data-root "$tmp/root" --exec-root "$tmp/exec" \
    --pidfile "$tmp/docker.pid" -H "unix://$sock" --bridge none --iptables=false \
    --ip6tables=false --ip-forward=false --ip-masq=false --storage-driver overlay2 \
    --add-runtime "testrt=$wrap" --default-runtime testrt --cgroup-parent "$parent" \
    --exec-opt "native.cgroupdriver=$driver" >"$tmp/dockerd.log" 2>&1 &
daemon=$!
d() { "$docker" -H "unix://$sock" "$@"; }
cleanup() {
    d rm -f $(d ps -aq 2>/dev/null) >/dev/null 2>&1
    kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
    # Shims exit with their containers, shortly.
    for _ in $(seq 50); do pgrep -f "$tmp" >/dev/null || break; sleep 0.1; done
    [ "$driver" = systemd ] && systemctl stop "$parent" >/dev/null 2>&1
    remove_new
}
trap cleanup EXIT
trap "exit 130" INT TERM
for _ in $(seq 200); do d version >/dev/null 2>&1 && break; sleep 0.1; done
img=$(d load -q -i "$archive" 2>&1 | sed -n 's/^Loaded image[^:]*: *//p' | head -n 1)
[ -n "$img" ] || { echo "FAIL $name docker: load"; cat "$tmp/dockerd.log"; exit 1; }
run() { d run --rm --network none "$@"; }
# The container's cgroup file FILE of controller CTRL, read on the host.
cgfile() { # PID CTRL FILE
    local rel
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        rel=$(sed -n 's/^0:://p' "/proc/$1/cgroup"); cat "/sys/fs/cgroup$rel/$3"
    else
        rel=$(awk -F: -v c="$2" '{n=split($2,a,",");for(i=1;i<=n;i++)if(a[i]==c)print $3}' "/proc/$1/cgroup")
        cat "/sys/fs/cgroup/$2$rel/$3"
    fi
}
state() { d inspect -f "{{$2}}" "$1" 2>&1; }
full() { [ -z "${CLIENT_QUICK:-}" ]; }
wait_state() { # CONTAINER FIELD VALUE: up to 10 s
    for _ in $(seq 100); do [ "$(state "$1" "$2")" = "$3" ] && return; sleep 0.1; done
}

check "run --rm" "hello" "$(run "$img" echo hello 2>&1)"
run "$img" sh -c 'exit 7' >/dev/null 2>&1; check "exit code" "7" "$?"
run "$img" /does-not-exist >/dev/null 2>&1; check "missing program exits 127" "127" "$?"
run "$img" /etc/passwd >/dev/null 2>&1; check "non-executable program exits 126" "126" "$?"

# A long-running container for exec, logs, top, stats, update, pause.
d run -d --name c-long --network none "$img" sh -c 'echo to-out; echo to-err >&2; exec sleep 600' >/dev/null 2>&1
wait_state c-long .State.Status running
pid=$(state c-long .State.Pid)
check "exec -u -w -e" "1000:/tmp:bar" "$(d exec -u 1000:1000 -w /tmp -e FOO=bar c-long sh -c 'echo $(id -u):$(pwd):$FOO' 2>&1)"
d exec c-long sh -c 'exit 3' >/dev/null 2>&1; check "exec exit code" "3" "$?"
if full; then
    tty=$(python3 "$here/pty-run.py" 0 '' "$docker" -H "unix://$sock" exec -t c-long tty 2>&1 | grep -c '^/dev/pts/')
    check "exec -t" "1" "$tty"
    check "logs" "to-err to-out" "$(d logs c-long 2>&1 | sort | tr '\n' ' ' | sed 's/ $//')"
fi
check "top" "1" "$(d top c-long 2>&1 | grep -c 'sleep 600')"
mem=$(d stats --no-stream --format '{{.MemUsage}}' c-long 2>&1)
case $mem in *" / "*) ok=1 ;; *) ok=$mem ;; esac; check "stats --no-stream" "1" "$ok"
d update --memory 64m --memory-swap -1 --cpus 0.5 --pids-limit 50 c-long >/dev/null 2>&1
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    lim="$(cgfile "$pid" memory memory.max) $(cgfile "$pid" cpu cpu.max | cut -d' ' -f1) $(cgfile "$pid" pids pids.max)"
else
    lim="$(cgfile "$pid" memory memory.limit_in_bytes) $(cgfile "$pid" cpu cpu.cfs_quota_us) $(cgfile "$pid" pids pids.max)"
fi
check "update --memory --cpus --pids-limit in the cgroup" "67108864 50000 50" "$lim"
d pause c-long >/dev/null 2>&1; check "pause" "paused" "$(state c-long .State.Status)"
d unpause c-long >/dev/null 2>&1; check "unpause" "running" "$(state c-long .State.Status)"
d restart -t 1 c-long >/dev/null 2>&1; wait_state c-long .State.Status running
new=$(state c-long .State.Pid)
[ "$new" != "$pid" ] && [ "$new" != 0 ] && r=restarted || r="pid $pid -> $new"
check "restart" "restarted" "$r"

# stop: SIGTERM first; SIGKILL after the timeout when it is ignored.
if full; then
d run -d --name c-term --network none "$img" sh -c 'trap "echo got-term; exit 0" TERM; while :; do sleep 0.1; done' >/dev/null 2>&1
wait_state c-term .State.Status running
d stop -t 10 c-term >/dev/null 2>&1
check "stop sends SIGTERM" "got-term 0" "$(d logs c-term 2>&1) $(state c-term .State.ExitCode)"
d run -d --name c-deaf --network none "$img" sh -c 'trap "" TERM; while :; do sleep 0.1; done' >/dev/null 2>&1
wait_state c-deaf .State.Status running
s=$(date +%s); d stop -t 1 c-deaf >/dev/null 2>&1; e=$(date +%s)
check "stop kills after the timeout" "137 waited" "$(state c-deaf .State.ExitCode) $([ $((e - s)) -ge 1 ] && echo waited)"
d run -d --name c-sig --network none "$img" sh -c 'trap "echo got-usr1" USR1; while :; do sleep 0.1; done' >/dev/null 2>&1
wait_state c-sig .State.Status running
d kill -s USR1 c-sig >/dev/null 2>&1; sleep 0.5
check "kill -s USR1" "got-usr1" "$(d logs c-sig 2>&1)"
d kill c-sig >/dev/null 2>&1
# (bounded: `docker wait` on a container that never ran waits forever)
check "kill exits 137" "137" "$(timeout 60 "$docker" -H "unix://$sock" wait c-sig 2>&1)"
fi
# --restart on-failure:2 runs it three times in all.
d run -d --name c-again --network none --restart on-failure:2 "$img" sh -c 'echo run; exit 3' >/dev/null 2>&1
for _ in $(seq 150); do [ "$(state c-again .RestartCount)/$(state c-again .State.Status)" = 2/exited ] && break; sleep 0.1; done
check "--restart on-failure:2" "2 exited 3 3" "$(state c-again .RestartCount) $(state c-again .State.Status) $(state c-again .State.ExitCode) $(d logs c-again 2>&1 | grep -c run)"
# OOM: killed with 137 and reported as such.
d run --name c-oom --network none --memory 16m --memory-swap 16m "$img" sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived' >/dev/null 2>&1
check "OOM kill" "137 true" "$(state c-oom .State.ExitCode) $(state c-oom .State.OOMKilled)"

# Rootfs, mounts, users, privileges.
if full; then
check "--read-only" "1" "$(run --read-only "$img" touch /x 2>&1 | grep -c 'Read-only file system')"
check "--tmpfs" "written" "$(run --read-only --tmpfs /scratch "$img" sh -c 'touch /scratch/a && echo written' 2>&1)"
mkdir -p "$tmp/vol" && echo data > "$tmp/vol/f"
check "-v host:ctr:ro" "data ro" "$(run -v "$tmp/vol:/v:ro" "$img" sh -c 'cat /v/f; touch /v/g 2>/dev/null || echo ro' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check "--user" "1000:1000" "$(run --user 1000:1000 "$img" sh -c 'echo $(id -u):$(id -g)' 2>&1)"
check "--cap-drop ALL --cap-add NET_RAW" "CapEff:	0000000000002000" "$(run --cap-drop ALL --cap-add NET_RAW "$img" grep CapEff /proc/self/status 2>&1)"
check "no-new-privileges" "NoNewPrivs:	1" "$(run --security-opt no-new-privileges "$img" grep NoNewPrivs /proc/self/status 2>&1)"
# Docker's default seccomp profile is in effect (a filter, and what it
# forbids, such as unshare(2) without CAP_SYS_ADMIN, fails); unconfined has none.
check "default seccomp profile" "Seccomp:	2 refused" "$(run "$img" sh -c 'grep "^Seccomp:" /proc/self/status; unshare -U true 2>/dev/null || echo refused' 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check "seccomp=unconfined" "Seccomp:	0" "$(run --security-opt seccomp=unconfined "$img" grep '^Seccomp:' /proc/self/status 2>&1)"
# --privileged asks for every capability. Where this process's bounding set
# lacks one (this machine's lacks CAP_SYS_RESOURCE, bit 24), it cannot be
# granted: runtime-spec 1.3 (config.md, "capabilities") has that logged as a
# warning and the container started, which berth does; runc 1.1 predates
# that and refuses.
bnd=$(awk '/^CapBnd:/{print $2}' /proc/self/status)
privileged() {
    run --privileged "$img" sh -c 'grep "^Seccomp:" /proc/self/status; grep "^CapEff:" /proc/self/status; [ -c /dev/kmsg ] && echo host-devices; mkdir /tmp/m && mount -t tmpfs t /tmp/m && echo mounted' 2>&1 | tr '\n' ' ' | sed 's/ $//'
}
if [ $(( 0x$bnd >> 24 & 1 )) = 1 ] || [ "$name" != runc ]; then
    # Docker 20.10 knows the capabilities up to CAP_AUDIT_READ (37).
    want=$(printf '%016x' $(( 0x$bnd & 0x3fffffffff )))
    check "--privileged" "Seccomp:	0 CapEff:	$want host-devices mounted" "$(privileged)"
else
    check "--privileged refused without CAP_SYS_RESOURCE (runc 1.1)" "1" "$(run --privileged "$img" true 2>&1 | grep -c 'unable to apply caps: operation not permitted')"
fi
fi
check "--device" "3" "$(run --device /dev/zero:/dev/myzero "$img" sh -c 'head -c 3 /dev/myzero | wc -c' 2>&1)"
if full; then
for ns in pid ipc uts; do
    check "--$ns host" "$(readlink /proc/self/ns/$ns)" "$(run --$ns host "$img" readlink /proc/self/ns/$ns 2>&1)"
done
check "--sysctl" "65536" "$(run --sysctl kernel.msgmax=65536 "$img" cat /proc/sys/kernel/msgmax 2>&1)"
check "--ulimit" "512" "$(run --ulimit nofile=512:512 "$img" sh -c 'ulimit -n' 2>&1)"
if [ -x /usr/bin/docker-init ] || [ -x /usr/libexec/docker/docker-init ]; then
    check "--init" "docker-init" "$(run --init "$img" cat /proc/1/comm 2>&1)"
fi

# Ten at once.
pids=()
for i in $(seq 10); do run "$img" echo "par-$i" > "$tmp/par-$i" 2>&1 & pids+=($!); done
wait "${pids[@]}"
check "10 concurrent runs" "10" "$(cat "$tmp"/par-* | grep -c '^par-')"
fi

# rm -f of a running container leaves no process, cgroup or mount.
d run -d --name c-rm --network none "$img" sleep 600 >/dev/null 2>&1
wait_state c-rm .State.Status running
rpid=$(state c-rm .State.Pid); rid=$(state c-rm .Id)
cgdir=$(awk -F: '$2=="" || $2~/(^|,)pids(,|$)/ {print $3}' "/proc/$rpid/cgroup" | tail -n 1)
d rm -f c-rm >/dev/null 2>&1
sleep 0.5
left=""
kill -0 "$rpid" 2>/dev/null && left="$left process"
for m in /sys/fs/cgroup /sys/fs/cgroup/pids /sys/fs/cgroup/unified; do
    [ -n "$cgdir" ] && [ -d "$m$cgdir" ] && [ "$cgdir" != / ] && left="$left cgroup:$m$cgdir"
done
grep -q "$rid" /proc/self/mountinfo && left="$left mount"
check "rm -f leaves nothing" "" "$left"
[ -n "${ARGV_LOG:-}" ] && cp "$tmp/argv.log" "$ARGV_LOG"
exit $fail
