//! The virtio-input wire format (VIRTIO 1.2 §5.8): the event every buffer
//! of both queues carries, the selections of configuration space, and the
//! evdev codes of a multi-touch screen. The event codes are Linux's
//! (`include/uapi/linux/input-event-codes.h`), which the specification
//! adopts; all fields are little endian.

/// Event types (`EV_*`).
pub const EV_SYN: u16 = 0x00;
pub const EV_KEY: u16 = 0x01;
pub const EV_REL: u16 = 0x02;
pub const EV_ABS: u16 = 0x03;
pub const EV_MSC: u16 = 0x04;
pub const EV_LED: u16 = 0x11;
pub const EV_REP: u16 = 0x14;

/// `EV_SYN` codes. A frame (one update of the device's state) ends with
/// `SYN_REPORT`.
pub const SYN_REPORT: u16 = 0;
pub const SYN_MT_REPORT: u16 = 2;
pub const SYN_DROPPED: u16 = 3;

/// `EV_MSC` code: when the frame's contacts were sensed, in microseconds
/// of a free-running clock that wraps at 2^32 (Linux's `MSC_TIMESTAMP`).
/// The touch mediator gives the physical counter's time at which the
/// panel's report reached the hypervisor, so a guest that reads the same
/// counter can tell how long the frame took to reach it.
pub const MSC_TIMESTAMP: u16 = 0x05;

/// `EV_KEY` code of a touchscreen: a finger is down (value 1) or none
/// is (0).
pub const BTN_TOUCH: u16 = 0x14a;

/// `EV_ABS` codes (axes). The single-touch axes `ABS_X`/`ABS_Y` follow the
/// first finger; the `ABS_MT_*` axes describe each contact (type B
/// protocol: `ABS_MT_SLOT` selects the slot the following events are
/// about, `ABS_MT_TRACKING_ID` -1 lifts its finger).
pub const ABS_X: u16 = 0x00;
pub const ABS_Y: u16 = 0x01;
pub const ABS_MT_SLOT: u16 = 0x2f;
pub const ABS_MT_POSITION_X: u16 = 0x35;
pub const ABS_MT_POSITION_Y: u16 = 0x36;
pub const ABS_MT_TRACKING_ID: u16 = 0x39;

/// Input properties (`INPUT_PROP_*`): a direct device is a touchscreen
/// (the contact is where the finger is on the display), as opposed to a
/// touchpad.
pub const INPUT_PROP_DIRECT: u16 = 0x01;

/// Bus type for `ID_DEVIDS` (`BUS_VIRTUAL`).
pub const BUS_VIRTUAL: u16 = 0x06;

/// What the driver selects with `select` (`enum virtio_input_config_select`).
pub mod select {
    pub const UNSET: u8 = 0x00;
    /// The device's name, a string; `subsel` 0.
    pub const ID_NAME: u8 = 0x01;
    /// Its serial number, a string; `subsel` 0.
    pub const ID_SERIAL: u8 = 0x02;
    /// `struct virtio_input_devids`; `subsel` 0.
    pub const ID_DEVIDS: u8 = 0x03;
    /// Bitmap of `INPUT_PROP_*`; `subsel` 0.
    pub const PROP_BITS: u8 = 0x10;
    /// Bitmap of the codes of event type `subsel`.
    pub const EV_BITS: u8 = 0x11;
    /// `struct virtio_input_absinfo` of axis `subsel`.
    pub const ABS_INFO: u8 = 0x12;
}

/// Configuration space layout (`struct virtio_input_config`): `select`,
/// `subsel`, `size`, 5 reserved bytes, then the 128-byte union `u`.
pub mod config {
    pub const SELECT: usize = 0;
    pub const SUBSEL: usize = 1;
    pub const SIZE: usize = 2;
    /// Offset of the union `u`.
    pub const U: usize = 8;
    /// Bytes of the union.
    pub const U_BYTES: usize = 128;
    /// Bytes of configuration space.
    pub const BYTES: usize = U + U_BYTES;
    /// Bytes of `struct virtio_input_absinfo` (min, max, fuzz, flat, res).
    pub const ABSINFO_BYTES: usize = 20;
    /// Bytes of `struct virtio_input_devids`.
    pub const DEVIDS_BYTES: usize = 8;
}

/// Bytes of `struct virtio_input_event`.
pub const EVENT_BYTES: usize = 8;

/// One `struct virtio_input_event`: evdev's event without its timestamp
/// (the guest's input core stamps it on arrival).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InputEvent {
    /// `type` (`EV_*`).
    pub kind: u16,
    pub code: u16,
    /// The wire's `le32`: evdev's signed value as its two's complement
    /// bits (the tracking id -1 that lifts a finger is `u32::MAX`).
    pub value: u32,
}

impl InputEvent {
    pub const fn new(kind: u16, code: u16, value: u32) -> Self {
        Self { kind, code, value }
    }

    /// The `EV_SYN`/`SYN_REPORT` event that ends a frame.
    pub const SYN_REPORT: InputEvent = InputEvent::new(EV_SYN, SYN_REPORT, 0);

    /// Whether this event ends a frame: `EV_SYN`/`SYN_REPORT` whatever
    /// its value (the guest's input core flushes on the code alone).
    pub fn is_syn_report(&self) -> bool {
        self.kind == EV_SYN && self.code == SYN_REPORT
    }

    /// The event as it travels in a buffer.
    pub fn to_bytes(self) -> [u8; EVENT_BYTES] {
        let mut b = [0u8; EVENT_BYTES];
        b[0..2].copy_from_slice(&self.kind.to_le_bytes());
        b[2..4].copy_from_slice(&self.code.to_le_bytes());
        b[4..8].copy_from_slice(&self.value.to_le_bytes());
        b
    }

    pub fn from_bytes(b: [u8; EVENT_BYTES]) -> Self {
        Self {
            kind: u16::from_le_bytes([b[0], b[1]]),
            code: u16::from_le_bytes([b[2], b[3]]),
            value: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_little_endian() {
        let e = InputEvent::new(EV_ABS, ABS_MT_TRACKING_ID, -1i32 as u32);
        assert_eq!(e.to_bytes(), [3, 0, 0x39, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(InputEvent::from_bytes(e.to_bytes()), e);
        let k = InputEvent::new(EV_KEY, BTN_TOUCH, 1);
        assert_eq!(k.to_bytes(), [1, 0, 0x4a, 1, 1, 0, 0, 0]);
        assert!(InputEvent::SYN_REPORT.is_syn_report());
        assert_eq!(InputEvent::SYN_REPORT.to_bytes(), [0; 8]);
        assert!(!InputEvent::new(EV_SYN, SYN_MT_REPORT, 0).is_syn_report());
        assert!(InputEvent::new(EV_SYN, SYN_REPORT, 1).is_syn_report());
        assert!(!InputEvent::new(EV_KEY, SYN_REPORT, 0).is_syn_report());
    }
}
