//! The device tree each partition boots with: only its own vCPUs, memory,
//! passthrough devices and the hypervisor's virtual devices.

use super::fdt_writer::FdtWriter;
use super::platform::Platform;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use config::layout;
use config::model::Partition;
use fdt::Fdt;

const GIC_PHANDLE: u32 = 1;
const CLOCK_PHANDLE: u32 = 2;
const IRQ_TYPE_LEVEL_HIGH: u32 = 4;

/// Properties of a passthrough device node that refer to other nodes of the
/// platform tree; they are rewritten or dropped when the node is copied.
const REWRITTEN: &[&str] = &[
    "phandle",
    "interrupt-parent",
    "clocks",
    "clock-names",
    "linux,phandle",
];

fn node_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Where the hypervisor put things in the partition's memory, for `/chosen`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootInfo {
    /// `hv,restart-count`: lets guests (and tests) tell boots apart.
    pub restart_count: u32,
    /// Guest-physical [start, end) of the initial RAM disk, if any.
    pub initrd: Option<(u64, u64)>,
    /// Virtio-mmio slots in use (the partition's disks, in order).
    pub virtio_slots: usize,
}

/// An emulated Arm PrimeCell device: registers `(base, size, intid)`, a
/// level-triggered SPI, and the partition's fixed clock as both its
/// function clock (`clock`) and `apb_pclk`, which the AMBA bus requires.
fn primecell(
    w: &mut FdtWriter,
    name: &str,
    compatible: &str,
    (base, size, intid): (u64, u64, u32),
    clock: &str,
) {
    w.begin_node(name);
    w.prop_strs("compatible", &[compatible, "arm,primecell"]);
    w.prop_reg64("reg", &[(base, size)]);
    w.prop_cells("interrupts", &[0, intid - 32, IRQ_TYPE_LEVEL_HIGH]);
    w.prop_cells("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE]);
    w.prop_strs("clock-names", &[clock, "apb_pclk"]);
    w.end_node();
}

/// Builds the partition's DTB.
pub fn build(
    partition: &Partition,
    platform: &Platform,
    host: &Fdt,
    boot: BootInfo,
) -> Result<Vec<u8>, String> {
    let mut w = FdtWriter::new();
    w.begin_node("");
    w.prop_u32("#address-cells", 2);
    w.prop_u32("#size-cells", 2);
    w.prop_str("compatible", "linux,dummy-virt");
    w.prop_str("model", &format!("partition {}", partition.name));
    w.prop_u32("interrupt-parent", GIC_PHANDLE);

    let uart_path = format!("/pl011@{:x}", layout::UART_BASE);
    w.begin_node("chosen");
    w.prop_str("bootargs", partition.bootargs);
    w.prop_str("stdout-path", &uart_path);
    w.prop_str("hv,partition", partition.name);
    w.prop_u32("hv,restart-count", boot.restart_count);
    if let Some((start, end)) = boot.initrd {
        w.prop_cells("linux,initrd-start", &[(start >> 32) as u32, start as u32]);
        w.prop_cells("linux,initrd-end", &[(end >> 32) as u32, end as u32]);
    }
    w.end_node();

    w.begin_node("aliases");
    w.prop_str("serial0", &uart_path);
    w.end_node();

    for m in partition.memory {
        w.begin_node(&format!("memory@{:x}", m.guest));
        w.prop_str("device_type", "memory");
        w.prop_reg64("reg", &[(m.guest, m.size)]);
        w.end_node();
    }

    w.begin_node("cpus");
    w.prop_u32("#address-cells", 1);
    w.prop_u32("#size-cells", 0);
    for vcpu in 0..partition.cpus.len() {
        w.begin_node(&format!("cpu@{vcpu:x}"));
        w.prop_str("device_type", "cpu");
        w.prop_str("compatible", &platform.cpu_compatible);
        w.prop_u32("reg", vcpu as u32);
        w.prop_str("enable-method", "psci");
        w.end_node();
    }
    w.end_node();

    w.begin_node("psci");
    w.prop_strs("compatible", &["arm,psci-1.0", "arm,psci-0.2"]);
    w.prop_str("method", "hvc");
    w.end_node();

    w.begin_node(&format!("intc@{:x}", layout::GICD_BASE));
    w.prop_str("compatible", "arm,gic-v3");
    w.prop_u32("#interrupt-cells", 3);
    w.prop_u32("#address-cells", 2);
    w.prop_u32("#size-cells", 2);
    w.prop_empty("interrupt-controller");
    w.prop_u32("#redistributor-regions", 1);
    let gicr_size = layout::GICR_STRIDE * partition.cpus.len() as u64;
    w.prop_reg64(
        "reg",
        &[
            (layout::GICD_BASE, layout::GICD_SIZE),
            (layout::GICR_BASE, gicr_size),
        ],
    );
    w.prop_u32("phandle", GIC_PHANDLE);
    w.end_node();

    w.begin_node("timer");
    w.prop_strs("compatible", &["arm,armv8-timer", "arm,armv7-timer"]);
    w.prop_cells("interrupts", &platform.timer_interrupt_cells);
    w.prop_empty("always-on");
    w.end_node();

    // The fixed clock that AMBA (PrimeCell) drivers insist on.
    w.begin_node("apb-pclk");
    w.prop_str("compatible", "fixed-clock");
    w.prop_u32("#clock-cells", 0);
    w.prop_u32("clock-frequency", layout::APB_CLOCK_HZ);
    w.prop_str("clock-output-names", "clk24mhz");
    w.prop_u32("phandle", CLOCK_PHANDLE);
    w.end_node();

    let uart = (layout::UART_BASE, layout::UART_SIZE, layout::UART_INTID);
    primecell(&mut w, node_name(&uart_path), "arm,pl011", uart, "uartclk");

    if partition.watchdog {
        let name = format!("watchdog@{:x}", layout::WATCHDOG_BASE);
        let watchdog = (
            layout::WATCHDOG_BASE,
            layout::WATCHDOG_SIZE,
            layout::WATCHDOG_INTID,
        );
        primecell(&mut w, &name, "arm,sp805", watchdog, "wdog_clk");
    }

    for slot in 0..boot.virtio_slots {
        let base = layout::virtio_slot_base(slot);
        w.begin_node(&format!("virtio_mmio@{base:x}"));
        w.prop_str("compatible", "virtio,mmio");
        w.prop_reg64("reg", &[(base, layout::VIRTIO_STRIDE)]);
        let spi = layout::VIRTIO_FIRST_INTID + slot as u32 - 32;
        w.prop_cells("interrupts", &[0, spi, IRQ_TYPE_LEVEL_HIGH]);
        w.prop_empty("dma-coherent");
        w.end_node();
    }

    for device in partition.devices {
        let node = host
            .find_node(device.path)
            .ok_or_else(|| format!("device {} not in the platform DT", device.path))?;
        w.begin_node(node.name);
        for prop in node.properties() {
            if !REWRITTEN.contains(&prop.name) {
                w.prop(prop.name, prop.value);
            }
        }
        // Clocks point at the partition's fixed clock, one per clock name.
        if node.property("clocks").is_some() {
            let count = node
                .property("clock-names")
                .map(|p| p.value.iter().filter(|&&b| b == 0).count())
                .unwrap_or(1);
            let clocks: Vec<u32> = (0..count.max(1)).map(|_| CLOCK_PHANDLE).collect();
            w.prop_cells("clocks", &clocks);
            if let Some(names) = node.property("clock-names") {
                w.prop("clock-names", names.value);
            }
        }
        w.end_node();
    }

    w.end_node();
    let blob = w.finish(0);
    if blob.len() > layout::DTB_MAX_SIZE {
        return Err(format!(
            "generated device tree is {} bytes, over {}",
            blob.len(),
            layout::DTB_MAX_SIZE
        ));
    }
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::model::*;

    const QEMU_VIRT: &[u8] = include_bytes!("../../../board/qemu-virt/qemu-virt.dtb");

    static PART: Partition = Partition {
        name: "ivi",
        criticality: Criticality::Qm,
        priority: 10,
        cpus: &[2, 3],
        memory: &[MemoryMap {
            guest: 0x4000_0000,
            host: 0x5000_0000,
            size: 0x400_0000,
        }],
        devices: &[Device {
            path: "/pl061@9030000",
            regions: &[Region {
                base: 0x903_0000,
                size: 0x1000,
            }],
            interrupts: &[39],
        }],
        image: &[],
        bootargs: "console=ttyAMA0",
        on_fault: OnFault::Restart,
        initrd: &[],
        watchdog: false,
        disks: &[],
        views: &[],
        protected: &[],
        display_memory: 0,
        display_resources: 0,
        touch: false,
        audio: None,
    };

    #[test]
    fn describes_only_the_partition() {
        let host = Fdt::new(QEMU_VIRT).unwrap();
        let platform = Platform::parse(&host, "/pl011@9000000").unwrap();
        let boot = BootInfo {
            restart_count: 2,
            initrd: Some((0x4200_0000, 0x4210_0000)),
            virtio_slots: 2,
        };
        let blob = build(&PART, &platform, &host, boot).unwrap();
        let dt = Fdt::new(&blob).unwrap();

        assert_eq!(dt.cpus().count(), 2);
        let ids: Vec<usize> = dt.cpus().map(|c| c.ids().first()).collect();
        assert_eq!(
            ids,
            [0, 1],
            "vCPUs are numbered from 0 whatever the physical cores"
        );
        let mem: Vec<_> = dt.memory().regions().collect();
        assert_eq!(mem.len(), 1);
        assert_eq!(mem[0].starting_address as u64, 0x4000_0000);
        assert_eq!(mem[0].size, Some(0x400_0000));
        assert_eq!(dt.chosen().bootargs(), Some("console=ttyAMA0"));
        assert_eq!(dt.chosen().stdout().unwrap().name, "pl011@9000000");
        let restarts = dt
            .find_node("/chosen")
            .unwrap()
            .property("hv,restart-count")
            .unwrap();
        assert_eq!(restarts.as_usize(), Some(2));
        let chosen = dt.find_node("/chosen").unwrap();
        let start = chosen.property("linux,initrd-start").unwrap().value;
        assert_eq!(start, 0x4200_0000u64.to_be_bytes());
        let end = chosen.property("linux,initrd-end").unwrap().value;
        assert_eq!(end, 0x4210_0000u64.to_be_bytes());

        let gic = dt.find_compatible(&["arm,gic-v3"]).unwrap();
        let regs: Vec<_> = gic.reg().unwrap().collect();
        assert_eq!(regs[1].size, Some(2 * 0x2_0000));
        assert_eq!(
            dt.find_node("/psci")
                .unwrap()
                .property("method")
                .unwrap()
                .as_str(),
            Some("hvc")
        );

        let gpio = dt
            .find_node("/pl061@9030000")
            .expect("passthrough device present");
        let cells: Vec<u8> = [0u32, 7, 4].iter().flat_map(|c| c.to_be_bytes()).collect();
        assert_eq!(gpio.property("interrupts").unwrap().value, cells);
        assert_eq!(
            gpio.property("clocks").unwrap().value,
            CLOCK_PHANDLE.to_be_bytes()
        );

        // Nothing else of the platform leaks through.
        for absent in [
            "/pl031@9010000",
            "/virtio_mmio@a000000",
            "/pcie@10000000",
            "/flash@0",
            "/fw-cfg@9020000",
        ] {
            assert!(
                dt.find_node(absent).is_none(),
                "{absent} must not be visible"
            );
        }
        assert_eq!(dt.find_node("/cpus/cpu@2").map(|n| n.name), None);
        let disk = dt
            .find_node("/virtio_mmio@b000200")
            .expect("second virtio slot");
        assert_eq!(disk.compatible().unwrap().first(), "virtio,mmio");
        let cells: Vec<u8> = [0u32, 65, 4].iter().flat_map(|c| c.to_be_bytes()).collect();
        assert_eq!(disk.property("interrupts").unwrap().value, cells);
        assert!(dt.find_node("/virtio_mmio@b000400").is_none());
        let disk = dt
            .find_node("/virtio_mmio@b000200")
            .expect("second virtio slot");
        assert_eq!(disk.compatible().unwrap().first(), "virtio,mmio");
        let cells: Vec<u8> = [0u32, 65, 4].iter().flat_map(|c| c.to_be_bytes()).collect();
        assert_eq!(disk.property("interrupts").unwrap().value, cells);
        assert!(dt.find_node("/virtio_mmio@b000400").is_none());
        assert!(
            dt.find_node("/watchdog@9100000").is_none(),
            "no watchdog unless configured"
        );
    }

    #[test]
    fn watchdog_node_when_configured() {
        let host = Fdt::new(QEMU_VIRT).unwrap();
        let platform = Platform::parse(&host, "/pl011@9000000").unwrap();
        let with_watchdog = Partition {
            watchdog: true,
            ..PART
        };
        let blob = build(&with_watchdog, &platform, &host, BootInfo::default()).unwrap();
        let dt = Fdt::new(&blob).unwrap();
        let wd = dt.find_node("/watchdog@9100000").expect("watchdog node");
        assert_eq!(wd.compatible().unwrap().first(), "arm,sp805");
        let cells: Vec<u8> = [0u32, 10, 4].iter().flat_map(|c| c.to_be_bytes()).collect();
        assert_eq!(wd.property("interrupts").unwrap().value, cells);
    }
}
