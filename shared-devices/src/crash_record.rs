//! Crash records: what the hypervisor keeps about every partition fault,
//! watchdog expiry and restart, and their on-disk form.
//!
//! A [`Record`] holds when it happened (sequence number, hypervisor boot
//! number, time since power-on), whose it was (partition, vCPU, core,
//! restarts so far), what happened and what was done about it, the
//! exception registers, the guest's general registers where a vCPU was
//! caught in the act, and the last lines the partition wrote to its
//! console ([`Tail`]).
//!
//! On a disk a record takes one [`RECORD_BYTES`] slot of the records
//! area (a GPT partition the hypervisor keeps to itself): record `seq`
//! goes to slot `seq % slots`, so the area is a ring and the newest
//! records survive. Every field is little-endian at a fixed offset, the
//! slot ends in zeros, and a CRC-32 covers it, so a torn or stale slot is
//! told from a record. The same module formats a record for the
//! hypervisor's console and for `cargo xtask records`.

use crate::gpt::crc32;
use core::fmt;

/// Bytes of one record on disk (a slot of the records area).
pub const RECORD_BYTES: usize = 4096;
/// Bytes of console output a record keeps (the last whole lines).
pub const TAIL_BYTES: usize = 3072;
/// Longest partition name kept.
pub const NAME_BYTES: usize = 32;
/// Slot magic: "HVRECORD".
pub const MAGIC: [u8; 8] = *b"HVRECORD";
/// Format version.
pub const VERSION: u16 = 1;

/// Where each field lives in a slot.
mod at {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const CRC: usize = 12;
    /// The CRC covers the slot from here to its end.
    pub const COVERED: usize = 16;
    pub const SEQ: usize = 16;
    pub const BOOT: usize = 24;
    pub const RESTARTS: usize = 28;
    pub const TIME_US: usize = 32;
    pub const CAUSE: usize = 40;
    pub const ACTION: usize = 41;
    pub const VCPU: usize = 42;
    pub const CPU: usize = 43;
    pub const HAS_REGS: usize = 44;
    pub const NAME_LEN: usize = 45;
    pub const TAIL_LEN: usize = 46;
    pub const NAME: usize = 48;
    pub const ESR: usize = 80;
    pub const FAR: usize = 88;
    pub const IPA: usize = 96;
    pub const PC: usize = 104;
    pub const PSTATE: usize = 112;
    pub const SP: usize = 120;
    pub const X: usize = 128;
    pub const TAIL: usize = X + 31 * 8;
}
const _: () = assert!(at::TAIL + TAIL_BYTES <= RECORD_BYTES);
const _: () = assert!(at::NAME + NAME_BYTES <= at::ESR);

/// What happened to the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Cause {
    /// A data access outside its memory and devices (stage-2 data abort).
    DataAbort = 1,
    /// An instruction fetch outside its memory (stage-2 instruction abort).
    InstructionAbort = 2,
    /// A trapped instruction or register the hypervisor does not emulate.
    Undefined = 3,
    /// An SError taken to the hypervisor.
    SError = 4,
    /// Its watchdog expired twice unserviced.
    Watchdog = 5,
    /// It asked for its own restart (PSCI SYSTEM_RESET).
    Reset = 6,
    /// It turned itself off (PSCI SYSTEM_OFF).
    Off = 7,
}

impl Cause {
    fn from_u8(v: u8) -> Option<Cause> {
        Some(match v {
            1 => Cause::DataAbort,
            2 => Cause::InstructionAbort,
            3 => Cause::Undefined,
            4 => Cause::SError,
            5 => Cause::Watchdog,
            6 => Cause::Reset,
            7 => Cause::Off,
            _ => return None,
        })
    }

    /// A fault (as opposed to a watchdog expiry or the partition's own
    /// request).
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            Cause::DataAbort | Cause::InstructionAbort | Cause::Undefined | Cause::SError
        )
    }
}

/// What the hypervisor did about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Action {
    /// Restarted the partition.
    Restart = 1,
    /// Stopped it for good.
    Stop = 2,
    /// Gave the guest an abort to handle (`on_fault = "inject"`).
    Inject = 3,
}

impl Action {
    fn from_u8(v: u8) -> Option<Action> {
        Some(match v {
            1 => Action::Restart,
            2 => Action::Stop,
            3 => Action::Inject,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Restart => "restart",
            Action::Stop => "stop",
            Action::Inject => "inject abort",
        }
    }
}

/// The registers of the vCPU that was caught in the act.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    /// x0..x30.
    pub x: [u64; 31],
    /// Its stack pointer at the time (SP_EL1 or SP_EL0, per PSTATE).
    pub sp: u64,
}

