//! Console mediation: each partition's output is collected into whole lines
//! so that lines from different partitions never interleave mid-line on the
//! one physical UART, and each line can be tagged with its partition name.

/// Longest line kept whole; a longer one is emitted in pieces, each marked
/// as continued, so a partition that never sends a newline cannot hold the
/// console or grow memory.
pub const LINE_MAX: usize = 200;

pub struct LineBuffer {
    bytes: heapless::Vec<u8, LINE_MAX>,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

/// A finished piece of output: the line's bytes (without newline) and
/// whether the line was cut because it was too long.
pub struct Line<'a> {
    pub text: &'a [u8],
    pub cut: bool,
}

impl LineBuffer {
    pub const fn new() -> Self {
        Self {
            bytes: heapless::Vec::new(),
        }
    }

    /// Adds one byte; calls `emit` when a line is complete (or full).
    /// Carriage returns are dropped: the physical console adds its own.
    pub fn push(&mut self, byte: u8, emit: &mut dyn FnMut(Line)) {
        match byte {
            b'\n' => {
                emit(Line {
                    text: &self.bytes,
                    cut: false,
                });
                self.bytes.clear();
            }
            b'\r' => {}
            _ => {
                if self.bytes.is_full() {
                    emit(Line {
                        text: &self.bytes,
                        cut: true,
                    });
                    self.bytes.clear();
                }
                // Cannot fail: the buffer was just emptied if it was full.
                let _ = self.bytes.push(byte);
            }
        }
    }

    /// Discards a partial line, e.g. when its partition restarts.
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(buf: &mut LineBuffer, input: &[u8]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for &b in input {
            buf.push(b, &mut |l| {
                out.push((String::from_utf8_lossy(l.text).into_owned(), l.cut))
            });
        }
        out
    }

    #[test]
    fn emits_whole_lines_only() {
        let mut b = LineBuffer::new();
        assert!(feed(&mut b, b"hel").is_empty());
        assert_eq!(
            feed(&mut b, b"lo\r\nworld\n"),
            [("hello".into(), false), ("world".into(), false)]
        );
        assert!(b.is_empty());
    }

    #[test]
    fn long_lines_are_cut_not_grown() {
        let mut b = LineBuffer::new();
        let long = vec![b'x'; LINE_MAX * 2 + 5];
        let out = feed(&mut b, &long);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|(l, cut)| l.len() == LINE_MAX && *cut));
        let out = feed(&mut b, b"\n");
        assert_eq!(out, [("xxxxx".into(), false)]);
    }
}
