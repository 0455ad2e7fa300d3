//! What a test partition learns from its device tree.

use crate::MAX_CPUS;
use fdt::Fdt;
use fdt::node::FdtNode;

/// How PSCI calls reach the firmware (or hypervisor): `/psci/method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

/// The devices and facts the runtime needs, all taken from the device tree.
#[derive(Clone, Copy, Debug)]
pub struct Platform<'a> {
    /// Number of `/cpus/cpu@N` nodes.
    pub cpu_count: usize,
    /// `reg` (MPIDR affinity) of the first `MAX_CPUS` CPUs, in DT order.
    pub cpu_mpidr: [u64; MAX_CPUS],
    /// Sum of all `/memory` regions, in bytes.
    pub memory_bytes: u64,
    /// Base of the lowest `/memory` region (0 when there is none).
    pub memory_base: u64,
    /// PL011 base: the `stdout-path` node if it is a PL011, else the first one.
    pub uart: Option<usize>,
    /// GICv3 distributor base.
    pub gicd: Option<usize>,
    /// First GICv3 redistributor region (base, size).
    pub gicr: Option<(usize, usize)>,
    /// `redistributor-stride`, when the DT gives one.
    pub gicr_stride: Option<usize>,
    pub psci: Conduit,
    /// SP805 watchdog registers, if the partition has one.
    pub watchdog: Option<usize>,
    /// INTID of the EL1 virtual timer (PPI 11, INTID 27 on `virt`).
    pub vtimer_intid: u32,
    /// INTID of the EL1 physical timer (PPI 14, INTID 30 on `virt`).
    pub ptimer_intid: u32,
    /// `/chosen/hv,restart-count`, 0 when absent.
    pub restart_count: u32,
    /// `/chosen/bootargs`, empty when absent.
    pub bootargs: &'a str,
}

/// The physical timer interrupt when the DT does not say otherwise.
pub const DEFAULT_PTIMER_INTID: u32 = 30;

/// The virtual timer interrupt when the DT does not say otherwise.
pub const DEFAULT_VTIMER_INTID: u32 = 27;

fn is_node(node: &FdtNode<'_, '_>, name: &str) -> bool {
    node.name == name
        || node
            .name
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('@'))
}

fn compatible_with(node: &FdtNode<'_, '_>, with: &str) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|s| s == with))
}

fn first_reg(node: &FdtNode<'_, '_>) -> Option<usize> {
    node.reg()?.next().map(|r| r.starting_address as usize)
}

