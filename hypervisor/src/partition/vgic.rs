//! Register model of a partition's virtual GICv3 distributor and
//! redistributors, reached through trapped MMIO.
//!
//! The guest's CPU interface is the hardware's (ICV_* registers, fed from
//! list registers); only the distributor and redistributors are emulated.
//! A partition sees its own vCPUs and may program only the SPIs it owns:
//! those of its passthrough devices, which are physically backed, and those
//! of virtual devices (console, later virtio), which exist only here.
//! Everything else reads as zero and ignores writes.
//!
//! Side effects that reach the physical GIC are reported as `Effect`s, so
//! this module stays pure and host-testable.

use alloc::vec;
use alloc::vec::Vec;
use shared_devices::mmio::Width;

pub const MAX_INTID: usize = 1020;
const WORDS: usize = 1024 / 32;
const PIDR2_GICV3: u32 = 0x3b;
const IIDR: u32 = 0x0000_043b;

/// A change the physical GIC must follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A passthrough SPI was enabled or disabled by the guest.
    SpiEnable { intid: u32, enable: bool },
    /// A passthrough SPI was routed to a vCPU.
    SpiRoute { intid: u32, vcpu: usize },
    /// An SGI or PPI of a vCPU was enabled or disabled.
    PrivateEnable {
        vcpu: usize,
        intid: u32,
        enable: bool,
    },
}

fn bit(bits: &[u32], intid: usize) -> bool {
    bits[intid / 32] & (1 << (intid % 32)) != 0
}

fn set_bit(bits: &mut [u32], intid: usize, value: bool) {
    if value {
        bits[intid / 32] |= 1 << (intid % 32);
    } else {
        bits[intid / 32] &= !(1 << (intid % 32));
    }
}

/// Per-vCPU redistributor state (SGIs and PPIs, INTIDs 0..32).
#[derive(Clone, Debug)]
struct Redist {
    sleeping: bool,
    enabled: u32,
    priority: [u8; 32],
    config1: u32,
}

impl Redist {
    fn new() -> Self {
        Self {
            sleeping: true,
            enabled: 0,
            priority: [0; 32],
            config1: 0,
        }
    }
}

pub struct VGic {
    vcpus: usize,
    ctlr: u32,
    /// SPIs the partition may program.
    owned: [u32; WORDS],
    /// SPIs backed by a physical interrupt (passthrough).
    hardware: [u32; WORDS],
    enabled: [u32; WORDS],
    config: [u32; 64],
    priority: Vec<u8>,
    route: Vec<u8>,
    redist: Vec<Redist>,
    /// Number of interrupt lines reported in GICD_TYPER (multiple of 32).
    lines: usize,
}

impl VGic {
    /// `hardware_spis` are passthrough interrupts; `virtual_spis` belong to
    /// emulated devices. `lines` is the platform's ITLinesNumber-derived count.
    pub fn new(vcpus: usize, hardware_spis: &[u32], virtual_spis: &[u32], lines: usize) -> Self {
        let mut g = VGic {
            vcpus,
            ctlr: 0,
            owned: [0; WORDS],
            hardware: [0; WORDS],
            enabled: [0; WORDS],
            config: [0; 64],
            priority: vec![0; 1024],
            route: vec![0; 1024],
            redist: vec![Redist::new(); vcpus],
            lines: lines.clamp(64, 1024),
        };
        for &i in hardware_spis {
            set_bit(&mut g.owned, i as usize, true);
            set_bit(&mut g.hardware, i as usize, true);
        }
        for &i in virtual_spis {
            set_bit(&mut g.owned, i as usize, true);
        }
        g
    }

