//! The EL2 hypervisor binary: the entry points `boot.S` jumps to, and the
//! boot sequence that reads the platform device tree, checks the config
//! against it, builds the partitions and their emulated devices, starts
//! the mediators and the cores. Everything it builds lives in the
//! `hypervisor` library; see docs/architecture.md.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use config::layout;
use config::model::{Region, System};
use core::arch::global_asm;
use hypervisor::arch::{self, Frame, MAX_CPUS, cpu, gic, mmu};
use hypervisor::drivers::uart::{self, emergency};
use hypervisor::dt::{
    self,
    platform::{Conduit, Platform},
};
use hypervisor::mediators::audio::{self, Audio};
use hypervisor::mediators::console::{self, Console};
use hypervisor::mediators::display::{self, Display};
use hypervisor::mediators::storage::{self, Storage};
use hypervisor::mediators::touch::{self, Touch};
use hypervisor::memory::pagetable::{Attributes, PageTable, Regime, TableArena};
use hypervisor::memory::ranges::Ranges;
use hypervisor::partition::vgic::VGic;
use hypervisor::partition::{
    self, Hypervisor, Lifecycle, Mediator, Partition, PhysicalCpu, Window, lifecycle, mmio, trap,
    vgic_mmio, watchdog,
};
use log::{error, info, warn};
use shared_devices::sp805::Sp805;
use spin::Mutex;

global_asm!(
    include_str!("arch/aarch64/boot.S"),
    stack_size = const arch::aarch64::STACK_SIZE,
    max_cpus = const MAX_CPUS,
    frame_size = const core::mem::size_of::<Frame>(),
);

mod generated {
    include!(concat!(env!("OUT_DIR"), "/system.rs"));
    include!(concat!(env!("OUT_DIR"), "/board.rs"));
}
use generated::SYSTEM;

use arch::halt;

// The exception entry points `boot.S` calls, with the C ABI; the work is
// done in `partition::trap`, whose Rust functions host tests also call (a
// test's unwinding may not cross an `extern "C"` frame).

#[unsafe(no_mangle)]
extern "C" fn handle_lower_sync(frame: &mut Frame) {
    trap::lower_sync(frame)
}

#[unsafe(no_mangle)]
extern "C" fn handle_lower_irq(frame: &mut Frame) {
    trap::lower_irq(frame)
}

#[unsafe(no_mangle)]
extern "C" fn handle_lower_serror(frame: &mut Frame) {
    trap::lower_serror(frame)
}

#[unsafe(no_mangle)]
extern "C" fn handle_hv_exception(frame: &mut Frame) -> ! {
    trap::hv_exception(frame)
}

/// A panic is a hypervisor bug: the whole system stops (see
/// `partition::fatal`).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    partition::fatal::hypervisor_bug(format_args!("PANIC: {info}"))
}

/// Entered from boot.S at EL1 or EL3: nothing can work, say so and stop.
#[unsafe(no_mangle)]
extern "C" fn wrong_exception_level(el: u64) -> ! {
    uart::select(generated::EARLY_UART.0, generated::EARLY_UART.1);
    emergency(format_args!(
        "hypervisor: entered at EL{el}, but it must be entered at EL2 \
         (QEMU: -M virt,virtualization=on; boards: boot it from EL2-capable firmware). Stopping.\n"
    ));
    halt()
}

