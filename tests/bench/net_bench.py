#!/usr/bin/env python3
"""`make bench`, network part: `berth image run --rm -p` against
`podman run --rm -p`, the same busybox image, the same command, in turns.

Both run a container on their default bridge (berth: netavark through its
hooks; podman 4.3: netavark) with one published port, running `true`:
address, veth, firewall rules and port forward set up and torn down each
time. The Makefile runs this under `unshare -n -m` so that neither touches
the host's network or mount table. podman gets `--ulimit nofile=1024:1024
--ulimit nproc=1024:1024`: it would raise the hard limits, which needs
CAP_SYS_RESOURCE (tests/clients/podman.sh does the same).

usage: net_bench.py BERTH FIXTURES OUT.json   (env BENCH_NET_REPEAT, default 15)
"""
import json, os, shutil, statistics, subprocess, sys, tempfile
from benchlib import sh, timed

berth, fixtures, out_path = [os.path.abspath(a) for a in sys.argv[1:4]]
REPEAT = int(os.environ.get("BENCH_NET_REPEAT", "15"))


def main():
    if os.readlink("/proc/self/ns/net") == os.readlink(f"/proc/{os.getppid()}/ns/net"):
        sys.exit("net_bench.py changes the network namespace it runs in: run it under unshare -n")
    sh("ip", "link", "set", "lo", "up")
    tmp = tempfile.mkdtemp(prefix="berth-netbench-")
    # podman wants a runroot path of at most 50 characters.
    prun = tempfile.mkdtemp(prefix="berth-nb-run")
    store, proot = os.path.join(tmp, "store"), os.path.join(tmp, "podman")
    podman = ["podman", "--root", proot, "--runroot", prun, "--storage-driver", "overlay",
              "--cgroup-manager", "cgroupfs", "--events-backend", "none", "--runtime", "runc"]
    try:
        sh(berth, "image", "--store", store, "import", os.path.join(fixtures, "images", "busybox"),
           "--name", "bench:1", stdout=subprocess.DEVNULL)
        pid = subprocess.run(podman + ["pull", "-q", "oci-archive:" + os.path.join(fixtures, "images", "busybox-oci.tar")],
                             check=True, capture_output=True, text=True).stdout.split()[-1]
        cmds = {
            "berth": [berth, "--root", os.path.join(tmp, "state"), "image", "--store", store, "run", "--rm",
                      "-p", "18080:80", "bench:1", "true"],
            "podman": podman + ["run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "-p", "18080:80", pid, "true"],
        }
        for c in cmds.values():  # warm up (the default networks are made here)
            timed(c)
        t = {k: [] for k in cmds}
        for _ in range(REPEAT):
            for k, c in cmds.items():
                t[k].append(timed(c))
        res = {"repeat": REPEAT, "ms": {k: statistics.median(v) * 1000 for k, v in t.items()}}
    finally:
        subprocess.run(podman + ["rmi", "-a", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(prun, ignore_errors=True)
    json.dump(res, open(out_path, "w"), indent=2)
    m = res["ms"]
    print(f"run --rm -p 18080:80 busybox true, median of {REPEAT} (ms): berth image run {m['berth']:.1f}, "
          f"podman run {m['podman']:.1f}, berth/podman {m['berth'] / m['podman']:.2f}")


if __name__ == "__main__":
    main()
