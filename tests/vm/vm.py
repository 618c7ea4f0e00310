#!/usr/bin/env python3
"""berth's test VM: a throw-away guest whose only cgroup hierarchy is
cgroup v2, for the suites `make test` runs on a unified host (this
project's development machines are cgroup v1 or hybrid).

    vm.py setup                        fetch the kernel and packages, build the image
    vm.py run [--systemd] DIR CMD...   boot, run CMD as root in the guest, power off
    vm.py shell DIR                    an interactive guest shell (Ctrl-A x quits)

DIR is shared read-write with the guest at /host (9p) and is the command's
working directory. CMD's stdout and stderr stream to ours while it runs;
the exit status is CMD's, 124 when VM_TIMEOUT ran out, 125 when the VM
itself failed. With --systemd, CMD runs as a service of a real systemd
(Debian's, pid 1 of its own namespaces in the guest) with its D-Bus system
bus: see with-systemd.sh beside this file.

The guest is Debian's kernel and Debian packages unpacked into an initramfs
(nothing is installed on the host): busybox-static for the basics, plus
VM_EXTRA_PKGS with their dependencies. See docs/vm.md for how it boots,
what it costs and how to add a package or a kernel module.

Environment: VM_TIMEOUT (seconds for the whole run, 600), VM_MEM (1G),
VM_CPUS (2), VM_EXTRA_PKGS, VM_EXTRA_MODULES (kernel modules by name; their
dependencies come along), VM_APPEND (kernel command line), VM_CACHE_DIR
(~/.cache/berth-vm), VM_DEBUG=1 (kernel log and the guest's init traced).
"""

