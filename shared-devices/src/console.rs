//! Console mediation: each partition's output is collected into whole lines
//! so that lines from different partitions never interleave mid-line on the
//! one physical UART, and each line can be tagged with its partition name.
//!
//! Finished lines wait in a bounded per-partition queue until the physical
//! console takes them, one partition at a time in turn. While a queue has
//! no room for another line its UART reports a full transmit FIFO, which a
//! well-behaved driver waits on, as on hardware; a partition that writes
//! anyway loses its own newest lines (they are counted), never anyone
//! else's, and nothing ever blocks in the hypervisor.
//!
//! Input goes to the partition that has focus; `Ctrl-]` followed by a
//! digit `1`-`9` focuses that partition (in config order), `n` the next
//! one, `r` asks for the crash records, and a second `Ctrl-]` sends a
//! literal `Ctrl-]`.

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

/// A finished line copied out of its [`LineBuffer`], for carrying in a
/// device model's effects past the point where the model is unlocked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedLine {
    pub text: heapless::Vec<u8, LINE_MAX>,
    pub cut: bool,
}

impl OwnedLine {
    /// A copy of `line`. A [`LineBuffer`] never emits more than
    /// [`LINE_MAX`] bytes; anything beyond that is dropped.
    pub fn new(line: Line) -> Self {
        let n = line.text.len().min(LINE_MAX);
        let mut text = heapless::Vec::new();
        // Cannot fail: `n` is at most the capacity.
        let _ = text.extend_from_slice(&line.text[..n]);
        Self {
            text,
            cut: line.cut,
        }
    }

    /// The line, as [`OutputQueue::push`] takes it.
    pub fn as_line(&self) -> Line<'_> {
        Line {
            text: &self.text,
            cut: self.cut,
        }
    }
}

impl LineBuffer {
    pub const fn new() -> Self {
        Self {
            bytes: heapless::Vec::new(),
        }
    }

    /// Adds one byte; calls `emit` when a line is complete (or full), at
    /// most once per byte. Carriage returns are dropped: the physical
    /// console adds its own.
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

/// Writes `text` for a terminal with nothing in it that the terminal
/// would act on: control characters (C0 but tab, DEL, and the C1 range
/// U+0080..U+009F, which include 8-bit CSI) are written as `\xNN` or
/// `\u{NN}`, as are bytes that are not UTF-8; everything else passes as
/// is. So a partition cannot move the cursor, erase its own tag or
/// overwrite another line, and cannot print a line that looks like another
/// source's: every line starts with its own tag and ends where the
/// hypervisor ends it.
pub fn escape_controls(text: &[u8], out: &mut dyn FnMut(&[u8])) {
    for chunk in text.utf8_chunks() {
        let valid = chunk.valid();
        let mut plain = 0;
        for (at, c) in valid.char_indices() {
            let control = (c.is_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c);
            if !control {
                continue;
            }
            out(&valid.as_bytes()[plain..at]);
            let mut escaped = heapless::String::<10>::new();
            let _ = if (c as u32) < 0x80 {
                core::fmt::write(&mut escaped, format_args!("\\x{:02x}", c as u32))
            } else {
                core::fmt::write(&mut escaped, format_args!("\\u{{{:x}}}", c as u32))
            };
            out(escaped.as_bytes());
            plain = at + c.len_utf8();
        }
        out(&valid.as_bytes()[plain..]);
        for &b in chunk.invalid() {
            let mut escaped = heapless::String::<4>::new();
            let _ = core::fmt::write(&mut escaped, format_args!("\\x{b:02x}"));
            out(escaped.as_bytes());
        }
    }
}

/// Bytes `text` takes once escaped by [`escape_controls`].
pub fn escaped_len(text: &[u8]) -> usize {
    let mut n = 0;
    escape_controls(text, &mut |piece| n += piece.len());
    n
}

/// Bytes of queued output per partition: about 20 full lines.
pub const QUEUE_BYTES: usize = 4096;

/// The most bytes any queue holds (the hypervisor's own log gets this
/// much: it must not lose lines in a burst, and must not wait for the
/// UART either).
pub const MAX_QUEUE_BYTES: usize = 16384;

/// A source's finished lines waiting for the physical console.
pub struct OutputQueue {
    bytes: heapless::Deque<u8, MAX_QUEUE_BYTES>,
    /// How many of `bytes` it may use.
    capacity: usize,
    dropped: u32,
}

impl Default for OutputQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputQueue {
    /// A partition's queue: [`QUEUE_BYTES`].
    pub const fn new() -> Self {
        Self::with_capacity(QUEUE_BYTES)
    }

