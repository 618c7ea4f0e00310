//! `berth image pull` and `image run REF` against Debian's docker-registry
//! (distribution 2.8) started by each test on loopback with a test-made
//! config: plain HTTP, TLS with a CA the test makes, htpasswd Basic auth,
//! Bearer tokens (tests/registry/token.py), mirrors, and faults injected
//! by a proxy in front of it (tests/registry/proxy.py). Images are pushed
//! with skopeo from the fixtures. Every daemon is the test's and stopped
//! by it; every failure must leave the store as it was.

mod common;
use common::{images, ok, T};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A process of the test's, killed and reaped when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

fn spawn(cmd: &mut Command, port: u16) -> Daemon {
    let d = Daemon(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    d
}

struct Registry {
    port: u16,
    _daemon: Daemon,
}

impl Registry {
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A registry with `extra` YAML (auth, tls) under `http:`/top level.
fn registry(t: &T, name: &str, http_extra: &str, top_extra: &str) -> Registry {
    let port = free_port();
    let dir = t.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{http_extra}{top_extra}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let d = spawn(Command::new("docker-registry").arg("serve").arg(&cfg), port);
    Registry { port, _daemon: d }
}

fn script(name: &str) -> PathBuf {
    common::repo().join("tests/registry").join(name)
}

/// The proxy in front of `upstream` with a fault `mode`; its request log.
fn proxy(t: &T, upstream: u16, mode: &str) -> (Daemon, u16, PathBuf) {
    let port = free_port();
    let log = t.dir.join(format!("proxy-{port}.log"));
    let d = spawn(
        Command::new("python3")
            .arg(script("proxy.py"))
            .args([port.to_string(), upstream.to_string(), mode.to_string()])
            .arg(&log),
        port,
    );
    (d, port, log)
}

/// skopeo copy SRC docker://DEST (plain HTTP or the test CA, creds).
fn push(src: &str, dest: &str, extra: &[&str]) {
    let mut c = Command::new("skopeo");
    c.args(["copy", "-q", "--dest-tls-verify=false"])
        .args(extra)
        .arg(src)
        .arg(format!("docker://{dest}"));
    ok(&c.output().expect("skopeo installed"));
}

fn oci(name: &str) -> String {
    format!("oci:{}", images().join(name).display())
}

/// What the store holds: blobs, layers, images, and tmp entries.
fn store_state(t: &T) -> Vec<String> {
    let mut v = Vec::new();
    for d in ["blobs/sha256", "layers", "images", "tmp"] {
        for e in std::fs::read_dir(t.store().join(d))
            .into_iter()
            .flatten()
            .flatten()
        {
            v.push(format!("{d}/{}", e.file_name().to_string_lossy()));
        }
    }
    v.sort();
    v
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn ca(t: &T) -> (PathBuf, PathBuf, PathBuf) {
    let d = t.dir.join("pki");
    std::fs::create_dir_all(&d).unwrap();
    let sh = format!(
        "cd {d} && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=berth-test-ca 2>/dev/null && \
         openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null && \
         printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext && \
         openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext 2>/dev/null",
        d = d.display()
    );
    ok(&Command::new("sh").arg("-c").arg(sh).output().unwrap());
    (d.join("ca.crt"), d.join("srv.crt"), d.join("srv.key"))
}

#[test]
fn plain_http_pull_dedup_and_run() {
    let t = T::new("regplain");
    let r = registry(&t, "reg", "", "");
    let h = r.host();
    push(&oci("multi"), &format!("{h}/test/multi:v1"), &[]);
    push(
        &oci("multiarch"),
        &format!("{h}/test/multiarch:all"),
        &["--all"],
    );
    push(
        &format!(
            "docker-archive:{}",
            images().join("busybox-docker.tar").display()
        ),
        &format!("{h}/library/busybox:1"),
        &[],
    );
    // gzip + zstd + plain layers, pulled as import would store them.
    t.image(&["pull", &format!("{h}/test/multi:v1")]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&t.image(&["inspect", &format!("{h}/test/multi:v1")]))).unwrap();
    let mts: Vec<&str> = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert!(
        mts.iter().any(|m| m.ends_with("zstd")) && mts.iter().any(|m| m.ends_with("gzip")),
        "{mts:?}"
    );
    let flat = t.dir.join("flat");
    ok(&t.image(&[
        "unpack",
        &format!("{h}/test/multi:v1"),
        flat.to_str().unwrap(),
    ]));
    assert!(flat.read_dir().unwrap().count() > 0);
    // The multi-platform index gives this host's manifest.
    ok(&t.image(&["pull", &format!("{h}/test/multiarch:all")]));
    let v: serde_json::Value = serde_json::from_str(&ok(
        &t.image(&["inspect", &format!("{h}/test/multiarch:all")])
    ))
    .unwrap();
    assert_eq!(v["config"]["architecture"], "amd64");
    // Pulling again downloads no blob.
    let (_p, pport, plog) = proxy(&t, r.port, "pass");
    let before = store_state(&t);
    ok(&t.image(&["pull", &format!("127.0.0.1:{pport}/test/multi:v1")]));
    let log = std::fs::read_to_string(&plog).unwrap();
    let layer_gets = log
        .lines()
        .filter(|l| l.contains("/blobs/") && !l.contains(v["config"].as_str().unwrap_or("-")))
        .count();
    assert!(
        layer_gets <= 1,
        "only the config may be fetched again: {log}"
    );
    assert!(store_state(&t).len() <= before.len() + 2);
    // image run pulls what is missing and runs it.
    let o = t.image(&[
        "run",
        "--rm",
        &format!("{h}/library/busybox:1"),
        "echo",
        "pulled-and-ran",
    ]);
    assert_eq!(ok(&o), "pulled-and-ran\n");
    // --pull never refuses what is not there.
    let o = t.image(&[
        "run",
        "--rm",
        "--pull",
        "never",
        &format!("{h}/library/nothere:1"),
        "true",
    ]);
    assert!(!o.status.success());
    let _ = std::fs::remove_dir_all(&flat);
}

#[test]
fn tls_with_the_tests_own_ca() {
    let t = T::new("regtls");
    let (ca, crt, key) = ca(&t);
    let http = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        crt.display(),
        key.display()
    );
    let r = registry(&t, "reg", &http, "");
    let h = r.host();
    push(&oci("busybox"), &format!("{h}/x/bb:1"), &[]);
    // An unknown CA is refused, on loopback too (where plain HTTP is
    // allowed, a registry that speaks TLS still has its certificate
    // checked)...
    let certs = t.dir.join("certs.d");
    std::fs::create_dir_all(certs.join(&h)).unwrap();
    let o = t.image(&[
        "pull",
        "--cert-dir",
        certs.to_str().unwrap(),
        &format!("localhost:{}/x/bb:1", r.port),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "an unknown CA must fail");
    assert!(
        err.contains(&format!("localhost:{}", r.port)) && err.contains("certificate"),
        "{err}"
    );
    // ...and trusted from certs.d/HOST/ca.crt.
    let lh = format!("localhost:{}", r.port);
    std::fs::create_dir_all(certs.join(&lh)).unwrap();
    std::fs::copy(&ca, certs.join(&lh).join("ca.crt")).unwrap();
    ok(&t.image(&[
        "pull",
        "--cert-dir",
        certs.to_str().unwrap(),
        &format!("{lh}/x/bb:1"),
    ]));
    assert_eq!(
        ok(&t.image(&[
            "run",
            "--rm",
            "--pull",
            "never",
            &format!("{lh}/x/bb:1"),
            "echo",
            "tls"
        ])),
        "tls\n"
    );
}

#[test]
fn basic_auth_credentials_login_logout() {
    let t = T::new("regbasic");
    let htpasswd = t.dir.join("htpasswd");
    ok(&Command::new("htpasswd")
        .args(["-Bbc"])
        .arg(&htpasswd)
        .args(["alice", "s3cret"])
        .output()
        .unwrap());
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
        htpasswd.display()
    );
    let r = registry(&t, "reg", "", &auth);
    let h = r.host();
    push(
        &oci("busybox"),
        &format!("{h}/x/bb:1"),
        &["--dest-creds", "alice:s3cret"],
    );
    let refr = format!("{h}/x/bb:1");
    let empty = t.dir.join("no-auth.json");
    let before = store_state(&t);
    let o = t.image(&["pull", "--authfile", empty.to_str().unwrap(), &refr]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains(&refr) && err.contains("authentication required"),
        "{err}"
    );
    let o = t.image(&["pull", "--creds", "alice:wrong", &refr]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("refused the credentials"),
        "{err}"
    );
    assert_eq!(store_state(&t), before, "failed pulls leave nothing");
    ok(&t.image(&["pull", "--creds", "alice:s3cret", &refr]));
    // login checks and files them where podman reads them; logout removes.
    let authfile = t.dir.join("auth.json");
    let o = t
        .cmd(&[
            "image",
            "--store",
            t.store().to_str().unwrap(),
            "login",
            "-u",
            "alice",
            "--password-stdin",
            &h,
        ])
        .env("REGISTRY_AUTH_FILE", &authfile)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"s3cret\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(ok(&o).contains("Login Succeeded"));
    let filed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&authfile).unwrap()).unwrap();
    assert!(filed["auths"][&h]["auth"].is_string(), "{filed}");
    ok(&t.image(&["rm", &refr]));
    let o = t
        .cmd(&[
            "image",
            "--store",
            t.store().to_str().unwrap(),
            "pull",
            &refr,
        ])
        .env("REGISTRY_AUTH_FILE", &authfile)
        .output()
        .unwrap();
    ok(&o);
    let o = t
        .cmd(&[
            "image",
            "--store",
            t.store().to_str().unwrap(),
            "logout",
            &h,
        ])
        .env("REGISTRY_AUTH_FILE", &authfile)
        .output()
        .unwrap();
    ok(&o);
    let filed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&authfile).unwrap()).unwrap();
    assert!(filed["auths"].get(&h).is_none(), "{filed}");
    // A wrong password at login is refused and not filed.
    let o = t.image(&[
        "login",
        "-u",
        "alice",
        "-p",
        "nope",
        "--authfile",
        authfile.to_str().unwrap(),
        &h,
    ]);
    assert!(!o.status.success());
}

