//! The parts of virtio-mmio (version 2) and virtio-blk that do not touch
//! hardware: register offsets, status and feature bits, the request header,
//! status bytes and how the driver reports failures. The driver itself is
//! `rt::virtio_blk`. References are to VIRTIO 1.2.

use core::fmt;

/// virtio-mmio registers (§4.2.2), byte offsets; all 32 bits wide.
pub mod reg {
    pub const MAGIC: usize = 0x000;
    pub const VERSION: usize = 0x004;
    pub const DEVICE_ID: usize = 0x008;
    pub const VENDOR_ID: usize = 0x00c;
    pub const DEVICE_FEATURES: usize = 0x010;
    pub const DEVICE_FEATURES_SEL: usize = 0x014;
    pub const DRIVER_FEATURES: usize = 0x020;
    pub const DRIVER_FEATURES_SEL: usize = 0x024;
    pub const QUEUE_SEL: usize = 0x030;
    pub const QUEUE_NUM_MAX: usize = 0x034;
    pub const QUEUE_NUM: usize = 0x038;
    pub const QUEUE_READY: usize = 0x044;
    pub const QUEUE_NOTIFY: usize = 0x050;
    pub const INTERRUPT_STATUS: usize = 0x060;
    pub const INTERRUPT_ACK: usize = 0x064;
    pub const STATUS: usize = 0x070;
    pub const QUEUE_DESC_LOW: usize = 0x080;
    pub const QUEUE_DESC_HIGH: usize = 0x084;
    pub const QUEUE_DRIVER_LOW: usize = 0x090;
    pub const QUEUE_DRIVER_HIGH: usize = 0x094;
    pub const QUEUE_DEVICE_LOW: usize = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: usize = 0x0a4;
    pub const CONFIG_GENERATION: usize = 0x0fc;
    pub const CONFIG: usize = 0x100;
}

/// "virt", little-endian.
pub const MAGIC: u32 = 0x7472_6976;
/// The non-legacy virtio-mmio interface.
pub const VERSION_2: u32 = 2;
/// Device type of a block device (§5).
pub const DEVICE_ID_BLOCK: u32 = 2;

/// Device status bits (§2.1).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    pub const FAILED: u32 = 128;
}

/// Feature bits the driver may accept.
pub mod feature {
    /// virtio-blk: the device is read-only.
    pub const BLK_RO: u64 = 1 << 5;
    /// virtio-blk: `blk_size` in the configuration is valid.
    pub const BLK_BLK_SIZE: u64 = 1 << 6;
    /// virtio-blk: FLUSH requests, and writes may be cached until one.
    pub const BLK_FLUSH: u64 = 1 << 9;
    /// virtio-blk: DISCARD requests.
    pub const BLK_DISCARD: u64 = 1 << 13;
    /// virtio-blk: WRITE_ZEROES requests.
    pub const BLK_WRITE_ZEROES: u64 = 1 << 14;
    /// A non-legacy device (mandatory on virtio-mmio version 2).
    pub const VERSION_1: u64 = 1 << 32;
    /// What this driver accepts when offered (no indirect descriptors, no
    /// event index, no packed ring: one plain split queue).
    pub const ACCEPTED: u64 =
        VERSION_1 | BLK_RO | BLK_BLK_SIZE | BLK_FLUSH | BLK_DISCARD | BLK_WRITE_ZEROES;
}

/// virtio-blk configuration space (§5.2.4), offsets from `reg::CONFIG`.
pub mod blk_config {
    /// u64, in 512-byte sectors (read as two 32-bit halves).
    pub const CAPACITY: usize = 0x00;
    /// u32, valid with `BLK_BLK_SIZE`.
    pub const BLK_SIZE: usize = 0x14;
    /// u32, valid with `BLK_DISCARD`: sectors per request at most.
    pub const MAX_DISCARD_SECTORS: usize = 0x24;
    /// u32, valid with `BLK_WRITE_ZEROES`: sectors per request at most.
    pub const MAX_WRITE_ZEROES_SECTORS: usize = 0x30;
}

/// Split virtqueue descriptor flags (§2.7.5).
pub mod desc {
    pub const NEXT: u16 = 1;
    pub const WRITE: u16 = 2;
}

/// In the available ring's flags: no used-buffer notifications, please.
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Bytes per sector: the unit of every sector number of virtio-blk.
pub const SECTOR: usize = 512;
/// Length of a GET_ID answer.
pub const ID_BYTES: usize = 20;

/// virtio-blk request types (§5.2.6).
pub mod req {
    pub const IN: u32 = 0;
    pub const OUT: u32 = 1;
    pub const FLUSH: u32 = 4;
    pub const GET_ID: u32 = 8;
    pub const DISCARD: u32 = 11;
    pub const WRITE_ZEROES: u32 = 13;
}

