//! A hostile guest against its virtual GIC: arbitrary distributor and
//! redistributor accesses (any offset, also far past the windows, any
//! width and alignment, any value), from any vCPU, with resets (partition
//! restarts) in between.
//!
//! Checked besides "no panic":
//! - every read fits in its width;
//! - the only effects on the physical GIC are for the partition's own
//!   passthrough SPIs (enable, route to one of its vCPUs) and its own
//!   vCPUs' private interrupts;
//! - the partition owns the same SPIs after anything it did, and a foreign
//!   SPI never reads back as enabled, routed or prioritised;
//! - a reset reports every passthrough SPI it disables and leaves nothing
//!   enabled.

#![no_main]

use arbitrary::Arbitrary;
use hypervisor::partition::vgic::{Effect, VGic};
use libfuzzer_sys::fuzz_target;
use shared_devices::mmio::Width;

const HARDWARE: [u32; 3] = [39, 40, 100];
const VIRTUAL: [u32; 3] = [33, 34, 48];
const FOREIGN: [u32; 3] = [35, 41, 200];
const GICR_STRIDE: u64 = 0x2_0000;

#[derive(Arbitrary, Debug)]
enum Offset {
    /// In the distributor's 64 KiB, or a redistributor frame.
    Near(u32),
    /// Anywhere.
    Far(u64),
    /// The SPI registers that matter, for an interesting INTID.
    Spi { register: u8, intid: u8 },
}

#[derive(Arbitrary, Debug)]
enum Op {
    DistRead { offset: Offset, width: u8 },
    DistWrite { offset: Offset, width: u8, value: u64 },
    RedistRead { vcpu: u8, offset: Offset, width: u8 },
    RedistWrite { vcpu: u8, offset: Offset, width: u8, value: u64 },
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Input {
    vcpus: u8,
    ops: Vec<Op>,
}

fn width(w: u8) -> Width {
    Width::ALL[usize::from(w % 4)]
}

fn offset(o: &Offset) -> u64 {
    match *o {
        Offset::Near(n) => u64::from(n) % (2 * GICR_STRIDE + 0x100),
        Offset::Far(n) => n,
        Offset::Spi { register, intid } => {
            let intid = [HARDWARE, VIRTUAL, FOREIGN].concat()[usize::from(intid) % 9] as u64;
            match register % 6 {
                0 => 0x100 + intid / 32 * 4,   // ISENABLER
                1 => 0x180 + intid / 32 * 4,   // ICENABLER
                2 => 0x400 + intid,            // IPRIORITYR (byte)
                3 => 0xc00 + intid / 16 * 4,   // ICFGR
                4 => 0x6000 + intid * 8,       // IROUTER
                _ => 0x6000 + intid * 8 + 4,   // IROUTER, high half
            }
        }
    }
}

fn check_effect(e: &Effect, vcpus: usize) {
    match *e {
        Effect::SpiEnable { intid, .. } => {
            assert!(HARDWARE.contains(&intid), "enable of {intid}, not passthrough");
        }
        Effect::SpiRoute { intid, vcpu } => {
            assert!(HARDWARE.contains(&intid), "route of {intid}, not passthrough");
            assert!(vcpu < vcpus, "routed to vCPU {vcpu} of {vcpus}");
        }
        Effect::PrivateEnable { vcpu, intid, .. } => {
            assert!(vcpu < vcpus && intid < 32, "private {intid} of vCPU {vcpu}");
        }
    }
}

fuzz_target!(|input: Input| {
    let vcpus = usize::from(input.vcpus % 4) + 1;
    let mut g = VGic::new(vcpus, &HARDWARE, &VIRTUAL, 288);
    for op in input.ops.iter().take(512) {
        let mut effects = Vec::new();
        match op {
            Op::DistRead { offset: o, width: w } => {
                let v = g.dist_read(offset(o), width(*w));
                assert!(v <= width(*w).mask(), "dist read {v:#x} wider than {:?}", width(*w));
            }
            Op::DistWrite { offset: o, width: w, value } => {
                g.dist_write(offset(o), width(*w), *value, &mut |e| effects.push(e));
            }
            Op::RedistRead { vcpu, offset: o, width: w } => {
                let v = g.redist_read(usize::from(*vcpu), offset(o), width(*w));
                assert!(v <= width(*w).mask(), "redist read {v:#x} wider than {:?}", width(*w));
            }
            Op::RedistWrite { vcpu, offset: o, width: w, value } => {
                g.redist_write(usize::from(*vcpu), offset(o), width(*w), *value, &mut |e| {
                    effects.push(e)
                });
            }
            Op::Reset => {
                g.reset(&mut |e| effects.push(e));
                for intid in 32..1024 {
                    assert!(!g.enabled(0, intid), "{intid} enabled after a reset");
                }
            }
        }
        for e in &effects {
            check_effect(e, vcpus);
        }
        for intid in HARDWARE.iter().chain(&VIRTUAL) {
            assert!(g.owns_spi(*intid), "lost ownership of {intid}");
        }
        for &intid in &FOREIGN {
            assert!(!g.owns_spi(intid), "gained {intid}");
            assert!(!g.enabled(0, intid), "foreign {intid} enabled");
            assert_eq!(g.priority(0, intid), 0, "foreign {intid} prioritised");
            assert_eq!(g.spi_target(intid), 0, "foreign {intid} routed");
        }
    }
});
