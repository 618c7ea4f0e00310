//! A registry's HTTP API (distribution-spec "Pull"): `GET /v2/NAME/
//! manifests/REF` and `/blobs/DIGEST`, with the authentication a
//! `WWW-Authenticate` challenge asks for (Bearer tokens from its realm,
//! with the scope and service it names; Basic), retries with backoff on
//! 429, 5xx and broken connections, blob reads resumed with `Range`, and
//! redirects to blob storage followed without the registry's credentials.
//!
//! TLS uses the system's CAs plus a registry's own from
//! `/etc/containers/certs.d/HOST/*.crt` (and docker's `/etc/docker/certs.d`).
//! A registry is reached over plain HTTP only when it is insecure: named
//! in the configuration, `--tls-verify=false`, or on loopback (as docker
//! treats 127.0.0.0/8 and localhost). Unlike docker, a loopback registry
//! that does speak TLS still has its certificate checked: a certificate
//! error is reported, never answered by falling back to plain HTTP.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--tls-verify`: false accepts any certificate and plain HTTP.
    pub tls_verify: bool,
    /// Registries (`host[:port]`) reached without TLS verification,
    /// over plain HTTP if they have no TLS.
    pub insecure: Vec<String>,
    /// `--creds USER:PASSWORD`, before any credentials file.
    pub creds: Option<(String, String)>,
    /// `--authfile`.
    pub authfile: Option<PathBuf>,
    /// Directories holding `HOST/*.crt` CA files.
    pub cert_dirs: Vec<PathBuf>,
    /// Retries of a failed request (429, 5xx, broken connection).
    pub retries: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            tls_verify: true,
            insecure: Vec::new(),
            creds: None,
            authfile: None,
            cert_dirs: vec![
                PathBuf::from("/etc/containers/certs.d"),
                PathBuf::from("/etc/docker/certs.d"),
            ],
            retries: 5,
        }
    }
}

/// The registries configuration: `<store>/registries.json`, else
/// `/etc/berth/registries.json` (docker's daemon.json names):
/// `{"unqualified-search-registries": ["docker.io"],
///   "insecure-registries": ["host:port"], "registry-mirrors": ["https://..."]}`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Config {
    pub unqualified_search_registries: Vec<String>,
    pub insecure_registries: Vec<String>,
    /// Mirrors of docker.io, tried first, in order.
    pub registry_mirrors: Vec<String>,
}

impl Config {
    pub fn load(store_root: &std::path::Path) -> Result<Config> {
        for p in [
            store_root.join("registries.json"),
            PathBuf::from("/etc/berth/registries.json"),
        ] {
            match std::fs::read(&p) {
                Ok(d) => {
                    return serde_json::from_slice(&d)
                        .map_err(|e| Error::Format(format!("{}: {e}", p.display())))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("cannot read", &p, e)),
            }
        }
        Ok(Config::default())
    }
}

/// `host[:port]` of a mirror URL, and whether it is plain HTTP.
pub fn mirror_host(url: &str) -> (String, bool) {
    let (http, rest) = match url.split_once("://") {
        Some((s, r)) => (s == "http", r),
        None => (false, url),
    };
    (
        rest.trim_end_matches('/')
            .split('/')
            .next()
            .unwrap_or(rest)
            .to_string(),
        http,
    )
}

/// A response whose status berth can use.
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub length: Option<u64>,
    /// The digest the registry says the content has.
    pub digest: Option<String>,
    pub body: Box<dyn Read + Send>,
}

/// One registry, for one repository (tokens are scoped to it).
pub struct Registry {
    agent: ureq::Agent,
    /// `https://host` or `http://host`.
    base: String,
    pub host: String,
    repository: String,
    creds: Option<(String, String)>,
    auth: Mutex<Option<String>>,
    retries: u32,
}

/// Whether the TLS handshake failed on the certificate (rather than on a
/// server that does not speak TLS).
/// ureq passes rustls' error on as such, or inside an I/O error.
fn certificate_error(e: &ureq::Error) -> bool {
    let tls = match e {
        ureq::Error::Rustls(t) => Some(t),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    matches!(
        tls,
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_))
    )
}

fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, _)| h);
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

/// The system's CA certificates plus those of `host`'s certs.d entries.
fn roots(host: &str, dirs: &[PathBuf]) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for sys in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ] {
        if std::path::Path::new(sys).exists() {
            files.push(sys.into());
            break;
        }
    }
    if let Some(f) = std::env::var_os("SSL_CERT_FILE") {
        files.push(f.into());
    }
    for d in dirs {
        let dir = d.join(host);
        let mut own: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "crt"))
            .collect();
        own.sort();
        files.extend(own);
    }
    let mut certs = Vec::new();
    for f in files {
        let pem = std::fs::read(&f).map_err(|e| Error::io("cannot read CA file", &f, e))?;
        for item in ureq::tls::parse_pem(&pem).flatten() {
            if let ureq::tls::PemItem::Certificate(c) = item {
                certs.push(c);
            }
        }
    }
    Ok(certs)
}