    /// A queue of `capacity` bytes (at most [`MAX_QUEUE_BYTES`]).
    pub const fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: heapless::Deque::new(),
            capacity: if capacity < MAX_QUEUE_BYTES {
                capacity
            } else {
                MAX_QUEUE_BYTES
            },
            dropped: 0,
        }
    }

    /// Queues a line; if it does not fit whole it is dropped and counted.
    pub fn push(&mut self, line: Line) -> bool {
        let needed = line.text.len() + 1 + line.cut as usize;
        if self.capacity.saturating_sub(self.bytes.len()) < needed {
            self.dropped = self.dropped.saturating_add(1);
            return false;
        }
        for &b in line.text {
            let _ = self.bytes.push_back(b);
        }
        if line.cut {
            let _ = self.bytes.push_back(b'\\');
        }
        let _ = self.bytes.push_back(b'\n');
        true
    }

    /// Takes the oldest line (without its newline) into `out`.
    pub fn pop(&mut self, out: &mut heapless::Vec<u8, { LINE_MAX + 1 }>) -> bool {
        out.clear();
        while let Some(b) = self.bytes.pop_front() {
            if b == b'\n' {
                return true;
            }
            let _ = out.push(b);
        }
        !out.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes it can still take.
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.bytes.len())
    }

    /// Whether a whole line of any length still fits: what a UART shows
    /// as "transmit FIFO not full".
    pub fn has_room_for_a_line(&self) -> bool {
        self.capacity.saturating_sub(self.bytes.len()) >= LINE_MAX + 2
    }

    /// Lines dropped since the last call.
    pub fn take_dropped(&mut self) -> u32 {
        core::mem::take(&mut self.dropped)
    }
}

/// The focus escape: Ctrl-].
pub const ESCAPE: u8 = 0x1d;

/// What a byte typed on the physical console means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Deliver `byte` to partition `target`.
    Byte { target: usize, byte: u8 },
    /// Focus moved to partition `target`.
    Focus { target: usize },
    /// Show the crash records (`Ctrl-] r`).
    Records,
    /// Part of the escape sequence, or an unknown one: nothing to do.
    Nothing,
}

/// Routes physical console input to the focused partition.
pub struct InputRouter {
    partitions: usize,
    focus: usize,
    escaped: bool,
}

impl InputRouter {
    /// Focus starts on partition 0.
    pub const fn new(partitions: usize) -> Self {
        Self {
            partitions,
            focus: 0,
            escaped: false,
        }
    }

    pub fn focus(&self) -> usize {
        self.focus
    }

    pub fn feed(&mut self, byte: u8) -> Input {
        if self.partitions == 0 {
            return Input::Nothing;
        }
        if !self.escaped {
            if byte == ESCAPE {
                self.escaped = true;
                return Input::Nothing;
            }
            return Input::Byte {
                target: self.focus,
                byte,
            };
        }
        self.escaped = false;
        let target = match byte {
            ESCAPE => {
                return Input::Byte {
                    target: self.focus,
                    byte,
                };
            }
            b'r' => return Input::Records,
            b'n' | b'\t' => (self.focus + 1) % self.partitions,
            b'1'..=b'9' if ((byte - b'1') as usize) < self.partitions => (byte - b'1') as usize,
            _ => return Input::Nothing,
        };
        self.focus = target;
        Input::Focus { target }
    }
}

#[cfg(test)]
mod tests {

    fn escaped(text: &[u8]) -> String {
        let mut out = Vec::new();
        escape_controls(text, &mut |p| out.extend_from_slice(p));
        String::from_utf8(out).unwrap()
    }

