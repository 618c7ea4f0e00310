#!/bin/sh
# Builds a minimal busybox root filesystem at DEST from Debian's
# busybox-static (installed at build time, never committed).
# Usage: rootfs-fixtures/busybox-rootfs.sh DEST
set -eu
dest=${1:?usage: $0 DEST}
bb=/bin/busybox
"$bb" --list >/dev/null 2>&1 || { echo "$bb missing: apt-get install busybox-static" >&2; exit 1; }
# A dynamically linked busybox would not run in a rootfs without libc.
if command -v ldd >/dev/null 2>&1 && ldd "$bb" >/dev/null 2>&1; then
    echo "$bb is dynamically linked: apt-get install busybox-static" >&2
    exit 1
fi
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/etc" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/tmp" "$tmp/root" "$tmp/home/user"
cp "$bb" "$tmp/bin/busybox"
for app in $("$bb" --list); do
    [ "$app" = busybox ] || ln -s busybox "$tmp/bin/$app"
done
ln -s bin "$tmp/sbin"
mkdir -p "$tmp/usr"
ln -s ../bin "$tmp/usr/bin"
chmod 1777 "$tmp/tmp"
cat > "$tmp/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$tmp/etc/group" <<'G'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$tmp/home/user"
rm -rf "$dest"
mv "$tmp" "$dest"