    /// Back to the reset state, for a partition restart. Passthrough SPIs
    /// that were enabled are reported as disabled, and those routed
    /// elsewhere as routed to vCPU 0 again.
    pub fn reset(&mut self, effects: &mut dyn FnMut(Effect)) {
        for intid in (32..1024).filter(|&i| bit(&self.hardware, i)) {
            if bit(&self.enabled, intid) {
                effects(Effect::SpiEnable {
                    intid: intid as u32,
                    enable: false,
                });
            }
            // Physically routed where the reset state says (vCPU 0).
            if self.route[intid] != 0 {
                effects(Effect::SpiRoute {
                    intid: intid as u32,
                    vcpu: 0,
                });
            }
        }
        for vcpu in 0..self.vcpus {
            for intid in 0..32 {
                if self.redist[vcpu].enabled & (1 << intid) != 0 {
                    effects(Effect::PrivateEnable {
                        vcpu,
                        intid,
                        enable: false,
                    });
                }
            }
        }
        *self = VGic {
            owned: self.owned,
            hardware: self.hardware,
            ..VGic::new(self.vcpus, &[], &[], self.lines)
        };
    }

    /// Is SPI `intid` the partition's and backed by a physical interrupt
    /// (passthrough)?
    pub fn is_hardware_spi(&self, intid: u32) -> bool {
        self.owns_spi(intid) && bit(&self.hardware, intid as usize)
    }

    pub fn owns_spi(&self, intid: u32) -> bool {
        (intid as usize) < 1024 && intid >= 32 && bit(&self.owned, intid as usize)
    }

    /// Is `intid` enabled for `vcpu` (SGI/PPI per vCPU, SPI globally)?
    pub fn enabled(&self, vcpu: usize, intid: u32) -> bool {
        match intid {
            0..32 => self
                .redist
                .get(vcpu)
                .is_some_and(|r| r.enabled & (1 << intid) != 0),
            _ if (intid as usize) < 1024 => {
                self.ctlr & 0b10 != 0 && bit(&self.enabled, intid as usize)
            }
            _ => false,
        }
    }

    pub fn priority(&self, vcpu: usize, intid: u32) -> u8 {
        match intid {
            0..32 => self
                .redist
                .get(vcpu)
                .map_or(0, |r| r.priority[intid as usize]),
            _ => self.priority.get(intid as usize).copied().unwrap_or(0),
        }
    }

    /// The vCPU an SPI is routed to.
    pub fn spi_target(&self, intid: u32) -> usize {
        self.route.get(intid as usize).copied().unwrap_or(0) as usize
    }

    // ---- distributor ----

    /// A guest read of the distributor. Registers are 32 bits wide and
    /// read with aligned 32-bit accesses, except the byte-accessible
    /// priorities (IPRIORITYR, any width inside the array) and the 64-bit
    /// routing registers (IROUTER, 64-bit or either 32-bit half); any other
    /// width or alignment reads as zero.
    pub fn dist_read(&self, offset: u64, width: Width) -> u64 {
        let off = offset as usize;
        match (offset, width) {
            (0x0400..0x0800, _) => self.read_priority_bytes(off - 0x400, width),
            (0x6100..0x7fe0, Width::Double) if width.aligned(offset) => self.route_of(off),
            (0x6100..0x7fe0, Width::Word) if width.aligned(offset) => {
                let value = self.route_of(off & !7);
                if off % 8 == 4 {
                    value >> 32
                } else {
                    value & 0xffff_ffff
                }
            }
            (_, Width::Word) if width.aligned(offset) => u64::from(self.dist_word(off)),
            _ => 0,
        }
    }

    fn dist_word(&self, off: usize) -> u32 {
        match off {
            0x0000 => self.ctlr,
            0x0004 => {
                let it_lines = (self.lines / 32 - 1) as u32;
                let cpus = (self.vcpus.min(8) - 1) as u32;
                (9 << 19) | (cpus << 5) | it_lines
            }
            0x0008 => IIDR,
            0x0080..0x0100 => self.owned_word(off - 0x80),
            0x0100..0x0200 => self.owned_word(off & 0x7f) & self.enabled[(off & 0x7f) / 4],
            0x0c00..0x0d00 => {
                let n = (off - 0xc00) / 4;
                if n >= 2 { self.config[n] } else { 0 }
            }
            0xffe8 => PIDR2_GICV3,
            _ => 0,
        }
    }

    fn route_of(&self, off: usize) -> u64 {
        let intid = (off - 0x6000) / 8;
        if self.owns_spi(intid as u32) {
            self.route[intid] as u64
        } else {
            0
        }
    }