/// One crash record. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Sequence number, counting up across boots (0: unused).
    pub seq: u64,
    /// The hypervisor's boot it happened in (counted on the records area;
    /// 0 where there is none).
    pub boot: u32,
    /// Microseconds since power-on (the system counter).
    pub time_us: u64,
    /// The partition's name (cut to [`NAME_BYTES`]; printable ASCII, as
    /// the config's names are).
    pub partition: heapless::String<NAME_BYTES>,
    /// The partition's restarts before this event.
    pub restarts: u32,
    pub cause: Cause,
    pub action: Action,
    /// The vCPU and the physical core it ran on.
    pub vcpu: u8,
    pub cpu: u8,
    /// ESR_EL2, FAR_EL2 and the faulting IPA (faults; 0 otherwise).
    pub esr: u64,
    pub far: u64,
    pub ipa: u64,
    /// The guest's PC and PSTATE when it was stopped (0 without registers).
    pub pc: u64,
    pub pstate: u64,
    /// Its general registers, where a vCPU was caught in the act (not for
    /// a watchdog that expired while the core was idle).
    pub regs: Option<Registers>,
    /// The last whole lines of its console output, oldest first, each
    /// ended by a newline.
    pub tail: heapless::Vec<u8, TAIL_BYTES>,
}

impl Default for Record {
    fn default() -> Self {
        Self {
            seq: 0,
            boot: 0,
            time_us: 0,
            partition: heapless::String::new(),
            restarts: 0,
            cause: Cause::Reset,
            action: Action::Restart,
            vcpu: 0,
            cpu: 0,
            esr: 0,
            far: 0,
            ipa: 0,
            pc: 0,
            pstate: 0,
            regs: None,
            tail: heapless::Vec::new(),
        }
    }
}

