//! berth under real clients: containerd (ctr + containerd-shim-runc-v2),
//! podman (conmon) and Docker (a private dockerd with its own containerd),
//! each driving runc and then berth through the same checks
//! (tests/clients/*.sh). A check that fails with runc too is a
//! harness problem and is reported as such. Under systemd
//! (BERTH_TEST_SYSTEMD, tests/vm/systemd.sh) both use the systemd cgroup
//! driver, and no unit may be left either.

mod common;
use std::path::PathBuf;
use std::process::Command;

fn script(name: &str) -> PathBuf {
    common::repo().join("tests/clients").join(name)
}

/// Mounts and processes of a client's test (its temp dir is named by `tag`).
fn leftovers(tag: &str) -> (Vec<String>, Vec<String>) {
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(tag))
        .map(str::to_string)
        .collect();
    let procs: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(tag))
        .collect();
    (mounts, procs)
}

fn drive(client: &str, tag: &str) {
    let archive = common::images().join("busybox-docker.tar");
    let mut outputs = Vec::new();
    for rt in common::client_runtimes() {
        let mut cmd = Command::new("bash");
        cmd.arg(script(client)).arg(&rt).arg(&archive);
        if common::systemd() {
            cmd.env("CLIENT_SYSTEMD", "1");
        }
        let o = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        print!("{text}");
        assert!(
            text.lines().filter(|l| l.starts_with("ok ")).count() >= 10,
            "{client} with {}: too few checks ran\n{text}",
            rt.display()
        );
        outputs.push((rt, o.status.success(), text));
    }
    let (berth_ok, berth_text) = (outputs[outputs.len() - 1].1, &outputs[outputs.len() - 1].2);
    if outputs.len() > 1 {
        assert!(
            outputs[0].1,
            "test-harness problem: runc fails {client}'s checks too:\n{}",
            outputs[0].2
        );
    }
    assert!(
        berth_ok,
        "berth fails {client}'s checks that runc passes:\n{berth_text}"
    );
    // Shims and conmon of removed containers exit on their own, shortly.
    let mut left = leftovers(tag);
    for _ in 0..50 {
        if left.0.is_empty() && left.1.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = leftovers(tag);
    }
    let (m, p) = left;
    assert!(
        m.is_empty() && p.is_empty(),
        "{client} left mounts {m:?} or processes {p:?}"
    );
    let units: Vec<String> = ["berth-test", "berthtest", "libpod", "docker-"]
        .iter()
        .flat_map(|t| common::units(t))
        .collect();
    assert!(units.is_empty(), "{client} left units {units:?}");
}

#[test]
fn containerd_drives_berth_like_runc() {
    drive("containerd.sh", "berth-test-ctrd");
}

#[test]
fn podman_drives_berth_like_runc() {
    drive("podman.sh", "berth-test-podman");
}

#[test]
fn docker_drives_berth_like_runc() {
    drive("docker.sh", "berth-test-docker");
}
