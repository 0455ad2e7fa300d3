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
    /// that were enabled are reported as disabled.
    pub fn reset(&mut self, effects: &mut dyn FnMut(Effect)) {
        for intid in 32..1024 {
            if bit(&self.enabled, intid) && bit(&self.hardware, intid) {
                effects(Effect::SpiEnable {
                    intid: intid as u32,
                    enable: false,
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

    pub fn dist_read(&self, offset: u64, size: u8) -> u64 {
        let off = offset as usize;
        match off {
            0x0000 => self.ctlr as u64,
            0x0004 => {
                let it_lines = (self.lines / 32 - 1) as u64;
                let cpus = (self.vcpus.min(8) - 1) as u64;
                (9 << 19) | (cpus << 5) | it_lines
            }
            0x0008 => IIDR as u64,
            0x0080..0x0100 => self.owned_word(off - 0x80) as u64,
            0x0100..0x0200 => (self.owned_word(off & 0x7f) & self.enabled[(off & 0x7f) / 4]) as u64,
            0x0400..0x0800 => self.read_bytes(&self.priority, off - 0x400, size),
            0x0c00..0x0d00 => {
                let n = (off - 0xc00) / 4;
                if n >= 2 { self.config[n] as u64 } else { 0 }
            }
            0x6100..0x7fe0 => {
                let intid = (off - 0x6000) / 8;
                let value = if self.owns_spi(intid as u32) {
                    self.route[intid] as u64
                } else {
                    0
                };
                if off % 8 == 4 { value >> 32 } else { value }
            }
            0xffe8 => PIDR2_GICV3 as u64,
            _ => 0,
        }
    }

    pub fn dist_write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        effects: &mut dyn FnMut(Effect),
    ) {
        let off = offset as usize;
        match off {
            // EnableGrp1 and ARE; the distributor runs with a single security state (DS).
            0x0000 => self.ctlr = (value as u32 & 0b11) | (1 << 4) | (1 << 6),
            0x0100..0x0180 => self.write_enable(off - 0x100, value as u32, true, effects),
            0x0180..0x0200 => self.write_enable(off - 0x180, value as u32, false, effects),
            0x0400..0x0800 => {
                for i in 0..size as usize {
                    let intid = off - 0x400 + i;
                    if self.owns_spi(intid as u32) {
                        self.priority[intid] = (value >> (8 * i)) as u8;
                    }
                }
            }
            0x0c08..0x0d00 => {
                let n = (off - 0xc00) / 4;
                let mut mask = 0u32;
                for i in 0..16 {
                    if self.owns_spi((n * 16 + i) as u32) {
                        mask |= 0b11 << (2 * i);
                    }
                }
                self.config[n] = (self.config[n] & !mask) | (value as u32 & mask);
            }
            0x6100..0x7fe0 if off.is_multiple_of(8) => {
                let intid = (off - 0x6000) / 8;
                if self.owns_spi(intid as u32) {
                    // IRM (any vCPU) picks vCPU 0; affinity beyond Aff0 names no vCPU.
                    let aff0 = (value & 0xff) as usize;
                    let routing_mode_any = value & (1 << 31) != 0;
                    let vcpu =
                        if routing_mode_any || value & 0xff_00ff_ff00 != 0 || aff0 >= self.vcpus {
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
            }
            _ => {}
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

    fn read_bytes(&self, bytes: &[u8], start: usize, size: u8) -> u64 {
        (0..size as usize).rev().fold(0u64, |acc, i| {
            let intid = start + i;
            let byte = if self.owns_spi(intid as u32) {
                bytes[intid]
            } else {
                0
            };
            (acc << 8) | byte as u64
        })
    }

    // ---- redistributors: one 128 KiB frame per vCPU ----

    pub fn redist_read(&self, vcpu: usize, offset: u64, _size: u8) -> u64 {
        let Some(r) = self.redist.get(vcpu) else {
            return 0;
        };
        match offset {
            0x0004 => IIDR as u64,
            0x0008 | 0x000c => {
                let last = (vcpu + 1 == self.vcpus) as u64;
                let typer = ((vcpu as u64) << 32) | ((vcpu as u64) << 8) | (last << 4);
                if offset == 0x000c { typer >> 32 } else { typer }
            }
            // ProcessorSleep and ChildrenAsleep follow each other at once.
            0x0014 if r.sleeping => 0b110,
            0xffe8 => PIDR2_GICV3 as u64,
            0x1_0080 => 0xffff_ffff,
            0x1_0100 | 0x1_0180 => r.enabled as u64,
            0x1_0400..0x1_0420 => {
                let start = (offset - 0x1_0400) as usize;
                (0..4)
                    .rev()
                    .fold(0u64, |acc, i| (acc << 8) | r.priority[start + i] as u64)
            }
            0x1_0c00 => 0xaaaa_aaaa, // SGIs are edge-triggered
            0x1_0c04 => r.config1 as u64,
            _ => 0,
        }
    }

    pub fn redist_write(
        &mut self,
        vcpu: usize,
        offset: u64,
        size: u8,
        value: u64,
        effects: &mut dyn FnMut(Effect),
    ) {
        let Some(r) = self.redist.get_mut(vcpu) else {
            return;
        };
        match offset {
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
            0x1_0400..0x1_0420 => {
                let start = (offset - 0x1_0400) as usize;
                for i in 0..(size as usize).min(32 - start) {
                    r.priority[start + i] = (value >> (8 * i)) as u8;
                }
            }
            0x1_0c04 => r.config1 = value as u32,
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
            g.dist_write(0x0, 4, 0b10, fx);
            g.dist_write(0x104, 4, 0xffff_ffff, fx); // SPIs 32..63
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
        assert_eq!(g.dist_read(0x104, 4), (1 << 7) | (1 << 1));
        assert_eq!(
            g.dist_read(0x84, 4),
            (1 << 7) | (1 << 1),
            "IGROUPR shows owned SPIs"
        );
    }

    #[test]
    fn priorities_are_byte_accessible() {
        let mut g = VGic::new(1, &[39], &[], 288);
        collect(&mut g, |g, fx| {
            g.dist_write(0x400 + 39, 1, 0xa0, fx);
            g.dist_write(0x400 + 40, 1, 0xb0, fx); // not owned
        });
        assert_eq!(g.priority(0, 39), 0xa0);
        assert_eq!(g.dist_read(0x400 + 36, 4), 0xa0 << 24);
        assert_eq!(g.priority(0, 40), 0);
    }

    #[test]
    fn routing_names_vcpus_not_physical_cores() {
        let mut g = VGic::new(2, &[39], &[], 288);
        let fx = collect(&mut g, |g, fx| {
            g.dist_write(0x6000 + 39 * 8, 8, 1, fx);
            g.dist_write(0x6000 + 39 * 8, 8, 5, fx); // no such vCPU: falls back to vCPU 0
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
        assert_eq!(g.redist_read(0, 0x8, 8), 0);
        assert_eq!(
            g.redist_read(1, 0x8, 8),
            (1 << 32) | (1 << 8) | (1 << 4),
            "vCPU 1 is last"
        );
        assert_eq!(g.redist_read(0, 0x14, 4), 0b110, "asleep until woken");
        let fx = collect(&mut g, |g, fx| {
            g.redist_write(1, 0x14, 4, 0, fx);
            g.redist_write(1, 0x1_0100, 4, (1 << 27) | (1 << 1), fx);
            g.redist_write(1, 0x1_0100, 4, 1 << 27, fx); // already enabled: no new effect
        });
        assert_eq!(g.redist_read(1, 0x14, 4), 0);
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

    #[test]
    fn reset_disables_hardware_state() {
        let mut g = VGic::new(1, &[39], &[], 288);
        collect(&mut g, |g, fx| {
            g.dist_write(0x104, 4, 1 << 7, fx);
            g.redist_write(0, 0x1_0100, 4, 1 << 27, fx);
        });
        let fx = collect(&mut g, |g, fx| g.reset(fx));
        assert_eq!(
            fx,
            [
                Effect::SpiEnable {
                    intid: 39,
                    enable: false
                },
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
