#!/usr/bin/env python3
"""`make bench`, image part: unpacking a realistic two-layer Debian image.

The image is built once (cached in WORK): layer 1 is a `debootstrap
--variant=minbase` of bookworm, layer 2 what installing python3, perl, gcc,
g++ and git on top changes (new and changed files, whiteouts for removed
ones). Both layers are gzip-compressed into an OCI layout.

Measured, each REPEAT times (median), with warm page caches:
- berth: `berth image import` into an empty store (digests verified, each
  layer unpacked once into the layer store);
- umoci: `umoci unpack` of the same layout (digests verified, one rootfs);
- floor: `tar -xzf` of the two layer blobs into one directory, no
  verification, no whiteout handling;
- second rootfs: `berth image mount` of the already imported image (what a
  second container of the same image costs), then `umount`;
- pull: the image pushed (skopeo) to a private docker-registry on loopback,
  then pulled into an empty store by `berth image pull` (download and
  unpack overlapped), by `skopeo copy` to an OCI layout followed by
  `umoci unpack`, and by `podman pull` into a fresh podman store.

usage: image_bench.py BERTH WORK OUT.json   (env BENCH_IMAGE_REPEAT, default 3)
"""
import gzip, hashlib, json, os, shutil, statistics, subprocess, sys, tarfile, tempfile, time
from benchlib import sh, timed

berth, work, out_path = [os.path.abspath(a) for a in sys.argv[1:4]]
REPEAT = int(os.environ.get("BENCH_IMAGE_REPEAT", "3"))
MIRROR = os.environ.get("BENCH_MIRROR", "http://deb.debian.org/debian")
EXTRA = ["python3", "perl", "gcc", "g++", "git"]


def build_trees():
    base, full = os.path.join(work, "base"), os.path.join(work, "full")
    if not os.path.exists(os.path.join(base, ".done")):
        shutil.rmtree(base, ignore_errors=True)
        sh("debootstrap", "--variant=minbase", "bookworm", base, MIRROR, stdout=subprocess.DEVNULL)
        shutil.rmtree(os.path.join(base, "var/cache/apt/archives"), ignore_errors=True)
        os.makedirs(os.path.join(base, "var/cache/apt/archives/partial"))
        open(os.path.join(base, ".done"), "w").close()
    if not os.path.exists(os.path.join(full, ".done")):
        shutil.rmtree(full, ignore_errors=True)
        sh("cp", "-a", base, full)
        os.remove(os.path.join(full, ".done"))
        shutil.copy("/etc/resolv.conf", os.path.join(full, "etc/resolv.conf"))
        # In a private mount namespace: its /proc and /dev mounts vanish
        # with it.
        script = (f"mount -t proc proc {full}/proc && mount --rbind /dev {full}/dev && "
                  f"chroot {full} apt-get update -qq && "
                  f"DEBIAN_FRONTEND=noninteractive chroot {full} apt-get install -y -qq --no-install-recommends {' '.join(EXTRA)} && "
                  f"chroot {full} apt-get clean")
        sh("unshare", "-m", "--propagation", "private", "sh", "-c", script, stdout=subprocess.DEVNULL)
        open(os.path.join(full, ".done"), "w").close()
    return base, full


def stat_key(p):
    st = os.lstat(p)
    link = os.readlink(p) if os.path.islink(p) else ""
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, link)


def diff_list(base, full):
    """Paths of `full` new or changed against `base` (with their parent
    directories), and paths of `base` gone from `full`."""
    keep, gone = set(), []
    for root, dirs, files in os.walk(full):
        rel = os.path.relpath(root, full)
        for n in dirs + files:
            r = os.path.normpath(os.path.join(rel, n))
            b = os.path.join(base, r)
            if not os.path.lexists(b) or stat_key(b) != stat_key(os.path.join(full, r)):
                keep.add(r)
                d = os.path.dirname(r)
                while d and d not in keep:
                    keep.add(d)
                    d = os.path.dirname(d)
    for root, dirs, files in os.walk(base):
        rel = os.path.relpath(root, base)
        for n in dirs + files:
            r = os.path.normpath(os.path.join(rel, n))
            if not os.path.lexists(os.path.join(full, r)):
                if os.path.dirname(r) and not os.path.lexists(os.path.join(full, os.path.dirname(r))):
                    continue  # its parent is gone already
                gone.append(r)
    keep.discard(".done")
    return sorted(keep), gone


