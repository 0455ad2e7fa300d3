//! Decoding of ESR_EL2 for exceptions taken from a guest.

use shared_devices::mmio::Width;

/// Exception classes the hypervisor handles.
pub mod ec {
    pub const UNKNOWN: u32 = 0x00;
    pub const WFX: u32 = 0x01;
    pub const HVC64: u32 = 0x16;
    pub const SMC64: u32 = 0x17;
    pub const SYSREG: u32 = 0x18;
    pub const INSTR_ABORT_LOWER: u32 = 0x20;
    pub const DATA_ABORT_LOWER: u32 = 0x24;
}

pub fn class(esr: u64) -> u32 {
    ((esr >> 26) & 0x3f) as u32
}

/// A data abort with a valid instruction syndrome: enough to emulate the
/// access without decoding the instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// A store (else a load).
    pub write: bool,
    /// Access width (SAS).
    pub width: Width,
    /// Transfer register (SRT); 31 is the zero register.
    pub reg: u8,
    /// A load sign-extends into the register (SSE).
    pub sign_extend: bool,
    /// 64-bit register (SF; otherwise the result is zero-extended from 32 bits).
    pub sixty_four: bool,
}

/// The access described by a data-abort syndrome, if the syndrome is valid
/// (ISV) and it is not a cache maintenance operation.
pub fn mmio_access(esr: u64) -> Option<MmioAccess> {
    let isv = esr & (1 << 24) != 0;
    let cache_maintenance = esr & (1 << 8) != 0;
    if !isv || cache_maintenance {
        return None;
    }
    Some(MmioAccess {
        write: esr & (1 << 6) != 0,
        width: Width::ALL[((esr >> 22) & 0b11) as usize],
        reg: ((esr >> 16) & 0x1f) as u8,
        sign_extend: esr & (1 << 21) != 0,
        sixty_four: esr & (1 << 15) != 0,
    })
}

/// Data/instruction fault status code: is this a translation or access-flag
/// fault (nothing mapped) rather than e.g. a permission fault?
pub fn fault_status(esr: u64) -> u32 {
    (esr & 0x3f) as u32
}

/// A trapped MSR/MRS (EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    /// op0, op1, CRn, CRm, op2 packed as in `sysreg_id`.
    pub id: u32,
    pub reg: u8,
    pub read: bool,
}

pub const fn sysreg_id(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32) -> u32 {
    (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2
}

/// ICC_SGI1R_EL1: S3_0_C12_C11_5.
pub const ICC_SGI1R_EL1: u32 = sysreg_id(3, 0, 12, 11, 5);

pub fn sysreg_access(esr: u64) -> SysRegAccess {
    let iss = esr as u32 & 0x1ff_ffff;
    let op0 = (iss >> 20) & 0b11;
    let op2 = (iss >> 17) & 0b111;
    let op1 = (iss >> 14) & 0b111;
    let crn = (iss >> 10) & 0xf;
    let rt = ((iss >> 5) & 0x1f) as u8;
    let crm = (iss >> 1) & 0xf;
    SysRegAccess {
        id: sysreg_id(op0, op1, crn, crm, op2),
        reg: rt,
        read: iss & 1 != 0,
    }
}

/// Where a guest resumes after the hypervisor has emulated the
/// instruction that trapped, and its PSTATE then: past the instruction
/// (4 bytes, or 2 for a 16-bit T32 instruction: ESR.IL), and for T32 code
/// inside an IT block with the IT state advanced as the instruction would
/// have (ITAdvance). AArch32 state is EL0 code of a partition (its kernel
/// runs AArch64), whose program counter wraps at 32 bits.
pub fn step_over(elr: u64, spsr: u64, esr: u64) -> (u64, u64) {
    let length = if esr & (1 << 25) != 0 { 4 } else { 2 };
    let aarch32 = spsr & (1 << 4) != 0;
    if !aarch32 {
        return (elr.wrapping_add(4), spsr);
    }
    let elr = (elr + length) & 0xffff_ffff;
    let thumb = spsr & (1 << 5) != 0;
    if !thumb {
        return (elr, spsr);
    }
    // IT[1:0] is SPSR[26:25], IT[7:2] is SPSR[15:10].
    let it = ((spsr >> 25) & 0b11) | (((spsr >> 10) & 0x3f) << 2);
    let it = if it & 0b111 == 0 {
        0
    } else {
        (it & 0b1110_0000) | ((it << 1) & 0b1_1111)
    };
    let spsr = (spsr & !((0b11 << 25) | (0x3f << 10))) | ((it & 0b11) << 25) | ((it >> 2) << 10);
    (elr, spsr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_word_store() {
        // str w1, [x0] to unmapped IPA: EC=0x24, IL, ISV, SAS=2, SRT=1, WnR, DFSC=translation L3
        let esr = (0x24u64 << 26) | (1 << 25) | (1 << 24) | (2 << 22) | (1 << 16) | (1 << 6) | 0x07;
        assert_eq!(class(esr), ec::DATA_ABORT_LOWER);
        let a = mmio_access(esr).unwrap();
        assert_eq!(
            a,
            MmioAccess {
                write: true,
                width: Width::Word,
                reg: 1,
                sign_extend: false,
                sixty_four: false
            }
        );
    }

    #[test]
    fn stepping_over_the_emulated_instruction() {
        let il = 1 << 25;
        // AArch64: always 4 bytes.
        assert_eq!(step_over(0x1000, 0x3c5, il), (0x1004, 0x3c5));
        // A32 user code: 4 bytes, 32-bit PC.
        assert_eq!(step_over(0xffff_fffc, 0x10, il), (0, 0x10));
        // T32, 16-bit instruction, no IT block.
        let t32 = 0x10 | (1 << 5);
        assert_eq!(step_over(0x8000, t32, 0), (0x8002, t32));
        // T32 in an IT block: the mask shifts left with each instruction,
        // and the last one (IT[2:0] = 0) ends the block.
        let it = |v: u64| ((v & 0b11) << 25) | ((v >> 2) << 10);
        let (_, spsr) = step_over(0x8000, t32 | it(0b0101_0100), il);
        assert_eq!(spsr, t32 | it(0b0100_1000));
        let (_, spsr) = step_over(0x8000, t32 | it(0b0000_1100), il);
        assert_eq!(spsr, t32 | it(0b0001_1000));
        let (_, spsr) = step_over(0x8000, t32 | it(0b0001_1000), il);
        assert_eq!(spsr, t32, "last instruction of the block");
    }

    #[test]
    fn no_syndrome_no_emulation() {
        let esr = (0x24u64 << 26) | (1 << 25) | 0x07;
        assert_eq!(mmio_access(esr), None);
    }

    #[test]
    fn decodes_the_sgi_register_write() {
        // msr ICC_SGI1R_EL1, x3: op0=3 op1=0 CRn=12 CRm=11 op2=5 Rt=3 direction=write
        let iss = (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
        let esr = (0x18u64 << 26) | (1 << 25) | iss;
        let s = sysreg_access(esr);
        assert_eq!(s.id, ICC_SGI1R_EL1);
        assert_eq!(s.reg, 3);
        assert!(!s.read);
    }
}
