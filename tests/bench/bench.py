#!/usr/bin/env python3
"""`make bench`: berth, crun and runc side by side, interleaved (A B C A B C).

Runs as root inside a private mount namespace (the Makefile uses unshare):
crun refuses hybrid cgroup hosts like this project's machines, so on such a
host /sys/fs/cgroup is replaced, in this namespace only, by a plain cgroup2
mount; all three runtimes then see the same unified host (its controllers
stay bound to the v1 hierarchies, so no limits are set in these runs).

usage: bench.py BERTH ROOTFS FLOOR RSS OUT.json   (env BENCH_N, default 200)
"""
import ctypes, json, os, shutil, statistics, subprocess, sys, tempfile, time

berth, rootfs, floor, rss_tool, out_path = [os.path.abspath(a) for a in sys.argv[1:6]]
N = int(os.environ.get("BENCH_N", "200"))
RT = {"berth": berth, "crun": "/usr/bin/crun", "runc": "/usr/sbin/runc", "berth-unprotected": berth}
ORDER = ["berth", "crun", "runc"]
# berth without its CVE-2019-5736 re-exec from a read-only view of its
# binary (docs/security.md), to report what that defence costs.
NOEXE = "berth-unprotected"
ENV = {NOEXE: dict(os.environ, BERTH_UNSAFE_EXE="1")}
DEVNULL = subprocess.DEVNULL

# Orphaned container inits become our children, so exits are waited for
# exactly (no polling).
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def unified_view():
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "cgroup v2 host"
    subprocess.run(["umount", "-R", "-l", "/sys/fs/cgroup"], check=True)
    subprocess.run(["mount", "-t", "cgroup2", "none", "/sys/fs/cgroup"], check=True)
    return "hybrid/v1 host: private cgroup2 view without controllers"


def make_bundle(tmp, args):
    b = os.path.join(tmp, "bundle-" + args[0].strip("/").replace("/", "_"))
    os.makedirs(b, exist_ok=True)
    spec = subprocess.run([berth, "spec", "-b", b], check=True)
    c = json.load(open(os.path.join(b, "config.json")))
    os.remove(os.path.join(b, "config.json"))
    c["ociVersion"] = "1.0.2"  # crun 1.8 knows up to 1.1
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    c["root"] = {"path": rootfs, "readonly": True}
    # No device cgroup rules for any runtime: crun would load an eBPF device
    # program after raising RLIMIT_MEMLOCK (needs CAP_SYS_RESOURCE, absent
    # here), so all three run without one.
    c["linux"]["resources"] = {}
    json.dump(c, open(os.path.join(b, "config.json"), "w"))
    return b


ERR = tempfile.TemporaryFile()


def run(cmd, **kw):
    """Runs cmd; returns (seconds, peak RSS KiB). stderr goes to a file: a
    created container keeps the stdio it inherits, a pipe would block."""
    ERR.seek(0)
    ERR.truncate()
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=DEVNULL, stdout=DEVNULL, stderr=ERR, **kw)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        ERR.seek(0)
        raise RuntimeError(f"{cmd}: {ERR.read().decode()}")
    return dt, ru.ru_maxrss


def reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def lifecycle(name, root, bundle, i):
    """create + start + wait for exit + delete; returns (seconds, create RSS KiB)."""
    rt, cid = RT[name], f"bench-{name}-{i}"
    pidf = os.path.join(root, f"{cid}.pid")
    t = time.perf_counter()
    _, _ = run([rss_tool, rt, "--root", root, "create", "--bundle", bundle, "--pid-file", pidf, cid], env=ENV.get(name))
    ERR.seek(0)
    rss = int(ERR.read().decode().strip().splitlines()[-1].split()[1])
    pid = int(open(pidf).read())
    run([rt, "--root", root, "start", cid], env=ENV.get(name))
    reap(pid)
    run([rt, "--root", root, "delete", cid])
    return time.perf_counter() - t, rss


def rss_of(cmd, env=None):
    """Peak RSS in KiB of one command, through the small C helper."""
    run([rss_tool] + cmd, env=env)
    ERR.seek(0)
    return int(ERR.read().decode().strip().splitlines()[-1].split()[1])


RSS_CMDS = ["create", "state", "start", "delete", "run", "exec"]


def rss_rounds(roots, true_b, sleep_b, k=7):
    """Peak RSS of each runtime command (medians of k rounds, interleaved)."""
    out = {c: {n: [] for n in ORDER} for c in RSS_CMDS}
    for n in ORDER:
        run([RT[n], "--root", roots[n], "run", "-d", "--bundle", sleep_b, f"rx-{n}"])
    for i in range(k):
        for n in ORDER:
            rt, root, cid = RT[n], roots[n], f"rss-{n}-{i}"
            pidf = os.path.join(root, f"{cid}.pid")
            e = ENV.get(n)
            out["create"][n].append(rss_of([rt, "--root", root, "create", "--bundle", true_b, "--pid-file", pidf, cid], e))
            out["state"][n].append(rss_of([rt, "--root", root, "state", cid], e))
            pid = int(open(pidf).read())
            out["start"][n].append(rss_of([rt, "--root", root, "start", cid], e))
            reap(pid)
            out["delete"][n].append(rss_of([rt, "--root", root, "delete", cid], e))
            out["run"][n].append(rss_of([rt, "--root", root, "run", "--bundle", true_b, f"rssrun-{n}-{i}"], e))
            out["exec"][n].append(rss_of([rt, "--root", root, "exec", f"rx-{n}", "/bin/true"], e))
    for n in ORDER:
        run([RT[n], "--root", roots[n], "delete", "--force", f"rx-{n}"])
    return {c: {n: statistics.median(v) for n, v in d.items()} for c, d in out.items()}