/// The 16-byte range a DISCARD or WRITE_ZEROES request carries
/// (`struct virtio_blk_discard_write_zeroes`); flag bit 0 is `unmap`.
pub fn range_segment(sector: u64, sectors: u32, flags: u32) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[0..8].copy_from_slice(&sector.to_le_bytes());
    s[8..12].copy_from_slice(&sectors.to_le_bytes());
    s[12..16].copy_from_slice(&flags.to_le_bytes());
    s
}

/// The status byte the device writes last.
pub mod blk_status {
    pub const OK: u8 = 0;
    pub const IOERR: u8 = 1;
    pub const UNSUPP: u8 = 2;
}

/// The 16-byte request header (`struct virtio_blk_req` up to the data).
pub fn request_header(kind: u32, sector: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&kind.to_le_bytes());
    h[8..16].copy_from_slice(&sector.to_le_bytes());
    h
}

/// Why a virtio-blk operation did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The device completed the request with this status byte (not OK).
    Status(u8),
    /// The device returned the request without writing its status byte.
    NoStatus,
    /// Nothing came back within the time limit (milliseconds).
    Timeout(u64),
    /// The device set DEVICE_NEEDS_RESET (or FAILED): the whole status.
    NeedsReset(u32),
    /// The device returned another chain than the one submitted.
    WrongChain(u32),
    /// The driver's own buffers cannot hold the request (bytes asked).
    TooLarge(usize),
    /// A buffer that is not a whole number of sectors (bytes).
    NotSectors(usize),
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BlkError::Status(blk_status::IOERR) => f.write_str("IOERR"),
            BlkError::Status(blk_status::UNSUPP) => f.write_str("UNSUPP"),
            BlkError::Status(s) => write!(f, "status={}", s),
            BlkError::NoStatus => f.write_str("no-status"),
            BlkError::Timeout(ms) => write!(f, "timeout after {} ms", ms),
            BlkError::NeedsReset(s) => write!(f, "needs-reset (status 0x{:x})", s),
            BlkError::WrongChain(id) => write!(f, "wrong chain {} returned", id),
            BlkError::TooLarge(n) => write!(f, "too large ({} bytes)", n),
            BlkError::NotSectors(n) => write!(f, "not whole sectors ({} bytes)", n),
        }
    }
}

/// Why a transport could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// MagicValue, Version, DeviceID as read.
    NotVirtioBlkV2 {
        magic: u32,
        version: u32,
        device: u32,
    },
    /// The device does not offer VERSION_1.
    NoVersion1,
    /// FEATURES_OK did not stick (status as read back).
    FeaturesRejected(u32),
    /// Queue 0 is missing (QueueNumMax 0) or already live.
    Queue { num_max: u32, ready: u32 },
    /// The status register did not read back 0 after a reset.
    ResetStuck(u32),
    /// The driver's DMA area already serves another device.
    InUse,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InitError::NotVirtioBlkV2 {
                magic,
                version,
                device,
            } => write!(
                f,
                "not a virtio-mmio v2 block device (magic 0x{:x} version {} device {})",
                magic, version, device
            ),
            InitError::NoVersion1 => f.write_str("VERSION_1 not offered"),
            InitError::FeaturesRejected(s) => {
                write!(f, "features rejected (status 0x{:x})", s)
            }
            InitError::Queue { num_max, ready } => write!(
                f,
                "queue 0 unusable (QueueNumMax {} QueueReady {})",
                num_max, ready
            ),
            InitError::ResetStuck(s) => write!(f, "reset did not complete (status 0x{:x})", s),
            InitError::InUse => f.write_str("the driver already runs another device"),
        }
    }
}

/// A GET_ID answer as text: up to the first NUL, anything outside
/// printable ASCII (and `'` and `\`) as `\xNN`.
pub struct IdString<'a>(pub &'a [u8]);

impl fmt::Display for IdString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.iter().take_while(|&&b| b != 0) {
            if (0x20..0x7f).contains(&b) && b != b'\'' && b != b'\\' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{:02x}", b)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = request_header(req::OUT, 0x0102_0304_0506_0708);
        assert_eq!(h, [1, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(request_header(req::GET_ID, 0)[0], 8);
    }

    #[test]
    fn error_text() {
        assert_eq!(BlkError::Status(1).to_string(), "IOERR");
        assert_eq!(BlkError::Status(2).to_string(), "UNSUPP");
        assert_eq!(BlkError::Status(7).to_string(), "status=7");
        assert_eq!(
            BlkError::NeedsReset(0x4f).to_string(),
            "needs-reset (status 0x4f)"
        );
        assert_eq!(BlkError::Timeout(100).to_string(), "timeout after 100 ms");
    }

    #[test]
    fn id_text() {
        let mut id = [0u8; ID_BYTES];
        id[..8].copy_from_slice(b"odo-disk");
        assert_eq!(IdString(&id).to_string(), "odo-disk");
        assert_eq!(IdString(b"a'b\x01\xff").to_string(), "a\\x27b\\x01\\xff");
        assert_eq!(IdString(b"12345678901234567890").to_string().len(), 20);
        assert_eq!(IdString(&[0; 20]).to_string(), "");
    }
}
