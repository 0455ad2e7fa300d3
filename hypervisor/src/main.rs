//! The EL2 hypervisor binary: boot, partition set-up, and the per-core
//! idle loop from which vCPUs run. See docs/architecture.md.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod console;
mod heap;
mod phys_blk;
mod runtime;
mod storage;
mod traps;
mod virq;

use alloc::vec::Vec;
use arch::{cpu, gic, mmu};
use config::layout;
use config::model::{Region, System};
use core::sync::atomic::AtomicU32;
use hypervisor::pagetable::{Attributes, PageTable, Regime, TableArena};
use hypervisor::platform::{Conduit, Platform};
use hypervisor::ranges::Ranges;
use hypervisor::vgic::VGic;
use log::{error, info, warn};
use runtime::{CpuRt, Hv, PartitionRt, Power};
use shared_devices::pl011::Pl011;
use shared_devices::sp805::Sp805;
use spin::Mutex;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/system.rs"));
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}
use generated::SYSTEM;

/// Stops this core for good (fatal hypervisor errors only).
pub fn halt() -> ! {
    loop {
        cpu::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    console::emergency(format_args!("\n[hv] PANIC: {info}\n"));
    halt()
}

/// Entered from boot.S at EL1 or EL3: nothing can work, say so and stop.
#[unsafe(no_mangle)]
extern "C" fn wrong_exception_level(el: u64) -> ! {
    arch::uart::set_base(generated::EARLY_UART);
    console::emergency(format_args!(
        "hypervisor: entered at EL{el}, but it must be entered at EL2 \
         (QEMU: -M virt,virtualization=on; boards: boot it from EL2-capable firmware). Stopping.\n"
    ));
    halt()
}

#[unsafe(no_mangle)]
extern "C" fn wrong_load_address(actual: u64, linked: u64) -> ! {
    arch::uart::set_base(generated::EARLY_UART);
    console::emergency(format_args!(
        "hypervisor: loaded at {actual:#x} but linked for {linked:#x}; load it at its link address. Stopping.\n"
    ));
    halt()
}

fn fatal(args: core::fmt::Arguments) -> ! {
    error!("{args}");
    error!("no partition was started; the system is halted");
    halt()
}

/// RAM ranges from the DTB, before there is a heap.
fn early_ram(fdt: &fdt::Fdt) -> Ranges {
    let mut ram = Ranges::default();
    for node in fdt.all_nodes() {
        if node.property("device_type").and_then(|p| p.as_str()) != Some("memory") {
            continue;
        }
        for r in node.reg().into_iter().flatten() {
            ram.insert(Region {
                base: r.starting_address as u64,
                size: r.size.unwrap_or(0) as u64,
            });
        }
    }
    ram
}

#[unsafe(no_mangle)]
extern "C" fn primary_main(dtb_pa: u64) -> ! {
    let entered = cpu::counter();
    arch::uart::set_base(generated::EARLY_UART);
    let Some(blob) = arch::boot_dtb::borrow(dtb_pa) else {
        console::emergency(format_args!(
            "hypervisor: no valid device tree at {dtb_pa:#x} (x0). Stopping.\n"
        ));
        halt()
    };
    let Ok(fdt) = fdt::Fdt::new(blob) else {
        console::emergency(format_args!(
            "hypervisor: the device tree at {dtb_pa:#x} does not parse. Stopping.\n"
        ));
        halt()
    };
    let mut arena = mmu::take_arena();
    if let Err(e) = mmu::build_el2_map(&mut arena, &early_ram(&fdt)) {
        console::emergency(format_args!(
            "hypervisor: cannot build the EL2 map: {e:?}. Stopping.\n"
        ));
        halt()
    }
    mmu::enable();
    heap::init();
    console::init_logger();
    let host_dtb = blob.to_vec();
    boot(host_dtb, arena, entered)
}

/// `entered`: the counter when the hypervisor started (boot-time reference).
fn boot(host_dtb: Vec<u8>, mut arena: TableArena<'static>, entered: u64) -> ! {
    let fdt =
        fdt::Fdt::new(&host_dtb).unwrap_or_else(|e| fatal(format_args!("device tree: {e:?}")));
    let system: &System = &SYSTEM;
    let platform = Platform::parse(&fdt, system.hypervisor.console)
        .unwrap_or_else(|e| fatal(format_args!("device tree: {e}")));
    arch::uart::set_base(platform.console.base);
    let (image_start, image_end) = arch::image_range();
    info!(
        "hypervisor {} for board {}: image {image_start:#x}..{image_end:#x}",
        env!("CARGO_PKG_VERSION"),
        system.board
    );
    let hz = cpu::counter_frequency();
    info!(
        "entered at counter {entered} ({} ms at {hz} Hz)",
        entered * 1000 / hz.max(1)
    );
    for line in platform.summary() {
        info!("{line}");
    }
    let image = Region {
        base: image_start,
        size: image_end - image_start,
    };
    if let Err(errors) = platform.check(&fdt, system, image) {
        for e in &errors {
            error!("config does not match this platform: {e}");
        }
        fatal(format_args!("{} configuration error(s)", errors.len()));
    }

    let me = platform
        .logical_cpu(cpu::mpidr_affinity())
        .unwrap_or_else(|| {
            fatal(format_args!(
                "boot core {:#x} is not in /cpus",
                cpu::mpidr_affinity()
            ))
        });
    let gicd = platform.gicd.base;
    gic::init_distributor(gicd);
    let lines = gic::lines(gicd);

    // Cores and their vCPU assignment.
    let mut cpus = Vec::new();
    for &mpidr in platform.cpus.iter() {
        let rd = gic::find_redistributor(platform.gicr.base, platform.gicr.size, mpidr)
            .unwrap_or_else(|| fatal(format_args!("no redistributor for cpu {mpidr:#x}")));
        let vcpu = system
            .partitions
            .iter()
            .enumerate()
            .find_map(|(pi, p)| p.cpus.iter().position(|&c| c == mpidr).map(|v| (pi, v)));
        cpus.push(CpuRt {
            mpidr,
            rd,
            vcpu,
            power: Mutex::new(Power::Off),
            requests: AtomicU32::new(0),
            pending: Default::default(),
        });
    }

    // The service core does the hypervisor's own work (console output and
    // input, storage I/O): the boot core if it runs no partition, else any
    // free core.
    let service_cpu = core::iter::once(me)
        .chain(0..cpus.len())
        .find(|&c| cpus[c].vcpu.is_none());

    // Mediated storage: open each physical disk on the boot core; its I/O
    // then runs on its home core.
    let priorities: Vec<u8> = system.partitions.iter().map(|p| p.priority).collect();
    let mut storage = Vec::new();
    for s in system.storage {
        let home = s
            .home_cpu
            .and_then(|mpidr| platform.logical_cpu(mpidr))
            .or(service_cpu);
        let Some(home) = home else {
            error!(
                "storage {}: no free core to do its I/O; its disks are not offered",
                s.name
            );
            continue;
        };
        match storage::open_storage(s, home, &priorities) {
            Ok(rt) => storage.push(rt),
            Err(e) => error!("storage {}: {e}; its disks are not offered", s.name),
        }
    }

    // Partitions: stage-2 tables and virtual devices.
    let mut partitions = Vec::new();
    for (index, p) in system.partitions.iter().enumerate() {
        let vmid = index as u64 + 1;
        let root = build_stage2(&mut arena, p)
            .unwrap_or_else(|e| fatal(format_args!("partition {}: stage-2 map: {e:?}", p.name)));
        let hardware: Vec<u32> = p
            .devices
            .iter()
            .flat_map(|d| d.interrupts.iter().copied())
            .collect();
        let mut disks = Vec::new();
        for (slot, d) in p.disks.iter().enumerate() {
            // Storage entries that failed to open are missing from `storage`.
            let opened = storage
                .iter()
                .position(|s| s.name == system.storage[d.storage].name);
            match opened.map(|i| (i, storage::open_virt_disk(&storage[i], i, d, p.name))) {
                Some((_, Ok(disk))) => disks.push(disk),
                Some((_, Err(e))) => error!("partition {}: disk {slot}: {e}", p.name),
                None => error!(
                    "partition {}: disk {slot}: its storage is not available",
                    p.name
                ),
            }
        }
        let virtual_spis: Vec<u32> = core::iter::once(layout::UART_INTID)
            .chain(p.watchdog.then_some(layout::WATCHDOG_INTID))
            .chain((0..disks.len()).map(storage::slot_intid))
            .collect();
        let vcpu_cpus: Vec<usize> = p
            .cpus
            .iter()
            .map(|&c| platform.logical_cpu(c).unwrap_or(0))
            .collect();
        for &intid in &hardware {
            gic::route_spi(gicd, intid, cpus[vcpu_cpus[0]].mpidr);
        }
        info!(
            "partition {}: {} priority {}, cpus {:?}, {} MiB, {} device(s), on_fault {}",
            p.name,
            p.criticality.as_str(),
            p.priority,
            p.cpus,
            p.memory.iter().map(|m| m.size).sum::<u64>() >> 20,
            p.devices.len(),
            p.on_fault.as_str()
        );
        partitions.push(PartitionRt {
            index,
            desc: p,
            vttbr: root | (vmid << 48),
            vcpu_cpus,
            watchdog: p.watchdog.then(|| Mutex::new(Sp805::new())),
            disks,
            vgic: Mutex::new(VGic::new(p.cpus.len(), &hardware, &virtual_spis, lines)),
            uart: Mutex::new(Pl011::new()),
            lifecycle: Mutex::new(runtime::Lifecycle::Stopped),
            restarts: AtomicU32::new(0),
        });
    }
    info!("page tables: {} of 4 KiB used", arena.tables_used());

    let console_intid = platform.console_interrupt;
    let hv = runtime::install(Hv {
        platform,
        host_dtb,
        gicd,
        cpus,
        partitions,
        console_intid,
        storage,
    });
    cpu_init(me);
    match service_cpu {
        Some(c) => info!("service core: cpu {c} (console, storage I/O)"),
        None => warn!("every core runs a partition: console output is drained by the writing core"),
    }
    let names: Vec<&'static str> = hv.partitions.iter().map(|p| p.name()).collect();
    console::start(&names, service_cpu, generated::CONSOLE_BAUD);
    if let Some(intid) = console_intid {
        let handler = service_cpu.unwrap_or(me);
        gic::route_spi(gicd, intid, hv.cpus[handler].mpidr);
        gic::set_spi_enabled(gicd, intid, true);
        arch::uart::enable_receive_interrupt();
    }
    for s in &hv.storage {
        if let Some(intid) = s.intid {
            gic::route_spi(gicd, intid, hv.cpus[s.home_cpu].mpidr);
            gic::set_spi_enabled(gicd, intid, true);
        }
    }

    // Bring up every core that runs a vCPU, and the service core; the
    // rest stay off.
    let smc = hv.platform.psci == Conduit::Smc;
    for (i, c) in hv.cpus.iter().enumerate() {
        if i == me || (c.vcpu.is_none() && Some(i) != service_cpu) {
            continue;
        }
        let ret = cpu::firmware_call(
            smc,
            hypervisor::psci::CPU_ON_64 as u64,
            c.mpidr,
            arch::secondary_entry as *const () as u64,
            i as u64,
        );
        if ret != 0 {
            warn!(
                "cpu {i} (mpidr {:#x}) did not start: PSCI error {}",
                c.mpidr, ret as i64
            );
        }
    }
    for p in &hv.partitions {
        runtime::request_boot(p);
    }
    arch::restart_on_fresh_stack(me, runtime::idle_loop)
}

/// Per-core EL2 and GIC set-up.
fn cpu_init(me: usize) {
    let hv = runtime::hv();
    cpu::set_current(me);
    cpu::init_el2(arch::vectors());
    let kick = 1 << runtime::KICK_SGI;
    let maintenance = 1 << hv.platform.gic_maintenance;
    let hyp_timer = 1 << hv.platform.hyp_timer_intid;
    gic::init_cpu(hv.cpus[me].rd, kick | maintenance | hyp_timer);
}

#[unsafe(no_mangle)]
extern "C" fn secondary_main(me: usize) -> ! {
    mmu::enable();
    cpu_init(me);
    arch::restart_on_fresh_stack(me, runtime::idle_loop)
}

/// A partition's stage-2 map: its memory as normal memory, its passthrough
/// devices identity-mapped as device memory. Emulated devices stay unmapped
/// so that accesses trap.
fn build_stage2(
    arena: &mut TableArena,
    p: &config::model::Partition,
) -> Result<u64, hypervisor::pagetable::MapError> {
    let pt = PageTable::new(arena, Regime::Stage2)?;
    for m in p.memory {
        pt.map(arena, m.guest, m.host, m.size, Attributes::RAM)?;
    }
    // Pages, not regions: two small devices may share one page.
    let pages: alloc::collections::BTreeSet<u64> = p
        .devices
        .iter()
        .flat_map(|d| d.regions.iter())
        .flat_map(|r| {
            (r.base & !0xfff..r.base + r.size)
                .step_by(0x1000)
                .map(|a| a & !0xfff)
        })
        .collect();
    for page in pages {
        pt.map(arena, page, page, 0x1000, Attributes::DEVICE)?;
    }
    Ok(pt.root_pa(arena))
}
