#!/usr/bin/env python3
"""Builds the test images, offline, from a busybox rootfs directory.

usage: make-images.py OUT BUSYBOX_ROOTFS
       make-images.py --pause OUT.tar PAUSE_BINARY   (tests/cri.rs' sandbox image)

OUT/busybox/            OCI layout, one gzip layer (busybox-static), ref "latest"
OUT/busybox-oci.tar     the same layout as an oci-archive
OUT/busybox-docker.tar  the same image as a docker-archive (`docker save` format)
OUT/multi/              OCI layout, three layers (gzip, zstd, plain tar) exercising
                        whiteouts, opaque dirs, hardlinks, symlinks, modes, owners,
                        xattrs and devices
OUT/many/               OCI layout with 100 layers
OUT/multiarch/          a nested multi-platform index: arm64 first, then amd64 (busybox)
OUT/multi-umoci/        the same layers with the zstd one gzipped (for umoci 0.4.7)
OUT/bad-*/              broken images for the error tests
OUT/hostile/            busybox whose /dev and /mnt link to a host dir
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

MT_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_TAR = "application/vnd.oci.image.layer.v1.tar"
EPOCH = 1700000000


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def compress(data, mt):
    if mt == MT_GZIP:
        return gzip.compress(data, mtime=0)
    if mt == MT_ZSTD:
        return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout
    return data


class Tar:
    """A layer tar built entry by entry (names are written as given)."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.t = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, link="", xattrs=None, dev=(0, 0)):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.mtime = EPOCH
        ti.linkname = link
        ti.devmajor, ti.devminor = dev
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        if kind == tarfile.REGTYPE:
            ti.size = len(data)
            self.t.addfile(ti, io.BytesIO(data))
        else:
            self.t.addfile(ti)
        return self

    def dir(self, name, mode=0o755, **kw):
        return self.add(name, tarfile.DIRTYPE, mode=mode, **kw)

    def bytes(self):
        self.t.close()
        return self.buf.getvalue()


def tar_of_dir(root):
    t = Tar()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in sorted(dirnames) + sorted(filenames):
            p = os.path.join(dirpath, name)
            arc = os.path.normpath(os.path.join(rel, name))
            st = os.lstat(p)
            if os.path.islink(p):
                t.add(arc, tarfile.SYMTYPE, link=os.readlink(p), mode=0o777, uid=st.st_uid, gid=st.st_gid)
            elif os.path.isdir(p):
                t.dir(arc, mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid)
            else:
                with open(p, "rb") as f:
                    t.add(arc, data=f.read(), mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid)
    return t.bytes()


