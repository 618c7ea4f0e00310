//! `berth image ...`: the image store's commands. Each is a few calls into
//! berth-image; `image run` (bundle + create + start) is in `run.rs`,
//! pull, login and logout in `pull.rs`.

use super::Global;
use anyhow::Result;
use berth_image::{bundle, flatten, gc, import, overlay, store};
use clap::Subcommand;
use std::path::PathBuf;

mod pull;
mod run;

/// `--store`, of `image` and `network`.
#[derive(clap::Args)]
pub(super) struct StoreArg {
    /// The image store (default /var/lib/berth; rootless:
    /// $XDG_DATA_HOME/berth, else ~/.local/share/berth).
    #[arg(long, env = "BERTH_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArg,
    #[command(subcommand)]
    cmd: Cmd,
}

impl Args {
    pub fn enters_container(&self) -> bool {
        matches!(self.cmd, Cmd::Run(_))
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Import an OCI image layout directory, an oci-archive or a docker-archive tarball.
    Import {
        path: PathBuf,
        /// Name the image NAME:TAG (default: the name found in the image).
        #[arg(long, value_name = "NAME:TAG")]
        name: Option<String>,
    },
    /// Pull an image from a registry (NAME[:TAG], NAME@sha256:..., HOST[:PORT]/PATH:TAG).
    Pull(pull::Args),
    /// Store credentials for a registry (checked against it first).
    Login(pull::LoginArgs),
    /// Remove the credentials of a registry.
    Logout(pull::LogoutArgs),
    /// List images.
    Ls,
    /// Print an image's digest, config and layers as JSON.
    Inspect { name: String },
    /// Remove an image (its layers stay until `prune`).
    Rm { name: String },
    /// Remove layers and blobs no image or mount uses.
    Prune,
    /// Write the image's flattened rootfs to DIR (whiteouts applied).
    Unpack { name: String, dir: PathBuf },
    /// Overlay-mount the image at DIR with a private upper dir.
    Mount { name: String, dir: PathBuf },
    /// Unmount DIR (a mount or a bundle) and remove its upper dir (and
    /// release a bundle's network).
    Umount { dir: PathBuf },
    /// Make an OCI bundle at DIR: config.json from the image, rootfs an overlay mount.
    Bundle { name: String, dir: PathBuf },
    /// Run a command in a new container of the image.
    Run(Box<run::Args>),
    /// Print the published ports of an `image run` container
    /// (CONTAINERPORT/PROTO -> HOSTIP:HOSTPORT).
    Port { id: String },
}

/// Progress on a terminal (stderr), nothing otherwise: a bar for the whole,
/// and one per layer when pulling.
pub(super) struct Bar {
    multi: Option<indicatif::MultiProgress>,
    total: indicatif::ProgressBar,
}

const STYLE: &str = "{msg:12} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}";

impl Bar {
    fn new(msg: &'static str) -> Bar {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Bar::hidden();
        }
        let multi = indicatif::MultiProgress::new();
        let pb = multi.add(indicatif::ProgressBar::new(0));
        if let Ok(st) = indicatif::ProgressStyle::with_template(STYLE) {
            pb.set_style(st);
        }
        pb.set_message(msg);
        Bar {
            multi: Some(multi),
            total: pb,
        }
    }

    fn hidden() -> Bar {
        Bar {
            multi: None,
            total: indicatif::ProgressBar::hidden(),
        }
    }