fn agent(tls: ureq::tls::TlsConfig) -> ureq::Agent {
    ureq::config::Config::builder()
        .http_status_as_error(false)
        .max_redirects(10)
        // Blob storage a registry redirects to gets no registry credentials.
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .tls_config(tls)
        .build()
        .new_agent()
}

/// `key="value", key=value` pairs of a challenge's parameters.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_string();
        let v = v.trim_start();
        let (val, next) = if let Some(q) = v.strip_prefix('"') {
            match q.find('"') {
                Some(i) => (q[..i].to_string(), &q[i + 1..]),
                None => (q.to_string(), ""),
            }
        } else {
            match v.find(',') {
                Some(i) => (v[..i].trim().to_string(), &v[i..]),
                None => (v.trim().to_string(), ""),
            }
        };
        out.push((k.to_ascii_lowercase(), val));
        rest = next.trim_start().trim_start_matches(',');
    }
    out
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Registry {
    /// Connects to `host` for `repository`: HTTPS, or plain HTTP where the
    /// registry is insecure and has no TLS.
    pub fn connect(host: &str, repository: &str, o: &Options) -> Result<Registry> {
        let insecure = !o.tls_verify || o.insecure.iter().any(|h| h == host) || is_loopback(host);
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots(
                host,
                &o.cert_dirs,
            )?)))
            .disable_verification(!o.tls_verify || o.insecure.iter().any(|h| h == host))
            .build();
        let creds = o
            .creds
            .clone()
            .or_else(|| crate::auth::find(host, o.authfile.as_deref()));
        let api = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let mut r = Registry {
            agent: agent(tls),
            base: format!("https://{api}"),
            host: host.to_string(),
            repository: repository.to_string(),
            creds,
            auth: Mutex::new(None),
            retries: o.retries,
        };
        // The API version check tells the scheme (and warms up auth).
        match r.agent.get(format!("{}/v2/", r.base)).call() {
            Ok(_) => {}
            Err(e) if insecure && !certificate_error(&e) => {
                let http = format!("http://{api}");
                match r.agent.get(format!("{http}/v2/")).call() {
                    Ok(_) => r.base = http,
                    Err(_) => {
                        return Err(Error::Registry(format!(
                            "{host}: cannot reach the registry: {e}"
                        )))
                    }
                }
            }
            Err(e) => {
                return Err(Error::Registry(format!(
                    "{host}: cannot reach the registry: {e}"
                )))
            }
        }
        Ok(r)
    }

    /// The credentials of a `WWW-Authenticate` challenge: a Bearer token
    /// from its realm, or Basic.
    fn authenticate(&self, challenge: &str) -> Result<String> {
        let (scheme, rest) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let basic = || {
            use base64::Engine as _;
            self.creds.as_ref().map(|(u, p)| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                )
            })
        };
        if scheme.eq_ignore_ascii_case("basic") {
            return basic().ok_or_else(|| {
                Error::Registry(format!(
                    "{}: authentication required (no credentials for it)",
                    self.host
                ))
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::Registry(format!(
                "{}: unknown authentication {scheme:?}",
                self.host
            )));
        }
        let p = params(rest);
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let realm = get("realm").ok_or_else(|| {
            Error::Registry(format!("{}: a Bearer challenge without a realm", self.host))
        })?;
        let scope = get("scope").unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        let mut url = format!("{realm}?scope={}", percent(&scope));
        if let Some(s) = get("service") {
            url.push_str(&format!("&service={}", percent(&s)));
        }
        let mut req = self.agent.get(&url);
        if let Some(b) = basic() {
            req = req.header("Authorization", &b);
        }
        let mut resp = req
            .call()
            .map_err(|e| Error::Registry(format!("{}: token from {realm}: {e}", self.host)))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(Error::Registry(format!(
                "{}: the token service refused the credentials ({status})",
                self.host
            )));
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| Error::Registry(format!("{}: token from {realm}: {e}", self.host)))?;
        let body: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| Error::Registry(format!("{}: token from {realm}: {e}", self.host)))?;
        let token = body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .ok_or_else(|| {
                Error::Registry(format!("{}: the token service sent no token", self.host))
            })?;
        Ok(format!("Bearer {token}"))
    }

    /// GET `/v2/REPOSITORY/PATH`, authenticated, retried; with `from`, the
    /// bytes from that offset on (`Range`).
    pub fn get(&self, path: &str, accept: &[&str], from: u64) -> Result<Response> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repository);
        let mut authed_after_challenge = false;
        let mut attempt = 0u32;
        loop {
            let mut req = self.agent.get(&url);
            if !accept.is_empty() {
                req = req.header("Accept", &accept.join(", "));
            }
            if from > 0 {
                req = req.header("Range", &format!("bytes={from}-"));
            }
            if let Some(a) = self.auth.lock().expect("not poisoned").clone() {
                req = req.header("Authorization", &a);
            }
            let wait = |attempt: u32, after: Option<u64>| {
                let ms = after.map_or(200u64 << attempt.min(6), |s| s.min(10) * 1000);
                std::thread::sleep(Duration::from_millis(ms));
            };
            let resp = match req.call() {
                Ok(r) => r,
                Err(_) if attempt < self.retries => {
                    attempt += 1;
                    wait(attempt, None);
                    continue;
                }
                Err(e) => return Err(Error::Registry(format!("{url}: {e}"))),
            };
            let status = resp.status().as_u16();
            let header = |k: &str| {
                resp.headers()
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if status == 401 && !authed_after_challenge {
                let challenge = header("www-authenticate").ok_or_else(|| {
                    Error::Registry(format!("{url}: 401 without a WWW-Authenticate challenge"))
                })?;
                *self.auth.lock().expect("not poisoned") = Some(self.authenticate(&challenge)?);
                authed_after_challenge = true;
                continue;
            }
            if (status == 429 || status >= 500) && attempt < self.retries {
                attempt += 1;
                wait(attempt, header("retry-after").and_then(|s| s.parse().ok()));
                continue;
            }
            let content_type = header("content-type").unwrap_or_default();
            let length = header("content-length").and_then(|l| l.parse().ok());
            let digest = header("docker-content-digest");
            return Ok(Response {
                status,
                content_type,
                length,
                digest,
                body: Box::new(resp.into_body().into_reader()),
            });
        }
    }

    /// A whole small document (manifest, index, config), at most `limit`
    /// bytes; an error for anything but 200, naming what was asked for.
    pub fn document(
        &self,
        path: &str,
        accept: &[&str],
        limit: u64,
        what: &str,
    ) -> Result<(Vec<u8>, String, Option<String>)> {
        let r = self.get(path, accept, 0)?;
        self.check(r.status, what)?;
        if r.length.is_some_and(|l| l > limit) {
            return Err(Error::Registry(format!(
                "{what}: larger than {limit} bytes"
            )));
        }
        let mut data = Vec::new();
        r.body
            .take(limit + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::Registry(format!("{what}: {e}")))?;
        if data.len() as u64 > limit {
            return Err(Error::Registry(format!(
                "{what}: larger than {limit} bytes"
            )));
        }
        Ok((data, r.content_type, r.digest))
    }

    /// Checks credentials (`login`): `GET /v2/` answered after any
    /// challenge the registry makes.
    pub fn check_login(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| Error::Registry(format!("{}: {e}", self.host)))?;
        let status = resp.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Error::Registry(format!("{}: /v2/ answered {status}", self.host)))?;
        let auth = self.authenticate(&challenge)?;
        let resp = self
            .agent
            .get(&url)
            .header("Authorization", &auth)
            .call()
            .map_err(|e| Error::Registry(format!("{}: {e}", self.host)))?;
        match resp.status().as_u16() {
            200 => Ok(()),
            s => Err(Error::Registry(format!(
                "{}: the registry refused the credentials ({s})",
                self.host
            ))),
        }
    }

    /// An error for a status other than 200/206.
    pub fn check(&self, status: u16, what: &str) -> Result<()> {
        match status {
            200 | 206 => Ok(()),
            401 | 403 => Err(Error::Registry(format!(
                "{what}: access denied ({status}{})",
                if self.creds.is_some() {
                    ": the registry refused the credentials"
                } else {
                    ": no credentials for it; berth image login"
                }
            ))),
            404 => Err(Error::Registry(format!("{what}: not found (404)"))),
            429 => Err(Error::Registry(format!(
                "{what}: too many requests (429), retries used up"
            ))),
            s => Err(Error::Registry(format!(
                "{what}: the registry answered {s}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let p = params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p[0], ("realm".into(), "https://auth.example/token".into()));
        assert_eq!(p[1], ("service".into(), "registry.example".into()));
        assert_eq!(p[2], ("scope".into(), "repository:a/b:pull,push".into()));
        let p = params("realm=x, service=y");
        assert_eq!(
            p,
            vec![("realm".into(), "x".into()), ("service".into(), "y".into())]
        );
        assert_eq!(percent("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
        assert!(
            is_loopback("localhost:5000") && is_loopback("127.0.0.1:80") && !is_loopback("quay.io")
        );
    }
}