def sha_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return "sha256:" + h.hexdigest()


def build_layout(base, full):
    layout = os.path.join(work, "layout")
    if os.path.exists(os.path.join(layout, "index.json")):
        return layout, json.load(open(os.path.join(work, "layers.json")))
    shutil.rmtree(layout, ignore_errors=True)
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    tars = []
    l1 = os.path.join(work, "layer1.tar")
    sh("tar", "-C", base, "--numeric-owner", "--xattrs", "--exclude=./.done", "-cf", l1, ".")
    tars.append(l1)
    keep, gone = diff_list(base, full)
    l2 = os.path.join(work, "layer2.tar")
    lst = os.path.join(work, "layer2.list")
    with open(lst, "w") as f:
        f.write("".join("./" + p + "\n" for p in keep))
    sh("tar", "-C", full, "--numeric-owner", "--xattrs", "--no-recursion", "-T", lst, "-cf", l2)
    with tarfile.open(l2, "a") as t:
        for g in gone:
            ti = tarfile.TarInfo("./" + os.path.join(os.path.dirname(g), ".wh." + os.path.basename(g)))
            t.addfile(ti)
    tars.append(l2)
    layers, diff_ids = [], []
    for t in tars:
        diff_ids.append(sha_file(t))
        gz = t + ".gz"
        sh("gzip", "-n", "-6", "-f", "-k", t)
        d = sha_file(gz)
        os.replace(gz, os.path.join(blobs, d[7:]))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d,
                       "size": os.path.getsize(os.path.join(blobs, d[7:]))})
    sizes = {"uncompressed": sum(os.path.getsize(t) for t in tars),
             "compressed": sum(l["size"] for l in layers), "files": len(keep)}
    for t in tars:
        os.remove(t)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/bash"]},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cd = "sha256:" + hashlib.sha256(cfg).hexdigest()
    open(os.path.join(blobs, cd[7:]), "wb").write(cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
                      "layers": layers}).encode()
    md = "sha256:" + hashlib.sha256(man).hexdigest()
    open(os.path.join(blobs, md[7:]), "wb").write(man)
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(layout, "oci-layout"), "w"))
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": md, "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
              open(os.path.join(layout, "index.json"), "w"))
    sizes["layers"] = [l["digest"] for l in layers]
    json.dump(sizes, open(os.path.join(work, "layers.json"), "w"))
    return layout, sizes


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_pull(layout, tmp):
    """Median seconds of a pull from a registry on loopback, per client."""
    import socket
    port = free_port()
    reg = os.path.join(tmp, "registry")
    os.makedirs(reg)
    cfg = os.path.join(reg, "config.yml")
    open(cfg, "w").write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                         f"    rootdirectory: {reg}/data\nhttp:\n  addr: 127.0.0.1:{port}\n")
    daemon = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.025)
        ref = f"127.0.0.1:{port}/bench/debian:1"
        sh("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:bench", f"docker://{ref}")
        t = {"berth": [], "skopeo+umoci": [], "podman": []}
        for i in range(REPEAT):
            store = os.path.join(tmp, f"pull-store{i}")
            t["berth"].append(timed([berth, "image", "--store", store, "pull", "-q", ref]))
            shutil.rmtree(store)
            oci, root = os.path.join(tmp, f"pull-oci{i}"), os.path.join(tmp, f"pull-rootfs{i}")
            start = time.perf_counter()
            sh("skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{oci}:bench")
            sh("umoci", "unpack", "--image", f"{oci}:bench", root, stdout=subprocess.DEVNULL)
            t["skopeo+umoci"].append(time.perf_counter() - start)
            shutil.rmtree(oci)
            shutil.rmtree(root)
            # podman wants a runroot path of at most 50 characters.
            proot, prun = os.path.join(tmp, f"podman{i}"), tempfile.mkdtemp(prefix="berth-bench-run")
            podman = ["podman", "--root", proot, "--runroot", prun, "--storage-driver", "overlay"]
            t["podman"].append(timed(podman + ["pull", "-q", "--tls-verify=false", ref]))
            subprocess.run(podman + ["rmi", "-a", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(proot, ignore_errors=True)
            shutil.rmtree(prun, ignore_errors=True)
        return {k: statistics.median(v) for k, v in t.items()}
    finally:
        daemon.kill()
        daemon.wait()


def main():
    base, full = build_trees()
    layout, sizes = build_layout(base, full)
    blobs = [os.path.join(layout, "blobs", "sha256", d[7:]) for d in sizes["layers"]]
    tmp = tempfile.mkdtemp(prefix="berth-imgbench-", dir=work)
    res = {"repeat": REPEAT, "image": sizes, "seconds": {}}
    t_berth, t_umoci, t_tar = [], [], []
    for i in range(REPEAT):
        d = os.path.join(tmp, f"tar{i}")
        os.makedirs(d)
        t = time.perf_counter()
        for b in blobs:
            sh("tar", "-xzf", b, "-C", d, "--numeric-owner")
        t_tar.append(time.perf_counter() - t)
        shutil.rmtree(d)
        t_umoci.append(timed(["umoci", "unpack", "--image", f"{layout}:bench", os.path.join(tmp, f"umoci{i}")]))
        shutil.rmtree(os.path.join(tmp, f"umoci{i}"))
        store = os.path.join(tmp, f"store{i}")
        t_berth.append(timed([berth, "image", "--store", store, "import", layout, "--name", "bench"]))
        if i < REPEAT - 1:
            shutil.rmtree(store)
    # A second container's rootfs from the imported image.
    mnt = os.path.join(tmp, "mnt")
    second = []
    for i in range(20):
        second.append(timed([berth, "image", "--store", store, "mount", "bench", mnt]))
        sh(berth, "image", "--store", store, "umount", mnt)
        shutil.rmtree(mnt, ignore_errors=True)
    pull = bench_pull(layout, tmp)
    shutil.rmtree(tmp)
    med = statistics.median
    res["seconds"] = {"berth": med(t_berth), "umoci": med(t_umoci), "tar": med(t_tar)}
    res["second_rootfs_ms"] = med(second) * 1000
    res["pull_seconds"] = pull
    mb = sizes["uncompressed"] / 1e6
    res["mb_per_s"] = {k: mb / v for k, v in res["seconds"].items()}
    json.dump(res, open(out_path, "w"), indent=2)
    s, r = res["seconds"], res["mb_per_s"]
    print(f"image unpack: {mb:.0f} MB uncompressed in 2 gzip layers ({sizes['compressed'] / 1e6:.0f} MB), "
          f"median of {REPEAT}")
    print(f"{'':16}{'berth':>10}{'umoci':>10}{'tar -xzf':>10}{'b/umoci':>9}{'b/tar':>9}")
    print(f"{'seconds':16}{s['berth']:>10.2f}{s['umoci']:>10.2f}{s['tar']:>10.2f}"
          f"{s['berth'] / s['umoci']:>9.2f}{s['berth'] / s['tar']:>9.2f}")
    print(f"{'MB/s':16}{r['berth']:>10.0f}{r['umoci']:>10.0f}{r['tar']:>10.0f}")
    print(f"second rootfs from the same image (overlay mount): {res['second_rootfs_ms']:.2f} ms")
    print(f"pull from a registry on loopback into an empty store, median of {REPEAT}")
    print(f"{'':16}{'berth':>10}{'skopeo+umoci':>14}{'podman':>10}{'b/s+u':>9}{'b/podman':>10}")
    print(f"{'seconds':16}{pull['berth']:>10.2f}{pull['skopeo+umoci']:>14.2f}{pull['podman']:>10.2f}"
          f"{pull['berth'] / pull['skopeo+umoci']:>9.2f}{pull['berth'] / pull['podman']:>10.2f}")


if __name__ == "__main__":
    main()
