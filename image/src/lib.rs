//! berth-image: the OCI image half of berth.
//!
//! - [`import`]: OCI image layouts, oci-archive and docker-archive tarballs
//!   into a content-addressed store ([`store`]), every blob verified;
//!   [`pull`]: the same from a registry ([`registry`], [`auth`]).
//! - [`unpack`]: each layer unpacked once, in overlayfs form, into a
//!   directory keyed by its chain ID, refusing entries that would escape it.
//! - [`overlay`]: a container rootfs as an overlay mount of shared layers
//!   plus a private upper directory; [`flatten`]: a plain rootfs copy.
//! - [`bundle`]: an OCI runtime bundle from an image config.
//! - [`gc`]: removes what no image or mount uses.
//! - [`net`]: networks for `image run` (netavark bridges, `-p`, names).
//!
//! # Layers
//!
//! A module uses only modules of lower layers or of its own layer, and the
//! import graph has no cycle (`tests/layering.rs` checks both from this
//! table):
//!
//! | layer | modules |
//! | --- | --- |
//! | 3 operations | import, pull, overlay, flatten, bundle, gc, net |
//! | 2 layers | unpack, manifest |
//! | 1 store | store, registry, auth |
//! | 0 base | error, digest, fsutil, progress, reference |

pub mod auth;
pub mod bundle;
pub mod digest;
pub mod error;
pub mod flatten;
pub mod fsutil;
pub mod gc;
pub mod import;
pub mod manifest;
pub mod net;
pub mod overlay;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use error::{Error, Result};