    /// A guest write of the distributor; widths and alignment as for
    /// [`VGic::dist_read`], anything else is ignored.
    pub fn dist_write(
        &mut self,
        offset: u64,
        width: Width,
        value: u64,
        effects: &mut dyn FnMut(Effect),
    ) {
        let off = offset as usize;
        match (offset, width) {
            (0x0400..0x0800, _) => {
                for i in 0..width.bytes() as usize {
                    let intid = off - 0x400 + i;
                    if intid < 0x400 && self.owns_spi(intid as u32) {
                        self.priority[intid] = (value >> (8 * i)) as u8;
                    }
                }
            }
            // The low half holds Aff0..Aff2 and the routing mode; the high
            // half (Aff3) names no vCPU and is ignored.
            (0x6100..0x7fe0, Width::Double | Width::Word) if offset.is_multiple_of(8) => {
                self.write_route(off, value, effects)
            }
            (_, Width::Word) if width.aligned(offset) => {
                self.dist_write_word(off, value as u32, effects)
            }
            _ => {}
        }
    }

    fn dist_write_word(&mut self, off: usize, value: u32, effects: &mut dyn FnMut(Effect)) {
        match off {
            // EnableGrp1 and ARE; the distributor runs with a single security state (DS).
            0x0000 => self.ctlr = (value & 0b11) | (1 << 4) | (1 << 6),
            0x0100..0x0180 => self.write_enable(off - 0x100, value, true, effects),
            0x0180..0x0200 => self.write_enable(off - 0x180, value, false, effects),
            0x0c08..0x0d00 => {
                let n = (off - 0xc00) / 4;
                let mut mask = 0u32;
                for i in 0..16 {
                    if self.owns_spi((n * 16 + i) as u32) {
                        mask |= 0b11 << (2 * i);
                    }
                }
                self.config[n] = (self.config[n] & !mask) | (value & mask);
            }
            _ => {}
        }
    }

    fn write_route(&mut self, off: usize, value: u64, effects: &mut dyn FnMut(Effect)) {
        let intid = (off - 0x6000) / 8;
        if !self.owns_spi(intid as u32) {
            return;
        }
        // IRM (any vCPU) picks vCPU 0; affinity beyond Aff0 names no vCPU.
        let aff0 = (value & 0xff) as usize;
        let routing_mode_any = value & (1 << 31) != 0;
        let vcpu = if routing_mode_any || value & 0xff_00ff_ff00 != 0 || aff0 >= self.vcpus {
            0
        } else {
            aff0
        };
        self.route[intid] = vcpu as u8;
        if bit(&self.hardware, intid) {
            effects(Effect::SpiRoute {
                intid: intid as u32,
                vcpu,
            });
        }
    }

    fn owned_word(&self, byte_offset: usize) -> u32 {
        self.owned.get(byte_offset / 4).copied().unwrap_or(0)
    }

    fn write_enable(
        &mut self,
        byte_offset: usize,
        value: u32,
        enable: bool,
        effects: &mut dyn FnMut(Effect),
    ) {
        let word = byte_offset / 4;
        let changed = value & self.owned_word(byte_offset);
        for b in 0..32 {
            if changed & (1 << b) == 0 {
                continue;
            }
            let intid = word * 32 + b;
            set_bit(&mut self.enabled, intid, enable);
            if bit(&self.hardware, intid) {
                effects(Effect::SpiEnable {
                    intid: intid as u32,
                    enable,
                });
            }
        }
    }

    /// `width` bytes of the SPI priority array from byte `start`; bytes of
    /// SPIs the partition does not own (and bytes past the array) read 0.
    fn read_priority_bytes(&self, start: usize, width: Width) -> u64 {
        (0..width.bytes() as usize).rev().fold(0u64, |acc, i| {
            let intid = start + i;
            let byte = if intid < 0x400 && self.owns_spi(intid as u32) {
                self.priority[intid]
            } else {
                0
            };
            (acc << 8) | byte as u64
        })
    }

    // ---- redistributors: one 128 KiB frame per vCPU ----

