//! berth-image: the OCI image half of berth.
//!
//! - [`import`]: OCI image layouts, oci-archive and docker-archive tarballs
//!   into a content-addressed store ([`store`]), every blob verified.
//! - [`unpack`]: each layer unpacked once, in overlayfs form, into a
//!   directory keyed by its chain ID, refusing entries that would escape it.
//! - [`overlay`]: a container rootfs as an overlay mount of shared layers
//!   plus a private upper directory; [`flatten`]: a plain rootfs copy.
//! - [`bundle`]: an OCI runtime bundle from an image config.

pub mod bundle;
pub mod digest;
pub mod error;
pub mod flatten;
pub mod import;
pub mod overlay;
pub mod store;
pub mod unpack;

pub use error::{Error, Result};
