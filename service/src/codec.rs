//! A small bounded binary codec for the node's own records and transactions.
//!
//! Integers are big-endian; byte strings and lists carry a u32 length that is
//! checked against a limit and against the bytes left before anything is
//! allocated, so hostile input cannot force large allocations.

use thiserror::Error;

/// Why bytes did not decode.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// Fewer bytes than the field needs.
    #[error("truncated {what}: need {need} bytes, {got} left")]
    Truncated {
        /// Field being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes left.
        got: usize,
    },
    /// A length or count above its limit.
    #[error("{what} too large: {got} > {limit}")]
    TooLarge {
        /// Field being read.
        what: &'static str,
        /// Value found.
        got: u64,
        /// Limit.
        limit: u64,
    },
    /// Unknown format version.
    #[error("unsupported {what} version {got}")]
    Version {
        /// Record kind.
        what: &'static str,
        /// Version found.
        got: u8,
    },
    /// Unknown tag.
    #[error("unknown {what} tag {got}")]
    Tag {
        /// Record kind.
        what: &'static str,
        /// Tag found.
        got: u8,
    },
    /// Bytes left after the value.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// A value that is structurally wrong (bad point, bad UTF-8, ...).
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Appends encodings to a buffer.
#[derive(Default)]
pub struct Writer {
    /// The bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Fixed-size bytes (no length).
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(v);
        self
    }
    /// Length-prefixed UTF-8.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    /// A list count.
    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }
    /// The finished bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads encodings from the front of a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Wraps `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
    /// Fails unless everything was read.
    pub fn end(&self) -> Result<(), CodecError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Trailing(self.buf.len()))
        }
    }
    /// `n` raw bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Truncated {
                what,
                need: n,
                got: self.buf.len(),
            });
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let b = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }
    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }
    /// Big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    /// Big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    /// A list count of at most `limit` items of at least `item_len` bytes each.
    pub fn count(
        &mut self,
        what: &'static str,
        limit: u64,
        item_len: usize,
    ) -> Result<usize, CodecError> {
        let c = u64::from(self.u32(what)?);
        if c > limit {
            return Err(CodecError::TooLarge {
                what,
                got: c,
                limit,
            });
        }
        let need = c.saturating_mul(item_len as u64);
        if need > self.buf.len() as u64 {
            return Err(CodecError::Truncated {
                what,
                need: usize::try_from(need).unwrap_or(usize::MAX),
                got: self.buf.len(),
            });
        }
        usize::try_from(c).map_err(|_| CodecError::Invalid(what))
    }
    /// Length-prefixed bytes of at most `limit` bytes.
    pub fn bytes(&mut self, what: &'static str, limit: u64) -> Result<&'a [u8], CodecError> {
        let n = self.count(what, limit, 1)?;
        self.take(n, what)
    }
    /// Length-prefixed UTF-8 of at most `limit` bytes.
    pub fn str(&mut self, what: &'static str, limit: u64) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.bytes(what, limit)?).map_err(|_| CodecError::Invalid(what))
    }
    /// A version byte that must equal `want`.
    pub fn version(&mut self, what: &'static str, want: u8) -> Result<(), CodecError> {
        let v = self.u8(what)?;
        if v != want {
            return Err(CodecError::Version { what, got: v });
        }
        Ok(())
    }
}
