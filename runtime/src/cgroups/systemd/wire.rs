//! The little of the D-Bus wire protocol the systemd driver speaks
//! (<https://dbus.freedesktop.org/doc/dbus-specification.html>): method
//! calls with the argument types of the manager's methods, and replies,
//! errors and signals read back. Little-endian out, either order in.
//! No threads and no executor: a connection is one blocking socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A unit property's value: the D-Bus types systemd's unit properties use.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    /// `as`
    Strs(Vec<String>),
    /// `ay`
    Bytes(Vec<u8>),
    /// `au`
    U32s(Vec<u32>),
    /// `a(ss)`
    Pairs(Vec<(String, String)>),
}

impl Value {
    fn signature(&self) -> &'static str {
        match self {
            Value::Bool(_) => "b",
            Value::U8(_) => "y",
            Value::I16(_) => "n",
            Value::U16(_) => "q",
            Value::I32(_) => "i",
            Value::U32(_) => "u",
            Value::I64(_) => "x",
            Value::U64(_) => "t",
            Value::F64(_) => "d",
            Value::Str(_) => "s",
            Value::Strs(_) => "as",
            Value::Bytes(_) => "ay",
            Value::U32s(_) => "au",
            Value::Pairs(_) => "a(ss)",
        }
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Value {
        Value::Strs(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}
impl From<Vec<u32>> for Value {
    fn from(v: Vec<u32>) -> Value {
        Value::U32s(v)
    }
}
impl From<Vec<(String, String)>> for Value {
    fn from(v: Vec<(String, String)>) -> Value {
        Value::Pairs(v)
    }
}

/// A marshalled body (or header), aligned from its own start: bodies start
/// on an 8-byte boundary of the message, so the alignment is the same.
#[derive(Default)]
pub struct Body(Vec<u8>);

impl Body {
    /// A body of strings (or object paths) only.
    pub fn strs(strs: &[&str]) -> Body {
        let mut b = Body::default();
        for s in strs {
            b.str(s);
        }
        b
    }
    fn pad(&mut self, to: usize) {
        while !self.0.len().is_multiple_of(to) {
            self.0.push(0);
        }
    }
    fn fixed<const N: usize>(&mut self, b: [u8; N]) -> &mut Body {
        self.pad(N);
        self.0.extend_from_slice(&b);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Body {
        self.fixed(v.to_le_bytes())
    }
    pub fn bool(&mut self, v: bool) -> &mut Body {
        self.u32(v as u32)
    }
    /// A string or an object path.
    pub fn str(&mut self, s: &str) -> &mut Body {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }
    fn sig(&mut self, s: &str) -> &mut Body {
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }
    /// An array whose elements `f` writes, aligned to `align`.
    pub fn array(&mut self, align: usize, f: impl FnOnce(&mut Body)) -> &mut Body {
        self.u32(0);
        let at = self.0.len() - 4;
        self.pad(align);
        let start = self.0.len();
        f(self);
        let n = (self.0.len() - start) as u32;
        self.0[at..at + 4].copy_from_slice(&n.to_le_bytes());
        self
    }
    fn variant(&mut self, v: &Value) {
        self.sig(v.signature());
        match v {
            Value::Bool(b) => self.bool(*b),
            Value::U8(n) => self.fixed([*n]),
            Value::I16(n) => self.fixed(n.to_le_bytes()),
            Value::U16(n) => self.fixed(n.to_le_bytes()),
            Value::I32(n) => self.fixed(n.to_le_bytes()),
            Value::U32(n) => self.u32(*n),
            Value::I64(n) => self.fixed(n.to_le_bytes()),
            Value::U64(n) => self.fixed(n.to_le_bytes()),
            Value::F64(n) => self.fixed(n.to_le_bytes()),
            Value::Str(s) => self.str(s),
            Value::Strs(v) => self.array(4, |b| v.iter().for_each(|s| _ = b.str(s))),
            Value::Bytes(v) => self.array(1, |b| b.0.extend_from_slice(v)),
            Value::U32s(v) => self.array(4, |b| v.iter().for_each(|n| _ = b.u32(*n))),
            Value::Pairs(v) => self.array(8, |b| {
                for (k, val) in v {
                    b.pad(8);
                    b.str(k).str(val);
                }
            }),
        };
    }
    /// `a(sv)`: unit properties.
    pub fn props(&mut self, props: &[(String, Value)]) -> &mut Body {
        self.array(8, |b| {
            for (k, v) in props {
                b.pad(8);
                b.str(k).variant(v);
            }
        })
    }
}

/// Where a call goes: the service, the object and the interface.
#[derive(Clone, Copy)]
pub struct To<'a> {
    pub dest: &'a str,
    pub path: &'a str,
    pub iface: &'a str,
}

/// A method call's wire form: header fields PATH, INTERFACE, MEMBER,
/// DESTINATION and SIGNATURE, then `body`.
pub fn method_call(serial: u32, to: To, member: &str, sig: &str, body: &Body) -> Vec<u8> {
    let To { dest, path, iface } = to;
    let mut h = Body::default();
    h.0.extend_from_slice(&[b'l', 1, 0, 1]);
    h.u32(body.0.len() as u32).u32(serial);
    h.array(8, |f| {
        for (code, ty, v) in [
            (1u8, "o", path),
            (2, "s", iface),
            (3, "s", member),
            (6, "s", dest),
            (8, "g", sig),
        ] {
            if v.is_empty() {
                continue;
            }
            f.pad(8);
            f.0.push(code);
            f.sig(ty);
            if ty == "g" {
                f.sig(v);
            } else {
                f.str(v);
            }
        }
    });
    h.pad(8);
    h.0.extend_from_slice(&body.0);
    h.0
}

/// A message read back: its kind (2 reply, 3 error, 4 signal), the
/// header fields berth looks at, and the body.
#[derive(Debug, Default)]
pub struct Message {
    pub kind: u8,
    pub reply_to: Option<u32>,
    pub member: String,
    pub error: String,
    pub sig: String,
    big: bool,
    pub body: Vec<u8>,
}

/// Reads a marshalled body (or header) from its start.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

fn malformed() -> String {
    "malformed D-Bus message".to_string()
}

impl<'a> Reader<'a> {
    pub fn new(m: &'a Message) -> Reader<'a> {
        Reader {
            buf: &m.body,
            pos: 0,
            big: m.big,
        }
    }
    fn take(&mut self, align: usize, n: usize) -> Result<&'a [u8], String> {
        self.pos = self.pos.next_multiple_of(align);
        let s = self.buf.get(self.pos..self.pos + n).ok_or_else(malformed)?;
        self.pos += n;
        Ok(s)
    }
    pub fn u32(&mut self) -> Result<u32, String> {
        let b: [u8; 4] = self.take(4, 4)?.try_into().map_err(|_| malformed())?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    /// A string or an object path.
    pub fn str(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let s = self.take(1, n + 1)?;
        String::from_utf8(s[..n].to_vec()).map_err(|_| malformed())
    }
    pub fn sig(&mut self) -> Result<String, String> {
        let n = self.take(1, 1)?[0] as usize;
        let s = self.take(1, n + 1)?;
        String::from_utf8(s[..n].to_vec()).map_err(|_| malformed())
    }
}

/// Splits one whole message off the front of `buf`, if it holds one.
fn parse(buf: &[u8]) -> Result<Option<(Message, usize)>, String> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let big = match buf[0] {
        b'l' => false,
        b'B' => true,
        _ => return Err(malformed()),
    };
    // Length of the body, serial, length of the header fields.
    let mut r = Reader { buf, pos: 4, big };
    let (body_len, _, fields_len) = (r.u32()? as usize, r.u32()?, r.u32()? as usize);
    if body_len > 1 << 27 || fields_len > 1 << 26 {
        return Err(malformed());
    }
    let body_at = (16 + fields_len).next_multiple_of(8);
    if buf.len() < body_at + body_len {
        return Ok(None);
    }
    let mut m = Message {
        kind: buf[1],
        big,
        ..Message::default()
    };
    // The header fields, a(yv), from offset 16 (a multiple of 8).
    let mut r = Reader {
        buf: &buf[16..16 + fields_len],
        pos: 0,
        big,
    };
    while r.pos.next_multiple_of(8) < fields_len {
        let code = r.take(8, 1)?[0];
        match (code, r.sig()?.as_str()) {
            (5, "u") => m.reply_to = Some(r.u32()?),
            (_, "u") => drop(r.u32()?),
            (8, "g") => m.sig = r.sig()?,
            (_, "g") => drop(r.sig()?),
            (3, "s") => m.member = r.str()?,
            (4, "s") => m.error = r.str()?,
            (_, "s" | "o") => drop(r.str()?),
            _ => return Err(malformed()),
        }
    }
    m.body = buf[body_at..body_at + body_len].to_vec();
    Ok(Some((m, body_at + body_len)))
}

/// One connection: the socket and what has been read but not used.
pub struct Conn {
    sock: UnixStream,
    buf: Vec<u8>,
    serial: u32,
    out: Vec<u8>,
    /// The server's OK has been read.
    authed: bool,
}

impl Conn {
    /// Connects and sends the EXTERNAL authentication as `uid` with
    /// BEGIN. The calls queued meanwhile leave once the server's OK is
    /// read: systemd's sd-bus leaves a message that came in the same read
    /// as BEGIN unprocessed until more data arrives.
    pub fn connect(path: &str, uid: u32) -> std::io::Result<Conn> {
        let mut sock = UnixStream::connect(path)?;
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        sock.write_all(format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").as_bytes())?;
        Ok(Conn {
            sock,
            buf: Vec::new(),
            serial: 0,
            out: Vec::new(),
            authed: false,
        })
    }

    /// Queues a method call; returns its serial.
    pub fn call(&mut self, to: To, member: &str, sig: &str, body: &Body) -> u32 {
        self.serial += 1;
        let m = method_call(self.serial, to, member, sig, body);
        self.out.extend_from_slice(&m);
        self.serial
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.sock.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// The next message, waiting until `deadline`: Ok(None) on timeout.
    pub fn next(&mut self, deadline: Instant) -> Result<Option<Message>, String> {
        while !self.authed {
            let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                if !self.fill(deadline)? {
                    return Ok(None);
                }
                continue;
            };
            let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            if !line.starts_with("OK ") {
                return Err(format!("authentication refused ({line})"));
            }
            self.buf.drain(..end + 2);
            self.authed = true;
        }
        self.flush().map_err(|e| e.to_string())?;
        loop {
            if let Some((m, n)) = parse(&self.buf)? {
                self.buf.drain(..n);
                return Ok(Some(m));
            }
            if !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Reads more; false once `deadline` has passed.
    fn fill(&mut self, deadline: Instant) -> Result<bool, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        self.sock
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 4096];
        loop {
            match self.sock.read(&mut chunk) {
                Ok(0) => return Err("the connection was closed".into()),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(false)
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marshals_as_the_specification_says() {
        let mut b = Body::default();
        b.str("x.scope").props(&[
            ("A".into(), Value::Bool(true)),
            ("B".into(), Value::U64(7)),
            (
                "C".into(),
                Value::from(vec![("p".to_string(), "rw".to_string())]),
            ),
        ]);
        let want: Vec<u8> = [
            &[7, 0, 0, 0][..],
            b"x.scope\0",
            &[79, 0, 0, 0], // the array's length; its start is 8-aligned
            &[1, 0, 0, 0],
            b"A\0",
            &[1],
            b"b\0",
            &[0, 0, 0],
            &[1, 0, 0, 0],
            &[1, 0, 0, 0],
            b"B\0",
            &[1],
            b"t\0",
            &[0; 7],
            &7u64.to_le_bytes(),
            &[1, 0, 0, 0],
            b"C\0",
            &[5],
            b"a(ss)\0",
            &[0, 0, 0],
            &[15, 0, 0, 0],
            &[0; 4],
            &[1, 0, 0, 0],
            b"p\0",
            &[0, 0],
            &[2, 0, 0, 0],
            b"rw\0",
        ]
        .concat();
        assert_eq!(b.0, want);
        // A whole call parses back: its header's fields and its body.
        let to = To {
            dest: "d.e",
            path: "/o",
            iface: "i.f",
        };
        let mut m = method_call(3, to, "M", "s", &b);
        m[1] = 2; // pretend it is a reply
        let (msg, n) = parse(&m).unwrap().unwrap();
        assert_eq!(n, m.len());
        assert_eq!((msg.member.as_str(), msg.sig.as_str()), ("M", "s"));
        assert_eq!(Reader::new(&msg).str().unwrap(), "x.scope");
        assert!(parse(&m[..m.len() - 1]).unwrap().is_none());
    }
}
