//! `berth image pull`, `login`, `logout`, and the registry flags `image
//! run` shares.

use super::Bar;
use anyhow::{Context, Result};
use berth_image::reference::Reference;
use berth_image::registry::{Config, Options};
use berth_image::store::Store;
use std::io::IsTerminal;
use std::path::PathBuf;

/// How to reach registries (pull, and `image run` when it pulls).
#[derive(clap::Args, Clone)]
pub struct RegistryArgs {
    /// Verify the registry's TLS certificate (false also allows plain HTTP).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    tls_verify: bool,
    /// USER:PASSWORD for the registry (instead of the credentials files).
    #[arg(long, value_name = "USER:PASSWORD")]
    creds: Option<String>,
    /// The credentials file (default: $REGISTRY_AUTH_FILE, containers' auth.json, ~/.docker/config.json).
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// A directory of HOST/*.crt CA files (default /etc/containers/certs.d, /etc/docker/certs.d).
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// A mirror of docker.io, tried first (repeatable).
    #[arg(long, value_name = "URL")]
    registry_mirror: Vec<String>,
}

impl RegistryArgs {
    /// The options and the docker.io mirrors, with the store's (or
    /// /etc/berth's) registries.json under the flags.
    pub fn options(&self, st: &Store) -> Result<(Options, Vec<String>, Config)> {
        let cfg = Config::load(&st.root)?;
        let mut o = Options {
            tls_verify: self.tls_verify,
            insecure: cfg.insecure_registries.clone(),
            authfile: self.authfile.clone(),
            ..Options::default()
        };
        if let Some(c) = &self.creds {
            let (u, p) = c.split_once(':').context("--creds: use USER:PASSWORD")?;
            o.creds = Some((u.to_string(), p.to_string()));
        }
        if let Some(d) = &self.cert_dir {
            o.cert_dirs = vec![d.clone()];
        }
        let mut mirrors = self.registry_mirror.clone();
        mirrors.extend(cfg.registry_mirrors.iter().cloned());
        Ok((o, mirrors, cfg))
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// NAME[:TAG], NAME@sha256:..., HOST[:PORT]/PATH:TAG (short names are docker.io's).
    reference: String,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

/// Pulls `reference`, with bars on a terminal unless `quiet`. Returns the
/// stored image's name.
pub fn pull(st: &Store, reference: &str, ra: &RegistryArgs, quiet: bool) -> Result<String> {
    let (o, mirrors, cfg) = ra.options(st)?;
    let r = Reference::parse(reference, &cfg.unqualified_search_registries)?;
    let bar = if quiet {
        Bar::hidden()
    } else {
        Bar::new("pulling")
    };
    let p = berth_image::pull::pull(st, &r, &o, &mirrors, &bar)?;
    bar.done();
    if !quiet && std::io::stdout().is_terminal() {
        println!(
            "{} {} ({} layers, {} downloaded)",
            p.image.name,
            p.image.digest,
            p.image.layers.len(),
            p.downloaded
        );
    }
    Ok(p.image.name)
}

pub fn run(st: &Store, a: &Args) -> Result<()> {
    pull(st, &a.reference, &a.registry, a.quiet).map(drop)
}

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The registry, HOST[:PORT].
    registry: String,
    #[arg(short, long)]
    username: String,
    /// The password (else read from stdin with --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    #[arg(long)]
    password_stdin: bool,
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// Verify the registry's TLS certificate.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    tls_verify: bool,
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
}

/// `image login`: checks the credentials against the registry, then files
/// them as podman and docker do.
pub fn login(st: &Store, a: &LoginArgs) -> Result<()> {
    let password = match (&a.password, a.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => anyhow::bail!("--password or --password-stdin is needed"),
    };
    let cfg = Config::load(&st.root)?;
    let mut o = Options {
        tls_verify: a.tls_verify,
        insecure: cfg.insecure_registries,
        creds: Some((a.username.clone(), password.clone())),
        authfile: a.authfile.clone(),
        ..Options::default()
    };
    if let Some(d) = &a.cert_dir {
        o.cert_dirs = vec![d.clone()];
    }
    berth_image::registry::Registry::connect(&a.registry, "", &o)?.check_login()?;
    let f = berth_image::auth::store(&a.registry, &a.username, &password, a.authfile.as_deref())?;
    println!("Login Succeeded ({})", f.display());
    Ok(())
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    registry: String,
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
}

pub fn logout(a: &LogoutArgs) -> Result<()> {
    if !berth_image::auth::remove(&a.registry, a.authfile.as_deref())? {
        anyhow::bail!("not logged in to {}", a.registry);
    }
    println!("Removed login credentials for {}", a.registry);
    Ok(())
}
