# Shared by the client scripts (sourced): the runtime wrapper that logs
# argv, the check line, and the removal of what a client left behind.
# Expects: rt (runtime binary), name (its short name), client, tmp.

fail=0
# A wrapper logging every runtime invocation (docs/compatibility.md).
wrap=$tmp/runtime
cat > "$wrap" <<W
#!/bin/sh
echo "\$*" >> $tmp/argv.log
# CONFIG_DIR: keep each config.json the client wrote (tests/configs/).
if [ -n "${CONFIG_DIR:-}" ]; then
    b=""; prev=""
    for a in "\$@"; do
        case "\$prev" in --bundle|-b) b=\$a ;; esac
        case "\$a" in --bundle=*) b=\${a#--bundle=} ;; esac
        prev=\$a
    done
    [ -n "\$b" ] && [ -f "\$b/config.json" ] && cp "\$b/config.json" "${CONFIG_DIR:-}/$client-\$(date +%s%N).json"
fi
exec $rt "\$@"
W
chmod +x "$wrap"

check() { # NAME EXPECTED ACTUAL (a runtime's warning lines in ACTUAL, such
    # as runc's "skipping device ... for systemd", are not output: dropped)
    local got
    got=$(printf '%s\n' "$3" | grep -v '^time=".*" level=warning msg=')
    set -- "$1" "$2" "$got"
    if [ "$2" = "$3" ]; then
        echo "ok   $name $client: $1"
    else
        echo "FAIL $name $client: $1: expected [$2], got [$3]"
        fail=1
    fi
}

# record_new PATH...: remembers the paths (and cgroup dir names, in every
# hierarchy, given as cgroup:NAME) that do not exist yet.
new_paths=()
record_new() {
    local p
    for p in "$@"; do
        case $p in
            cgroup:*)
                for m in $(awk '$9=="cgroup"||$9=="cgroup2"{print $5}' /proc/self/mountinfo); do
                    [ -e "$m/${p#cgroup:}" ] || new_paths+=("$m/${p#cgroup:}")
                done ;;
            *) [ -e "$p" ] || new_paths+=("$p") ;;
        esac
    done
}

# remove_new: unmounts what is left under $tmp, removes it, then the
# recorded paths (cgroup dirs once their last process has left).
remove_new() {
    local p
    grep " $tmp" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$tmp"
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
