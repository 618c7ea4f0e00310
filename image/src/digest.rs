//! sha256 digests (descriptor.md "Digests"), hashing readers and chain IDs.

use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::io::Read;

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Digest> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| Error::Format(format!("digest {s:?}: only sha256 is supported")))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::Format(format!(
                "digest {s:?}: not 64 lowercase hex digits"
            )));
        }
        Ok(Digest(s.to_string()))
    }
    pub fn of(data: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex(&Sha256::digest(data))))
    }
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A reader that hashes what passes through it (owning its [`Hasher`]).
pub struct HashReader<R> {
    inner: R,
    h: Hasher,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader {
            inner,
            h: Hasher::default(),
        }
    }
    /// Reads what is left, then returns the digest of everything read.
    pub fn finish(mut self) -> std::io::Result<(Digest, u64)> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok(self.h.finish())
    }
    /// Checks everything read (after draining the rest) against `want`.
    pub fn verify(mut self, what: &str, want: &Digest) -> Result<u64> {
        std::io::copy(&mut self, &mut std::io::sink())
            .map_err(|e| Error::Format(format!("{what}: {e}")))?;
        self.h.verify(what, want)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.h.reader(&mut self.inner).read(buf)
    }
}

/// Chain IDs of a stack of diff IDs (config.md "Layer ChainID").
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_chain() {
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse("md5:00").is_err());
        let a = Digest::of(b"a");
        assert_eq!(
            a.as_str(),
            "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
        );
        assert_eq!(Digest::parse(a.as_str()).unwrap(), a);
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
        let mut r = HashReader::new(&b"a"[..]);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert!(r.verify("x", &a).is_ok());
    }
}

/// A sha256 state that readers borrow, so nested readers (compressed blob
/// under a decompressor) can each be hashed in one pass.
#[derive(Default)]
pub struct Hasher {
    hash: Sha256,
    count: u64,
}

impl Hasher {
    pub fn reader<R: Read>(&mut self, inner: R) -> Tee<'_, R> {
        Tee { inner, h: self }
    }
    pub fn finish(self) -> (Digest, u64) {
        (
            Digest(format!("sha256:{}", hex(&self.hash.finalize()))),
            self.count,
        )
    }
    pub fn verify(self, what: &str, want: &Digest) -> Result<u64> {
        let (got, n) = self.finish();
        if &got != want {
            return Err(Error::Digest {
                what: what.into(),
                expected: want.to_string(),
                got: got.to_string(),
            });
        }
        Ok(n)
    }
}

pub struct Tee<'a, R> {
    inner: R,
    h: &'a mut Hasher,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.hash.update(&buf[..n]);
        self.h.count += n as u64;
        Ok(n)
    }
}