def median_ms(v):
    return statistics.median(v) * 1000


def main():
    view = unified_view()
    # berth's default cgroup parent (configs without cgroupsPath): the
    # bench removes it at the end if it made it.
    berth_parent = "/sys/fs/cgroup/berth"
    had_parent = os.path.isdir(berth_parent)
    tmp = tempfile.mkdtemp(prefix="berth-bench-")
    true_b = make_bundle(tmp, ["/bin/true"])
    sleep_b = make_bundle(tmp, ["/bin/sleep", "1000"])
    roots = {n: os.path.join(tmp, "root-" + n) for n in ORDER + [NOEXE]}
    for r in roots.values():
        os.makedirs(r)
    res = {"n": N, "cgroups": view, "versions": {}, "symbol_order": symbol_order()}
    for n in ORDER:
        res["versions"][n] = subprocess.run([RT[n], "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    # Warm-up.
    for i in range(10):
        for n in ORDER:
            lifecycle(n, roots[n], true_b, f"w{i}")
    lc = {n: [] for n in ORDER + [NOEXE]}
    rss = {n: [] for n in ORDER + [NOEXE]}
    runs = {n: [] for n in ORDER}
    fl = []
    for i in range(N):
        for n in ORDER + [NOEXE]:
            dt, r = lifecycle(n, roots[n], true_b, i)
            lc[n].append(dt)
            rss[n].append(r)
        for n in ORDER:
            runs[n].append(run([RT[n], "--root", roots[n], "run", "--bundle", true_b, f"run-{n}-{i}"])[0])
        fl.append(run([floor, rootfs])[0])
    # `image run --rm` of a stored image against `run` of a prepared bundle.
    res["image_run"] = image_run(tmp, roots["berth"])
    # exec into a running container.
    ex = {n: [] for n in ORDER + [NOEXE]}
    for n in ORDER:
        run([RT[n], "--root", roots[n], "run", "-d", "--bundle", sleep_b, f"ex-{n}"])
    for i in range(N):
        for n in ORDER:
            ex[n].append(run([RT[n], "--root", roots[n], "exec", f"ex-{n}", "/bin/true"])[0])
        ex[NOEXE].append(run([berth, "--root", roots["berth"], "exec", "ex-berth", "/bin/true"], env=ENV[NOEXE])[0])
    for n in ORDER:
        run([RT[n], "--root", roots[n], "delete", "--force", f"ex-{n}"])
    # Peak RSS of every runtime command.
    res["rss_kib"] = rss_rounds(roots, true_b, sleep_b)
    # Scale: k containers created and started at once.
    scale = {}
    for k in [1, 10, 50, 100]:
        for n in ORDER:
            avail0 = meminfo_available()
            t = time.perf_counter()
            ps = [subprocess.Popen([RT[n], "--root", roots[n], "run", "-d", "--bundle", sleep_b, f"sc-{n}-{k}-{j}"], stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL) for j in range(k)]
            fails = sum(1 for p in ps if p.wait() != 0)
            dt = time.perf_counter() - t
            per_kib = (avail0 - meminfo_available()) / k
            dps = [subprocess.Popen([RT[n], "--root", roots[n], "delete", "--force", f"sc-{n}-{k}-{j}"], stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL) for j in range(k)]
            for p in dps:
                p.wait()
            scale.setdefault(str(k), {})[n] = {"seconds": dt, "failures": fails, "kib_per_container": per_kib}
    # Reap stray orphans (sleep inits killed by delete).
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                break
        except ChildProcessError:
            break
    res["lifecycle_ms"] = {n: median_ms(lc[n]) for n in ORDER}
    res["exe_protection"] = {
        "lifecycle_ms": median_ms(lc["berth"]) - median_ms(lc[NOEXE]),
        "exec_ms": median_ms(ex["berth"]) - median_ms(ex[NOEXE]),
        "create_rss_kib": statistics.median(rss["berth"]) - statistics.median(rss[NOEXE]),
    }
    res["run_ms"] = {n: median_ms(runs[n]) for n in ORDER}
    res["exec_ms"] = {n: median_ms(ex[n]) for n in ORDER}
    res["create_rss_kib"] = {n: statistics.median(rss[n]) for n in ORDER}
    res["floor_ms"] = median_ms(fl)
    res["scale"] = scale
    json.dump(res, open(out_path, "w"), indent=2)
    print(table(res))
    # Every container is deleted by now: the bundles and state roots go,
    # and berth's default parent cgroup if the bench made it.
    shutil.rmtree(tmp, ignore_errors=True)
    if not had_parent:
        try:
            os.rmdir(berth_parent)
        except OSError as e:
            print(f"warning: {berth_parent} left: {e}", file=sys.stderr)


def image_run(tmp, root):
    """`berth image run --rm --network none busybox-oci /bin/true` (a bundle
    from the image config, an overlay rootfs, run, then all of it removed)
    against `berth run` of the bundle `berth image bundle` prepared from the
    same image (the same config: default device rules, a network namespace
    with only lo; the overlay already mounted), interleaved: medians in ms."""
    store = os.path.join(tmp, "store")
    image = os.path.join(os.path.dirname(rootfs), "images", "busybox-oci.tar")
    subprocess.run([berth, "image", "--store", store, "import", image], check=True, stdout=DEVNULL)
    prepared = os.path.join(tmp, "image-bundle")
    subprocess.run([berth, "image", "--store", store, "bundle", "busybox-oci", prepared], check=True)
    cfg = os.path.join(prepared, "config.json")
    c = json.load(open(cfg))
    c["process"]["args"] = ["/bin/true"]
    c["process"]["terminal"] = False
    json.dump(c, open(cfg, "w"))
    t = {"image_run": [], "run": []}
    for i in range(-3, N):
        a = run([berth, "image", "--store", store, "run", "--rm", "--network", "none", "busybox-oci", "/bin/true"])[0]
        b = run([berth, "--root", root, "run", "--bundle", prepared, f"ir-{i}"])[0]
        if i >= 0:
            t["image_run"].append(a)
            t["run"].append(b)
    subprocess.run([berth, "image", "--store", store, "umount", prepared], check=True)
    return {k: median_ms(v) for k, v in t.items()}


def symbol_order():
    """How many of src/symbol-order.txt's names the binary has (build.rs):
    a stale list shows as a low count and a larger create RSS."""
    listed = open(os.path.join(os.path.dirname(__file__), "../../src/symbol-order.txt")).read().split()
    nm = subprocess.run(["nm", "--defined-only", berth], capture_output=True, text=True).stdout
    have = {l.split()[-1] for l in nm.splitlines()}
    return {"listed": len(listed), "found": sum(n in have for n in listed)}


def meminfo_available():
    for l in open("/proc/meminfo"):
        if l.startswith("MemAvailable:"):
            return int(l.split()[1])
    return 0


def table(r):
    lines = [f"berth vs crun vs runc, medians of {r['n']} interleaved runs ({r['cgroups']})",
             f"{'':24}{'berth':>10}{'crun':>10}{'runc':>10}{'b/crun':>9}{'b/runc':>9}"]
    for key, label, unit in [("lifecycle_ms", "create+start+wait+delete", "ms"), ("run_ms", "run", "ms"),
                             ("exec_ms", "exec", "ms"), ("create_rss_kib", "create peak RSS", "KiB")]:
        v = r[key]
        lines.append(f"{label:24}{v['berth']:>10.2f}{v['crun']:>10.2f}{v['runc']:>10.2f}"
                     f"{v['berth']/v['crun']:>9.2f}{v['berth']/v['runc']:>9.2f}  {unit}")
    for c, v in r.get("rss_kib", {}).items():
        lines.append(f"{c + ' peak RSS':24}{v['berth']:>10.0f}{v['crun']:>10.0f}{v['runc']:>10.0f}"
                     f"{v['berth']/v['crun']:>9.2f}{v['berth']/v['runc']:>9.2f}  KiB")
    for k, v in r["scale"].items():
        lines.append(f"{'scale ' + k + ' (s)':24}" + "".join(f"{v[n]['seconds']:>10.3f}" for n in ORDER)
                     + f"{v['berth']['seconds']/v['crun']['seconds']:>9.2f}{v['berth']['seconds']/v['runc']['seconds']:>9.2f}"
                     + "  failures " + "/".join(str(v[n]['failures']) for n in ORDER))
    ir = r["image_run"]
    lines.append(f"{'image run --rm':24}{ir['image_run']:>10.2f} ms   / run of a bundle {ir['run']:.2f} ms: {ir['image_run'] / ir['run']:.2f}")
    lines.append(f"{'floor (C, same work)':24}{r['floor_ms']:>10.2f} ms   berth run / floor {r['run_ms']['berth'] / r['floor_ms']:.2f}")
    p = r["exe_protection"]
    lines.append(f"CVE-2019-5736 re-exec costs berth {p['lifecycle_ms']:+.2f} ms per lifecycle, "
                 f"{p['exec_ms']:+.2f} ms per exec, {p['create_rss_kib']:+.0f} KiB create peak RSS")
    o = r["symbol_order"]
    lines.append(f"hot functions and start-up data linked together: {o['found']} of the {o['listed']} in src/symbol-order.txt"
                 + ("" if o["found"] == o["listed"] else " (stale list: run `make symbol-order`)"))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
