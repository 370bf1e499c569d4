//! Following a chunked request body (RFC 9112 §7.1) as it streams through the front door, to
//! refuse framing pingora's decoder lets pass: an over-long chunk extension, a bare CR in the
//! framing, or an oversized trailer section. The body itself is not decoded here.

/// Longest chunk extension accepted on one chunk-size line (RFC 9112 §7.1.1 sets no limit;
/// without one a client can make the proxy read unbounded bytes that carry nothing).
pub const MAX_CHUNK_EXT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ck {
    Size,
    Ext,
    SizeCr,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerCr,
    EndCr,
    Done,
}

/// The framing state of one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkScanner {
    st: Ck,
    digits: usize,
    size: u64,
    ext: usize,
    trailer: usize,
    max_trailer: usize,
}

impl ChunkScanner {
    pub fn new(max_trailer: usize) -> ChunkScanner {
        ChunkScanner {
            st: Ck::Size,
            digits: 0,
            size: 0,
            ext: 0,
            trailer: 0,
            max_trailer,
        }
    }

    pub fn done(&self) -> bool {
        self.st == Ck::Done
    }

    /// Feed body bytes; returns how many of them belong to the body (all of them unless the
    /// body ends within them), or what is wrong. Bytes after the end of the body (a pipelined
    /// request) are not looked at.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, &'static str> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.st {
                Ck::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        self.digits += 1;
                        if self.digits > 16 {
                            return Err("chunk size too large");
                        }
                        let d = (b as char).to_digit(16).unwrap_or(0);
                        self.size = (self.size << 4) | u64::from(d);
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => {
                        self.st = Ck::Ext;
                        self.ext = 1;
                    }
                    b'\r' if self.digits > 0 => self.st = Ck::SizeCr,
                    b'\n' if self.digits > 0 => self.st = self.after_size(),
                    _ => return Err("malformed chunk size"),
                },
                Ck::Ext => {
                    let run = bytes[i..]
                        .iter()
                        .position(|c| *c == b'\r' || *c == b'\n')
                        .unwrap_or(bytes.len() - i);
                    self.ext += run;
                    if self.ext > MAX_CHUNK_EXT {
                        return Err("chunk extension too long");
                    }
                    i += run;
                    match bytes.get(i) {
                        Some(b'\r') => self.st = Ck::SizeCr,
                        Some(_) => self.st = self.after_size(),
                        None => break,
                    }
                }
                Ck::SizeCr => {
                    if b != b'\n' {
                        return Err("bare CR in a chunk-size line");
                    }
                    self.st = self.after_size();
                }
                Ck::Data => {
                    let take = usize::try_from(self.size)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len() - i);
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.st = Ck::DataCr;
                    }
                    continue;
                }
                Ck::DataCr => match b {
                    b'\r' => self.st = Ck::DataLf,
                    b'\n' => self.next_chunk(),
                    _ => return Err("chunk data longer than its size"),
                },
                Ck::DataLf => {
                    if b != b'\n' {
                        return Err("bare CR after chunk data");
                    }
                    self.next_chunk();
                }
                Ck::TrailerStart => match b {
                    b'\r' => self.st = Ck::EndCr,
                    b'\n' => self.st = Ck::Done,
                    _ => {
                        self.st = Ck::Trailer;
                        continue;
                    }
                },
                Ck::Trailer => {
                    self.trailer += 1;
                    if self.trailer > self.max_trailer {
                        return Err("trailer section too large");
                    }
                    match b {
                        b'\n' => self.st = Ck::TrailerStart,
                        b'\r' => self.st = Ck::TrailerCr,
                        _ => {}
                    }
                }
                Ck::TrailerCr => {
                    if b != b'\n' {
                        return Err("bare CR in a trailer");
                    }
                    self.st = Ck::TrailerStart;
                }
                Ck::EndCr => {
                    if b != b'\n' {
                        return Err("bare CR at the end of a chunked body");
                    }
                    self.st = Ck::Done;
                }
                Ck::Done => return Ok(i),
            }
            i += 1;
            if self.st == Ck::Done {
                return Ok(i);
            }
        }
        Ok(bytes.len())
    }

    fn after_size(&self) -> Ck {
        if self.size == 0 {
            Ck::TrailerStart
        } else {
            Ck::Data
        }
    }

    fn next_chunk(&mut self) {
        self.st = Ck::Size;
        self.digits = 0;
        self.size = 0;
        self.ext = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &[u8]) -> Result<bool, &'static str> {
        let mut c = ChunkScanner::new(1024);
        // Byte by byte, to exercise every split.
        for b in body {
            c.feed(std::slice::from_ref(b))?;
        }
        let mut whole = ChunkScanner::new(1024);
        let used = whole.feed(body)?;
        assert_eq!(whole.done(), c.done());
        assert!(
            !whole.done() || used == body.len(),
            "{used} of {}",
            body.len()
        );
        Ok(c.done())
    }

    #[test]
    fn says_where_the_body_ends() {
        let mut c = ChunkScanner::new(1024);
        let bytes = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        assert_eq!(c.feed(bytes), Ok(13));
        assert!(c.done());
        let mut c = ChunkScanner::new(1024);
        assert_eq!(c.feed(b"3\r\nab"), Ok(5));
        assert_eq!(c.feed(b"c\r\n0\r\n\r\nX"), Ok(8));
    }

    #[test]
    fn follows_valid_chunked_bodies() {
        assert_eq!(check(b"5\r\nhello\r\n0\r\n\r\n"), Ok(true));
        assert_eq!(
            check(b"5;name=val\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
            Ok(true)
        );
        assert_eq!(check(b"A\nabcdefghij\n0\n\n"), Ok(true));
        assert_eq!(check(b"5\r\nhel"), Ok(false));
    }

    #[test]
    fn refuses_bad_framing_and_long_extensions() {
        assert!(check(b"zz\r\nabc\r\n0\r\n\r\n").is_err());
        assert!(check(b"ffffffffffffffffff\r\nabc\r\n").is_err());
        let long = [
            b"1;x=".as_slice(),
            &vec![b'a'; MAX_CHUNK_EXT],
            b"\r\na\r\n0\r\n\r\n",
        ]
        .concat();
        assert_eq!(check(&long), Err("chunk extension too long"));
        assert!(check(b"3\r\nabcd\r\n0\r\n\r\n").is_err());
        assert!(check(b"3\rabc\r\n").is_err());
        assert!(check(b"\r\n").is_err());
    }
}