fn be_cells(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

impl<'a> Platform<'a> {
    /// Reads everything from `dt`; what is missing is `None` (or a default).
    pub fn parse(dt: &Fdt<'a>) -> Self {
        let mut cpu_count = 0;
        let mut cpu_mpidr = [0u64; MAX_CPUS];
        if let Some(cpus) = dt.find_node("/cpus") {
            for cpu in cpus.children().filter(|n| is_node(n, "cpu")) {
                if cpu_count < MAX_CPUS {
                    let reg = cpu.property("reg").and_then(|p| p.as_usize());
                    cpu_mpidr[cpu_count] = reg.unwrap_or(cpu_count) as u64;
                }
                cpu_count += 1;
            }
        }

        let memory_bytes = dt
            .find_node("/")
            .into_iter()
            .flat_map(|root| root.children())
            .filter(|n| is_node(n, "memory"))
            .flat_map(|n| n.reg().into_iter().flatten())
            .map(|r| r.size.unwrap_or(0) as u64)
            .sum();

        let memory_base = dt
            .find_node("/")
            .into_iter()
            .flat_map(|root| root.children())
            .filter(|n| is_node(n, "memory"))
            .flat_map(|n| n.reg().into_iter().flatten())
            .map(|r| r.starting_address as u64)
            .min()
            .unwrap_or(0);

        let stdout = dt.find_node("/chosen").and_then(|_| dt.chosen().stdout());
        let uart = stdout
            .filter(|n| compatible_with(n, "arm,pl011"))
            .or_else(|| dt.find_compatible(&["arm,pl011"]))
            .and_then(|n| first_reg(&n));

        let gic = dt.find_compatible(&["arm,gic-v3"]);
        let mut gic_regs = gic.and_then(|n| n.reg()).into_iter().flatten();
        let gicd = gic_regs.next().map(|r| r.starting_address as usize);
        let gicr = gic_regs
            .next()
            .map(|r| (r.starting_address as usize, r.size.unwrap_or(0)));
        let gicr_stride = gic
            .and_then(|n| n.property("redistributor-stride"))
            .and_then(|p| p.as_usize());

        let psci = dt
            .find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
            .or_else(|| dt.find_node("/psci"))
            .and_then(|n| n.property("method"))
            .and_then(|p| p.as_str());
        let psci = if psci == Some("smc") {
            Conduit::Smc
        } else {
            Conduit::Hvc
        };

        let watchdog = dt
            .find_compatible(&["arm,sp805"])
            .and_then(|n| first_reg(&n));

        let interrupt_cells = gic.and_then(|n| n.interrupt_cells()).unwrap_or(3);
        // Secure phys, non-secure phys, virtual, hypervisor.
        let timer_intid = |index: usize| {
            dt.find_compatible(&["arm,armv8-timer"])
                .and_then(|n| n.property("interrupts"))
                .and_then(|p| gic_intid(&mut be_cells(p.value).skip(index * interrupt_cells)))
        };
        let vtimer_intid = timer_intid(2).unwrap_or(DEFAULT_VTIMER_INTID);
        let ptimer_intid = timer_intid(1).unwrap_or(DEFAULT_PTIMER_INTID);

        let chosen = dt.find_node("/chosen");
        let restart_count = chosen
            .and_then(|n| n.property("hv,restart-count"))
            .and_then(|p| p.as_usize())
            .unwrap_or(0) as u32;
        let bootargs = chosen
            .and_then(|n| n.property("bootargs"))
            .and_then(|p| core::str::from_utf8(p.value).ok())
            .map(|s| s.trim_end_matches('\0'))
            .unwrap_or("");

        Platform {
            cpu_count,
            cpu_mpidr,
            memory_bytes,
            memory_base,
            uart,
            gicd,
            gicr,
            gicr_stride,
            psci,
            watchdog,
            vtimer_intid,
            ptimer_intid,
            restart_count,
            bootargs,
        }
    }

    /// The DT index of the CPU whose MPIDR affinity is `mpidr`.
    pub fn cpu_index(&self, mpidr: u64) -> Option<usize> {
        let affinity = mpidr & 0xff_00ff_ffff;
        self.cpu_mpidr[..self.cpu_count.min(MAX_CPUS)]
            .iter()
            .position(|&m| m & 0xff_00ff_ffff == affinity)
    }
}

/// A `virtio,mmio` transport of the device tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmio {
    /// Base of its register window (the first `reg` entry).
    pub base: usize,
    /// Size of the window (0 when the DT gives none).
    pub size: usize,
    /// Its interrupt as a GIC INTID (SPI n = 32 + n), if it has one the
    /// runtime understands (three-cell GIC specifier).
    pub intid: Option<u32>,
}

/// The INTID of a three-cell GIC interrupt specifier (`<kind number flags>`).
fn gic_intid(cells: &mut impl Iterator<Item = u32>) -> Option<u32> {
    let kind = cells.next()?;
    let number = cells.next()?;
    match kind {
        0 => Some(number + 32),
        1 => Some(number + 16),
        _ => None,
    }
}

