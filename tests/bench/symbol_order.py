#!/usr/bin/env python3
"""Writes the link order of berth's hot functions (src/symbol-order.txt).

Most of a berth process's memory is its own code: the kernel maps text in
64 KiB blocks around each page a process touches, so functions scattered
over the 3.9 MB of text make a `create` touch most of it. build.rs gives
this file to the linker (lld --symbol-ordering-file), which places the
functions listed first, together, in this order.

The list is what the runtime commands execute, then what `image run
--rm` adds to them, first run first: each command runs once, from the release build (which keeps its symbol
table: names differ between profiles), under a small ptrace
tracer that puts a breakpoint on every function of the binary and notes
each function the first time one of berth's processes (the container init
too, until it execs the container's program) enters it. (valgrind cannot
run berth: it lacks openat2.) The commands run in a cgroup2 view (as on
most hosts, and in `make bench`), then on this host's own hierarchies.
At the end come a few read-only data objects every start reads
(HOT_DATA below), which the same option places at the front of .rodata.
Run as root: `make symbol-order`.
usage: symbol_order.py BERTH_RELEASE ROOTFS OUT
"""
import ctypes
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

DEVNULL = subprocess.DEVNULL
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_TRACEME, PTRACE_PEEKDATA, PTRACE_POKEDATA = 0, 2, 5
PTRACE_CONT, PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_DETACH = 7, 12, 13, 17
PTRACE_SETOPTIONS, PTRACE_GETEVENTMSG = 0x4200, 0x4201
# TRACEFORK | TRACEVFORK | TRACECLONE | TRACEEXEC | EXITKILL
OPTIONS = 0x02 | 0x04 | 0x08 | 0x10 | 0x100000
EVENT_EXEC = 4
RIP = 16  # index of rip in struct user_regs_struct


class Regs(ctypes.Structure):
    _fields_ = [("r", ctypes.c_ulonglong * 27)]


def ptrace(req, pid, addr=0, data=0):
    ctypes.set_errno(0)
    r = libc.ptrace(req, pid, ctypes.c_void_p(addr), ctypes.c_void_p(data))
    e = ctypes.get_errno()
    if r == -1 and e != 0:
        raise OSError(e, f"ptrace {req} pid {pid}: {os.strerror(e)}")
    return r


class Image:
    """berth's functions: link-time address -> names (from nm)."""

    def __init__(self, path):
        self.stat = os.stat(path)
        self.names = {}
        nm = subprocess.run(["nm", "--defined-only", path], capture_output=True, text=True, check=True)
        for line in nm.stdout.splitlines():
            a, kind, name = line.split(maxsplit=2)
            if kind in "tTwWi":
                self.names.setdefault(int(a, 16), []).append(name)