    /// A guest read of vCPU `vcpu`'s redistributor frame. 32-bit registers
    /// take aligned 32-bit accesses; GICR_TYPER is 64 bits (one 64-bit or
    /// two 32-bit reads); the SGI/PPI priorities are byte-accessible; any
    /// other width or alignment reads as zero.
    pub fn redist_read(&self, vcpu: usize, offset: u64, width: Width) -> u64 {
        let Some(r) = self.redist.get(vcpu) else {
            return 0;
        };
        match (offset, width) {
            (0x0008, Width::Double) => self.redist_typer(vcpu),
            (0x1_0400..0x1_0420, _) => {
                let start = (offset - 0x1_0400) as usize;
                (0..width.bytes() as usize).rev().fold(0u64, |acc, i| {
                    let byte = r.priority.get(start + i).copied().unwrap_or(0);
                    (acc << 8) | byte as u64
                })
            }
            (_, Width::Word) if width.aligned(offset) => match offset {
                0x0004 => IIDR as u64,
                0x0008 => self.redist_typer(vcpu) & 0xffff_ffff,
                0x000c => self.redist_typer(vcpu) >> 32,
                // ProcessorSleep and ChildrenAsleep follow each other at once.
                0x0014 if r.sleeping => 0b110,
                0xffe8 => PIDR2_GICV3 as u64,
                0x1_0080 => 0xffff_ffff,
                0x1_0100 | 0x1_0180 => r.enabled as u64,
                0x1_0c00 => 0xaaaa_aaaa, // SGIs are edge-triggered
                0x1_0c04 => r.config1 as u64,
                _ => 0,
            },
            _ => 0,
        }
    }

    fn redist_typer(&self, vcpu: usize) -> u64 {
        let last = (vcpu + 1 == self.vcpus) as u64;
        ((vcpu as u64) << 32) | ((vcpu as u64) << 8) | (last << 4)
    }