    /// A partition cannot erase its tag or fake another source's line.
    #[test]
    fn control_characters_are_written_visibly() {
        assert_eq!(escaped(b"plain text, tab\there"), "plain text, tab\there");
        assert_eq!(
            escaped(b"\x1b[2K\r[hv] INFO  fake"),
            "\\x1b[2K\\x0d[hv] INFO  fake"
        );
        assert_eq!(
            escaped(b"abc\x08\x08\x08[cluster]"),
            "abc\\x08\\x08\\x08[cluster]"
        );
        assert_eq!(escaped(b"del\x7f"), "del\\x7f");
        // 8-bit CSI as a raw byte (not UTF-8) and as a UTF-8 C1 character.
        assert_eq!(escaped(b"\x9b2J"), "\\x9b2J");
        assert_eq!(escaped("\u{9b}2J".as_bytes()), "\\u{9b}2J");
        // Text in other scripts passes untouched.
        assert_eq!(
            escaped("Grüße, 速度 120 km/h €".as_bytes()),
            "Grüße, 速度 120 km/h €"
        );
        assert_eq!(escaped_len(b"\x1b"), 4);
    }
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

    fn line(text: &[u8]) -> Line<'_> {
        Line { text, cut: false }
    }

    #[test]
    fn queue_keeps_lines_whole_and_drops_what_does_not_fit() {
        let mut q = OutputQueue::new();
        let long = [b'x'; LINE_MAX];
        let fits = QUEUE_BYTES / (LINE_MAX + 1);
        for _ in 0..fits {
            assert!(q.push(line(&long)));
        }
        assert!(!q.push(line(&long)), "full: dropped");
        assert!(!q.push(line(&long)));
        assert_eq!(q.take_dropped(), 2);
        assert_eq!(q.take_dropped(), 0);
        let mut out = heapless::Vec::new();
        assert!(q.pop(&mut out));
        assert_eq!(out.len(), LINE_MAX);
        assert!(q.push(line(b"short")), "room again after a pop");
    }

    #[test]
    fn queue_is_fifo_and_marks_cut_lines() {
        let mut q = OutputQueue::new();
        q.push(line(b"one"));
        q.push(Line {
            text: b"two",
            cut: true,
        });
        let mut out = heapless::Vec::new();
        assert!(q.pop(&mut out));
        assert_eq!(&out[..], b"one");
        assert!(q.pop(&mut out));
        assert_eq!(&out[..], b"two\\");
        assert!(!q.pop(&mut out));
        assert!(q.is_empty());
    }

    #[test]
    fn input_follows_focus() {
        let mut r = InputRouter::new(2);
        assert_eq!(
            r.feed(b'a'),
            Input::Byte {
                target: 0,
                byte: b'a'
            }
        );
        assert_eq!(r.feed(ESCAPE), Input::Nothing);
        assert_eq!(r.feed(b'2'), Input::Focus { target: 1 });
        assert_eq!(
            r.feed(b'b'),
            Input::Byte {
                target: 1,
                byte: b'b'
            }
        );
        assert_eq!(r.feed(ESCAPE), Input::Nothing);
        assert_eq!(r.feed(b'r'), Input::Records, "records, focus kept");
        assert_eq!(r.focus(), 1);
        assert_eq!(r.feed(ESCAPE), Input::Nothing);
        assert_eq!(r.feed(b'n'), Input::Focus { target: 0 });
        assert_eq!(r.feed(ESCAPE), Input::Nothing);
        assert_eq!(
            r.feed(ESCAPE),
            Input::Byte {
                target: 0,
                byte: ESCAPE
            },
            "escape twice sends it"
        );
        assert_eq!(r.feed(ESCAPE), Input::Nothing);
        assert_eq!(
            r.feed(b'7'),
            Input::Nothing,
            "no partition 7: sequence ignored"
        );
        assert_eq!(r.focus(), 0);
        assert_eq!(
            r.feed(b'c'),
            Input::Byte {
                target: 0,
                byte: b'c'
            }
        );
    }
}
