//! Configuration space of the input device (VIRTIO 1.2 §5.8.4): what the
//! driver learns about the device by writing `select` and `subsel` and
//! reading `size` and the union `u`.
//!
//! Only `select` (byte 0) and `subsel` (byte 1) are writable; writes to
//! any other byte are ignored (§5.8.5.1: the driver must not make them).
//! Reads show the current selection: `size` is the number of valid bytes
//! of `u`, 0 when the device has nothing for that `select`/`subsel`
//! (§5.8.5.2), and every byte of `u` beyond `size` reads 0, as do the
//! reserved bytes and everything past the structure's 136 bytes.

use super::protocol::{
    ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_SLOT, ABS_MT_TRACKING_ID, ABS_X, ABS_Y, BTN_TOUCH,
    EV_ABS, EV_KEY, EV_MSC, INPUT_PROP_DIRECT, MSC_TIMESTAMP, config, select,
};

/// Bytes of the serial number at most.
pub const SERIAL_BYTES: usize = 32;

/// Who the device says it is (`ID_NAME`, `ID_SERIAL`, `ID_DEVIDS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Shown as the input device's name in the guest. The union holds
    /// 128 bytes, longer names are cut there; Linux keeps fewer (its
    /// buffer is 64 bytes), so keep it short.
    pub name: &'static str,
    /// Empty: `ID_SERIAL` shows size 0.
    pub serial: heapless::String<SERIAL_BYTES>,
    /// `BUS_*`, e.g. [`super::protocol::BUS_VIRTUAL`].
    pub bustype: u16,
    pub vendor: u16,
    pub product: u16,
    pub version: u16,
}

/// One absolute axis as `ABS_INFO` reports it
/// (`struct virtio_input_absinfo`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AbsInfo {
    pub min: i32,
    pub max: i32,
    pub fuzz: i32,
    pub flat: i32,
    /// Units per millimetre; 0: unknown.
    pub res: i32,
}

impl AbsInfo {
    /// `min..=max`, no fuzz, flat zone or resolution.
    pub const fn range(min: i32, max: i32) -> Self {
        Self {
            min,
            max,
            fuzz: 0,
            flat: 0,
            res: 0,
        }
    }

