//! Networks of `berth image run`: the default bridge, published ports
//! (TCP, UDP, chosen host ports), outbound NAT, user networks with names,
//! the container's /etc files, teardown (also after berth was killed) and
//! bad input.
//!
//! Every test runs berth inside network namespaces it makes itself (a
//! holder process from `unshare -n`): the host's interfaces, routes and
//! firewall are never touched, and traffic goes only to addresses inside
//! those namespaces.

mod common;
use common::{busybox_rootfs, images, ok, udpecho_program, Killed, Netns, T};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `berth image ...` (as `T::image`) inside `ns`.
fn image(t: &T, ns: &Netns, args: &[&str]) -> Output {
    let mut c = t.image_cmd(args);
    c.stdin(Stdio::null());
    ns.enter(&mut c).output().unwrap()
}

/// `berth network --store STORE ...` inside `ns`.
fn network(t: &T, ns: &Netns, args: &[&str]) -> Output {
    let store = t.store();
    let mut a = vec!["network", "--store", store.to_str().unwrap()];
    a.extend_from_slice(args);
    let mut c = t.cmd(&a);
    c.stdin(Stdio::null());
    ns.enter(&mut c).output().unwrap()
}

/// `image run -d` inside `ns` (stdio not a pipe: the container keeps it).
fn detached(t: &T, ns: &Netns, args: &[&str]) {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    let log = t.dir.join("detached.log");
    let mut c = t.image_cmd(&a);
    c.stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(&log).unwrap());
    let st = ns.enter(&mut c).status().unwrap();
    assert!(
        st.success(),
        "image run -d {args:?}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

fn err(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn import_busybox(t: &T) {
    ok(&t.image(&["import", images().join("busybox").to_str().unwrap()]));
}

/// Waits until `url` answers from `ns` (a server just started).
fn wait_for(ns: &Netns, url: &str) -> String {
    for _ in 0..200 {
        let o = ns.get(url, 2);
        if o.status.success() {
            return String::from_utf8_lossy(&o.stdout).into_owned();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{url} never answered; the namespace:\n{}", ns.state());
}

/// The default bridge: a container's own address, a port published on
/// the host's loopback and on a chosen port, the bridge address, UDP,
/// outbound NAT to a server outside, the /etc files; after delete the
/// namespace is as it was.
#[test]
fn bridge_publishes_ports_and_reaches_out() {
    let t = T::new("netbridge");
    import_busybox(&t);
    let ns = Netns::new();
    // "Outside": a second namespace behind a veth pair, with a server
    // that answers with the address it sees the client at.
    let out = Netns::new();
    ok(&ns.sh(&format!(
        "ip link add vx type veth peer name vy && ip link set vy netns {} && ip addr add 192.0.2.1/24 dev vx && ip link set vx up",
        out.pid()
    )));
    ok(&out.sh("ip addr add 192.0.2.2/24 dev vy && ip link set vy up"));
    let mut server = Command::new("python3");
    server.args([
        "-c",
        "import http.server as h\n\
         class H(h.BaseHTTPRequestHandler):\n\
         \x20def do_GET(s):\n\
         \x20 s.send_response(200); s.end_headers(); s.wfile.write(s.client_address[0].encode())\n\
         h.HTTPServer(('192.0.2.2', 8000), H).serve_forever()",
    ]);
    server.stdout(Stdio::null()).stderr(Stdio::null());
    let _server = Killed(out.enter(&mut server).spawn().unwrap());
    let before = ns.state();

    let web = t.id("web");
    detached(
        &t,
        &ns,
        &["--name", &web, "-p", "8080:80", "-p", "90", "busybox", "sh", "-c",
          "mkdir /www && ip -o -4 addr show eth0 > /www/index.html && httpd -p 90 -h /www && exec httpd -f -p 80 -h /www"],
    );
    let inspect: serde_json::Value =
        serde_json::from_slice(&network(&t, &ns, &["inspect", "berth"]).stdout).unwrap();
    let ip = inspect["containers"][&web]["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let subnet = inspect["subnets"][0]["subnet"].as_str().unwrap();
    assert!(subnet.starts_with("10.89."), "{inspect}");
    // What the container saw as its address, through each way in.
    let page = wait_for(&ns, "http://127.0.0.1:8080/");
    assert!(page.contains(&format!("inet {ip}/")), "{page}");
    assert_eq!(ns.fetch(&format!("http://{ip}:80/")), page);
    let ports = ok(&image(&t, &ns, &["port", &web]));
    let chosen = ports
        .lines()
        .find_map(|l| l.strip_prefix("90/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("{ports}"));
    assert!(ports.contains("80/tcp -> 0.0.0.0:8080"), "{ports}");
    assert_eq!(ns.fetch(&format!("http://127.0.0.1:{chosen}/")), page);

    // UDP, published from a chosen host port range of one.
    let udp = t.id("udp");
    let echo = udpecho_program();
    let vol = format!("{}:/udpecho:ro", echo.display());
    detached(
        &t,
        &ns,
        &[
            "--name",
            &udp,
            "-p",
            "5353:7/udp",
            "-v",
            &vol,
            "busybox",
            "/udpecho",
            "7",
        ],
    );
    let reply = ok(&ns.sh("python3 -c \"import socket,time\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(0.2)\n\
         for i in range(100):\n\
         \x20s.sendto(b'ping',('127.0.0.1',5353))\n\
         \x20try:\n\
         \x20 print(s.recv(100).decode()); break\n\
         \x20except OSError: time.sleep(0.05)\""));
    assert_eq!(reply.trim(), "got ping");

    // Outbound: the outside server sees the host's address (masquerade).
    let seen = ok(&image(
        &t,
        &ns,
        &[
            "run",
            "--rm",
            "busybox",
            "wget",
            "-q",
            "-O-",
            "http://192.0.2.2:8000/",
        ],
    ));
    assert_eq!(seen.trim(), "192.0.2.1");

    // The /etc files.
    let etc = ok(&image(
        &t,
        &ns,
        &[
            "run",
            "--rm",
            "--name",
            &t.id("etc"),
            "--hostname",
            "h1",
            "--dns",
            "192.0.2.53",
            "--add-host",
            "db:192.0.2.9",
            "busybox",
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts /etc/hostname; hostname; ip -o -4 addr show eth0",
        ],
    ));
    assert!(etc.contains("nameserver 192.0.2.53\n"), "{etc}");
    assert!(etc.contains("192.0.2.9\tdb\n"), "{etc}");
    assert!(etc.contains("\th1 "), "{etc}");
    assert!(etc.contains("\thost.containers.internal\n"), "{etc}");
    assert!(etc.contains("h1\nh1\n"), "{etc}");

    ok(&t.berth(&["delete", "--force", &web]));
    ok(&t.berth(&["delete", "--force", &udp]));
    assert_eq!(ns.state(), before, "the namespace changed");
    assert_eq!(ns.processes(), Vec::<String>::new());
    ok(&image(
        &t,
        &ns,
        &[
            "umount",
            t.store().join("bundles").join(&web).to_str().unwrap(),
        ],
    ));
    ok(&image(
        &t,
        &ns,
        &[
            "umount",
            t.store().join("bundles").join(&udp).to_str().unwrap(),
        ],
    ));
}

/// A user network: containers reach each other by name (aardvark-dns);
/// `network rm` waits for its last container. berth killed at any instant
/// of `image run -d`: `delete --force` (and, before create, removing the
/// bundle) leaves the namespace as it was.
#[test]
fn user_network_names_and_teardown_after_kill() {
    let t = T::new("netuser");
    import_busybox(&t);
    let ns = Netns::new();
    let before = ns.state();
    ok(&network(&t, &ns, &["create", "n1"]));
    let ls = ok(&network(&t, &ns, &["ls"]));
    assert!(ls.contains("n1 ") && ls.contains("yes"), "{ls}");

    let srv = t.id("srv");
    detached(
        &t,
        &ns,
        &[
            "--name",
            &srv,
            "--network",
            "n1",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        ],
    );
    let got = ok(&image(
        &t,
        &ns,
        &["run", "--rm", "--network", "n1", "busybox", "sh", "-c",
          &format!("for i in $(seq 50); do wget -q -O- http://{srv}/hostname && exit; sleep 0.1; done; \
                    cat /etc/resolv.conf; nslookup {srv}; exit 1")],
    ));
    assert_eq!(got.trim(), &srv[..12]);
    let e = err(&network(&t, &ns, &["rm", "n1"]));
    assert!(e.contains(&format!("in use by container {srv}")), "{e}");
    ok(&t.berth(&["delete", "--force", &srv]));
    assert_eq!(ns.state(), before);

    // SIGKILL berth at instants spread over image run -d.
    let bundles = t.store().join("bundles");
    for (i, ms) in [0u64, 5, 15, 30, 60, 100, 200, 400].iter().enumerate() {
        let id = t.id(&format!("k{i}"));
        let mut c = t.image_cmd(&[
            "run",
            "-d",
            "--name",
            &id,
            "--network",
            "n1",
            "-p",
            "8181:80",
            "busybox",
            "sleep",
            "600",
        ]);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = ns.enter(&mut c).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(*ms));
        let _ = child.kill();
        let _ = child.wait();
        // Its orphaned hook may still run: delete waits for it.
        let _ = t.berth(&["delete", "--force", &id]);
        let b = bundles.join(&id);
        if b.exists() {
            // Killed before create: the bundle is the user's to remove.
            let _ = image(&t, &ns, &["umount", b.to_str().unwrap()]);
            let _ = std::fs::remove_dir_all(&b);
        }
        assert_eq!(ns.state(), before, "after a kill at {ms} ms");
        assert_eq!(
            ns.processes(),
            Vec::<String>::new(),
            "after a kill at {ms} ms"
        );
    }
    ok(&network(&t, &ns, &["rm", "n1"]));
    assert!(!ok(&network(&t, &ns, &["ls"])).contains("n1"));
    ok(&image(
        &t,
        &ns,
        &["umount", bundles.join(&srv).to_str().unwrap()],
    ));
}

/// Bad input fails naming the problem and leaves nothing behind.
#[test]
fn bad_network_input_is_refused_and_leaves_nothing() {
    let t = T::new("netbad");
    import_busybox(&t);
    let ns = Netns::new();
    ok(&ns.sh("ip link add d0 type veth peer name d1 && ip addr add 192.0.2.1/24 dev d0 && ip link set d0 up"));
    let bb = busybox_rootfs().join("bin/busybox");
    let mut l = Command::new(&bb);
    l.args(["nc", "-l", "-p", "8282"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let _listener = Killed(ns.enter(&mut l).spawn().unwrap());
    let holder = t.id("holder");
    detached(
        &t,
        &ns,
        &[
            "--name", &holder, "-p", "8383:80", "busybox", "sleep", "600",
        ],
    );
    let before = ns.state();
    let id = t.id("bad");
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--rm", "--name", id.as_str()];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["busybox", "true"]);
        err(&image(&t, &ns, &a))
    };
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["-p", "8080:80:90:1"],
            "-p \"8080:80:90:1\": expected".into(),
        ),
        (
            vec!["-p", "80/sctp"],
            "-p \"80/sctp\": protocol \"sctp\"".into(),
        ),
        (vec!["-p", "0:80"], "is not a port".into()),
        (
            vec!["--network", "none", "-p", "80"],
            "--network none has no network of its own".into(),
        ),
        (
            vec!["--network", "nosuch"],
            "network \"nosuch\" not found".into(),
        ),
        (
            vec!["-p", "8282:80"],
            "host port 8282/tcp is in use on the host".into(),
        ),
        (
            vec!["-p", "8383:80"],
            format!("host port 8383/tcp is taken by container {holder}"),
        ),
        (
            vec!["-p", "9000:80", "-p", "9000:81"],
            "taken by another -p of this container".into(),
        ),
        (
            vec!["--add-host", "db"],
            "--add-host \"db\": use HOST:IP".into(),
        ),
        (
            vec!["--dns", "nope"],
            "--dns \"nope\": not an IP address".into(),
        ),
    ];
    for (args, want) in &cases {
        let e = run(args);
        assert!(e.contains(want.as_str()), "{args:?}: {e}");
        assert!(
            !t.store().join("bundles").join(&id).exists(),
            "{args:?} left its bundle"
        );
        assert!(
            t.berth(&["state", &id]).status.code() != Some(0),
            "{args:?} left a container"
        );
    }
    // The stack missing: the error names the package.
    let mut c = t.image_cmd(&["run", "--rm", "--name", &id, "busybox", "true"]);
    c.env("BERTH_NETAVARK", "/nonexistent/netavark")
        .stdin(Stdio::null());
    let e = err(&ns.enter(&mut c).output().unwrap());
    assert!(e.contains("install the netavark package"), "{e}");
    assert!(!t.store().join("bundles").join(&id).exists());

    // Networks: names, subnets that overlap a network or a host route.
    ok(&network(
        &t,
        &ns,
        &["create", "--subnet", "10.99.0.0/24", "a"],
    ));
    for (args, want) in [
        (
            vec!["create", "--subnet", "10.99.0.0/16", "b"],
            "subnet 10.99.0.0/16 overlaps network a's 10.99.0.0/24",
        ),
        (
            vec!["create", "--subnet", "192.0.2.128/25", "b"],
            "overlaps the host's route to 192.0.2.0/24 on d0",
        ),
        (
            vec!["create", "--subnet", "10.98.0.1/24", "b"],
            "host bits are set",
        ),
        (
            vec!["create", "--subnet", "fd00::/64", "b"],
            "IPv6 subnets are not supported",
        ),
        (vec!["create", "a"], "network \"a\" exists already"),
        (vec!["create", "host"], "reserved"),
        (vec!["create", "-x"], "unexpected argument"),
        (vec!["create", "a/b"], "network name \"a/b\""),
        (vec!["rm", "nosuch"], "network \"nosuch\" not found"),
    ] {
        let e = err(&network(&t, &ns, &args));
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let ls = ok(&network(&t, &ns, &["ls"]));
    assert_eq!(ls.lines().count(), 3, "{ls}"); // header, a and the default
    ok(&network(&t, &ns, &["rm", "a"]));
    assert_eq!(ns.state(), before);
    ok(&t.berth(&["delete", "--force", &holder]));
    ok(&image(
        &t,
        &ns,
        &[
            "umount",
            t.store().join("bundles").join(&holder).to_str().unwrap(),
        ],
    ));
}