    fn done(&self) {
        self.total.finish_and_clear();
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

/// One layer's bar (its bytes count towards the whole too).
struct LayerBar(indicatif::ProgressBar, indicatif::ProgressBar);

impl berth_image::progress::Progress for LayerBar {
    fn inc(&self, bytes: u64) {
        self.0.inc(bytes);
        self.1.inc(bytes);
    }
    fn set_position(&self, bytes: u64) {
        self.0.set_position(bytes);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

impl berth_image::progress::Progress for Bar {
    fn set_length(&self, bytes: u64) {
        self.total.set_length(bytes);
    }
    fn inc(&self, bytes: u64) {
        self.total.inc(bytes);
    }
    fn layer(&self, name: &str, total: u64) -> Box<dyn berth_image::progress::Progress + Send> {
        let pb = match &self.multi {
            Some(m) => m.add(indicatif::ProgressBar::new(total)),
            None => indicatif::ProgressBar::hidden(),
        };
        if let Ok(st) = indicatif::ProgressStyle::with_template(STYLE) {
            pb.set_style(st);
        }
        pb.set_message(name.to_string());
        Box::new(LayerBar(pb, self.total.clone()))
    }
}

/// The store's directory: `--store`, else root's or the user's default.
pub(super) fn store_dir(store: Option<&PathBuf>, rootless: bool) -> Result<PathBuf> {
    if let Some(s) = store {
        return Ok(s.clone());
    }
    if !rootless {
        return Ok(PathBuf::from("/var/lib/berth"));
    }
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match (env("XDG_DATA_HOME"), env("HOME")) {
        (Some(d), _) => Ok(d.join("berth")),
        (None, Some(h)) => Ok(h.join(".local/share/berth")),
        (None, None) => anyhow::bail!(
            "rootless: neither XDG_DATA_HOME nor HOME is set, so there is no default image store: pass --store"
        ),
    }
}

#[inline(never)] // its own stack frame, see `Cmd::run`
pub fn run(g: &Global, a: &Args) -> Result<i32> {
    // Without privilege every image command runs as root of a user
    // namespace mapping the user's subordinate ids (docs/rootless.md).
    let unprivileged = !nix::unistd::geteuid().is_root();
    let rootless = unprivileged || berth_runtime::rootless::in_user_namespace();
    let dir = store_dir(a.store.store.as_ref(), rootless)?;
    if unprivileged {
        if let Some(status) = berth_runtime::rootless::enter_user_namespace()? {
            return Ok(status);
        }
    }
    if rootless && matches!(a.cmd, Cmd::Mount { .. } | Cmd::Bundle { .. }) {
        anyhow::bail!(
            "rootless: image mount and image bundle leave an overlay mount behind, and a rootless one lives only in the user namespace of the command that made it: use image run, or image unpack for a plain copy"
        );
    }
    let st = store::Store::open_as(&dir, rootless)?;
    match &a.cmd {
        Cmd::Import { path, name } => {
            let bar = Bar::new("unpacking");
            let r = import::import(&st, path, name.as_deref(), &bar)?;
            bar.done();
            println!(
                "{} {} ({} layers, {} unpacked)",
                r.image.name,
                r.image.digest,
                r.image.layers.len(),
                r.unpacked
            );
        }
        Cmd::Ls => {
            println!(
                "{:<40} {:<20} {:>6} {:>12}",
                "NAME", "DIGEST", "LAYERS", "SIZE"
            );
            for i in st.images()? {
                let size: u64 = i.layers.iter().map(|l| l.size).sum();
                println!(
                    "{:<40} {:<20} {:>6} {:>12}",
                    i.name,
                    &i.digest[..19.min(i.digest.len())],
                    i.layers.len(),
                    size
                );
            }
        }
        Cmd::Inspect { name } => {
            let i = st.image(name)?;
            let config: serde_json::Value = serde_json::from_slice(
                &st.read_blob(&berth_image::digest::Digest::parse(&i.config)?)?,
            )?;
            let v = serde_json::json!({"name": i.name, "digest": i.digest, "config": config, "layers": i.layers});
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Cmd::Rm { name } => {
            let i = st.remove_image(name)?;
            println!("removed {}", i.name);
        }
        Cmd::Prune => {
            let (l, b) = gc::prune(&st)?;
            println!("removed {l} layers, {b} blobs");
        }
        Cmd::Unpack { name, dir } => flatten::unpack(&st, &st.image(name)?, dir)?,
        Cmd::Mount { name, dir } => overlay::mount(&st, &st.image(name)?, dir, false)?,
        Cmd::Umount { dir } => {
            // A bundle of `image run` whose container never got a state
            // (its berth killed before create) still holds its address and
            // ports: released here.
            berth_image::net::container::detach(&berth_image::net::Networks::new(&st.root), dir)?;
            overlay::umount(&st, dir)?;
        }
        Cmd::Bundle { name, dir } => {
            let base = berth_runtime::spec::default_spec(false);
            let o = bundle::Opts {
                hostname: Some("berth".into()),
                ..Default::default()
            };
            bundle::bundle(&st, &st.image(name)?, dir, &base, &o)?;
        }
        Cmd::Run(r) => return run::run(g, &st, r),
        Cmd::Port { id } => {
            let a = berth_image::net::container::attachment(&st.bundle_dir(id))?
                .ok_or_else(|| anyhow::anyhow!("container {id} is not attached to a network"))?;
            for p in &a.ports {
                println!("{p}");
            }
        }
        Cmd::Pull(a) => pull::run(&st, a)?,
        Cmd::Login(a) => pull::login(&st, a)?,
        Cmd::Logout(a) => pull::logout(a)?,
    }
    Ok(0)
}