import hashlib
import lzma
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("VM_CACHE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "berth-vm")
BASE_PKGS = ["busybox-static"]
# Loaded by the guest's init (the 9p share), and put in the image so that
# the kernel loads them when a test needs them (overlayfs, veth, ...).
BOOT_MODULES = ["virtio_mmio", "virtio_pci", "9pnet_virtio", "9p"]
DEMAND_MODULES = ["overlay", "veth", "bridge", "tun", "loop", "dummy", "macvlan", "ipvlan"]
# The revision of the image layout: bump it when guest-init.sh's place or
# the image's fixed files change in a way the hash below does not see.
IMAGE_REV = "1"


def log(msg):
    print(f"vm: {msg}", file=sys.stderr, flush=True)


def fail(msg, code=125):
    log(f"error: {msg}")
    sys.exit(code)


def env_list(name):
    return os.environ.get(name, "").split()


def apt_download(dest, pkgs):
    """apt-get download into dest; one apt-get update and a retry on failure."""
    cmd = ["apt-get", "-qq", "-o", "APT::Sandbox::User=root", "download", *pkgs]
    if subprocess.run(cmd, cwd=dest, stdout=sys.stderr).returncode == 0:
        return
    log("apt-get download failed; apt-get update, then again")
    subprocess.run(["apt-get", "-q", "update"], stdout=sys.stderr)
    if subprocess.run(cmd, cwd=dest, stdout=sys.stderr).returncode != 0:
        fail(f"apt-get download {' '.join(pkgs)} failed")


def closure(pkgs, updated=False):
    """The packages and versions pkgs need, as if nothing were installed."""
    out = subprocess.run(
        ["apt-get", "-s", "-o", "Dir::State::status=/dev/null", "install",
         "--no-install-recommends", *pkgs],
        capture_output=True, text=True).stdout
    got = [f"{m[1]}={m[2]}" for m in re.finditer(r"^Inst (\S+) \((\S+)", out, re.M)]
    if got:
        return sorted(got)
    if updated:
        fail(f"cannot resolve the packages {' '.join(pkgs)}")
    subprocess.run(["apt-get", "-q", "update"], stdout=sys.stderr)
    return closure(pkgs, updated=True)


def unpack_debs(tmp, dest):
    os.makedirs(dest, exist_ok=True)
    for d in sorted(os.listdir(tmp)):
        if d.endswith(".deb"):
            subprocess.run(["dpkg-deb", "-x", os.path.join(tmp, d), dest], check=True)


def vmlinux_from_bzimage(bz, out):
    """The uncompressed ELF kernel inside a bzImage (boot protocol: setup
    sectors at 0x1f1, payload offset and length at 0x248): QEMU boots it
    directly through PVH, which saves the guest seconds of decompression
    under emulation."""
    data = open(bz, "rb").read()
    setup_sects = data[0x1F1] or 4
    off, length = struct.unpack_from("<II", data, 0x248)
    payload = data[(setup_sects + 1) * 512 + off:][:length]
    if payload[:6] == b"\xfd7zXZ\x00":
        elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    elif payload[:2] == b"\x1f\x8b":
        elf = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
    else:
        return False
    if elf[:4] != b"\x7fELF":
        return False
    with open(out, "wb") as f:
        f.write(elf)
    return True


def setup_kernel():
    """Debian's current kernel package, unpacked into the cache once."""
    pin = os.path.join(CACHE, "kernel-package")
    if os.path.exists(pin):
        pkg = open(pin).read().strip()
    else:
        deps = subprocess.run(["apt-cache", "depends", "linux-image-amd64"],
                              capture_output=True, text=True).stdout
        m = re.search(r"Depends: (linux-image-\S+)", deps)
        if not m:
            subprocess.run(["apt-get", "-q", "update"], stdout=sys.stderr)
            deps = subprocess.run(["apt-cache", "depends", "linux-image-amd64"],
                                  capture_output=True, text=True).stdout
            m = re.search(r"Depends: (linux-image-\S+)", deps) or fail(
                "cannot resolve linux-image-amd64")
        pkg = m[1]
    kdir = os.path.join(CACHE, "kernel", pkg)
    if not os.path.exists(os.path.join(kdir, ".done")):
        log(f"fetching {pkg}")
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            apt_download(tmp, [pkg])
            unpack_debs(tmp, os.path.join(tmp, "x"))
            shutil.rmtree(kdir, ignore_errors=True)
            os.makedirs(os.path.dirname(kdir), exist_ok=True)
            os.rename(os.path.join(tmp, "x"), kdir)
        kver = os.listdir(os.path.join(kdir, "lib/modules"))[0]
        if not vmlinux_from_bzimage(f"{kdir}/boot/vmlinuz-{kver}", f"{kdir}/boot/vmlinux-{kver}"):
            log("cannot extract vmlinux: booting the compressed kernel (slower)")
        open(os.path.join(kdir, ".done"), "w").close()
    with open(pin, "w") as f:
        f.write(pkg + "\n")
    kver = os.listdir(os.path.join(kdir, "lib/modules"))[0]
    kernel = f"{kdir}/boot/vmlinux-{kver}"
    if not os.path.exists(kernel):
        kernel = f"{kdir}/boot/vmlinuz-{kver}"
    return pkg, kdir, kver, kernel


def setup_userland():
    """The guest's packages (with their dependencies), unpacked once per set."""
    want = sorted(set(BASE_PKGS + env_list("VM_EXTRA_PKGS")))
    key = hashlib.sha256(" ".join(want).encode()).hexdigest()[:12]
    udir = os.path.join(CACHE, "userland", key)
    if not os.path.exists(os.path.join(udir, ".done")):
        log(f"fetching guest packages: {' '.join(want)}")
        pkgs = closure(want)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            apt_download(tmp, pkgs)
            unpack_debs(tmp, os.path.join(tmp, "root"))
            with open(os.path.join(tmp, "root", ".pkgs"), "w") as f:
                f.write("\n".join(pkgs) + "\n")
            shutil.rmtree(udir, ignore_errors=True)
            os.makedirs(os.path.dirname(udir), exist_ok=True)
            os.rename(os.path.join(tmp, "root"), udir)
        open(os.path.join(udir, ".done"), "w").close()
    return udir


def module_paths(kdir, kver, names):
    """The .ko files of the named modules and of what they depend on,
    dependencies first; built-in modules need none."""
    base = f"{kdir}/lib/modules/{kver}"
    index = {}
    for dirpath, _, files in os.walk(os.path.join(base, "kernel")):
        for f in files:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.relpath(os.path.join(dirpath, f), base)
    builtin = set()
    with open(os.path.join(base, "modules.builtin")) as f:
        for line in f:
            builtin.add(os.path.basename(line.strip())[:-3].replace("-", "_"))
    order, seen = [], set()

    def visit(name):
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            if name in builtin:
                return
            fail(f"kernel module {name} is not in {kver}")
        info = open(os.path.join(base, index[name]), "rb").read()
        for key in (b"depends=", b"softdep="):
            for m in re.finditer(re.escape(key) + rb"([^\0]*)\0", info):
                for dep in re.split(rb"[ ,]", m[1]):
                    dep = dep.decode()
                    if dep and dep not in ("pre:", "post:") and \
                            (key == b"depends=" or dep.replace("-", "_") in index):
                        visit(dep)
        order.append(index[name])

    for n in names:
        visit(n)
    return order


class Cpio:
    """A newc cpio archive (the initramfs format), everything owned by root."""

    def __init__(self, f):
        self.f, self.ino = f, 1

    def _entry(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        name = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(name), 0]
        self.ino += 1
        head = b"070701" + b"".join(b"%08x" % v for v in fields)
        self.f.write(head + name + b"\0" * (-(len(head) + len(name)) % 4))
        self.f.write(data + b"\0" * (-len(data) % 4))

    def add_tree(self, root):
        paths = []
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for n in dirs + sorted(files):
                paths.append(os.path.join(dirpath, n))
        for p in sorted(paths):
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                self._entry(rel, st.st_mode, os.readlink(p).encode())
            elif os.path.isdir(p):
                self._entry(rel, st.st_mode, nlink=2)
            elif os.path.isfile(p):
                self._entry(rel, st.st_mode, open(p, "rb").read())

    def finish(self):
        self._entry("TRAILER!!!", 0)


def build_image(pkg, kdir, kver, udir):
    """The initramfs: the unpacked packages, busybox applets for every
    command they lack, the kernel modules with a modules.dep, a minimal
    /etc, and guest-init.sh as /init. Cached by everything that goes in."""
    init = open(os.path.join(HERE, "guest-init.sh"), "rb").read()
    mods = BOOT_MODULES + DEMAND_MODULES + env_list("VM_EXTRA_MODULES")
    h = hashlib.sha256()
    for part in (IMAGE_REV, pkg, open(os.path.join(udir, ".pkgs")).read(), " ".join(mods)):
        h.update(part.encode() + b"\0")
    h.update(init)
    image = os.path.join(CACHE, f"initramfs-{h.hexdigest()[:16]}.cpio")
    if os.path.exists(image):
        os.utime(image)
        return image
    log(f"building the guest image ({len(open(os.path.join(udir, '.pkgs')).readlines())} packages)")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = os.path.join(tmp, "root")
        subprocess.run(["cp", "-a", udir + "/.", root], check=True)
        # Documentation, locales and the like: not needed, and the image
        # lives in the guest's memory.
        for d in ("usr/share", "usr/lib/x86_64-linux-gnu/gconv", ".pkgs", ".done"):
            p = os.path.join(root, d)
            shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else \
                os.path.exists(p) and os.unlink(p)
        for d in ("proc", "sys", "dev", "run", "tmp", "var/tmp", "root", "host", "etc",
                  "usr/local/bin", "usr/local/sbin", "newroot"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        os.chmod(os.path.join(root, "var/tmp"), 0o1777)
        bb = os.path.join(root, "bin/busybox")
        applets = subprocess.run([bb, "--list-full"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for a in applets:
            p = os.path.join(root, a.lstrip("/"))
            if not os.path.lexists(p):
                os.makedirs(os.path.dirname(p), exist_ok=True)
                os.symlink("/bin/busybox", p)
        src = f"{kdir}/lib/modules/{kver}"
        dst = f"{root}/lib/modules/{kver}"
        for m in module_paths(kdir, kver, mods):
            os.makedirs(os.path.dirname(os.path.join(dst, m)), exist_ok=True)
            shutil.copy(os.path.join(src, m), os.path.join(dst, m))
        for f in ("modules.builtin", "modules.order"):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
        subprocess.run([bb, "depmod", "-b", root, kver], check=True)
        etc = os.path.join(root, "etc")
        files = {
            "passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
            "group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
            "hostname": "berth-vm\n",
            "hosts": "127.0.0.1\tlocalhost berth-vm\n::1\tlocalhost ip6-localhost\n",
        }
        for n, text in files.items():
            with open(os.path.join(etc, n), "w") as f:
                f.write(text)
        if not os.path.lexists(os.path.join(etc, "mtab")):
            os.symlink("/proc/self/mounts", os.path.join(etc, "mtab"))
        with open(os.path.join(root, "init"), "wb") as f:
            f.write(init)
        os.chmod(os.path.join(root, "init"), 0o755)
        part = image + ".part"
        with open(part, "wb") as f:
            c = Cpio(f)
            c.add_tree(root)
            c.finish()
        os.rename(part, image)
    # Images of other package sets not used for a week go.
    for n in os.listdir(CACHE):
        p = os.path.join(CACHE, n)
        if n.startswith("initramfs-") and time.time() - os.path.getmtime(p) > 7 * 86400:
            os.unlink(p)
    return image


def setup():
    if not shutil.which("qemu-system-x86_64"):
        fail("qemu-system-x86_64 not found (Debian package qemu-system-x86)")
    os.makedirs(CACHE, exist_ok=True)
    import fcntl
    lock = open(os.path.join(CACHE, ".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    pkg, kdir, kver, kernel = setup_kernel()
    udir = setup_userland()
    image = build_image(pkg, kdir, kver, udir)
    lock.close()
    return kernel, image


def kvm_usable():
    """KVM with a hardware module (a PVM-only /dev/kvm cannot run Debian's
    kernel)."""
    return os.access("/dev/kvm", os.R_OK | os.W_OK) and any(
        os.path.isdir(f"/sys/module/{m}") for m in ("kvm_intel", "kvm_amd"))


def tsc_khz():
    """The host's TSC rate: an emulated guest's TSC ticks at it, and a
    microvm guest has no other clock to calibrate against. From the
    kernel's boot messages while the ring buffer still has them, else from
    /proc/cpuinfo where the TSC is constant and no frequency scaling moves
    "cpu MHz"; the last rate found is kept in the cache for when neither
    says (a long-running host's ring buffer has rotated)."""
    cached = os.path.join(CACHE, "tsc-khz")
    text = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    mhz = None
    for pat in (r"Refined TSC clocksource calibration: ([\d.]+) MHz",
                r"tsc: Detected ([\d.]+) MHz processor"):
        found = re.findall(pat, text)
        if found:
            mhz = float(found[-1])
            break
    if mhz is None and not os.path.isdir("/sys/devices/system/cpu/cpu0/cpufreq"):
        info = open("/proc/cpuinfo").read()
        m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M)
        if m and re.search(r"^flags\s*:.*\bconstant_tsc\b", info, re.M):
            mhz = float(m[1])
    if mhz is not None and mhz >= 100:
        khz = int(mhz * 1000)
        with open(cached, "w") as f:
            f.write(f"{khz}\n")
        return khz
    try:
        return int(open(cached).read())
    except (OSError, ValueError):
        return None


def qemu_command(kernel, image, ctl, hostdir, interactive):
    append = ["console=ttyS0", "panic=-1", "rdinit=/init", "cgroup_no_v1=all",
              "8250.nr_uarts=1", "cryptomgr.notests"]
    machine = "microvm"
    if kvm_usable():
        cmd = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host"]
    else:
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max"]
        khz = tsc_khz()
        if khz:
            append += [f"tsc_early_khz={khz}", "tsc=reliable"]
        else:
            machine = "pc"  # HPET and ACPI PM timer to calibrate against
    debug = os.environ.get("VM_DEBUG") == "1"
    append += ["loglevel=7", "berth.debug=1"] if debug else ["quiet", "loglevel=1"]
    if interactive:
        append.append("berth.shell=1")
    append += env_list("VM_APPEND")
    dev = "virtio-9p-device" if machine == "microvm" else "virtio-9p-pci"
    model = "passthrough" if os.getuid() == 0 else "none"
    esc = lambda p: p.replace(",", ",,")
    cmd += ["-M", machine, "-m", os.environ.get("VM_MEM", "1G"),
            "-smp", os.environ.get("VM_CPUS", "2"), "-nographic", "-nodefaults",
            "-no-user-config", "-no-reboot", "-serial", "mon:stdio",
            "-kernel", kernel, "-initrd", image, "-append", " ".join(append),
            "-fsdev", f"local,id=ctl,path={esc(ctl)},security_model={model}",
            "-device", f"{dev},fsdev=ctl,mount_tag=berthctl",
            "-fsdev", f"local,id=host,path={esc(hostdir)},security_model={model},multidevs=remap",
            "-device", f"{dev},fsdev=host,mount_tag=berthhost"]
    if machine == "pc" and os.path.exists("/usr/share/qemu/qboot.rom"):
        cmd += ["-bios", "/usr/share/qemu/qboot.rom"]
    return cmd


def shell_quote(a):
    return "'" + a.replace("'", "'\\''") + "'"


def run(hostdir, argv, systemd=False, interactive=False):
    if not os.path.isdir(hostdir):
        fail(f"{hostdir}: not a directory")
    hostdir = os.path.realpath(hostdir)
    kernel, image = setup()
    timeout = float(os.environ.get("VM_TIMEOUT", "600"))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="berth-vm.") as ctl:
        os.chmod(ctl, 0o755)
        if systemd:
            # The command's own limit, within the VM's (boot and systemd's
            # start-up take the rest).
            shutil.copy(os.path.join(HERE, "with-systemd.sh"), ctl)
            argv = ["env", f"WITH_SYSTEMD_TIMEOUT={max(60, int(timeout) - 100)}",
                    "sh", "/run/berthctl/with-systemd.sh", *argv]
        with open(os.path.join(ctl, "cmd"), "w") as f:
            f.write("exec " + " ".join(shell_quote(a) for a in argv) + "\n")
        cmd = qemu_command(kernel, image, ctl, hostdir, interactive)
        if os.environ.get("VM_DEBUG") == "1":
            log(" ".join(cmd))
        if interactive:
            subprocess.run(cmd)
            return 0
        for n in ("stdout", "stderr"):
            open(os.path.join(ctl, n), "w").close()
        q = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                             stdout=None if os.environ.get("VM_DEBUG") == "1" else subprocess.DEVNULL,
                             start_new_session=True)
        outs = [(open(os.path.join(ctl, "stdout"), "rb"), sys.stdout.buffer),
                (open(os.path.join(ctl, "stderr"), "rb"), sys.stderr.buffer)]

        def pump():
            for src, dst in outs:
                data = src.read()
                if data:
                    dst.write(data)
                    dst.flush()

        def stop(*_):
            os.killpg(q.pid, signal.SIGKILL)
            sys.exit(130)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        timed_out = False
        while q.poll() is None:
            pump()
            if time.monotonic() - started > timeout:
                timed_out = True
                os.killpg(q.pid, signal.SIGKILL)
                q.wait()
                break
            time.sleep(0.1)
        pump()
        rc_file = os.path.join(ctl, "rc")
        total = time.monotonic() - started
        if not os.path.exists(rc_file) or not open(rc_file).read().strip():
            if timed_out:
                log(f"timed out after {timeout:.0f}s (VM_TIMEOUT)")
                return 124
            fail(f"the guest reported no exit status (qemu exited {q.returncode}); "
                 "VM_DEBUG=1 shows its console")
        rc = int(open(rc_file).read())
        t = {}
        for n in ("t_start", "t_end"):
            try:
                t[n] = float(open(os.path.join(ctl, n)).read())
            except (OSError, ValueError):
                t[n] = 0.0
        log(f"exit {rc}; boot {t['t_start']:.1f}s, command {t['t_end'] - t['t_start']:.1f}s, "
            f"total {total:.1f}s")
        return rc


def main():
    a = sys.argv[1:]
    if a[:1] == ["setup"]:
        kernel, image = setup()
        log(f"ready: {os.path.basename(kernel)}, {os.path.basename(image)} "
            f"({os.path.getsize(image) >> 20} MiB)")
        return 0
    if a[:1] == ["run"]:
        a = a[1:]
        systemd = a[:1] == ["--systemd"]
        if systemd:
            a = a[1:]
        if len(a) < 2:
            fail("usage: vm.py run [--systemd] DIR CMD...")
        return run(a[0], a[1:], systemd=systemd)
    if a[:1] == ["shell"] and len(a) == 2:
        return run(a[1], ["sh"], interactive=True)
    print(__doc__, file=sys.stderr)
    return 125


if __name__ == "__main__":
    sys.exit(main())
