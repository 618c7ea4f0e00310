#!/usr/bin/env python3
"""Writes the tables of docs/benchmarks.md from `make bench`'s JSON, so the
document shows the last run and cannot go stale: everything between the
`<!-- bench:begin -->` and `<!-- bench:end -->` lines is replaced. A file
a run did not write (the image or VM parts) leaves its table out, saying so.

usage: report.py DOC target/bench.json [target/bench-image.json] [target/bench-systemd.json] [target/bench-net.json]
"""
import json, os, sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def runtime_tables(r):
    out = [f"Runtime: medians of {r['n']} interleaved runs ({r['cgroups']}); "
           + ", ".join(r["versions"].values()) + ".", "",
           "| | berth | crun | runc | berth/crun | berth/runc |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for key, label in [("lifecycle_ms", "create + start + wait + delete (ms)"), ("run_ms", "`run` (ms)"),
                       ("exec_ms", "`exec` (ms)")]:
        v = r[key]
        out.append(f"| {label} | {v['berth']:.2f} | {v['crun']:.2f} | {v['runc']:.2f} | "
                   f"{ratio(v['berth'], v['crun'])} | {ratio(v['berth'], v['runc'])} |")
    for c, v in r.get("rss_kib", {"create": r["create_rss_kib"]}).items():
        out.append(f"| peak RSS of `{c}` (KiB) | {v['berth']:.0f} | {v['crun']:.0f} | {v['runc']:.0f} | "
                   f"{ratio(v['berth'], v['crun'])} | {ratio(v['berth'], v['runc'])} |")
    out += ["", f"The C floor (tests/bench/floor.c: the default config's work, no config, cgroup or state) took "
            f"{r['floor_ms']:.2f} ms: berth's `run` is {ratio(r['run_ms']['berth'], r['floor_ms'])} × the floor."]
    if "image_run" in r:
        ir = r["image_run"]
        out += ["", f"`berth image run --rm --network none` of the stored busybox image (bundle from the image config, "
                f"overlay rootfs, run, all removed) took {ir['image_run']:.2f} ms against {ir['run']:.2f} ms for `run` "
                f"of the bundle `berth image bundle` prepared from the same image (same config, overlay already mounted), "
                f"interleaved: {ratio(ir['image_run'], ir['run'])} × (target ≤ 1.2)."]
    out += ["", "| containers started at once | berth (s) | crun (s) | runc (s) | berth/crun | failures |",
            "| ---: | ---: | ---: | ---: | ---: | --- |"]
    for k, v in r["scale"].items():
        out.append(f"| {k} | {v['berth']['seconds']:.3f} | {v['crun']['seconds']:.3f} | {v['runc']['seconds']:.3f} | "
                   f"{ratio(v['berth']['seconds'], v['crun']['seconds'])} | "
                   + "/".join(str(v[n]["failures"]) for n in ["berth", "crun", "runc"]) + " |")
    p, o = r["exe_protection"], r["symbol_order"]
    diff = f"{p['lifecycle_ms']:+.2f} ms per lifecycle and {p['exec_ms']:+.2f} ms per exec"
    cost = (f"The CVE-2019-5736 re-exec costs less than this run's noise (with it minus without it: {diff})."
            if min(p["lifecycle_ms"], p["exec_ms"]) < 0 else f"The CVE-2019-5736 re-exec costs {diff}.")
    out += ["", f"{cost} Hot functions and start-up data linked together: {o['found']} of the "
            f"{o['listed']} in src/symbol-order.txt."]
    return out


def image_tables(m):
    s, p = m["seconds"], m["pull_seconds"]
    return ["", f"Image: {m['image']['uncompressed'] / 1e6:.0f} MB in two gzip layers, medians of {m['repeat']}.", "",
            "| | berth | reference | berth/reference |", "| --- | ---: | ---: | ---: |",
            f"| import vs `umoci unpack` (s) | {s['berth']:.2f} | {s['umoci']:.2f} | {ratio(s['berth'], s['umoci'])} |",
            f"| import vs `tar -xzf` (s) | {s['berth']:.2f} | {s['tar']:.2f} | {ratio(s['berth'], s['tar'])} |",
            f"| pull vs skopeo + umoci (s) | {p['berth']:.2f} | {p['skopeo+umoci']:.2f} | {ratio(p['berth'], p['skopeo+umoci'])} |",
            f"| pull vs `podman pull` (s) | {p['berth']:.2f} | {p['podman']:.2f} | {ratio(p['berth'], p['podman'])} |",
            f"| second rootfs (overlay mount, ms) | {m['second_rootfs_ms']:.2f} | | |"]


def net_tables(d):
    m = d["ms"]
    return ["", f"A container with a published port on the default bridge (`run --rm -p 18080:80` of busybox `true`, "
            f"in a namespace of the bench's own; median of {d['repeat']}):", "",
            "| | berth `image run` | `podman run` | berth/podman |", "| --- | ---: | ---: | ---: |",
            f"| ms | {m['berth']:.1f} | {m['podman']:.1f} | {ratio(m['berth'], m['podman'])} |"]


def systemd_tables(d):
    out = ["", f"systemd cgroup driver (cgroup v2 VM, emulated; {d['lifecycles']} lifecycles each, ms per lifecycle):", "",
           "| | cgroupfs | systemd | systemd/cgroupfs |", "| --- | ---: | ---: | ---: |"]
    for n in ["berth", "runc", "crun"]:
        if f"{n}_systemd_ms" in d:
            f, s = d[f"{n}_cgroupfs_ms"], d[f"{n}_systemd_ms"]
            out.append(f"| {n} | {f:.1f} | {s:.1f} | {ratio(s, f)} |")
    if "runc_systemd_ms" in d:
        b, r = d["berth_systemd_ms"], d["runc_systemd_ms"]
        extra = lambda n: d[f"{n}_systemd_ms"] - d[f"{n}_cgroupfs_ms"]
        line = (f"berth's systemd lifecycle is {ratio(b, r)} × runc's (target ≤ 0.7)"
                + (f" and {ratio(b, d['crun_systemd_ms'])} × crun's (target < 1)" if "crun_systemd_ms" in d else "")
                + f"; what the driver adds to a lifecycle: berth {extra('berth'):.0f} ms, runc {extra('runc'):.0f} ms"
                + (f", crun {extra('crun'):.0f} ms" if "crun_systemd_ms" in d else "") + ".")
        out += ["", line]
    return out


def main():
    doc, paths = sys.argv[1], sys.argv[2:]
    r = load(paths[0])
    if r is None:
        sys.exit(f"{paths[0]}: no benchmark results (run make bench)")
    body = runtime_tables(r)
    for path, render, what in [(paths[1] if len(paths) > 1 else "", image_tables, "image"),
                               (paths[2] if len(paths) > 2 else "", systemd_tables, "systemd VM"),
                               (paths[3] if len(paths) > 3 else "", net_tables, "network")]:
        d = load(path) if path else None
        body += render(d) if d else ["", f"(No {what} results in this run.)"]
    text = open(doc).read()
    if BEGIN not in text or END not in text:
        sys.exit(f"{doc}: no {BEGIN} ... {END} section to fill")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    open(doc, "w").write(head + BEGIN + "\n" + "\n".join(body) + "\n" + END + tail)
    print(f"{doc}: tables written from {', '.join(p for p in paths if os.path.exists(p))}")


if __name__ == "__main__":
    main()
