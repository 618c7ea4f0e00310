#!/bin/sh
# with-systemd.sh COMMAND [ARG...]: runs COMMAND under a real systemd in
# berth's test VM (`tests/vm/vm.py run --systemd` copies this file to the
# guest's /run/berthctl and calls it), for the systemd cgroup driver.
#
# Debian's systemd starts as pid 1 of new pid, mount and cgroup
# namespaces, as it does in a container (container=berth-vm), with the
# D-Bus system bus. COMMAND is a oneshot service of that systemd: it has
# the bus and systemd's cgroup tree (systemctl, systemd-run and busctl
# work). Its output is printed when it ends; its exit status is ours.
# The guest needs VM_EXTRA_PKGS="systemd dbus util-linux". Environment:
# WITH_SYSTEMD_TIMEOUT, seconds to wait for COMMAND (default 500).
[ $# -ge 1 ] || { echo "usage: with-systemd.sh COMMAND [ARG...]" >&2; exit 2; }
[ -x /lib/systemd/systemd ] || { echo "with-systemd: the guest has no systemd (VM_EXTRA_PKGS)" >&2; exit 2; }
cg=/sys/fs/cgroup
# Not under /tmp, which systemd-tmpfiles cleans at boot.
dir=/var/lib/berth-with-systemd
mkdir -p $dir
quoted=
for a in "$@"; do quoted="$quoted '$(printf %s "$a" | sed "s/'/'\\\\''/g")'"; done
printf '#!/bin/sh\ncd %s\nexec%s\n' "$(pwd)" "$quoted" > $dir/cmd.sh

# The packages were unpacked, not configured: what their maintainer
# scripts would have done, and the bus's configuration (the image leaves
# /usr/share out).
systemd-machine-id-setup > /dev/null 2>&1
mkdir -p /var/lib/dbus && cp /etc/machine-id /var/lib/dbus/machine-id
grep -q '^messagebus:' /etc/passwd || echo 'messagebus:x:101:101::/nonexistent:/usr/sbin/nologin' >> /etc/passwd
grep -q '^messagebus:' /etc/group || echo 'messagebus:x:101:' >> /etc/group
if [ ! -f /usr/share/dbus-1/system.conf ]; then
    mkdir -p /usr/share/dbus-1
    cat > /usr/share/dbus-1/system.conf <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <user>messagebus</user>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
fi
mkdir -p /etc/systemd/system/multi-user.target.wants
# (Not named berth-test*: the suites' leak check counts those units.)
cat > /etc/systemd/system/vm-command.service <<EOF
[Unit]
Requires=dbus.service
After=dbus.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'sh $dir/cmd.sh > $dir/out 2>&1; echo \$? > $dir/rc'
EOF
ln -sf /etc/systemd/system/vm-command.service /etc/systemd/system/multi-user.target.wants/

# systemd gets a cgroup of its own, which becomes its namespace's root.
mkdir -p $cg/berth-systemd && echo $$ > $cg/berth-systemd/cgroup.procs
# util-linux's unshare by its path: busybox's sh runs its own applet for
# a bare name.
/usr/bin/unshare --pid --fork --mount --cgroup --propagation private sh -c '
    mount -t proc proc /proc
    umount /sys/fs/cgroup 2>/dev/null; mount -t cgroup2 cgroup2 /sys/fs/cgroup
    mount -t tmpfs tmpfs /run
    export container=berth-vm
    exec /lib/systemd/systemd --system --log-target=kmsg > /dev/null 2>&1
' &
# Once the forked systemd is in place, this shell (and unshare) leave its
# cgroup, so that systemd is alone there and may enable controllers below.
sleep 0.3
echo $! > $cg/init.scope/cgroup.procs
echo $$ > $cg/init.scope/cgroup.procs
echo "+cpu +cpuset +io +memory +pids" > $cg/berth-systemd/cgroup.subtree_control 2> /dev/null
limit=${WITH_SYSTEMD_TIMEOUT:-500}
waited=0
while [ ! -f $dir/rc ] && [ $waited -lt "$limit" ]; do sleep 1; waited=$((waited + 1)); done
cat $dir/out 2> /dev/null
[ -f $dir/rc ] || { echo "with-systemd: COMMAND did not end within ${limit}s" >&2; exit 124; }
exit "$(cat $dir/rc)"