/// Why a slot holds no record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not [`RECORD_BYTES`] long.
    Size,
    /// Never written (no magic): not an error on its own.
    Empty,
    /// A format this reader does not know.
    Version(u16),
    /// The CRC does not match: torn or overwritten mid-way.
    Crc,
    /// A field out of its range.
    Field(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            DecodeError::Size => write!(f, "a record slot is {RECORD_BYTES} bytes"),
            DecodeError::Empty => write!(f, "empty slot"),
            DecodeError::Version(v) => write!(f, "record format {v}, this reader knows {VERSION}"),
            DecodeError::Crc => write!(f, "CRC mismatch (torn or partly overwritten)"),
            DecodeError::Field(name) => write!(f, "field {name} out of range"),
        }
    }
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    out[at..at + bytes.len()].copy_from_slice(bytes);
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl Record {
    /// Writes the record into a slot (all of it: what it does not use is
    /// zeroed).
    pub fn encode(&self, out: &mut [u8; RECORD_BYTES]) {
        out.fill(0);
        put(out, at::MAGIC, &MAGIC);
        put(out, at::VERSION, &VERSION.to_le_bytes());
        put(out, at::SEQ, &self.seq.to_le_bytes());
        put(out, at::BOOT, &self.boot.to_le_bytes());
        put(out, at::RESTARTS, &self.restarts.to_le_bytes());
        put(out, at::TIME_US, &self.time_us.to_le_bytes());
        out[at::CAUSE] = self.cause as u8;
        out[at::ACTION] = self.action as u8;
        out[at::VCPU] = self.vcpu;
        out[at::CPU] = self.cpu;
        out[at::HAS_REGS] = self.regs.is_some() as u8;
        out[at::NAME_LEN] = self.partition.len() as u8;
        put(out, at::TAIL_LEN, &(self.tail.len() as u16).to_le_bytes());
        put(out, at::NAME, self.partition.as_bytes());
        for (offset, v) in [
            (at::ESR, self.esr),
            (at::FAR, self.far),
            (at::IPA, self.ipa),
            (at::PC, self.pc),
            (at::PSTATE, self.pstate),
        ] {
            put(out, offset, &v.to_le_bytes());
        }
        if let Some(r) = &self.regs {
            put(out, at::SP, &r.sp.to_le_bytes());
            for (i, v) in r.x.iter().enumerate() {
                put(out, at::X + 8 * i, &v.to_le_bytes());
            }
        }
        put(out, at::TAIL, &self.tail);
        let crc = crc32(&out[at::COVERED..]);
        put(out, at::CRC, &crc.to_le_bytes());
    }

    /// Reads a slot. Whatever the bytes, this returns (a disk is untrusted
    /// input).
    pub fn decode(slot: &[u8]) -> Result<Record, DecodeError> {
        if slot.len() != RECORD_BYTES {
            return Err(DecodeError::Size);
        }
        if slot[at::MAGIC..at::MAGIC + 8] != MAGIC {
            return Err(DecodeError::Empty);
        }
        let version = u16_at(slot, at::VERSION);
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        if u32_at(slot, at::CRC) != crc32(&slot[at::COVERED..]) {
            return Err(DecodeError::Crc);
        }
        let cause = Cause::from_u8(slot[at::CAUSE]).ok_or(DecodeError::Field("cause"))?;
        let action = Action::from_u8(slot[at::ACTION]).ok_or(DecodeError::Field("action"))?;
        let name_len = usize::from(slot[at::NAME_LEN]);
        let name = slot[at::NAME..]
            .get(..name_len)
            .filter(|b| name_len <= NAME_BYTES && b.iter().all(u8::is_ascii_graphic))
            .and_then(|b| core::str::from_utf8(b).ok())
            .ok_or(DecodeError::Field("partition"))?;
        let mut partition = heapless::String::new();
        partition
            .push_str(name)
            .map_err(|_| DecodeError::Field("partition"))?;
        let tail_len = usize::from(u16_at(slot, at::TAIL_LEN));
        if tail_len > TAIL_BYTES {
            return Err(DecodeError::Field("tail"));
        }
        let mut tail = heapless::Vec::new();
        let _ = tail.extend_from_slice(&slot[at::TAIL..at::TAIL + tail_len]);
        let regs = match slot[at::HAS_REGS] {
            0 => None,
            1 => {
                let mut r = Registers {
                    sp: u64_at(slot, at::SP),
                    ..Registers::default()
                };
                for (i, x) in r.x.iter_mut().enumerate() {
                    *x = u64_at(slot, at::X + 8 * i);
                }
                Some(r)
            }
            _ => return Err(DecodeError::Field("registers")),
        };
        Ok(Record {
            seq: u64_at(slot, at::SEQ),
            boot: u32_at(slot, at::BOOT),
            time_us: u64_at(slot, at::TIME_US),
            partition,
            restarts: u32_at(slot, at::RESTARTS),
            cause,
            action,
            vcpu: slot[at::VCPU],
            cpu: slot[at::CPU],
            esr: u64_at(slot, at::ESR),
            far: u64_at(slot, at::FAR),
            ipa: u64_at(slot, at::IPA),
            pc: u64_at(slot, at::PC),
            pstate: u64_at(slot, at::PSTATE),
            regs,
            tail,
        })
    }

    /// What happened and what was done, as the console's one-line summary
    /// says it (without the record number; see [`Record::summary`]).
    pub fn what(&self) -> What<'_> {
        What(self)
    }

    /// The console's one line for the record: `<what> (record #<seq>)`.
    pub fn summary(&self) -> Summary<'_> {
        Summary(self)
    }

    /// The whole record, a line at a time (for the console's dump and
    /// `cargo xtask records`): a header, the exception registers, the
    /// general registers four to a line, then the console lines, each
    /// indented. `line` gets each line without its newline.
    pub fn write_lines(&self, line: &mut dyn FnMut(fmt::Arguments)) {
        let secs = self.time_us / 1_000_000;
        let micros = self.time_us % 1_000_000;
        line(format_args!(
            "record #{} (boot {}, {secs}.{micros:06} s after power-on): partition {}, \
             vcpu {} on cpu {}, after {} restart(s)",
            self.seq, self.boot, self.partition, self.vcpu, self.cpu, self.restarts
        ));
        line(format_args!("  {}", self.what()));
        line(format_args!(
            "  ESR {:#018x}  FAR {:#018x}  IPA {:#018x}",
            self.esr, self.far, self.ipa
        ));
        match &self.regs {
            Some(r) => {
                line(format_args!(
                    "  PC  {:#018x}  PSTATE {:#010x}  SP {:#018x}",
                    self.pc, self.pstate, r.sp
                ));
                for row in r.x.chunks(4).enumerate() {
                    line(format_args!("  {}", Row(row.0 * 4, row.1)));
                }
            }
            None => line(format_args!(
                "  no registers: no vCPU of the partition was running"
            )),
        }
        if self.tail.is_empty() {
            line(format_args!("  console: nothing written"));
            return;
        }
        line(format_args!("  console, last lines:"));
        for text in self.tail.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            line(format_args!("  | {}", Printable(text)));
        }
    }
}

/// A row of general registers in the dump (`x12 0x… x13 0x…`), from
/// register `first`.
struct Row<'a>(usize, &'a [u64]);

impl fmt::Display for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, v) in self.1.iter().enumerate() {
            let gap = if i == 0 { "" } else { " " };
            write!(f, "{gap}x{:<2} {v:#018x}", self.0 + i)?;
        }
        Ok(())
    }
}

/// Console text as it may be printed: control characters and invalid
/// UTF-8 shown as `\xNN` (a partition's output cannot rewrite the
/// reader's terminal).
struct Printable<'a>(&'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_control() && c != '\t' {
                    write!(f, "\\x{:02x}", c as u32)?;
                } else {
                    write!(f, "{c}")?;
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// See [`Record::what`].
pub struct What<'a>(&'a Record);