#[test]
fn bearer_tokens_from_a_token_service() {
    let t = T::new("regtoken");
    let d = t.dir.join("tok");
    std::fs::create_dir_all(&d).unwrap();
    ok(&Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && openssl req -x509 -newkey rsa:2048 -nodes -keyout tok.key -out tok.crt -days 2 -subj /CN=berth-test-token 2>/dev/null",
            d.display()
        ))
        .output()
        .unwrap());
    let tport = free_port();
    let tlog = t.dir.join("token.log");
    let _tok = spawn(
        Command::new("python3").arg(script("token.py")).args([
            tport.to_string(),
            d.join("tok.key").display().to_string(),
            d.join("tok.crt").display().to_string(),
            "bob:pw".into(),
            "berth-test-issuer".into(),
            "berth-test-registry".into(),
            tlog.display().to_string(),
        ]),
        tport,
    );
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{tport}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
        d.join("tok.crt").display()
    );
    let r = registry(&t, "reg", "", &auth);
    let h = r.host();
    // skopeo pushes with the same token flow.
    push(
        &oci("busybox"),
        &format!("{h}/team/bb:1"),
        &["--dest-creds", "bob:pw"],
    );
    let refr = format!("{h}/team/bb:1");
    ok(&t.image(&["pull", "--creds", "bob:pw", &refr]));
    let log = std::fs::read_to_string(&tlog).unwrap();
    assert!(
        log.contains("scope=repository:team/bb:pull service=berth-test-registry auth=basic"),
        "{log}"
    );
    let o = t.image(&["pull", "--creds", "bob:bad", &format!("{h}/team/bb:1")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("refused the credentials"));
}

