//! One interface for every emulated register window a guest reaches
//! through trapped MMIO.
//!
//! The hypervisor decodes a trapped load or store into an offset in the
//! window and a [`Width`], and calls [`RegisterFile::read`] or
//! [`RegisterFile::write`]. What the access asks of the hypervisor (a
//! console line to print, an interrupt line that changed, a queue to
//! process) comes back in the model's `Effects`, for the hypervisor to
//! carry out after it has let go of the model.
//!
//! The contract every implementation keeps, because the guest may be an
//! attacker: **any** offset (also past the end of the window), any width
//! and any alignment is accepted without panicking. A register that is not
//! there, or an access the architecture of the device does not allow,
//! reads as zero and ignores writes, unless the device's specification
//! defines something else (then the model does that and says so). A read
//! returns a value that fits in the access width. `tests/conformance.rs`
//! holds every model to this.

/// The size of one register access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Width {
    /// 8 bits (`ldrb`/`strb`).
    Byte,
    /// 16 bits (`ldrh`/`strh`).
    Half,
    /// 32 bits (`ldr w`/`str w`).
    Word,
    /// 64 bits (`ldr x`/`str x`).
    Double,
}

impl Width {
    /// All widths, narrowest first.
    pub const ALL: [Width; 4] = [Width::Byte, Width::Half, Width::Word, Width::Double];

    /// The width of an access of `bytes` bytes (1, 2, 4 or 8).
    pub const fn from_bytes(bytes: u64) -> Option<Width> {
        match bytes {
            1 => Some(Width::Byte),
            2 => Some(Width::Half),
            4 => Some(Width::Word),
            8 => Some(Width::Double),
            _ => None,
        }
    }

    /// Bytes in an access of this width.
    pub const fn bytes(self) -> u64 {
        match self {
            Width::Byte => 1,
            Width::Half => 2,
            Width::Word => 4,
            Width::Double => 8,
        }
    }

    /// The bits an access of this width carries.
    pub const fn mask(self) -> u64 {
        match self {
            Width::Double => u64::MAX,
            _ => (1 << (8 * self.bytes())) - 1,
        }
    }

    /// Is an access of this width at `offset` naturally aligned?
    pub const fn aligned(self, offset: u64) -> bool {
        offset.is_multiple_of(self.bytes())
    }
}

/// A device's registers as a guest sees them. See the module docs for the
/// contract on offsets, widths and alignment.
pub trait RegisterFile {
    /// What an access leaves for the hypervisor to do; `()` if nothing.
    type Effects: Default;

    /// A read of `width` at `offset` in the window. May change the device
    /// (reading a FIFO pops it). The result fits in `width`.
    fn read(&mut self, offset: u64, width: Width, effects: &mut Self::Effects) -> u64;

    /// A write of the low `width` bytes of `value` at `offset`.
    fn write(&mut self, offset: u64, width: Width, value: u64, effects: &mut Self::Effects);
}

/// Byte lanes of a naturally aligned 32-bit register file, for models
/// whose registers are all 32 bits wide but whose specification also
/// allows narrower accesses to them (byte-addressable priority arrays,
/// PrimeCell ID registers): the 32-bit register that holds `offset`, and
/// the shift of the accessed bytes within it. `None` when the access
/// straddles two registers.
pub const fn word_lane(offset: u64, width: Width) -> Option<(u64, u32)> {
    let word = offset & !3;
    let shift = (offset & 3) * 8;
    if (offset & 3) + width.bytes() > 4 {
        return None;
    }
    Some((word, shift as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(Width::from_bytes(4), Some(Width::Word));
        assert_eq!(Width::from_bytes(3), None);
        assert_eq!(Width::Half.mask(), 0xffff);
        assert_eq!(Width::Double.mask(), u64::MAX);
        assert!(Width::Word.aligned(0x14));
        assert!(!Width::Word.aligned(0x16));
    }

    #[test]
    fn lanes() {
        assert_eq!(word_lane(0x1d, Width::Byte), Some((0x1c, 8)));
        assert_eq!(word_lane(0x1e, Width::Half), Some((0x1c, 16)));
        assert_eq!(word_lane(0x1e, Width::Word), None);
        assert_eq!(word_lane(0x20, Width::Double), None);
    }
}
