//! What the hypervisor learns from the platform device tree it is booted
//! with, and the check that the compiled-in configuration matches it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use config::model::{Region, System, UartKind};
use fdt::Fdt;

/// How PSCI calls reach firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Smc,
    Hvc,
}

#[derive(Debug)]
pub struct Platform {
    pub model: String,
    /// MPIDR affinity (the DT `reg`) of each CPU, in device-tree order. The
    /// position in this list is the hypervisor's logical CPU number.
    pub cpus: Vec<u64>,
    pub cpu_compatible: String,
    pub memory: Vec<Region>,
    pub gicd: Region,
    pub gicr: Region,
    /// GIC maintenance interrupt (INTID).
    pub gic_maintenance: u32,
    pub psci: Conduit,
    /// The `interrupts` cells of the architected timer node, copied into
    /// every partition's device tree unchanged.
    pub timer_interrupt_cells: Vec<u32>,
    /// The physical virtual-timer interrupt (INTID).
    pub vtimer_intid: u32,
    /// The EL1 physical timer's interrupt (INTID); partitions own that
    /// timer too.
    pub ptimer_intid: u32,
    /// The EL2 physical timer's interrupt (INTID).
    pub hyp_timer_intid: u32,
    pub console: Region,
    /// Which driver the console UART takes (from its `compatible`).
    pub console_kind: UartKind,
    /// The console UART's interrupt (INTID), if the DT gives one.
    pub console_interrupt: Option<u32>,
}

fn region_of(fdt: &Fdt, path: &str, index: usize) -> Result<Region, String> {
    let node = fdt
        .find_node(path)
        .ok_or_else(|| format!("no node {path}"))?;
    let reg = node
        .reg()
        .and_then(|mut r| r.nth(index))
        .ok_or_else(|| format!("{path}: no reg entry {index}"))?;
    Ok(Region {
        base: reg.starting_address as u64,
        size: reg.size.unwrap_or(0) as u64,
    })
}