impl fmt::Display for What<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let r = self.0;
        let action = r.action.as_str();
        match r.cause {
            Cause::DataAbort => {
                let write = r.esr & (1 << 6) != 0;
                write!(
                    f,
                    "stage-2 fault: {} at IPA {:#x} (pc {:#x}) -> {action}",
                    if write { "write" } else { "read" },
                    r.ipa,
                    r.pc
                )
            }
            Cause::InstructionAbort => write!(
                f,
                "stage-2 fault: instruction fetch at IPA {:#x} (pc {:#x}) -> {action}",
                r.ipa, r.pc
            ),
            Cause::Undefined => write!(
                f,
                "undefined trap: EC {:#x} (ESR {:#x}) (pc {:#x}) -> {action}",
                (r.esr >> 26) & 0x3f,
                r.esr,
                r.pc
            ),
            Cause::SError => write!(f, "SError (ESR {:#x}) (pc {:#x}) -> {action}", r.esr, r.pc),
            Cause::Watchdog => write!(f, "watchdog expired -> {action}"),
            Cause::Reset => write!(f, "PSCI SYSTEM_RESET"),
            Cause::Off => write!(f, "PSCI SYSTEM_OFF"),
        }
    }
}

/// See [`Record::summary`].
pub struct Summary<'a>(&'a Record);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} (record #{})", self.0.what(), self.0.seq)
    }
}

/// The last whole lines a partition wrote to its console, at most
/// [`TAIL_BYTES`]: the oldest lines make room for new ones.
pub struct Tail {
    bytes: heapless::Deque<u8, TAIL_BYTES>,
}

impl Default for Tail {
    fn default() -> Self {
        Self::new()
    }
}

impl Tail {
    pub const fn new() -> Self {
        Self {
            bytes: heapless::Deque::new(),
        }
    }

    /// Adds one finished line (without its newline).
    pub fn push(&mut self, line: &[u8]) {
        // A line longer than the whole tail keeps its end.
        let line = &line[line.len().saturating_sub(TAIL_BYTES - 1)..];
        while TAIL_BYTES - self.bytes.len() < line.len() + 1 {
            // Drop the oldest line, whole.
            while let Some(b) = self.bytes.pop_front() {
                if b == b'\n' {
                    break;
                }
            }
        }
        for &b in line {
            let _ = self.bytes.push_back(b);
        }
        let _ = self.bytes.push_back(b'\n');
    }

    /// Copies the lines into `out` (replacing what it held).
    pub fn copy_to(&self, out: &mut heapless::Vec<u8, TAIL_BYTES>) {
        out.clear();
        let (a, b) = self.bytes.as_slices();
        let _ = out.extend_from_slice(a);
        let _ = out.extend_from_slice(b);
    }

    /// Forgets every line (a new life of the partition starts with an
    /// empty console).
    pub fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// What a records area says about the boots before this one: the next
/// record's sequence number and this boot's number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AreaState {
    /// One past the highest sequence number found (1 on a fresh area).
    pub next_seq: u64,
    /// One past the highest boot number found (1 on a fresh area).
    pub boot: u32,
    /// Slots holding a valid record.
    pub records: usize,
    /// Slots with a magic but a bad CRC or field (torn writes).
    pub damaged: usize,
}

impl AreaState {
    /// A fresh area's state.
    pub const FRESH: AreaState = AreaState {
        next_seq: 1,
        boot: 1,
        records: 0,
        damaged: 0,
    };

    /// Takes one slot into account (slots may come in any order).
    pub fn scan(&mut self, slot: &[u8]) {
        match Record::decode(slot) {
            Ok(r) => {
                self.records += 1;
                self.next_seq = self.next_seq.max(r.seq.saturating_add(1));
                self.boot = self.boot.max(r.boot.saturating_add(1));
            }
            Err(DecodeError::Empty) => {}
            Err(_) => self.damaged += 1,
        }
    }
}

/// The slot (from 0) record `seq` goes to in an area of `slots` slots.
pub fn slot_of(seq: u64, slots: u64) -> u64 {
    seq % slots.max(1)
}

/// The slots of a records area (`area`: its bytes) that are not empty,
/// in slot order: each a record or why it is not one. Sort by
/// [`Record::seq`] for oldest first.
pub fn slots_in(area: &[u8]) -> impl Iterator<Item = Result<Record, DecodeError>> + '_ {
    area.chunks_exact(RECORD_BYTES)
        .map(Record::decode)
        .filter(|r| *r != Err(DecodeError::Empty))
}

#[cfg(test)]
mod tests;