/// Pulls through a proxy in `mode`; returns stderr, success, the
/// proxy's request log and the reference pulled.
fn faulty(t: &T, r: &Registry, mode: &str, path: &str) -> (String, bool, PathBuf, String) {
    let (_p, port, log) = proxy(t, r.port, mode);
    let refr = format!("127.0.0.1:{port}/{path}");
    let o = t.image(&["pull", &refr]);
    (
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.success(),
        log,
        refr,
    )
}

#[test]
fn bad_registries_fail_clearly_and_leave_nothing() {
    let t = T::new("regbad");
    let r = registry(&t, "reg", "", "");
    push(&oci("multi"), &format!("{}/test/multi:v1", r.host()), &[]);
    let before = store_state(&t);
    for (mode, path, want) in [
        ("corrupt-blob", "test/multi:v1", "digest mismatch"),
        ("pass", "test/multi:nosuchtag", "not found (404)"),
        ("manifest:500", "test/multi:v1", "answered 500"),
        ("huge-manifest", "test/multi:v1", "larger than"),
        ("malformed-manifest", "test/multi:v1", "invalid JSON"),
    ] {
        let (err, success, _, _) = faulty(&t, &r, mode, path);
        assert!(!success, "{mode}: must fail");
        assert!(
            err.contains(want) && err.contains("test/multi"),
            "{mode}: {err}"
        );
        assert_eq!(store_state(&t), before, "{mode}: the store changed");
    }
    for bad in ["127.0.0.1:1/a/../b:1", "some name:1", "UPPER/case"] {
        let o = t.image(&["pull", bad]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("image reference"),
            "{bad}: {err}"
        );
    }
    // Blobs redirected to storage elsewhere are fetched from there, and
    // the registry's credentials do not follow them.
    let (_p, port, log) = proxy(&t, r.port, "redirect-blobs");
    ok(&t.image(&[
        "pull",
        "--creds",
        "u:p",
        &format!("127.0.0.1:{port}/test/multi:v1"),
    ]));
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("/manifests/") && l.ends_with("auth=yes")),
        "{log}"
    );
    let stored: Vec<&str> = log.lines().filter(|l| l.contains("/_storage/")).collect();
    assert!(
        !stored.is_empty() && stored.iter().all(|l| l.ends_with("auth=no")),
        "{log}"
    );
    // 429 is answered by a retry.
    let (err, success, log, _) = faulty(&t, &r, "429-once", "test/multi:v1");
    assert!(success, "{err}");
    let log = std::fs::read_to_string(log).unwrap();
    let first = log
        .lines()
        .find(|l| l.contains("/manifests/"))
        .unwrap()
        .to_string();
    assert!(log.lines().filter(|l| **l == first).count() >= 2, "{log}");
}