#[unsafe(no_mangle)]
extern "C" fn wrong_load_address(actual: u64, linked: u64) -> ! {
    uart::select(generated::EARLY_UART.0, generated::EARLY_UART.1);
    emergency(format_args!(
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
    uart::select(generated::EARLY_UART.0, generated::EARLY_UART.1);
    let Some(blob) = arch::boot_dtb::borrow(dtb_pa) else {
        emergency(format_args!(
            "hypervisor: no valid device tree at {dtb_pa:#x} (x0). Stopping.\n"
        ));
        halt()
    };
    let Ok(fdt) = fdt::Fdt::new(blob) else {
        emergency(format_args!(
            "hypervisor: the device tree at {dtb_pa:#x} does not parse. Stopping.\n"
        ));
        halt()
    };
    let mut arena = mmu::take_arena();
    if let Err(e) = mmu::build_el2_map(&mut arena, &early_ram(&fdt)) {
        emergency(format_args!(
            "hypervisor: cannot build the EL2 map: {e:?}. Stopping.\n"
        ));
        halt()
    }
    mmu::enable();
    arch::aarch64::heap::init();
    console::init_logger();
    // Compacted: the `fdt` crate's path lookup fails across NOP tokens,
    // which QEMU and boot loaders leave where they deleted something.
    let host_dtb = dt::compact::without_nops(blob).unwrap_or_else(|| blob.to_vec());
    boot(host_dtb, arena, entered)
}

/// `entered`: the counter when the hypervisor started (boot-time reference).
fn boot(host_dtb: Vec<u8>, mut arena: TableArena<'static>, entered: u64) -> ! {
    let fdt =
        fdt::Fdt::new(&host_dtb).unwrap_or_else(|e| fatal(format_args!("device tree: {e:?}")));
    let system: &System = &SYSTEM;
    let platform = Platform::parse(&fdt, system.hypervisor.console)
        .unwrap_or_else(|e| fatal(format_args!("device tree: {e}")));
    uart::select(platform.console_kind, platform.console.base);
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
    // The rest of the reservation after the image (checked to lie inside
    // it just above) is heap too: framebuffers and resource arenas.
    let reservation_end = system.hypervisor.memory.base + system.hypervisor.memory.size;
    arch::aarch64::heap::extend(image_end as usize, reservation_end as usize);
    info!("heap: {} MiB", arch::aarch64::heap::total() >> 20);
    log_image_size(system);

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
    let mut cpus: Vec<PhysicalCpu> = Vec::new();
    for &mpidr in platform.cpus.iter() {
        let rd = gic::find_redistributor(platform.gicr.base, platform.gicr.size, mpidr)
            .unwrap_or_else(|| fatal(format_args!("no redistributor for cpu {mpidr:#x}")));
        let vcpu = system
            .partitions
            .iter()
            .enumerate()
            .find_map(|(pi, p)| p.cpus.iter().position(|&c| c == mpidr).map(|v| (pi, v)));
        cpus.push(PhysicalCpu::new(mpidr, rd, vcpu));
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
    let mut storage: Vec<&'static storage::StorageDevice> = Vec::new();
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
            Ok(device) => storage.push(leak(device)),
            Err(e) => error!("storage {}: {e}; its disks are not offered", s.name),
        }
    }

    // Mediated displays: open each physical display on the boot core; its
    // frames are then composed on its home core.
    let mut opened_screens = Vec::new();
    for (i, d) in system.displays.iter().enumerate() {
        let home = d
            .home_cpu
            .and_then(|mpidr| platform.logical_cpu(mpidr))
            .or(service_cpu);
        let Some(home) = home else {
            error!(
                "display {}: no free core to compose it; it stays dark",
                d.name
            );
            continue;
        };
        match display::open_screen(d, home) {
            Ok(opened) => opened_screens.push((i, opened, home)),
            Err(e) => error!("display {}: {e}; its views are not shown", d.name),
        }
    }
    let mut gpus: Vec<&'static display::VirtGpu> = Vec::new();

    // Touch panels, each with its pointer if it has one (opened after the
    // panel: see touch::open_pointer): opened on the boot core; their
    // contacts are then routed on their home cores.
    let mut opened_panels = Vec::new();
    for (i, t) in system.touch.iter().enumerate() {
        let home = t
            .home_cpu
            .and_then(|mpidr| platform.logical_cpu(mpidr))
            .or(service_cpu);
        let Some(home) = home else {
            error!("touch {}: no free core to route it; it is not read", t.name);
            continue;
        };
        match touch::open_panel(t, home) {
            Ok(phys) => {
                let pointer = touch::open_pointer(t).unwrap_or_else(|e| {
                    error!("touch {}: pointer: {e}; mouse input off", t.name);
                    None
                });
                let intid = t.interrupts.first().copied();
                opened_panels.push((i, phys, pointer, home, intid));
            }
            Err(e) => error!("touch {}: {e}; its contacts go nowhere", t.name),
        }
    }
    // Audio outputs: opened on the boot core; each is then mixed and fed
    // on its home core.
    let mut opened_outputs = Vec::new();
    for (i, a) in system.audio.iter().enumerate() {
        let home = a
            .home_cpu
            .and_then(|mpidr| platform.logical_cpu(mpidr))
            .or(service_cpu);
        let Some(home) = home else {
            error!("audio {}: no free core to mix it; it stays silent", a.name);
            continue;
        };
        match audio::open_output(a, home) {
            Ok(phys) => opened_outputs.push((i, phys, home, a.interrupts.first().copied())),
            Err(e) => error!("audio {}: {e}; its streams are not played", a.name),
        }
    }
    let mut sounds: Vec<&'static audio::VirtSound> = Vec::new();
    let mut sources_on_output = vec![0usize; system.audio.len()];
    let mut inputs: Vec<&'static touch::VirtInput> = Vec::new();
    let mut targets_on_panel = vec![0usize; system.touch.len()];

    // The console: one virtual UART per partition.
    let names: Vec<&'static str> = system.partitions.iter().map(|p| p.name).collect();
    let console = Console::new(&names, service_cpu, generated::CONSOLE_BAUD);

    // Partitions: stage-2 tables and emulated devices.
    let mut partitions = Vec::new();
    let mut virt_disks: Vec<&'static storage::VirtDisk> = Vec::new();
    for (index, p) in system.partitions.iter().enumerate() {
        let vmid = index as u64 + 1;
        let root = build_stage2(&mut arena, p)
            .unwrap_or_else(|e| fatal(format_args!("partition {}: stage-2 map: {e:?}", p.name)));
        let hardware: Vec<u32> = p
            .devices
            .iter()
            .flat_map(|d| d.interrupts.iter().copied())
            .collect();
        let mut windows = Vec::from(vgic_mmio::windows(p.cpus.len()));
        windows.push(Window {
            base: layout::UART_BASE,
            size: layout::UART_SIZE,
            intid: Some(layout::UART_INTID),
            device: console,
        });
        if p.watchdog {
            windows.push(Window {
                base: layout::WATCHDOG_BASE,
                size: layout::WATCHDOG_SIZE,
                intid: Some(layout::WATCHDOG_INTID),
                device: &watchdog::Watchdog,
            });
        }
        let mut slot = 0;
        for (n, d) in p.disks.iter().enumerate() {
            // Storage entries that failed to open are missing from `storage`.
            let opened = storage
                .iter()
                .find(|s| s.name == system.storage[d.storage].name);
            let Some(&device) = opened else {
                error!(
                    "partition {}: disk {n}: its storage is not available",
                    p.name
                );
                continue;
            };
            match storage::open_virt_disk(device, d, (index, p.name), slot) {
                Ok(disk) => {
                    let disk = leak(disk);
                    virt_disks.push(disk);
                    windows.push(Window {
                        base: layout::VIRTIO_BASE + slot as u64 * layout::VIRTIO_STRIDE,
                        size: layout::VIRTIO_STRIDE,
                        intid: Some(disk.intid()),
                        device: disk,
                    });
                    slot += 1;
                }
                Err(e) => error!("partition {}: disk {n}: {e}", p.name),
            }
        }
        if !p.views.is_empty() {
            match display::open_gpu(p, index, slot) {
                Ok(gpu) => {
                    let gpu = leak(gpu);
                    gpus.push(gpu);
                    windows.push(Window {
                        base: layout::virtio_slot_base(slot),
                        size: layout::VIRTIO_STRIDE,
                        intid: Some(gpu.intid()),
                        device: gpu,
                    });
                    slot += 1;
                }
                Err(e) => error!("partition {}: display: {e}", p.name),
            }
        }
        for input in p.inputs(system.touch) {
            let panel = input.panel;
            if !opened_panels.iter().any(|(i, ..)| *i == panel) {
                continue;
            }
            let target = targets_on_panel[panel];
            let Some(device) = touch::open_input(system, p, index, panel, target, slot) else {
                continue;
            };
            let device = leak(device);
            targets_on_panel[panel] += 1;
            inputs.push(device);
            windows.push(Window {
                base: layout::virtio_slot_base(slot),
                size: layout::VIRTIO_STRIDE,
                intid: Some(device.intid()),
                device,
            });
            slot += 1;
        }
        if let Some(a) = &p.audio
            && opened_outputs.iter().any(|(i, ..)| *i == a.output)
        {
            let source = sources_on_output[a.output];
            if let Some(device) = audio::open_sound(p, index, source, slot) {
                let device = leak(device);
                sources_on_output[a.output] += 1;
                sounds.push(device);
                windows.push(Window {
                    base: layout::virtio_slot_base(slot),
                    size: layout::VIRTIO_STRIDE,
                    intid: Some(device.intid()),
                    device,
                });
                slot += 1;
            }
        }
        if let Err((a, b)) = mmio::sort_windows(&mut windows) {
            fatal(format_args!(
                "partition {}: emulated devices at {a:#x} and {b:#x} overlap",
                p.name
            ));
        }
        let virtual_spis: Vec<u32> = windows.iter().filter_map(|w| w.intid).collect();
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
        partitions.push(Partition {
            index,
            config: p,
            vttbr: root | (vmid << 48),
            vcpu_cpus,
            watchdog: p.watchdog.then(|| Mutex::new(Sp805::new())),
            vgic: Mutex::new(VGic::new(p.cpus.len(), &hardware, &virtual_spis, lines)),
            windows,
            virtio_slots: slot,
            lifecycle: Mutex::new(Lifecycle::Stopped),
            running: Default::default(),
            spi_routes: Default::default(),
            reports: Default::default(),
            records: Default::default(),
            restarts: Default::default(),
        });
    }
    info!("page tables: {} of 4 KiB used", arena.tables_used());

    // Mediators, and the physical interrupts they own (routed to their
    // home cores).
    let console_intid = platform.console_interrupt;
    let storage_homes: Vec<(u32, usize)> = storage
        .iter()
        .filter_map(|s| s.intid.map(|i| (i, s.home_cpu)))
        .collect();
    // Crash records are numbered on from what the records area holds.
    let records_log = storage
        .iter()
        .find_map(|s| s.records.as_ref())
        .map_or_else(partition::crash::Log::default, |area| {
            partition::crash::Log::new(area.state)
        });
    let storage: &'static Storage = leak(Storage::new(storage, virt_disks));
    let screens: Vec<&'static display::Screen> = opened_screens
        .into_iter()
        .map(|(i, opened, home)| leak(display::screen(system, i, opened, home, &gpus)))
        .collect();
    display::install_screens(&screens);
    let display: &'static Display = leak(Display::new(screens, gpus));
    let display_homes: Vec<(u32, usize)> = display.interrupts().collect();
    let panels: Vec<&'static touch::Panel> = opened_panels
        .into_iter()
        .map(|(i, phys, pointer, home, intid)| {
            leak(touch::panel(system, i, phys, pointer, home, intid, &inputs))
        })
        .collect();
    let touch: &'static Touch = leak(Touch::new(panels, inputs));
    let touch_homes: Vec<(u32, usize)> = touch.interrupts().collect();
    let outputs: Vec<&'static audio::Output> = opened_outputs
        .into_iter()
        .map(|(i, phys, home, intid)| leak(audio::output(system, i, phys, home, intid, &sounds)))
        .collect();
    let audio: &'static Audio = leak(Audio::new(outputs, sounds));
    let audio_homes: Vec<(u32, usize)> = audio.interrupts().collect();
    // Served in this order on each pass of a core: the quick, urgent work
    // first (a disk request, a touch, console bytes, the next audio
    // period), composition last (it can take a slice of a refresh, which
    // the others would wait behind).
    let mediators: Vec<&'static dyn Mediator> = vec![storage, touch, console, audio, display];
    let mut interrupt_owners: Vec<(u32, &'static dyn Mediator)> = Vec::new();
    if let Some(intid) = console_intid {
        interrupt_owners.push((intid, console));
    }
    interrupt_owners.extend(storage.interrupts().map(|i| (i, storage as &dyn Mediator)));
    interrupt_owners.extend(
        display_homes
            .iter()
            .map(|&(i, _)| (i, display as &dyn Mediator)),
    );
    interrupt_owners.extend(
        touch_homes
            .iter()
            .map(|&(i, _)| (i, touch as &dyn Mediator)),
    );
    interrupt_owners.extend(
        audio_homes
            .iter()
            .map(|&(i, _)| (i, audio as &dyn Mediator)),
    );
    let hv = partition::install(Hypervisor {
        platform,
        host_dtb,
        gicd,
        cpus,
        partitions,
        mediators,
        interrupt_owners,
        virq_by_hcr: !generated::GIC_VIRQ_WIRED,
        records: records_log,
    });
    if !generated::GIC_VIRQ_WIRED {
        info!(
            "virtual interrupts: signalled with HCR_EL2.VI (the board's GIC does not raise the virtual IRQ line)"
        );
    }
    cpu_init(me);
    match service_cpu {
        Some(c) => {
            info!("service core: cpu {c} (console, storage I/O, display composition, audio mixing)")
        }
        None => warn!("every core runs a partition: console output is drained by the writing core"),
    }
    console.start();
    // The production build takes no console input: its receive interrupt
    // stays off.
    if let Some(intid) = console_intid.filter(|_| !hypervisor::PRODUCTION) {
        let handler = service_cpu.unwrap_or(me);
        gic::route_spi(gicd, intid, hv.cpus[handler].mpidr);
        gic::set_spi_enabled(gicd, intid, true);
        uart::enable_receive_interrupt();
    }
    // Cores that do a mediator's work (a `home_cpu`), whether or not they
    // run a vCPU.
    let mut homes: Vec<usize> = storage_homes.iter().map(|&(_, home)| home).collect();
    homes.extend(display.home_cpus());
    homes.extend(touch.home_cpus());
    homes.extend(audio.home_cpus());
    for (intid, home) in storage_homes
        .into_iter()
        .chain(display_homes)
        .chain(touch_homes)
        .chain(audio_homes)
    {
        gic::route_spi(gicd, intid, hv.cpus[home].mpidr);
        gic::set_spi_enabled(gicd, intid, true);
    }

    // Bring up every core that runs a vCPU, the service core and the
    // mediators' home cores; the rest stay off.
    let smc = hv.platform.psci == Conduit::Smc;
    for (i, c) in hv.cpus.iter().enumerate() {
        let needed = c.vcpu.is_some() || Some(i) == service_cpu || homes.contains(&i);
        if i == me || !needed {
            continue;
        }
        let ret = cpu::firmware_call(
            smc,
            partition::psci::CPU_ON_64 as u64,
            c.mpidr,
            arch::aarch64::secondary_entry as *const () as u64,
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
        lifecycle::request_boot(p);
    }
    arch::restart_on_fresh_stack(me, lifecycle::idle_loop)
}

/// The image's size by part, the partitions' images (built in as
/// read-only data) told apart from the hypervisor's own.
fn log_image_size(system: &System) {
    let s = arch::aarch64::image_sections();
    let guests: u64 = system
        .partitions
        .iter()
        .map(|p| (p.image.len() + p.initrd.len()) as u64)
        .sum();
    let heap = arch::aarch64::heap::HEAP_SIZE as u64;
    info!(
        "image: code {} KiB, read-only data {} KiB (partition images {} KiB besides), \
         data {} KiB, bss {} KiB (stacks, page tables) besides the {} MiB heap",
        s.code / 1024,
        s.rodata.saturating_sub(guests) / 1024,
        guests / 1024,
        s.data / 1024,
        s.bss / 1024,
        heap >> 20
    );
}

/// Per-core EL2 and GIC set-up.
fn cpu_init(me: usize) {
    let hv = partition::hv();
    cpu::set_current(me);
    cpu::init_el2(arch::vectors());
    let kick = 1 << partition::KICK_SGI;
    let maintenance = 1 << hv.platform.gic_maintenance;
    let hyp_timer = 1 << hv.platform.hyp_timer_intid;
    gic::init_cpu(hv.cpus[me].redistributor, kick | maintenance | hyp_timer);
}

#[unsafe(no_mangle)]
extern "C" fn secondary_main(me: usize) -> ! {
    mmu::enable();
    cpu_init(me);
    arch::restart_on_fresh_stack(me, lifecycle::idle_loop)
}

/// Puts `value` where it lives as long as the hypervisor.
fn leak<T>(value: T) -> &'static T {
    alloc::boxed::Box::leak(alloc::boxed::Box::new(value))
}

/// A partition's stage-2 map: its memory as normal memory, its passthrough
/// devices identity-mapped as device memory. Emulated devices stay unmapped
/// so that accesses trap.
fn build_stage2(
    arena: &mut TableArena,
    p: &config::model::Partition,
) -> Result<u64, hypervisor::memory::pagetable::MapError> {
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
