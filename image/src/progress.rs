//! How the library reports progress: a trait the caller implements (the
//! CLI draws a bar on a terminal), so the library depends on no UI crate.

use std::io::Read;

/// Receives byte counts as work proceeds; called from several threads.
pub trait Progress: Sync {
    /// The total number of bytes to come.
    fn set_length(&self, _bytes: u64) {}
    /// `bytes` more are done.
    fn inc(&self, _bytes: u64) {}
    /// `bytes` are done in all (a resumed download starts further on).
    fn set_position(&self, _bytes: u64) {}
    /// Done.
    fn finish(&self) {}
    /// A progress of its own for one layer of `total` bytes (a pull shows
    /// one bar per layer); by default nothing.
    fn layer(&self, _name: &str, _total: u64) -> Box<dyn Progress + Send> {
        Box::new(Silent)
    }
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// A reader that reports each read to a [`Progress`].
pub struct Counted<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<'a, R> Counted<'a, R> {
    pub fn new(inner: R, progress: &'a dyn Progress) -> Self {
        Counted { inner, progress }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}