/// Every node compatible with `virtio,mmio` that has a `reg`, in DT order.
pub fn virtio_mmio<'b, 'a: 'b>(dt: &'b Fdt<'a>) -> impl Iterator<Item = VirtioMmio> + 'b {
    let root_parent = dt
        .find_node("/")
        .and_then(|root| root.interrupt_parent())
        .and_then(|gic| gic.interrupt_cells());
    dt.all_nodes()
        .filter(|n| compatible_with(n, "virtio,mmio"))
        .filter_map(move |node| {
            let reg = node.reg()?.next()?;
            let cells = node
                .interrupt_parent()
                .and_then(|gic| gic.interrupt_cells())
                .or(root_parent)
                .unwrap_or(3);
            let intid = node
                .property("interrupts")
                .filter(|_| cells == 3)
                .and_then(|p| gic_intid(&mut be_cells(p.value)));
            Some(VirtioMmio {
                base: reg.starting_address as usize,
                size: reg.size.unwrap_or(0),
                intid,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `qemu-system-aarch64 -M virt,gic-version=3 -smp 2 -m 128M`, dumped.
    const NATIVE: &[u8] = include_bytes!("../testdata/qemu-virt-smp2.dtb");
    /// The same with smc, an extra memory node, bootargs and a restart count.
    const VARIANT: &[u8] = include_bytes!("../testdata/variant-smc.dtb");
    /// A partition-like tree with two virtio-mmio block transports
    /// (`testdata/partition-blk.dts`, compiled with `dtc`).
    const BLK: &[u8] = include_bytes!("../testdata/partition-blk.dtb");

    #[test]
    fn native_qemu() {
        let dt = Fdt::new(NATIVE).unwrap();
        let p = Platform::parse(&dt);
        assert_eq!(p.cpu_count, 2);
        assert_eq!(&p.cpu_mpidr[..2], &[0, 1]);
        assert_eq!(p.memory_bytes, 128 << 20);
        assert_eq!(p.memory_base, 0x4000_0000);
        assert_eq!(p.uart, Some(0x900_0000));
        assert_eq!(p.gicd, Some(0x800_0000));
        assert_eq!(p.gicr.map(|r| r.0), Some(0x80a_0000));
        assert_eq!(p.gicr_stride, None);
        assert_eq!(p.psci, Conduit::Hvc);
        assert_eq!(p.vtimer_intid, 27);
        assert_eq!(p.ptimer_intid, 30);
        assert_eq!(p.restart_count, 0);
        assert_eq!(p.bootargs, "");
        assert_eq!(p.cpu_index(0x8000_0001), Some(1));
        assert_eq!(p.cpu_index(2), None);
    }

    #[test]
    fn partition_like() {
        let dt = Fdt::new(VARIANT).unwrap();
        let p = Platform::parse(&dt);
        assert_eq!(p.memory_bytes, (128 << 20) + (2 << 20));
        assert_eq!(p.psci, Conduit::Smc);
        assert_eq!(p.restart_count, 3);
        assert_eq!(p.bootargs, "console=ttyAMA0 probe=0x30000000,0x9000000");
    }
    #[test]
    fn native_virtio_mmio() {
        let dt = Fdt::new(NATIVE).unwrap();
        let all: Vec<_> = virtio_mmio(&dt).collect();
        assert_eq!(all.len(), 32);
        assert_eq!(
            all[0],
            VirtioMmio {
                base: 0xa00_0000,
                size: 0x200,
                intid: Some(48)
            }
        );
        assert_eq!(all[31].base, 0xa00_3e00);
        assert_eq!(all[31].intid, Some(79));
    }

    #[test]
    fn partition_virtio_mmio() {
        let dt = Fdt::new(BLK).unwrap();
        let all: Vec<_> = virtio_mmio(&dt).collect();
        assert_eq!(
            all,
            vec![
                VirtioMmio {
                    base: 0xb00_0000,
                    size: 0x200,
                    intid: Some(96)
                },
                VirtioMmio {
                    base: 0xb00_0200,
                    size: 0x200,
                    intid: Some(97)
                }
            ]
        );
        assert_eq!(Platform::parse(&dt).vtimer_intid, 27);
    }
}
