//! Guest memory as the device side sees it.
//!
//! Everything a virtio device touches in a partition's RAM (rings,
//! descriptor tables, request headers, data buffers) goes through
//! [`GuestMemory`], which the hypervisor implements over the partition's
//! stage-2 map. The implementor checks every access: a range that is not
//! entirely inside the partition's own RAM is refused with a
//! [`MemoryError`], so a guest address can never reach the hypervisor or
//! another partition. The virtio code above it never turns a guest address
//! into a pointer and does all address arithmetic with checked operations.
//!
//! Ordering between the device's accesses and the driver running on other
//! cores is also the implementor's business: the virtio code calls
//! [`GuestMemory::fence`] at exactly the points the virtio memory model
//! needs one (see [`Fence`]), and the ring index accessors
//! ([`GuestMemory::read_u16`], [`GuestMemory::write_u16`]) must be
//! single-copy atomic.

use core::cell::Cell;

/// A guest-physical range that is not entirely inside the partition's RAM
/// (or whose end does not fit in 64 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryError {
    pub gpa: u64,
    pub len: u64,
}

/// The memory barriers the device side of virtio needs (VIRTIO 1.2 §2.7.13
/// describes the driver's half). On AArch64 with the partition's RAM mapped
/// inner shareable, each is a `dmb ish` variant; on the host (tests) a
/// compiler fence is enough because nothing runs concurrently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fence {
    /// After reading `avail.idx`, before reading the ring entries,
    /// descriptors and buffers it publishes (`dmb ishld`): otherwise the
    /// device could see the new index but stale descriptors.
    Acquire,
    /// After writing a used element and the buffer contents (and after the
    /// last read of a device-readable buffer), before writing `used.idx`
    /// (`dmb ish`): the driver may reuse the buffer as soon as it sees the
    /// index, so every earlier access must be complete.
    Release,
    /// Between a store and a later load of another location (`dmb ish`):
    /// after writing `used.idx` and before reading `used_event` or the
    /// avail `flags` to decide on an interrupt, and after writing
    /// `avail_event` before re-reading `avail.idx`. Without it either side
    /// can miss the other's update and a notification is lost.
    Full,
}

/// Bounds-checked access to one partition's memory by guest-physical
/// address.
pub trait GuestMemory {
    /// Copies `buf.len()` bytes at `gpa` into `buf`, or fails without
    /// copying anything if any part of the range is outside the
    /// partition's RAM.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Copies `data` to `gpa`, or fails without writing anything if any
    /// part of the range is outside the partition's RAM.
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError>;

    /// Checks, without accessing it, that `gpa..gpa + len` lies inside the
    /// partition's RAM: used for buffers that are handed on (e.g. to a
    /// physical device) instead of being copied here, so that a bad address
    /// fails the request before anything is started.
    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError>;

    /// Orders the device's memory accesses against the driver's (see
    /// [`Fence`]).
    fn fence(&self, kind: Fence);

    /// Reads a little-endian `u16` at a 2-byte aligned `gpa` (ring
    /// indices and flags). The driver updates these concurrently, so a real
    /// implementation must override this with one 16-bit load: a
    /// byte-by-byte copy could see half an update (e.g. 0x00ff -> 0x0100
    /// read as 0x01ff), which the queue would report as a broken ring.
    fn read_u16(&self, gpa: u64) -> Result<u16, MemoryError> {
        let mut b = [0; 2];
        self.read(gpa, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Writes a little-endian `u16` at a 2-byte aligned `gpa` (`used.idx`,
    /// `avail_event`); a real implementation must override this with one
    /// 16-bit store, for the same reason as [`GuestMemory::read_u16`].
    fn write_u16(&self, gpa: u64, value: u16) -> Result<(), MemoryError> {
        self.write(gpa, &value.to_le_bytes())
    }

    fn read_u32(&self, gpa: u64) -> Result<u32, MemoryError> {
        let mut b = [0; 4];
        self.read(gpa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn read_u64(&self, gpa: u64) -> Result<u64, MemoryError> {
        let mut b = [0; 8];
        self.read(gpa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// Guest memory backed by a byte slice that appears at guest-physical
/// `base`: the implementation the tests and the fuzzer use, and a model of
/// what the hypervisor's implementation must check.
pub struct SliceMemory<'a> {
    base: u64,
    bytes: &'a [Cell<u8>],
}

impl<'a> SliceMemory<'a> {
    /// `bytes` (for instance a `Vec<u8>` in a test) becomes guest-physical
    /// `base..base + bytes.len()`.
    pub fn new(base: u64, bytes: &'a mut [u8]) -> Self {
        Self {
            base,
            bytes: Cell::from_mut(bytes).as_slice_of_cells(),
        }
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The cells for `gpa..gpa + len`, if the whole range is inside.
    fn cells(&self, gpa: u64, len: usize) -> Result<&'a [Cell<u8>], MemoryError> {
        let err = MemoryError {
            gpa,
            len: len as u64,
        };
        let start = gpa.checked_sub(self.base).ok_or(err)?;
        let start = usize::try_from(start).map_err(|_| err)?;
        let end = start.checked_add(len).ok_or(err)?;
        self.bytes.get(start..end).ok_or(err)
    }
}

impl GuestMemory for SliceMemory<'_> {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let cells = self.cells(gpa, buf.len())?;
        for (b, c) in buf.iter_mut().zip(cells) {
            *b = c.get();
        }
        Ok(())
    }

    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let cells = self.cells(gpa, data.len())?;
        for (c, b) in cells.iter().zip(data) {
            c.set(*b);
        }
        Ok(())
    }

    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        let n = usize::try_from(len).map_err(|_| MemoryError { gpa, len })?;
        self.cells(gpa, n).map(|_| ())
    }

    fn fence(&self, _kind: Fence) {
        core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accesses_inside_only() {
        let mut ram = vec![0u8; 0x100];
        let mem = SliceMemory::new(0x4000_0000, &mut ram);
        mem.write(0x4000_00fc, &[1, 2, 3, 4]).unwrap();
        assert_eq!(mem.read_u32(0x4000_00fc), Ok(0x0403_0201));
        assert_eq!(mem.read_u16(0x4000_00fe), Ok(0x0403));
        fn err<T>(gpa: u64, len: u64) -> Result<T, MemoryError> {
            Err(MemoryError { gpa, len })
        }
        assert_eq!(mem.write(0x4000_00fd, &[0; 4]), err(0x4000_00fd, 4));
        assert_eq!(mem.read_u64(0x3fff_fffc), err(0x3fff_fffc, 8), "before");
        assert_eq!(mem.read_u16(u64::MAX), err(u64::MAX, 2), "wraps");
        assert_eq!(mem.read(0x4000_0100, &mut []), Ok(()), "empty at the end");
        assert_eq!(mem.check(0x4000_0000, 0x100), Ok(()));
        assert_eq!(mem.check(0x4000_0001, 0x100), err(0x4000_0001, 0x100));
        assert_eq!(mem.check(0x4000_0000, u64::MAX), err(0x4000_0000, u64::MAX));
        // A refused write changes nothing.
        assert_eq!(mem.read_u32(0x4000_00fc), Ok(0x0403_0201));
    }
}
