#!/bin/busybox sh
# /init of berth's test VM (tests/vm/vm.py puts it in the initramfs).
#
# Stage 1, pid 1 on the initramfs: pivot_root(2) refuses to move the
# initramfs's rootfs away, and container runtimes pivot, so / is bound onto
# /newroot, moved over /, and this script runs again chrooted there.
# Stage 2 sets the machine up the way a systemd host on cgroup v2 looks to
# a runtime (proc, sys, devtmpfs, devpts, /run, /tmp, bpf, one cgroup2
# mount with nsdelegate and memory_recursiveprot, every controller enabled
# for the root's children, init in /init.scope, / shared), mounts the two
# 9p shares (the control directory at /run/berthctl, the host's directory
# at /host), runs the command, records its exit status and powers off.
if [ "$1" != stage2 ]; then
    /bin/busybox mount --bind / /newroot
    cd /newroot || exit 1
    /bin/busybox mount --move . /
    exec /bin/busybox chroot . /init stage2
fi

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=linux
umask 022
mount -t proc -o nosuid,nodev,noexec proc /proc
cmdline=" $(cat /proc/cmdline) "
case $cmdline in *" berth.debug=1 "*) set -x ;; esac
shell=; case $cmdline in *" berth.shell=1 "*) shell=1 ;; esac
say() { echo "guest-init: $*" > /dev/console; }

mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
ln -sf /proc/self/fd /dev/fd
for i in 0:stdin 1:stdout 2:stderr; do ln -sf "/proc/self/fd/${i%%:*}" "/dev/${i#*:}"; done
mount -t tmpfs -o nosuid,nodev,mode=1777 shm /dev/shm
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue
mount -t tmpfs -o nosuid,nodev,mode=0755 run /run
mount -t tmpfs -o nosuid,nodev,mode=1777 tmp /tmp
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup ||
    say "no cgroup2"
mount -t bpf -o nosuid,nodev,noexec,mode=0700 bpf /sys/fs/bpf 2>/dev/null
mount -t securityfs -o nosuid,nodev,noexec securityfs /sys/kernel/security 2>/dev/null
mount --make-rshared /

# The shares: virtio-mmio (microvm) or virtio-pci (pc), then 9p.
modprobe virtio_mmio 2>/dev/null
[ -z "$(ls /sys/bus/pci/devices 2>/dev/null)" ] || modprobe virtio_pci
modprobe -a 9pnet_virtio 9p || say "no 9p modules"
opts=trans=virtio,version=9p2000.L,msize=262144,cache=mmap
mkdir -p /run/berthctl /host
mount -t 9p -o $opts berthctl /run/berthctl || say "no control share"
mount -t 9p -o $opts berthhost /host || say "no host share"
hostname -F /etc/hostname
ip link set lo up 2>/dev/null

cg=/sys/fs/cgroup
for c in $(cat $cg/cgroup.controllers); do
    echo "+$c" > $cg/cgroup.subtree_control || say "cannot enable the $c controller"
done
mkdir -p $cg/init.scope && echo $$ > $cg/init.scope/cgroup.procs

cd /host || cd /
read -r up _ < /proc/uptime; echo "$up" > /run/berthctl/t_start
if [ -n "$shell" ]; then
    setsid cttyhack sh
else
    # Output goes through the share, streamed by the host: an emulated
    # serial port carries about 150 KB/s.
    stty -F /dev/console -onlcr 2>/dev/null
    sh /run/berthctl/cmd < /dev/null >> /run/berthctl/stdout 2>> /run/berthctl/stderr
fi
rc=$?
read -r up _ < /proc/uptime; echo "$up" > /run/berthctl/t_end
echo $rc > /run/berthctl/rc
cd /
sync
case $cmdline in *" berth.debug=1 "*) ;; *) echo 0 > /proc/sys/kernel/printk ;; esac
poweroff -f
