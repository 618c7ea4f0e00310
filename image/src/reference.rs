//! Image references as docker and podman read them (distribution's
//! reference grammar): `[host[:port]/]path[:tag][@sha256:...]`. A first
//! component with a `.` or `:`, or `localhost`, is a registry; otherwise
//! the name is short and expands against the search registries
//! (`docker.io` by default, where a one-component path gets `library/`).

use crate::digest::Digest;
use crate::error::{Error, Result};

/// A fully qualified reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `quay.io`.
    pub registry: String,
    /// `library/busybox`, `team/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn bad(r: &str, why: &str) -> Error {
    Error::Format(format!("image reference {r:?}: {why}"))
}

/// A path component: lowercase alphanumerics separated by `.`, `_`, `__`
/// or dashes (distribution's grammar).
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut prev_sep = 0usize;
    for &ch in b {
        match ch {
            b'a'..=b'z' | b'0'..=b'9' => prev_sep = 0,
            b'.' | b'_' | b'-' => {
                prev_sep += 1;
                // `__` and runs of dashes are allowed; `..` and `._` are not.
                if prev_sep > 1 && !(ch == b'_' && prev_sep == 2 || ch == b'-') {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

fn valid_registry(h: &str) -> bool {
    let (host, port) = match h.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (h, None),
    };
    !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

impl Reference {
    /// Parses `r`; a short name is expanded against `search` (its first
    /// entry; docker.io when empty).
    pub fn parse(r: &str, search: &[String]) -> Result<Reference> {
        if r.is_empty() || r.len() > 255 + 128 + 72 {
            return Err(bad(r, "empty or too long"));
        }
        if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(r, "contains white space"));
        }
        let (rest, digest) = match r.split_once('@') {
            Some((n, d)) => (
                n,
                Some(Digest::parse(d).map_err(|e| bad(r, &e.to_string()))?),
            ),
            None => (r, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last..].rfind(':') {
            Some(i) => (&rest[..last + i], Some(&rest[last + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad(r, &format!("tag {t:?} is not valid")));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, p))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                // docker's old names for docker.io.
                let reg = match first {
                    "index.docker.io" | "registry-1.docker.io" => "docker.io",
                    h => h,
                };
                (reg.to_string(), p.to_string())
            }
            _ => {
                let reg = search
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "docker.io".into());
                (reg, name.to_string())
            }
        };
        if !valid_registry(&registry) {
            return Err(bad(
                r,
                &format!("registry {registry:?} is not a host[:port]"),
            ));
        }
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(bad(
                r,
                "the repository must be lowercase letters, digits and . _ - between /",
            ));
        }
        let repository = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What the registry's API takes after `/manifests/`: the digest if
    /// there is one, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// The name the store keeps it under: `registry/repository:tag` (or
    /// `@digest` without a tag).
    pub fn name(&self) -> String {
        let base = format!("{}/{}", self.registry, self.repository);
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{base}:{t}"),
            (None, Some(d)) => format!("{base}@{d}"),
            (None, None) => format!("{base}:latest"),
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(r: &str) -> Reference {
        Reference::parse(r, &[]).unwrap()
    }

    #[test]
    fn docker_and_podman_names() {
        assert_eq!(p("busybox").name(), "docker.io/library/busybox:latest");
        assert_eq!(p("busybox:1.36").name(), "docker.io/library/busybox:1.36");
        assert_eq!(p("team/app").name(), "docker.io/team/app:latest");
        assert_eq!(p("docker.io/busybox").repository, "library/busybox");
        assert_eq!(
            p("index.docker.io/busybox:1").name(),
            "docker.io/library/busybox:1"
        );
        let r = p("localhost:5000/a/b:v1");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost:5000", "a/b")
        );
        assert_eq!(r.reference(), "v1");
        let d = "sha256:".to_string() + &"a".repeat(64);
        let r = p(&format!("quay.io/x/y@{d}"));
        assert_eq!((r.tag.clone(), r.reference()), (None, d.clone()));
        assert_eq!(r.name(), format!("quay.io/x/y@{d}"));
        let r = p(&format!("localhost/x:t@{d}"));
        assert_eq!((r.tag.as_deref(), r.reference()), (Some("t"), d));
        let r = Reference::parse("app", &["registry.local:5000".into()]).unwrap();
        assert_eq!(r.name(), "registry.local:5000/app:latest");
        for bad in [
            "",
            "Busybox",
            "a/../b",
            "a b",
            "x:",
            "a//b",
            "host:port/x",
            "a@sha256:12",
            "-a",
            "a..b/c",
        ] {
            assert!(Reference::parse(bad, &[]).is_err(), "{bad}");
        }
    }
}
