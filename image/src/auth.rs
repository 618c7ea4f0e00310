//! Registry credentials in the files podman and docker keep them in:
//! `{"auths": {"HOST": {"auth": base64("user:password")}}}`. Looked up in
//! `$REGISTRY_AUTH_FILE`, containers' `auth.json` (`$XDG_RUNTIME_DIR`, else
//! `/run/containers/UID`, then `~/.config/containers`) and
//! `~/.docker/config.json` (whose `credHelpers`/`credsStore` name a
//! `docker-credential-NAME` program to ask); `login` and `logout` write
//! the first of them (mode 0600).

use crate::error::{Error, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The files to read, in order (`file` first when given).
fn files(file: Option<&Path>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(f) = file {
        v.push(f.to_path_buf());
        return v;
    }
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        v.push(PathBuf::from(f));
    }
    v.push(default_file());
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        v.push(home.join(".config/containers/auth.json"));
        v.push(home.join(".docker/config.json"));
    }
    v
}

/// Where `login` writes: `$REGISTRY_AUTH_FILE`, else containers' runtime
/// file (podman's default).
pub fn default_file() -> PathBuf {
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE") {
        return PathBuf::from(f);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) => PathBuf::from(d).join("containers/auth.json"),
        None => PathBuf::from(format!(
            "/run/containers/{}/auth.json",
            nix::unistd::geteuid()
        )),
    }
}

/// The keys a registry may be filed under (docker.io has its old name).
fn keys(host: &str) -> Vec<String> {
    let mut v = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
    ];
    if host == "docker.io" {
        v.push("https://index.docker.io/v1/".into());
        v.push("index.docker.io".into());
        v.push("registry-1.docker.io".into());
    }
    v
}

fn decode(auth: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Asks `docker-credential-NAME get` for `host`.
fn helper(name: &str, host: &str) -> Option<(String, String)> {
    use std::io::Write;
    let mut child = std::process::Command::new(format!("docker-credential-{name}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(host.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((
        v["Username"].as_str()?.to_string(),
        v["Secret"].as_str()?.to_string(),
    ))
}

/// The credentials for `host`, if any file has them.
pub fn find(host: &str, file: Option<&Path>) -> Option<(String, String)> {
    for f in files(file) {
        let Ok(data) = std::fs::read(&f) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&data) else {
            continue;
        };
        for k in keys(host) {
            if let Some(c) = v["auths"][&k]["auth"].as_str().and_then(decode) {
                return Some(c);
            }
            if let Some(h) = v["credHelpers"][&k].as_str() {
                if let Some(c) = helper(h, &k) {
                    return Some(c);
                }
            }
        }
        if let Some(h) = v["credsStore"].as_str() {
            if let Some(c) = keys(host).iter().find_map(|k| helper(h, k)) {
                return Some(c);
            }
        }
    }
    None
}

fn read_doc(f: &Path) -> Result<Value> {
    match std::fs::read(f) {
        Ok(d) => serde_json::from_slice(&d)
            .map_err(|e| Error::Format(format!("{}: not valid JSON: {e}", f.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(Error::io("cannot read", f, e)),
    }
}

fn write_doc(f: &Path, v: &Value) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = f.parent() {
        std::fs::create_dir_all(d).map_err(|e| Error::io("cannot create", d, e))?;
    }
    let tmp = f.with_extension("json.tmp");
    let data = serde_json::to_vec_pretty(v).expect("serializes");
    let res = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut w| std::io::Write::write_all(&mut w, &data))
        .and_then(|_| std::fs::rename(&tmp, f));
    res.map_err(|e| Error::io("cannot write", f, e))
}

/// Stores credentials for `host` (`login`). Returns the file written.
pub fn store(host: &str, user: &str, password: &str, file: Option<&Path>) -> Result<PathBuf> {
    let f = file.map(Path::to_path_buf).unwrap_or_else(default_file);
    let mut v = read_doc(&f)?;
    if !v["auths"].is_object() {
        v["auths"] = json!({});
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    v["auths"][host] = json!({"auth": auth});
    write_doc(&f, &v)?;
    Ok(f)
}

/// Removes the credentials of `host` (`logout`); false when there were none.
pub fn remove(host: &str, file: Option<&Path>) -> Result<bool> {
    let f = file.map(Path::to_path_buf).unwrap_or_else(default_file);
    let mut v = read_doc(&f)?;
    let mut found = false;
    if let Some(m) = v["auths"].as_object_mut() {
        for k in keys(host) {
            found |= m.remove(&k).is_some();
        }
    }
    if found {
        write_doc(&f, &v)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_find_remove() {
        let d = std::env::temp_dir().join(format!("berth-auth-{}", std::process::id()));
        let f = d.join("auth.json");
        store("localhost:5000", "u", "p:w", Some(&f)).unwrap();
        assert_eq!(
            find("localhost:5000", Some(&f)),
            Some(("u".into(), "p:w".into()))
        );
        assert_eq!(find("other", Some(&f)), None);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // docker's key for docker.io.
        std::fs::write(
            &f,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        assert_eq!(find("docker.io", Some(&f)), Some(("a".into(), "b".into())));
        assert!(remove("docker.io", Some(&f)).unwrap());
        assert!(!remove("docker.io", Some(&f)).unwrap());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
