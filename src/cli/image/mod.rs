//! `berth image ...`: the image store's commands. Each is a few calls into
//! berth-image; `image run` (bundle + create + start) is in `run.rs`.

use super::Global;
use anyhow::Result;
use berth_image::{bundle, flatten, gc, import, overlay, store};
use clap::Subcommand;
use std::path::PathBuf;

mod run;

#[derive(clap::Args)]
pub struct Args {
    /// The image store.
    #[arg(
        long,
        env = "BERTH_STORE",
        default_value = "/var/lib/berth",
        value_name = "DIR"
    )]
    store: PathBuf,
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
    /// Unmount DIR (a mount or a bundle) and remove its upper dir.
    Umount { dir: PathBuf },
    /// Make an OCI bundle at DIR: config.json from the image, rootfs an overlay mount.
    Bundle { name: String, dir: PathBuf },
    /// Run a command in a new container of the image.
    Run(Box<run::Args>),
}

/// A progress bar on a terminal, nothing otherwise.
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new(msg: &'static str) -> Bar {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Bar(indicatif::ProgressBar::hidden());
        }
        let pb = indicatif::ProgressBar::new(0);
        if let Ok(st) = indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
        ) {
            pb.set_style(st);
        }
        pb.set_message(msg);
        Bar(pb)
    }
}

impl berth_image::progress::Progress for Bar {
    fn set_length(&self, bytes: u64) {
        self.0.set_length(bytes);
    }
    fn inc(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

pub fn run(g: &Global, a: &Args) -> Result<i32> {
    let st = store::Store::open(&a.store)?;
    match &a.cmd {
        Cmd::Import { path, name } => {
            let bar = Bar::new("unpacking");
            let r = import::import(&st, path, name.as_deref(), &bar)?;
            bar.0.finish_and_clear();
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
        Cmd::Mount { name, dir } => overlay::mount(&st, &st.image(name)?, dir)?,
        Cmd::Umount { dir } => {
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
    }
    Ok(0)
}