#[test]
fn a_registry_dying_mid_pull_is_resumed_by_the_next_pull() {
    let t = T::new("regresume");
    let r = registry(&t, "reg", "", "");
    push(
        &format!(
            "docker-archive:{}",
            images().join("busybox-docker.tar").display()
        ),
        &format!("{}/library/busybox:1", r.host()),
        &[],
    );
    let (err, success, _, _) = faulty(&t, &r, "cut-blob:300000", "library/busybox:1");
    assert!(!success && err.contains("library/busybox"), "{err}");
    // The half that arrived waits in tmp/, named as partial, no image.
    let partial: Vec<String> = store_state(&t)
        .into_iter()
        .filter(|s| s.ends_with(".partial"))
        .collect();
    assert_eq!(partial.len(), 1, "{:?}", store_state(&t));
    assert!(std::fs::read_dir(t.store().join("images"))
        .unwrap()
        .next()
        .is_none());
    // The next pull asks only for the rest.
    let (err, success, log, refr) = faulty(&t, &r, "pass", "library/busybox:1");
    assert!(success, "{err}");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("/blobs/") && l.contains("range=bytes=300000-")),
        "{log}"
    );
    assert!(!store_state(&t).iter().any(|s| s.ends_with(".partial")));
    assert_eq!(
        ok(&t.image(&["run", "--rm", "--pull", "never", &refr, "echo", "ok"])).trim(),
        "ok"
    );
}

#[test]
fn docker_io_through_a_mirror() {
    let t = T::new("regmirror");
    let r = registry(&t, "reg", "", "");
    push(
        &format!(
            "docker-archive:{}",
            images().join("busybox-docker.tar").display()
        ),
        &format!("{}/library/busybox:1.0", r.host()),
        &[],
    );
    let mirror = format!("http://{}", r.host());
    ok(&t.image(&["pull", "--registry-mirror", &mirror, "busybox:1.0"]));
    // Filed under its docker.io name, found by its short one.
    let v: serde_json::Value =
        serde_json::from_str(&ok(&t.image(&["inspect", "busybox:1.0"]))).unwrap();
    assert_eq!(v["name"], "docker.io/library/busybox:1.0");
}