fn cells(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// GIC 3-cell interrupt specifier to INTID (type 0 = SPI, 1 = PPI).
pub fn intid_of(kind: u32, number: u32) -> u32 {
    if kind == 1 { number + 16 } else { number + 32 }
}

impl Platform {
    /// Reads the platform description. `console_path` is the configured
    /// console UART's path or alias.
    pub fn parse(fdt: &Fdt, console_path: &str) -> Result<Platform, String> {
        let mut cpus = Vec::new();
        let mut cpu_compatible = String::from("arm,armv8");
        let cpu_nodes = fdt.find_node("/cpus").ok_or("no /cpus node")?;
        for node in cpu_nodes.children() {
            if node.property("device_type").and_then(|p| p.as_str()) != Some("cpu") {
                continue;
            }
            let reg = node
                .property("reg")
                .ok_or_else(|| format!("/cpus/{} has no reg", node.name))?;
            // One or two address cells; either way the value is the MPIDR affinity.
            let mpidr = cells(reg.value)
                .iter()
                .fold(0u64, |acc, &c| (acc << 32) | c as u64);
            if let Some(c) = node.compatible() {
                cpu_compatible = c.first().into();
            }
            cpus.push(mpidr);
        }
        if cpus.is_empty() {
            return Err("no CPUs in /cpus".into());
        }

        let mut memory = Vec::new();
        for node in fdt.all_nodes() {
            let is_memory = node.property("device_type").and_then(|p| p.as_str()) == Some("memory");
            if let (true, Some(regs)) = (is_memory, node.reg()) {
                for r in regs {
                    memory.push(Region {
                        base: r.starting_address as u64,
                        size: r.size.unwrap_or(0) as u64,
                    });
                }
            }
        }
        if memory.is_empty() {
            return Err("no memory nodes".into());
        }

        let gic = fdt
            .find_compatible(&["arm,gic-v3"])
            .ok_or("no GICv3 (compatible \"arm,gic-v3\") in the device tree")?;
        let mut gic_regs = gic.reg().ok_or("GICv3 node has no reg")?;
        let gicd = gic_regs.next().ok_or("GICv3 node has no distributor reg")?;
        let gicr = gic_regs
            .next()
            .ok_or("GICv3 node has no redistributor reg")?;
        let gic_maintenance = match gic.property("interrupts").map(|p| cells(p.value)) {
            Some(c) if c.len() >= 2 => intid_of(c[0], c[1]),
            _ => 25,
        };

        let psci = fdt
            .find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
            .ok_or("no /psci node")?;
        let psci = match psci.property("method").and_then(|p| p.as_str()) {
            Some("smc") => Conduit::Smc,
            Some("hvc") => Conduit::Hvc,
            other => return Err(format!("unsupported PSCI method {other:?}")),
        };

        let timer = fdt
            .find_compatible(&["arm,armv8-timer"])
            .ok_or("no architected timer (compatible \"arm,armv8-timer\")")?;
        let timer_interrupt_cells = timer
            .property("interrupts")
            .map(|p| cells(p.value))
            .unwrap_or_default();
        // Order in the binding: secure phys, non-secure phys, virtual, hyp.
        let ptimer_intid = match timer_interrupt_cells.get(3..5) {
            Some(&[kind, number]) => intid_of(kind, number),
            _ => return Err("timer node lacks the EL1 physical timer interrupt".into()),
        };
        let vtimer_intid = match timer_interrupt_cells.get(6..8) {
            Some(&[kind, number]) => intid_of(kind, number),
            _ => return Err("timer node lacks the virtual timer interrupt".into()),
        };
        let hyp_timer_intid = match timer_interrupt_cells.get(9..11) {
            Some(&[kind, number]) => intid_of(kind, number),
            _ => return Err("timer node lacks the hypervisor timer interrupt".into()),
        };

        let console = region_of(fdt, console_path, 0)?;
        let console_kind = fdt
            .find_node(console_path)
            .and_then(|n| n.compatible())
            .and_then(|c| UartKind::for_compatible(c.all()))
            .ok_or_else(|| {
                format!("console {console_path} is no UART the hypervisor has a driver for")
            })?;
        let console_interrupt = fdt
            .find_node(console_path)
            .and_then(|n| n.property("interrupts"))
            .map(|p| cells(p.value))
            .and_then(|c| (c.len() >= 2).then(|| intid_of(c[0], c[1])));
        let model = fdt.root().model().into();
        Ok(Platform {
            model,
            cpus,
            cpu_compatible,
            memory,
            gicd: Region {
                base: gicd.starting_address as u64,
                size: gicd.size.unwrap_or(0) as u64,
            },
            gicr: Region {
                base: gicr.starting_address as u64,
                size: gicr.size.unwrap_or(0) as u64,
            },
            gic_maintenance,
            psci,
            timer_interrupt_cells,
            vtimer_intid,
            ptimer_intid,
            hyp_timer_intid,
            console,
            console_kind,
            console_interrupt,
        })
    }

    /// Is `intid` one of the EL1 timers' PPIs, which belong to whichever
    /// partition runs on the core (forwarded with the HW bit)?
    pub fn is_guest_timer(&self, intid: u32) -> bool {
        intid == self.vtimer_intid || intid == self.ptimer_intid
    }

    /// The logical number of the core with MPIDR affinity `mpidr_affinity`.
    pub fn logical_cpu(&self, mpidr_affinity: u64) -> Option<usize> {
        self.cpus.iter().position(|&c| c == mpidr_affinity)
    }

    fn in_ram(&self, base: u64, size: u64) -> bool {
        self.memory
            .iter()
            .any(|r| base >= r.base && base.saturating_add(size) <= r.base + r.size)
    }

    /// Checks the compiled-in configuration against this platform, before
    /// any guest runs. `image` is where the hypervisor itself was loaded.
    pub fn check(&self, fdt: &Fdt, system: &System, image: Region) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        let hv = system.hypervisor.memory;
        if !self.in_ram(hv.base, hv.size) {
            errors.push(format!(
                "hypervisor memory {:#x}+{:#x} is not inside RAM",
                hv.base, hv.size
            ));
        }
        if image.base < hv.base || image.base + image.size > hv.base + hv.size {
            errors.push(format!(
                "hypervisor image {:#x}..{:#x} is outside its configured memory {:#x}..{:#x}",
                image.base,
                image.base + image.size,
                hv.base,
                hv.base + hv.size
            ));
        }
        for p in system.partitions {
            for &cpu in p.cpus {
                if self.logical_cpu(cpu).is_none() {
                    errors.push(format!(
                        "partition {}: cpu {cpu:#x} is not in this platform's /cpus",
                        p.name
                    ));
                }
            }
            for m in p.memory {
                if !self.in_ram(m.host, m.size) {
                    errors.push(format!(
                        "partition {}: memory {:#x}+{:#x} is outside the platform's RAM",
                        p.name, m.host, m.size
                    ));
                }
            }
            for d in p.devices {
                match fdt.find_node(d.path) {
                    None => errors.push(format!(
                        "partition {}: device {} is not in the device tree",
                        p.name, d.path
                    )),
                    Some(node) => {
                        let found: Vec<u64> = node
                            .reg()
                            .into_iter()
                            .flatten()
                            .map(|r| r.starting_address as u64)
                            .collect();
                        if d.regions
                            .iter()
                            .any(|r| !found.iter().any(|&b| r.base <= b && b < r.base + r.size))
                        {
                            errors.push(format!(
                                "partition {}: device {} has different registers than the config was built for",
                                p.name, d.path
                            ));
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// A one-screen summary for the boot log.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        lines.push(format!("platform: {}", self.model));
        let cpus: Vec<String> = self.cpus.iter().map(|c| format!("{c:#x}")).collect();
        lines.push(format!(
            "cpus: {} x {} (mpidr {})",
            self.cpus.len(),
            self.cpu_compatible,
            cpus.join(" ")
        ));
        for r in &self.memory {
            lines.push(format!(
                "ram: {:#x}..{:#x} ({} MiB)",
                r.base,
                r.base + r.size,
                r.size >> 20
            ));
        }
        lines.push(format!(
            "gicv3: distributor {:#x}, redistributors {:#x}+{:#x}, maintenance irq {}",
            self.gicd.base, self.gicr.base, self.gicr.size, self.gic_maintenance
        ));
        lines.push(format!(
            "timer: virtual irq {}; psci: {:?}",
            self.vtimer_intid, self.psci
        ));
        lines.push(format!(
            "console: {:?} UART at {:#x}",
            self.console_kind, self.console.base
        ));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_VIRT: &[u8] = include_bytes!("../../../board/qemu-virt/qemu-virt.dtb");

    #[test]
    fn parses_the_qemu_virt_device_tree() {
        let fdt = Fdt::new(QEMU_VIRT).unwrap();
        let p = Platform::parse(&fdt, "/pl011@9000000").unwrap();
        assert_eq!(p.cpus, [0, 1, 2, 3]);
        assert_eq!(p.cpu_compatible, "arm,cortex-a72");
        assert_eq!(
            p.memory,
            [Region {
                base: 0x4000_0000,
                size: 0x8000_0000
            }]
        );
        assert_eq!(
            p.gicd,
            Region {
                base: 0x0800_0000,
                size: 0x1_0000
            }
        );
        assert_eq!(p.gicr.base, 0x080a_0000);
        assert_eq!(p.gic_maintenance, 25);
        assert_eq!(p.vtimer_intid, 27);
        assert_eq!(p.ptimer_intid, 30);
        assert_eq!(p.hyp_timer_intid, 26);
        assert_eq!(p.psci, Conduit::Smc);
        assert_eq!(p.console.base, 0x0900_0000);
        assert_eq!(p.console_interrupt, Some(33));
        assert_eq!(p.console_kind, UartKind::Pl011);
        assert_eq!(p.logical_cpu(2), Some(2));
        assert_eq!(p.logical_cpu(9), None);
    }

    /// The i.MX 8M Plus EVK: an i.MX UART console, the GIC and the cores
    /// where that SoC has them, RAM in two ranges.
    #[test]
    fn imx8mp_evk() {
        const EVK: &[u8] = include_bytes!("../../../board/imx8mp-evk/imx8mp-evk.dtb");
        let fdt = Fdt::new(EVK).unwrap();
        let uart2 = "/soc@0/bus@30800000/spba-bus@30800000/serial@30890000";
        let p = Platform::parse(&fdt, uart2).unwrap();
        assert_eq!(p.console_kind, UartKind::Imx);
        assert_eq!(p.console.base, 0x3089_0000);
        // SPI 27.
        assert_eq!(p.console_interrupt, Some(59));
        assert_eq!(p.gicd.base, 0x3880_0000);
        assert_eq!(p.gicr.base, 0x3888_0000);
        assert_eq!(p.cpus.len(), 4);
        assert_eq!(p.vtimer_intid, 27);
    }

    #[test]
    fn unknown_console_is_an_error() {
        let fdt = Fdt::new(QEMU_VIRT).unwrap();
        let err = Platform::parse(&fdt, "/uart@1234").unwrap_err();
        assert!(err.contains("/uart@1234"), "{err}");
        // Registers, but no UART (the RTC).
        let err = Platform::parse(&fdt, "/pl031@9010000").unwrap_err();
        assert!(
            err.contains("no UART the hypervisor has a driver for"),
            "{err}"
        );
    }

    #[test]
    fn config_mismatches_are_all_reported() {
        use config::model::*;
        let fdt = Fdt::new(QEMU_VIRT).unwrap();
        let p = Platform::parse(&fdt, "/pl011@9000000").unwrap();
        static PARTS: [Partition; 1] = [Partition {
            name: "bad",
            criticality: Criticality::Qm,
            priority: 1,
            cpus: &[1, 7],
            memory: &[MemoryMap {
                guest: 0x4000_0000,
                host: 0xc000_0000,
                size: 0x20_0000,
            }],
            devices: &[Device {
                path: "/nope@0",
                regions: &[],
                interrupts: &[],
            }],
            image: &[],
            bootargs: "",
            on_fault: OnFault::Stop,
            initrd: &[],
            watchdog: false,
            disks: &[],
            views: &[],
            protected: &[],
            display_memory: 0,
            display_resources: 0,
            touch: false,
            audio: None,
        }];
        let system = System {
            board: "qemu-virt",
            hypervisor: Hypervisor {
                memory: Region {
                    base: 0x4000_0000,
                    size: 0x800_0000,
                },
                console: "/pl011@9000000",
            },
            partitions: &PARTS,
            storage: &[],
            displays: &[],
            touch: &[],
            audio: &[],
        };
        let errors = p
            .check(
                &fdt,
                &system,
                Region {
                    base: 0x4008_0000,
                    size: 0x10_0000,
                },
            )
            .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("cpu 0x7"));
        assert!(errors[1].contains("outside the platform's RAM"));
        assert!(errors[2].contains("/nope@0"));
    }
}
