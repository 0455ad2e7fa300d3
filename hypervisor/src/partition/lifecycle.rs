//! The partition life cycle: boot (load the image and device tree into
//! scrubbed memory, start vCPU 0), stop and restart (park every vCPU,
//! quiesce the mediators, reset the emulated devices), PSCI CPU_ON/OFF,
//! and the idle loop a core waits in while its vCPU is off.

use super::{
    Partition, current_vcpu, hv, hyp_timer, irq, kick, report, service_mediators, this_cpu, virq,
};
use crate::arch::{self, Frame, cpu, gic, guest_mem};
use crate::dt::guest_dt;
use alloc::string::String;
use config::layout;
use config::model::OnFault;
use core::sync::atomic::Ordering;
use log::error;

/// Request bit: stop the vCPU running on this core and park.
pub const REQ_STOP: u32 = 1 << 0;
/// Request bit: boot the partition whose vCPU 0 this core runs (at system
/// start).
pub const REQ_BOOT: u32 = 1 << 1;
/// Request bit: another core found a hypervisor bug; halt (`fatal`).
pub const REQ_HALT: u32 = 1 << 2;

/// A vCPU's power state (PSCI).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Off: the core waits in the idle loop.
    Off,
    /// CPU_ON (or boot) accepted: the core enters the guest at `entry`
    /// with x0 = `context` when it next looks.
    OnPending {
        /// Guest entry point.
        entry: u64,
        /// Value for x0.
        context: u64,
    },
    /// Running guest code.
    On,
}

/// Where a partition is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Booted and running.
    Running,
    /// Being stopped or restarted by one of its cores.
    Stopping,
    /// Not running (stopped for good, or before its first boot).
    Stopped,
}

/// Puts the partition's image and device tree into its (scrubbed) memory
/// and makes vCPU 0 ready to run. Returns an error if the image cannot be
/// loaded; the partition then stays stopped.
pub fn boot_partition(p: &Partition) -> Result<(), String> {
    let hv = hv();
    let image = p.config.image;
    let header_ok = image.len() >= layout::image::HEADER_SIZE
        && u32::from_le_bytes(image[layout::image::MAGIC..][..4].try_into().unwrap())
            == layout::image::MAGIC_VALUE;
    if !header_ok {
        return Err("image is not an arm64 Image".into());
    }
    let header_u64 = |at: usize| u64::from_le_bytes(image[at..][..8].try_into().unwrap());
    let text_offset = header_u64(layout::image::TEXT_OFFSET);
    let image_size = layout::kernel_size(header_u64(layout::image::IMAGE_SIZE), image.len() as u64);
    let first = p.config.memory[0];
    let entry = first.guest + text_offset;
    let dtb_gpa = first.guest + first.size - layout::DTB_SLOT_SIZE;
    let initrd_gpa = layout::initrd_address(first.guest, text_offset, image_size);
    let initrd = p.config.initrd;
    let boot = guest_dt::BootInfo {
        restart_count: p.restarts.load(Ordering::Acquire),
        initrd: (!initrd.is_empty()).then(|| (initrd_gpa, initrd_gpa + initrd.len() as u64)),
        virtio_slots: p.virtio_slots,
    };
    let host = fdt::Fdt::new(&hv.host_dtb).map_err(|e| alloc::format!("platform DTB: {e:?}"))?;
    let dtb = guest_dt::build(p.config, &hv.platform, &host, boot)?;

    let map = p.config.memory;
    let misfit = |what: &'static str| {
        move |e: guest_mem::OutOfRange| alloc::format!("{what} does not fit at {:#x}", e.gpa)
    };
    guest_mem::scrub(map);
    guest_mem::write(map, entry, image).map_err(misfit("image"))?;
    if !initrd.is_empty() {
        guest_mem::write(map, initrd_gpa, initrd).map_err(misfit("initrd"))?;
    }
    guest_mem::write(map, dtb_gpa, &dtb).map_err(misfit("device tree"))?;

    // Whatever was raised while the partition was stopping is gone: its
    // devices have been reset, and its first life's SGIs are its own.
    for &c in &p.vcpu_cpus {
        hv.cpus[c].pending.clear_software();
    }
    p.set_lifecycle(&mut p.lifecycle.lock(), Lifecycle::Running);
    let boot_cpu = p.vcpu_cpus[0];
    *hv.cpus[boot_cpu].power.lock() = Power::OnPending {
        entry,
        context: dtb_gpa,
    };
    if boot_cpu != cpu::current() {
        kick(boot_cpu, 0);
    }
    Ok(())
}

/// Tears down the vCPU on this core: list registers, pending interrupts,
/// power state. The core must then park.
fn stop_local_vcpu() {
    let me = this_cpu();
    gic::reset_virtual_interface();
    cpu::set_virtual_irq(false);
    me.pending.clear_on_this_core();
    virq::publish_lrs(me);
    *me.power.lock() = Power::Off;
}