class Tracer:
    """Runs berth under ptrace; `order` gets each function's names the
    first time any traced process enters it."""

    def __init__(self, image, err):
        self.image, self.err = image, err
        self.seen, self.order = set(), []
        self.base = {}  # pid -> load address of berth, for berth's processes
        self.orig = {}  # load address -> {address: original first byte}
        self.live, self.fresh = set(), set()

    def is_berth(self, pid):
        st = os.stat(f"/proc/{pid}/exe")
        return (st.st_dev, st.st_ino) == (self.image.stat.st_dev, self.image.stat.st_ino)

    def arm(self, pid):
        """After an exec of berth: int3 on the first byte of every function
        not yet seen (the image is fresh, so all of them)."""
        base = None
        # The binary's first mapping (its inode, offset 0): the vdso, also
        # at offset 0, may sit just below it.
        for line in open(f"/proc/{pid}/maps"):
            f = line.split()
            if len(f) >= 6 and int(f[2], 16) == 0 and int(f[4]) == self.image.stat.st_ino:
                base = int(f[0].split("-")[0], 16)
                break
        self.base[pid] = base
        orig = self.orig.setdefault(base, {})
        for a in self.image.names:
            if a in self.seen:
                continue
            addr = base + a
            # Byte by byte: functions can be closer than a word apart.
            word = ptrace(PTRACE_PEEKDATA, pid, addr) & 0xFFFFFFFFFFFFFFFF
            orig.setdefault(addr, word & 0xFF)
            ptrace(PTRACE_POKEDATA, pid, addr, (word & ~0xFF) | 0xCC)

    def hit(self, pid):
        """A SIGTRAP: if at one of our breakpoints, note the function, put
        the original byte back in this process and re-run the instruction."""
        base = self.base.get(pid)
        if base is None:
            return False
        regs = Regs()
        ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
        addr = regs.r[RIP] - 1
        byte = self.orig[base].get(addr)
        if byte is None:
            return False
        word = ptrace(PTRACE_PEEKDATA, pid, addr) & 0xFFFFFFFFFFFFFFFF
        ptrace(PTRACE_POKEDATA, pid, addr, (word & ~0xFF) | byte)
        regs.r[RIP] = addr
        ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(regs))
        a = addr - base
        if a not in self.seen:
            self.seen.add(a)
            self.order.extend(self.image.names[a])
        return True

    def run(self, argv, env):
        """Runs one command to its exit, serving every traced process
        meanwhile (a created container's init goes on during `start`)."""
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open(os.devnull, os.O_RDWR)
                for i in (0, 1):
                    os.dup2(fd, i)
                os.dup2(os.open(self.err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
                ptrace(PTRACE_TRACEME, 0)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        os.waitpid(pid, 0)  # stopped at its exec
        ptrace(PTRACE_SETOPTIONS, pid, 0, OPTIONS)
        self.arm(pid)
        ptrace(PTRACE_CONT, pid)
        self.live.add(pid)
        while True:
            p, status = os.waitpid(-1, 0x40000000)  # __WALL
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                self.live.discard(p)
                self.base.pop(p, None)
                if p == pid:
                    return os.waitstatus_to_exitcode(status)
                continue
            # A new child stops once with SIGSTOP when attached (before or
            # after its parent's fork event).
            new = p not in self.live or p in self.fresh
            self.fresh.discard(p)
            self.live.add(p)
            sig, event = os.WSTOPSIG(status), status >> 16
            deliver = 0
            if event in (1, 2, 3):  # fork, vfork, clone: the parent's image
                child = ctypes.c_ulong()
                ptrace(PTRACE_GETEVENTMSG, p, 0, ctypes.addressof(child))
                self.base[child.value] = self.base.get(p)
                if child.value not in self.live:
                    self.fresh.add(child.value)
                    self.live.add(child.value)
            elif event == EVENT_EXEC:
                if self.is_berth(p):
                    self.arm(p)
                else:  # the container's program: not ours to trace
                    self.base.pop(p, None)
                    self.live.discard(p)
                    ptrace(PTRACE_DETACH, p)
                    continue
            elif sig == signal.SIGTRAP:
                if not self.hit(p):
                    deliver = sig
            elif not (sig == signal.SIGSTOP and new):  # not an attach stop
                deliver = sig
            ptrace(PTRACE_CONT, p, 0, deliver)


def bundle(tmp, berth, rootfs, name, args):
    b = os.path.join(tmp, name)
    os.makedirs(b)
    subprocess.run([berth, "spec", "-b", b], check=True)
    c = json.load(open(os.path.join(b, "config.json")))
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["root"] = {"path": rootfs, "readonly": True}
    # runc spec's ambient capabilities, as most callers' configs carry
    # them: where they cannot be raised (not inheritable), the init's
    # warning path is part of every start.
    c["process"]["capabilities"]["ambient"] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    # A parent cgroup of our own, removed at the end.
    c["linux"]["cgroupsPath"] = f"/berth-order-{os.getpid()}/{name}"
    json.dump(c, open(os.path.join(b, "config.json"), "w"))
    return b


def trace(berth, rootfs, tmp, view):
    """Runs each command once under the tracer; writes the functions it
    saw, first seen first, to tmp/order.VIEW."""
    root = os.path.join(tmp, "root-" + view)
    err = os.path.join(tmp, "stderr")
    tracer = Tracer(Image(berth), err)

    def traced(args):
        code = tracer.run([berth, "--root", root] + args, dict(os.environ))
        if code != 0:
            sys.exit(f"berth {' '.join(args)} failed under the tracer ({code}): {open(err).read()}")

    t = bundle(tmp, berth, rootfs, "true-" + view, ["/bin/true"])
    s = bundle(tmp, berth, rootfs, "sleep-" + view, ["/bin/sleep", "100"])
    try:
        for a in [
            ["create", "--bundle", t, "c"], ["state", "c"], ["start", "c"], ["list"],
            ["delete", "c"], ["run", "--bundle", t, "r"],
            ["run", "-d", "--bundle", s, "s"], ["exec", "s", "/bin/true"],
            ["ps", "s"], ["kill", "s", "KILL"], ["delete", "-f", "s"],
        ]:
            traced(a)
        # Then `image run --rm` of a stored image: what it runs beyond the
        # runtime's path comes after it in the list.
        store = os.path.join(tmp, "store-" + view)
        image = os.path.join(os.path.dirname(rootfs), "images", "busybox-oci.tar")
        subprocess.run([berth, "image", "--store", store, "import", image], check=True, stdout=DEVNULL)
        traced(["image", "--store", store, "run", "--rm", "--network", "none", "busybox-oci", "/bin/true"])
    finally:
        for c in ["c", "r", "s"]:
            subprocess.run([berth, "--root", root, "delete", "-f", c], stderr=DEVNULL)
        for d in sorted(glob.glob(f"/sys/fs/cgroup/**/berth-order-{os.getpid()}/**/", recursive=True),
                        key=len, reverse=True):
            os.rmdir(d)
    with open(os.path.join(tmp, "order." + view), "w") as o:
        o.write("".join(n + "\n" for n in tracer.order))


# Read-only data every berth process reads at start-up, found with `perf
# record -e page-faults -d` over a create (docs/benchmarks.md): each sat
# alone in a 64 KiB fault-around block of .rodata. Listed, their sections
# go to the front of .rodata, beside the relocation tables every start
# reads anyway. glibc's: the cache-descriptor table (and the jump table
# beside it) of its x86 start-up, the library directories _dl_init_paths
# reads; Rust's: the two-digit table integer formatting uses (LLVM merges
# core's with identical ones, so the name is matched, not the crate).
HOT_DATA = ("intel_02_known", "system_dirs", "system_dirs_len", "DIGITS2", "DEC_DIGITS_LUT")


def hot_data(berth):
    names = []
    for line in subprocess.run(["nm", berth], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        # C names exactly; Rust's (legacy _ZN or v0 _R mangling) by the
        # item's name inside them.
        if len(f) == 3 and f[1] in "rR" and any(
                f[2] == h or f[2].startswith(("_ZN", "_R")) and h in f[2] for h in HOT_DATA):
            names.append(f[2])
    return sorted(set(names))


def main():
    if sys.argv[1] == "--trace-v2":
        # In a private mount namespace: a cgroup2 view (as tests/bench/bench.py).
        berth, rootfs, tmp = sys.argv[2:5]
        subprocess.run(["umount", "-R", "-l", "/sys/fs/cgroup"], check=True)
        subprocess.run(["mount", "-t", "cgroup2", "none", "/sys/fs/cgroup"], check=True)
        trace(berth, rootfs, tmp, "v2")
        return
    berth, rootfs, out_path = [os.path.abspath(a) for a in sys.argv[1:4]]
    tmp = tempfile.mkdtemp(prefix="berth-order-")
    try:
        views = ["v2"]
        if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            trace(berth, rootfs, tmp, "v2")
        else:
            subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                            os.path.abspath(__file__), "--trace-v2", berth, rootfs, tmp], check=True)
            trace(berth, rootfs, tmp, "v1")
            views.append("v1")
        seen, order = set(), []
        for v in views:
            for n in open(os.path.join(tmp, "order." + v)).read().split():
                if n not in seen:
                    seen.add(n)
                    order.append(n)
        data = hot_data(berth)
        with open(out_path, "w") as o:
            o.write("".join(n + "\n" for n in order + data))
        print(f"{out_path}: {len(order)} functions, {len(data)} read-only data objects")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()