def write_layout(out, layers, config_extra=None, ref="latest", diff_override=None, drop_blob=None, arch="amd64"):
    """layers: [(tar bytes, media type[, blob])]: the blob defaults to the
    compressed tar. Returns (manifest, config bytes)."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "blobs", "sha256"))

    def put(b):
        d = sha(b)
        if d != drop_blob:
            with open(os.path.join(out, "blobs", "sha256", d[7:]), "wb") as f:
                f.write(b)
        return d

    descs, diffs = [], []
    for data, mt, *blob in layers:
        blob = blob[0] if blob else compress(data, mt)
        descs.append({"mediaType": mt, "digest": put(blob), "size": len(blob)})
        diffs.append(sha(data))
    if diff_override:
        diffs = diff_override(diffs)
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diffs},
    }
    config["config"].update(config_extra or {})
    cb = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cb), "size": len(cb)},
        "layers": descs,
    }
    mb = json.dumps(manifest).encode()
    md = put(mb)
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": len(mb),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": ref},
        }],
    }
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    return manifest, cb


def tar_dir_to(path, src, prefix=""):
    with tarfile.open(path, "w") as t:
        t.add(src, arcname=prefix or ".")


def docker_archive(path, layer, config_bytes, tag):
    with tarfile.open(path, "w") as t:
        def add(name, b):
            ti = tarfile.TarInfo(name)
            ti.size = len(b)
            ti.mtime = EPOCH
            t.addfile(ti, io.BytesIO(b))
        lid = hashlib.sha256(layer).hexdigest()
        add(lid + "/layer.tar", layer)
        cname = hashlib.sha256(config_bytes).hexdigest() + ".json"
        add(cname, config_bytes)
        add("manifest.json", json.dumps([{"Config": cname, "RepoTags": [tag], "Layers": [lid + "/layer.tar"]}]).encode())


def multi_layers():
    l1 = (Tar()
          .dir("etc").add("etc/hostname", data=b"multi\n")
          .dir("data")
          .add("data/a.txt", data=b"a\n", xattrs={"user.test": "hello"})
          .dir("opq").add("opq/old1", data=b"old1").dir("opq/sub").add("opq/sub/old2", data=b"old2")
          .add("changed", data=b"v1\n")
          .dir("hl").add("hl/file", data=b"hard\n").add("hl/link", tarfile.LNKTYPE, link="hl/file")
          .dir("sym").add("sym/rel", tarfile.SYMTYPE, link="../etc/hostname", mode=0o777)
          .add("sym/abs", tarfile.SYMTYPE, link="/etc/hostname", mode=0o777)
          .dir("bin").add("bin/suid", data=b"#!/bin/sh\n", mode=0o4755)
          .add("bin/sgid", data=b"#!/bin/sh\n", mode=0o2755, gid=50)
          .dir("secret", mode=0o700).add("secret/key", data=b"k", mode=0o600, uid=1000, gid=1000)
          .add("owned", data=b"o", mode=0o640, uid=1000, gid=2000)
          .dir("tmp", mode=0o1777)
          .add("gone.txt", data=b"bye")
          .dir("gonedir").add("gonedir/x", data=b"x")
          .dir("dev").add("dev/mydev", tarfile.CHRTYPE, mode=0o600, dev=(1, 3))
          .bytes())
    l2 = (Tar()
          .dir("opq").add("opq/new1", data=b"new1")
          .add("opq/.wh..wh..opq")
          .add(".wh.gone.txt").add(".wh.gonedir")
          .add("changed", data=b"v2 changed\n")
          # A layer must not smuggle overlay metadata: data/a.txt stays visible.
          .dir("data", xattrs={"trusted.overlay.opaque": "y"})
          .add("data/b.txt", data=b"b\n")
          .bytes())
    l3 = (Tar()
          .add("added-later", data=b"L3\n")
          .dir("opq/sub2").add("opq/sub2/x", data=b"x")
          .add("hl/link2", tarfile.LNKTYPE, link="added-later")
          .bytes())
    return [(l1, MT_GZIP), (l2, MT_ZSTD), (l3, MT_TAR)]


def main():
    out, rootfs = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    bb = tar_of_dir(rootfs)
    labels = {"Labels": {"org.example.fixture": "busybox"}, "WorkingDir": "/"}
    _, cfg = write_layout(os.path.join(out, "busybox"), [(bb, MT_GZIP)], labels)
    tar_dir_to(os.path.join(out, "busybox-oci.tar"), os.path.join(out, "busybox"))
    docker_archive(os.path.join(out, "busybox-docker.tar"), bb, cfg, "busybox-docker:1")
    write_layout(os.path.join(out, "multi"), multi_layers())
    # The same image with the zstd layer gzipped (same diff_ids), for
    # Debian 12's umoci, which cannot read zstd layers.
    write_layout(os.path.join(out, "multi-umoci"), [(d, MT_GZIP if mt == MT_ZSTD else mt) for d, mt in multi_layers()])

    # A multi-platform index: an arm64 image listed first, then amd64 (the
    # busybox one); the importer must pick the host's.
    arm, _ = write_layout(os.path.join(out, "multiarch"), [(Tar().add("arm-only", data=b"arm\n").bytes(), MT_TAR)],
                          {"Cmd": ["/arm-only"]}, arch="arm64")
    arm_b = json.dumps(arm).encode()
    amd, amd_cfg = write_layout(os.path.join(out, "multiarch-amd"), [(bb, MT_GZIP)], labels)
    amd_b = json.dumps(amd).encode()
    blobs = os.path.join(out, "multiarch", "blobs", "sha256")
    for src in os.listdir(os.path.join(out, "multiarch-amd", "blobs", "sha256")):
        shutil.copy(os.path.join(out, "multiarch-amd", "blobs", "sha256", src), blobs)
    shutil.rmtree(os.path.join(out, "multiarch-amd"))
    inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(arm_b), "size": len(arm_b),
         "platform": {"architecture": "arm64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(amd_b), "size": len(amd_b),
         "platform": {"architecture": "amd64", "os": "linux"}},
    ]}
    ib = json.dumps(inner).encode()
    with open(os.path.join(blobs, sha(ib)[7:]), "wb") as f:
        f.write(ib)
    with open(os.path.join(out, "multiarch", "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                   "digest": sha(ib), "size": len(ib), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)

    # 100 layers: their lower dir list does not fit in one page of mount options.
    write_layout(os.path.join(out, "many"), [(Tar().add("f%03d" % i, data=b"%d\n" % i).bytes(), MT_TAR) for i in range(100)])

    small = Tar().add("hello", data=b"hi\n").bytes()
    gz = gzip.compress(small, mtime=0)
    # A gzip stream cut short; its blob digest is right, so only gunzip fails.
    write_layout(os.path.join(out, "bad-truncated"), [(small, MT_GZIP, gz[: len(gz) // 2])])
    m, _ = write_layout(os.path.join(out, "bad-missing"), [(small, MT_GZIP)])
    os.remove(os.path.join(out, "bad-missing", "blobs", "sha256", m["layers"][0]["digest"][7:]))
    write_layout(os.path.join(out, "bad-mediatype"), [(small, "application/vnd.example.unknown")])
    write_layout(os.path.join(out, "bad-diffid"), [(small, MT_GZIP)], diff_override=lambda d: [sha(b"other")])
    escape = os.path.join(out, "escape-target")
    write_layout(os.path.join(out, "bad-dotdot"), [(Tar().add("../../escape-dotdot", data=b"x").bytes(), MT_TAR)])
    write_layout(os.path.join(out, "bad-symlink-parent"), [(
        Tar().add("link", tarfile.SYMTYPE, link=escape).add("link/evil", data=b"x").bytes(), MT_TAR)])
    write_layout(os.path.join(out, "bad-hardlink"), [(
        Tar().add("h", tarfile.LNKTYPE, link="../../../../etc/passwd").bytes(), MT_TAR)])
    # Valid but hostile: on top of busybox, /dev and /mnt are absolute
    # symlinks to a host directory (the runtime must resolve them inside the
    # rootfs; tests/security.rs checks the host directory stays empty). A
    # /proc or /sys link is refused outright; tests/security.rs tests that on
    # bundles.
    host = "/tmp/berth-hostile-target"
    write_layout(os.path.join(out, "hostile"), [(bb, MT_GZIP), (
        Tar().add("dev", tarfile.SYMTYPE, link=host + "/dev")
        .add("mnt", tarfile.SYMTYPE, link=host).bytes(), MT_TAR)], labels)
    write_layout(os.path.join(out, "abs-and-markers"), [(
        Tar().add("/abs-file", data=b"confined\n").add("x/.wh..wh.plnk").add("y/.wh..wh..opq").bytes(), MT_TAR)])


def pause_image(out, binary):
    """A docker-archive holding only /pause, its entrypoint (the pod
    sandbox image tests/cri.rs imports into containerd as berth-test/pause:1)."""
    layer = Tar().add("pause", data=open(binary, "rb").read(), mode=0o755).bytes()
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "config": {"Entrypoint": ["/pause"], "WorkingDir": "/"},
                      "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    docker_archive(out, layer, cfg, "berth-test/pause:1")


if __name__ == "__main__":
    if sys.argv[1] == "--pause":
        pause_image(sys.argv[2], sys.argv[3])
    else:
        main()
