//! The protocol-buffers wire format (proto2), as much as CRIU's RPC
//! messages use: varints, length-delimited fields (strings and nested
//! messages), and skipping the fixed-width ones on decode.

/// A message being encoded. Fields are appended in the order they are
/// put; protobuf readers accept any order.
#[derive(Default)]
pub(crate) struct Enc(pub Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Enc {
    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire));
    }
    /// An `int32`, `uint32`, enum or `bool` field (negative int32 values
    /// take ten bytes, sign-extended, as protobuf encodes them).
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, 0);
        varint(&mut self.0, v as u64);
        self
    }
    pub fn bool(&mut self, field: u32, v: bool) -> &mut Self {
        self.int(field, i64::from(v))
    }
    /// A `bool` field written only when true (absent reads as false).
    pub fn flag(&mut self, field: u32, v: bool) -> &mut Self {
        if v {
            self.bool(field, true);
        }
        self
    }
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, 2);
        varint(&mut self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }
    pub fn str(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }
    pub fn msg(&mut self, field: u32, m: &Enc) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// One decoded field's value.
#[derive(Debug, PartialEq)]
pub(crate) enum Val<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

impl Val<'_> {
    pub fn int(&self) -> i64 {
        match self {
            Val::Int(v) => *v as i64,
            Val::Bytes(_) => 0,
        }
    }
    pub fn bytes(&self) -> &[u8] {
        match self {
            Val::Bytes(b) => b,
            Val::Int(_) => &[],
        }
    }
    pub fn string(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of a message: (field number, value); `None` when the bytes
/// are not a well-formed message.
pub(crate) fn fields(buf: &[u8]) -> Option<Vec<(u32, Val<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos)?;
        let field = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => out.push((field, Val::Int(read_varint(buf, &mut pos)?))),
            1 => pos = pos.checked_add(8)?,
            2 => {
                let n = usize::try_from(read_varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(n).filter(|e| *e <= buf.len())?;
                out.push((field, Val::Bytes(&buf[pos..end])));
                pos = end;
            }
            5 => pos = pos.checked_add(4)?,
            _ => return None,
        }
    }
    (pos == buf.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut inner = Enc::default();
        inner.str(1, "post-dump").int(2, 4242);
        let mut m = Enc::default();
        m.int(1, 6)
            .bool(2, true)
            .msg(5, &inner)
            .int(7, -1)
            .str(9, "");
        let f = fields(&m.0).unwrap();
        assert_eq!(f[0], (1, Val::Int(6)));
        assert_eq!(f[1], (2, Val::Int(1)));
        let n = fields(f[2].1.bytes()).unwrap();
        assert_eq!(n[0].1.string(), "post-dump");
        assert_eq!(n[1].1.int(), 4242);
        assert_eq!(f[3].1.int() as i32, -1);
        assert_eq!(f[4], (9, Val::Bytes(b"")));
        // Known bytes: field 1 varint 300 is 08 ac 02.
        let mut k = Enc::default();
        k.int(1, 300);
        assert_eq!(k.0, [0x08, 0xac, 0x02]);
    }

    #[test]
    fn malformed() {
        assert!(fields(&[0x0a, 0x05, b'a']).is_none()); // length past the end
        assert!(fields(&[0x08]).is_none()); // varint cut short
        assert!(fields(&[0x0b]).is_none()); // wire type 3
                                            // A fixed64 field is skipped.
        assert_eq!(
            fields(&[0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x10, 1])
                .unwrap()
                .len(),
            1
        );
    }
}