    fn to_bytes(self) -> [u8; config::ABSINFO_BYTES] {
        let mut b = [0u8; config::ABSINFO_BYTES];
        for (i, v) in [self.min, self.max, self.fuzz, self.flat, self.res]
            .into_iter()
            .enumerate()
        {
            b[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}

/// Axes of a touchscreen.
const AXES: usize = 6;

/// What the device can report: its properties, keys, miscellaneous
/// events and axes.
#[derive(Clone, Debug)]
struct Capabilities {
    props: &'static [u16],
    keys: &'static [u16],
    misc: &'static [u16],
    axes: [(u16, AbsInfo); AXES],
}

/// The configuration space: the device's description and the driver's
/// current selection.
#[derive(Clone, Debug)]
pub(super) struct ConfigSpace {
    identity: Identity,
    caps: Capabilities,
    select: u8,
    subsel: u8,
}

/// The largest value an axis of `n` positions (`0..n`) reports, at least
/// 0 and at most `i32::MAX`.
fn last_position(n: u32) -> i32 {
    n.saturating_sub(1).min(i32::MAX as u32) as i32
}

impl ConfigSpace {
    /// A direct (touchscreen) multi-touch device of `width` x `height`
    /// positions and `slots` contacts (at least 1).
    pub(super) fn touchscreen(identity: Identity, width: u32, height: u32, slots: u32) -> Self {
        let x = AbsInfo::range(0, last_position(width));
        let y = AbsInfo::range(0, last_position(height));
        Self {
            identity,
            caps: Capabilities {
                props: &[INPUT_PROP_DIRECT],
                keys: &[BTN_TOUCH],
                // Each frame's time (see `MSC_TIMESTAMP`): Linux passes
                // it to evdev readers only if the device declares it.
                misc: &[MSC_TIMESTAMP],
                axes: [
                    (ABS_X, x),
                    (ABS_Y, y),
                    (ABS_MT_SLOT, AbsInfo::range(0, last_position(slots.max(1)))),
                    (ABS_MT_POSITION_X, x),
                    (ABS_MT_POSITION_Y, y),
                    (ABS_MT_TRACKING_ID, AbsInfo::range(0, 0xffff)),
                ],
            },
            select: select::UNSET,
            subsel: 0,
        }
    }

    pub(super) fn identity(&self) -> &Identity {
        &self.identity
    }

    pub(super) fn abs_info(&self, axis: u16) -> Option<AbsInfo> {
        self.caps
            .axes
            .iter()
            .find(|(code, _)| *code == axis)
            .map(|(_, info)| *info)
    }

    /// Back to no selection (device reset).
    pub(super) fn reset(&mut self) {
        self.select = select::UNSET;
        self.subsel = 0;
    }

    /// A driver write of `data` at `offset`: only the bytes that land on
    /// `select` and `subsel` count.
    pub(super) fn write(&mut self, offset: u32, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            match (offset as usize).checked_add(i) {
                Some(config::SELECT) => self.select = *b,
                Some(config::SUBSEL) => self.subsel = *b,
                _ => {}
            }
        }
    }

    /// A driver read of `data.len()` bytes at `offset`; bytes past the
    /// structure are left as they are (the transport zero-fills them).
    pub(super) fn read(&self, offset: u32, data: &mut [u8]) {
        let image = self.image();
        for (i, b) in data.iter_mut().enumerate() {
            if let Some(v) = (offset as usize)
                .checked_add(i)
                .and_then(|at| image.get(at))
            {
                *b = *v;
            }
        }
    }

    /// The whole structure as the driver sees it now.
    pub(super) fn image(&self) -> [u8; config::BYTES] {
        let mut c = [0u8; config::BYTES];
        c[config::SELECT] = self.select;
        c[config::SUBSEL] = self.subsel;
        let size = self.selection(&mut c[config::U..]);
        c[config::SIZE] = size as u8;
        c
    }

    /// Fills `u` with what `select`/`subsel` shows and returns its size
    /// (at most 128).
    fn selection(&self, u: &mut [u8]) -> usize {
        let id = &self.identity;
        match (self.select, self.subsel) {
            (select::ID_NAME, 0) => string(u, id.name.as_bytes()),
            (select::ID_SERIAL, 0) => string(u, id.serial.as_bytes()),
            (select::ID_DEVIDS, 0) => {
                for (i, v) in [id.bustype, id.vendor, id.product, id.version]
                    .into_iter()
                    .enumerate()
                {
                    u[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
                }
                config::DEVIDS_BYTES
            }
            (select::PROP_BITS, 0) => bitmap(u, self.caps.props.iter().copied()),
            // EV_SYN (subsel 0) shows size 0: the specification defines
            // no bitmap for it, the Linux driver never asks (its input
            // core gives every device EV_SYN), and EVIOCGBIT's meaning for
            // type 0 (the bitmap of types) is what the non-zero sizes of
            // the other types already say.
            (select::EV_BITS, t) if u16::from(t) == EV_KEY => {
                bitmap(u, self.caps.keys.iter().copied())
            }
            (select::EV_BITS, t) if u16::from(t) == EV_MSC => {
                bitmap(u, self.caps.misc.iter().copied())
            }
            (select::EV_BITS, t) if u16::from(t) == EV_ABS => {
                bitmap(u, self.caps.axes.iter().map(|(code, _)| *code))
            }
            (select::ABS_INFO, axis) => match self.abs_info(u16::from(axis)) {
                Some(info) => {
                    u[..config::ABSINFO_BYTES].copy_from_slice(&info.to_bytes());
                    config::ABSINFO_BYTES
                }
                None => 0,
            },
            _ => 0,
        }
    }
}

/// Copies a string (no NUL terminator, §5.8.4) into `u`, cut at its end.
fn string(u: &mut [u8], s: &[u8]) -> usize {
    let n = s.len().min(u.len());
    u[..n].copy_from_slice(&s[..n]);
    n
}

/// Sets bit `code` of `u` for each code (codes beyond the union are left
/// out) and returns the bytes up to the highest set bit.
fn bitmap(u: &mut [u8], codes: impl Iterator<Item = u16>) -> usize {
    let mut size = 0;
    for code in codes {
        let byte = usize::from(code / 8);
        if let Some(b) = u.get_mut(byte) {
            *b |= 1 << (code % 8);
            size = size.max(byte + 1);
        }
    }
    size
}