/// Stops the partition this core runs, then restarts it or leaves it
/// stopped, and parks this core. Other partitions are not touched.
pub fn stop_partition(p: &Partition, then: OnFault) -> ! {
    {
        let mut state = p.lifecycle.lock();
        if *state != Lifecycle::Running {
            // Someone else is already stopping it; just get out of the way.
            drop(state);
            park();
        }
        p.set_lifecycle(&mut state, Lifecycle::Stopping);
    }
    let hv = hv();
    let me = cpu::current();
    // (No collection of the other cores: this stack is abandoned when the
    // core parks, and whatever it owned on the heap would leak.)
    let others = || p.vcpu_cpus.iter().copied().filter(move |&c| c != me);
    for c in others() {
        kick(c, REQ_STOP);
    }
    stop_local_vcpu();
    for c in others() {
        while hv.cpus[c].requests.load(Ordering::Acquire) & REQ_STOP != 0 {
            core::hint::spin_loop();
        }
    }
    // Every vCPU of the partition is parked; once the mediators have
    // finished with its requests, nothing touches its memory.
    for m in &hv.mediators {
        m.quiesce(p);
    }
    for w in &p.windows {
        w.device.reset(p);
    }
    hyp_timer::set(hyp_timer::User::Watchdog, None);
    match then {
        OnFault::Restart => {
            let n = p.restarts.fetch_add(1, Ordering::AcqRel) + 1;
            report::warn(
                p,
                report::Kind::Lifecycle,
                format_args!("restarting (restart #{n})"),
            );
            if let Err(e) = boot_partition(p) {
                error!("partition {}: restart failed: {e}; stopped", p.name());
                p.set_lifecycle(&mut p.lifecycle.lock(), Lifecycle::Stopped);
            }
            // Restarts must not cost memory: this stays the same from one
            // to the next (checked by the restart scenarios).
            report::note(
                p,
                report::Kind::Lifecycle,
                log::Level::Info,
                format_args!(
                    "restart #{n} done; hypervisor heap: {} bytes in use",
                    arch::heap_in_use()
                ),
            );
        }
        OnFault::Stop | OnFault::Inject => {
            p.set_lifecycle(&mut p.lifecycle.lock(), Lifecycle::Stopped);
            report::warn(p, report::Kind::Lifecycle, format_args!("stopped"));
        }
    }
    park();
}

/// Acts on requests from other cores. Does not return if asked to stop.
pub fn handle_requests() {
    let me = this_cpu();
    if me.requests.load(Ordering::Acquire) & REQ_HALT != 0 {
        arch::halt();
    }
    if me.requests.load(Ordering::Acquire) & REQ_STOP != 0 {
        if *me.power.lock() != Power::Off {
            stop_local_vcpu();
        }
        me.requests.fetch_and(!REQ_STOP, Ordering::AcqRel);
        park();
    }
    if me.requests.load(Ordering::Acquire) & REQ_BOOT != 0 {
        me.requests.fetch_and(!REQ_BOOT, Ordering::AcqRel);
        if let Some((p, 0)) = current_vcpu()
            && let Err(e) = boot_partition(p)
        {
            error!("partition {}: not started: {e}", p.name());
        }
    }
}

/// Has the first core of partition `p` boot it: each partition's memory
/// is scrubbed and loaded by its own core, in parallel, so a big partition
/// (the IVI's Linux) does not hold up a small one (the cluster), nor the
/// service core's I/O for it.
pub fn request_boot(p: &Partition) {
    kick(p.vcpu_cpus[0], REQ_BOOT);
}

/// Turns this core's vCPU off (PSCI CPU_OFF).
pub fn cpu_off() -> ! {
    stop_local_vcpu();
    park();
}

/// Leaves guest context for good and waits in the idle loop.
pub fn park() -> ! {
    arch::restart_on_fresh_stack(cpu::current(), idle_loop)
}

/// Where a core waits while its vCPU is off: it serves kicks and its
/// mediators' work, and starts the vCPU when PSCI CPU_ON (or a partition
/// boot) makes it pending.
pub extern "C" fn idle_loop() -> ! {
    loop {
        if let Some((p, then)) = irq::service_interrupts() {
            // This core's vCPU is off: no registers to record.
            super::watchdog::expire(p, then, None);
        }
        handle_requests();
        // Never waits: each mediator does what it can now and says when
        // it is next due (the console's line rate); devices' interrupts
        // say when more is done.
        service_mediators();
        let me = this_cpu();
        let start = {
            let mut power = me.power.lock();
            match *power {
                Power::OnPending { entry, context } => {
                    *power = Power::On;
                    Some((entry, context))
                }
                _ => None,
            }
        };
        if let (Some((entry, context)), Some((p, vcpu))) = (start, current_vcpu()) {
            enter_vcpu(p, vcpu, entry, context);
        }
        // The mediators' next deadline is on this core's EL2 timer (see
        // `hyp_timer`), which wakes us then.
        cpu::wfi();
    }
}

/// Starts a vCPU from reset at `entry` with x0 = `context`.
fn enter_vcpu(p: &Partition, vcpu: usize, entry: u64, context: u64) -> ! {
    cpu::init_el2(arch::vectors());
    cpu::set_guest_identity(p.vttbr, vcpu);
    cpu::reset_el1();
    gic::reset_virtual_interface();
    if vcpu == 0 {
        report::note(
            p,
            report::Kind::Lifecycle,
            log::Level::Info,
            format_args!(
                "vcpu 0 booting at {entry:#x} on cpu {} (hypervisor heap: {} KiB in use, \
                 high-water {} KiB)",
                cpu::current(),
                arch::heap_in_use() / 1024,
                arch::heap_high_water() / 1024
            ),
        );
    }
    let mut frame = Frame::default();
    frame.x[0] = context;
    frame.elr = entry;
    frame.spsr = 0x3c5; // EL1h, interrupts masked, as the boot protocol requires
    arch::enter_guest(cpu::current(), &frame)
}