    /// A guest write of vCPU `vcpu`'s redistributor frame; widths and
    /// alignment as for [`VGic::redist_read`], anything else is ignored.
    pub fn redist_write(
        &mut self,
        vcpu: usize,
        offset: u64,
        width: Width,
        value: u64,
        effects: &mut dyn FnMut(Effect),
    ) {
        let Some(r) = self.redist.get_mut(vcpu) else {
            return;
        };
        match (offset, width) {
            (0x1_0400..0x1_0420, _) => {
                let start = (offset - 0x1_0400) as usize;
                for i in 0..width.bytes() as usize {
                    if let Some(p) = r.priority.get_mut(start + i) {
                        *p = (value >> (8 * i)) as u8;
                    }
                }
            }
            (_, Width::Word) if width.aligned(offset) => match offset {
                0x0014 => r.sleeping = value & 0b10 != 0,
                0x1_0100 | 0x1_0180 => {
                    let enable = offset == 0x1_0100;
                    for intid in 0..32 {
                        if value & (1 << intid) == 0 {
                            continue;
                        }
                        let was = r.enabled & (1 << intid) != 0;
                        if enable {
                            r.enabled |= 1 << intid
                        } else {
                            r.enabled &= !(1 << intid)
                        }
                        if was != enable {
                            effects(Effect::PrivateEnable {
                                vcpu,
                                intid,
                                enable,
                            });
                        }
                    }
                }
                0x1_0c04 => r.config1 = value as u32,
                _ => {}
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(g: &mut VGic, f: impl FnOnce(&mut VGic, &mut dyn FnMut(Effect))) -> Vec<Effect> {
        let mut out = Vec::new();
        f(g, &mut |e| out.push(e));
        out
    }

    #[test]
    fn only_owned_spis_are_programmable() {
        let mut g = VGic::new(2, &[39], &[33], 288);
        let fx = collect(&mut g, |g, fx| {
            g.dist_write(0x0, Width::Word, 0b10, fx);
            g.dist_write(0x104, Width::Word, 0xffff_ffff, fx); // SPIs 32..63
        });
        assert_eq!(
            fx,
            [Effect::SpiEnable {
                intid: 39,
                enable: true
            }],
            "only the passthrough SPI reaches hardware"
        );
        assert!(g.enabled(0, 39));
        assert!(g.enabled(0, 33), "virtual SPI enabled in the model");
        assert!(!g.enabled(0, 40), "foreign SPI stays disabled");
        assert_eq!(g.dist_read(0x104, Width::Word), (1 << 7) | (1 << 1));
        assert_eq!(
            g.dist_read(0x84, Width::Word),
            (1 << 7) | (1 << 1),
            "IGROUPR shows owned SPIs"
        );
    }

    #[test]
    fn priorities_are_byte_accessible() {
        let mut g = VGic::new(1, &[39], &[], 288);
        collect(&mut g, |g, fx| {
            g.dist_write(0x400 + 39, Width::Byte, 0xa0, fx);
            g.dist_write(0x400 + 40, Width::Byte, 0xb0, fx); // not owned
        });
        assert_eq!(g.priority(0, 39), 0xa0);
        assert_eq!(g.dist_read(0x400 + 36, Width::Word), 0xa0 << 24);
        assert_eq!(g.priority(0, 40), 0);
    }

    #[test]
    fn routing_names_vcpus_not_physical_cores() {
        let mut g = VGic::new(2, &[39], &[], 288);
        let fx = collect(&mut g, |g, fx| {
            g.dist_write(0x6000 + 39 * 8, Width::Double, 1, fx);
            g.dist_write(0x6000 + 39 * 8, Width::Double, 5, fx); // no such vCPU: falls back to vCPU 0
        });
        assert_eq!(
            fx,
            [
                Effect::SpiRoute { intid: 39, vcpu: 1 },
                Effect::SpiRoute { intid: 39, vcpu: 0 }
            ]
        );
    }

    #[test]
    fn redistributors_describe_vcpus() {
        let mut g = VGic::new(2, &[], &[], 288);
        assert_eq!(g.redist_read(0, 0x8, Width::Double), 0);
        assert_eq!(
            g.redist_read(1, 0x8, Width::Double),
            (1 << 32) | (1 << 8) | (1 << 4),
            "vCPU 1 is last"
        );
        assert_eq!(
            g.redist_read(0, 0x14, Width::Word),
            0b110,
            "asleep until woken"
        );
        let fx = collect(&mut g, |g, fx| {
            g.redist_write(1, 0x14, Width::Word, 0, fx);
            g.redist_write(1, 0x1_0100, Width::Word, (1 << 27) | (1 << 1), fx);
            g.redist_write(1, 0x1_0100, Width::Word, 1 << 27, fx); // already enabled: no new effect
        });
        assert_eq!(g.redist_read(1, 0x14, Width::Word), 0);
        assert_eq!(
            fx,
            [
                Effect::PrivateEnable {
                    vcpu: 1,
                    intid: 1,
                    enable: true
                },
                Effect::PrivateEnable {
                    vcpu: 1,
                    intid: 27,
                    enable: true
                }
            ]
        );
        assert!(g.enabled(1, 27));
        assert!(!g.enabled(0, 27));
    }

    /// The review's attack (a byte load of the last SGI/PPI priority byte
    /// indexed past the array and panicked with the vGIC lock held), and
    /// every other width and offset around the registers.
    #[test]
    fn any_width_at_any_offset_is_answered() {
        let mut g = VGic::new(2, &[39], &[33], 288);
        collect(&mut g, |g, fx| {
            g.redist_write(0, 0x1_041c, Width::Word, 0x8070_6050, fx);
        });
        assert_eq!(g.redist_read(0, 0x1_041d, Width::Byte), 0x60);
        assert_eq!(g.redist_read(0, 0x1_041f, Width::Byte), 0x80);
        assert_eq!(
            g.redist_read(0, 0x1_041e, Width::Double),
            0x8070,
            "bytes past the array read 0"
        );
        assert_eq!(
            g.redist_read(0, 0xc, Width::Word),
            0,
            "TYPER high half of vCPU 0"
        );
        assert_eq!(
            g.redist_read(0, 0x9, Width::Byte),
            0,
            "TYPER takes no byte access"
        );
        let ranges = [
            0..0x200u64,
            0x3f0..0x810,
            0x6000..0x6110,
            0x7fd0..0x8010,
            0xffe0..0x1_0010,
        ];
        for width in Width::ALL {
            for offset in ranges
                .iter()
                .cloned()
                .flatten()
                .chain([0x1_0400 - 8, u64::MAX - 3])
            {
                for value in [0, u64::MAX] {
                    collect(&mut g, |g, fx| g.dist_write(offset, width, value, fx));
                    assert!(g.dist_read(offset, width) <= width.mask());
                }
            }
            let redist = [
                0..0x20u64,
                0xffe0..0x1_0200,
                0x1_03f0..0x1_0440,
                0x1_0bf0..0x1_0c10,
            ];
            for vcpu in 0..3 {
                for offset in redist.iter().cloned().flatten().chain([0x1_fff8, u64::MAX]) {
                    for value in [0, u64::MAX] {
                        collect(&mut g, |g, fx| {
                            g.redist_write(vcpu, offset, width, value, fx)
                        });
                        assert!(g.redist_read(vcpu, offset, width) <= width.mask());
                    }
                }
            }
        }
        assert!(
            !g.owns_spi(40),
            "no write made a foreign SPI the partition's"
        );
        assert!(!g.enabled(0, 40));
    }

    #[test]
    fn reset_disables_hardware_state() {
        let mut g = VGic::new(2, &[39], &[], 288);
        collect(&mut g, |g, fx| {
            g.dist_write(0x104, Width::Word, 1 << 7, fx);
            g.dist_write(0x6000 + 39 * 8, Width::Double, 1, fx);
            g.redist_write(0, 0x1_0100, Width::Word, 1 << 27, fx);
        });
        let fx = collect(&mut g, |g, fx| g.reset(fx));
        assert_eq!(
            fx,
            [
                Effect::SpiEnable {
                    intid: 39,
                    enable: false
                },
                Effect::SpiRoute { intid: 39, vcpu: 0 },
                Effect::PrivateEnable {
                    vcpu: 0,
                    intid: 27,
                    enable: false
                }
            ]
        );
        assert!(!g.enabled(0, 39));
        assert!(g.owns_spi(39), "ownership survives a reset");
    }
}

/// Decodes a guest write to ICC_SGI1R_EL1: the SGI number and the set of
/// the partition's vCPUs it targets (bit n = vCPU n). Targets outside the
/// partition (other affinity levels, numbers beyond its vCPUs) are dropped.
pub fn sgi_targets(value: u64, sender: usize, vcpus: usize) -> (u32, u64) {
    let intid = ((value >> 24) & 0xf) as u32;
    let all = if vcpus >= 64 { !0 } else { (1u64 << vcpus) - 1 };
    let broadcast = value & (1 << 40) != 0;
    let targets = if broadcast {
        all & !(1 << sender)
    } else {
        let higher_affinity = (value >> 16) & 0xff | (value >> 32) & 0xff | (value >> 48) & 0xff;
        let range_selector = (value >> 44) & 0xf;
        if higher_affinity != 0 || range_selector >= 4 {
            0
        } else {
            (value & 0xffff) << (16 * range_selector)
        }
    };
    (intid, targets & all)
}

#[cfg(test)]
mod sgi_tests {
    use super::sgi_targets;

    #[test]
    fn target_lists_and_broadcast() {
        assert_eq!(sgi_targets((1 << 24) | 0b10, 0, 2), (1, 0b10));
        assert_eq!(
            sgi_targets((3 << 24) | 0b1111, 0, 2),
            (3, 0b11),
            "only own vCPUs"
        );
        assert_eq!(
            sgi_targets((1 << 40) | (5 << 24), 1, 3),
            (5, 0b101),
            "all but self"
        );
        assert_eq!(
            sgi_targets((1 << 16) | 1, 0, 2),
            (0, 0),
            "Aff1 != 0 names no vCPU"
        );
        assert_eq!(
            sgi_targets((1 << 44) | 1, 0, 2),
            (0, 0),
            "range 1 is vCPU 16+"
        );
    }
}
