//! `ivi-tool touch`: reads a multi-touch device through evdev
//! (`/dev/input/event*`, plain reads of `struct input_event`, no ioctl)
//! and prints each contact change, frame by frame, as protocol B gives
//! them: which slot, which tracking id, where.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// `struct input_event` on a 64-bit kernel: a `timeval` (two 64-bit
/// words), then type, code and value.
pub const EVENT_BYTES: usize = 24;

const EV_SYN: u16 = 0;
const EV_ABS: u16 = 3;
const SYN_REPORT: u16 = 0;
const ABS_MT_SLOT: u16 = 0x2f;
const ABS_MT_POSITION_X: u16 = 0x35;
const ABS_MT_POSITION_Y: u16 = 0x36;
const ABS_MT_TRACKING_ID: u16 = 0x39;
/// Slots followed.
const SLOTS: usize = 16;

/// One evdev event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: u16,
    pub code: u16,
    pub value: i32,
}

impl Event {
    /// Parses one `struct input_event` (native byte order).
    pub fn parse(bytes: &[u8; EVENT_BYTES]) -> Event {
        let u16_at = |i: usize| u16::from_ne_bytes([bytes[i], bytes[i + 1]]);
        Event {
            kind: u16_at(16),
            code: u16_at(18),
            value: i32::from_ne_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    id: Option<i32>,
    x: i32,
    y: i32,
    began: bool,
    moved: bool,
    ended: bool,
}

/// Follows protocol B and renders each frame's changes as lines.
#[derive(Debug)]
pub struct Contacts {
    slot: usize,
    slots: [Slot; SLOTS],
    /// Contacts that lifted so far.
    pub lifted: u64,
}

impl Default for Contacts {
    fn default() -> Self {
        Self {
            slot: 0,
            slots: [Slot::default(); SLOTS],
            lifted: 0,
        }
    }
}

impl Contacts {
    /// Takes one event; at SYN_REPORT returns the frame's lines.
    pub fn event(&mut self, e: Event) -> Vec<String> {
        match (e.kind, e.code) {
            (EV_ABS, ABS_MT_SLOT) => self.slot = e.value.max(0) as usize,
            (EV_ABS, ABS_MT_TRACKING_ID) => {
                if let Some(s) = self.slots.get_mut(self.slot) {
                    if e.value >= 0 {
                        s.id = Some(e.value);
                        s.began = true;
                    } else if s.id.is_some() {
                        s.ended = true;
                    }
                }
            }
            (EV_ABS, ABS_MT_POSITION_X) => {
                if let Some(s) = self.slots.get_mut(self.slot) {
                    s.x = e.value;
                    s.moved = true;
                }
            }
            (EV_ABS, ABS_MT_POSITION_Y) => {
                if let Some(s) = self.slots.get_mut(self.slot) {
                    s.y = e.value;
                    s.moved = true;
                }
            }
            (EV_SYN, SYN_REPORT) => return self.report(),
            _ => {}
        }
        Vec::new()
    }

    fn report(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            let id = s.id.unwrap_or(-1);
            if s.began {
                lines.push(format!("slot {i} down id {id} at {},{}", s.x, s.y));
            } else if s.moved && !s.ended && s.id.is_some() {
                lines.push(format!("slot {i} id {id} at {},{}", s.x, s.y));
            }
            if s.ended {
                lines.push(format!("slot {i} up id {id}"));
                s.id = None;
                self.lifted += 1;
            }
            s.began = false;
            s.moved = false;
            s.ended = false;
        }
        lines
    }
}

/// The first `/dev/input/event*` whose device is named `name` (from
/// `/sys/class/input/event*/device/name`), with its name.
pub fn find(name: &str) -> Option<(PathBuf, String)> {
    let mut found: Vec<(PathBuf, String)> = std::fs::read_dir("/sys/class/input")
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("event"))
        .filter_map(|e| {
            let device_name = std::fs::read_to_string(e.path().join("device/name")).ok()?;
            let device_name = device_name.trim().to_string();
            device_name
                .contains(name)
                .then(|| (Path::new("/dev/input").join(e.file_name()), device_name))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Prints the contacts of `device` (or of the first device named like
/// `name`) until `lifts` contacts have lifted (or for ever).
pub fn run(device: Option<&Path>, name: &str, lifts: Option<u64>) -> io::Result<()> {
    let (path, label) = match device {
        Some(p) => (p.to_path_buf(), String::from("?")),
        None => {
            // The device node may come a little after modprobe.
            let mut tries = 0;
            loop {
                if let Some(found) = find(name) {
                    break found;
                }
                tries += 1;
                if tries > 100 {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("no input device named like \"{name}\""),
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    };
    let mut file = File::open(&path)?;
    println!("ivi-tool: touch: {} \"{label}\"", path.display());
    let mut contacts = Contacts::default();
    let mut buf = [0u8; EVENT_BYTES];
    loop {
        file.read_exact(&mut buf)?;
        for line in contacts.event(Event::parse(&buf)) {
            println!("ivi-tool: touch: {line}");
        }
        if lifts.is_some_and(|n| contacts.lifted >= n) {
            println!("ivi-tool: touch: done after {} contacts", contacts.lifted);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(kind: u16, code: u16, value: i32) -> [u8; EVENT_BYTES] {
        let mut b = [0u8; EVENT_BYTES];
        b[16..18].copy_from_slice(&kind.to_ne_bytes());
        b[18..20].copy_from_slice(&code.to_ne_bytes());
        b[20..24].copy_from_slice(&value.to_ne_bytes());
        b
    }

    #[test]
    fn protocol_b_frames_become_lines() {
        let mut c = Contacts::default();
        let mut lines = Vec::new();
        for (k, code, v) in [
            (EV_ABS, ABS_MT_SLOT, 1),
            (EV_ABS, ABS_MT_TRACKING_ID, 7),
            (EV_ABS, ABS_MT_POSITION_X, 100),
            (EV_ABS, ABS_MT_POSITION_Y, 200),
            (EV_SYN, SYN_REPORT, 0),
            (EV_ABS, ABS_MT_POSITION_Y, 250),
            (EV_SYN, SYN_REPORT, 0),
            (EV_ABS, ABS_MT_TRACKING_ID, -1),
            (EV_SYN, SYN_REPORT, 0),
            // A lift of a slot that was never down: nothing.
            (EV_ABS, ABS_MT_SLOT, 3),
            (EV_ABS, ABS_MT_TRACKING_ID, -1),
            (EV_SYN, SYN_REPORT, 0),
        ] {
            lines.extend(c.event(Event::parse(&raw(k, code, v))));
        }
        assert_eq!(
            lines,
            [
                "slot 1 down id 7 at 100,200",
                "slot 1 id 7 at 100,250",
                "slot 1 up id 7"
            ]
        );
        assert_eq!(c.lifted, 1);
    }
}
