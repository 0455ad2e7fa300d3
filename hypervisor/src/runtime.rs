//! Run-time state of the hypervisor: the partitions, the physical cores
//! (one vCPU each), and the partition life cycle (boot, stop, restart).
//!
//! Cross-core coordination uses "requests": a bit in the target core's
//! `requests` word plus a physical SGI (the kick). A core acts on its
//! requests when it next enters EL2, which a guest cannot prevent because
//! physical interrupts always trap to EL2.

use crate::arch::{self, Frame, cpu, gic, guest_mem};
use crate::virq::Pending;
use alloc::string::String;
use alloc::vec::Vec;
use config::layout;
use config::model::{OnFault, Partition};
use core::sync::atomic::{AtomicU32, Ordering};
use hypervisor::guest_dt;
use hypervisor::platform::Platform;
use hypervisor::vgic::{Effect, VGic};
use log::{error, info, warn};
use shared_devices::pl011::Pl011;
use shared_devices::sp805::{Expiry, Sp805};
use spin::{Mutex, Once};

/// Physical SGI used to kick another core into EL2.
pub const KICK_SGI: u32 = 0;
/// Request bit: stop the vCPU running on this core and park.
pub const REQ_STOP: u32 = 1 << 0;
/// Boot the partition whose vCPU 0 this core runs (at system start).
pub const REQ_BOOT: u32 = 1 << 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    Off,
    OnPending { entry: u64, context: u64 },
    On,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Running,
    Stopping,
    Stopped,
}

pub struct CpuRt {
    pub mpidr: u64,
    /// This core's physical redistributor frame.
    pub rd: u64,
    /// (partition index, vCPU index) of the vCPU this core runs, if any.
    pub vcpu: Option<(usize, usize)>,
    pub power: Mutex<Power>,
    pub requests: AtomicU32,
    /// Virtual interrupts waiting for a list register.
    pub pending: Pending,
}

pub struct PartitionRt {
    /// Position in the config (and in `Hv::partitions`).
    pub index: usize,
    pub desc: &'static Partition,
    pub vttbr: u64,
    /// Logical CPU of each vCPU.
    pub vcpu_cpus: Vec<usize>,
    pub vgic: Mutex<VGic>,
    pub uart: Mutex<Pl011>,
    /// Virtual disks (virtio-blk), by virtio slot.
    pub disks: Vec<crate::storage::VirtDisk>,
    /// The virtual SP805, if the config gives the partition one.
    pub watchdog: Option<Mutex<Sp805>>,
    pub lifecycle: Mutex<Lifecycle>,
    pub restarts: AtomicU32,
}

impl PartitionRt {
    pub fn name(&self) -> &'static str {
        self.desc.name
    }

    pub fn vcpus(&self) -> usize {
        self.vcpu_cpus.len()
    }
}

pub struct Hv {
    pub platform: Platform,
    /// A private copy of the platform DTB: the original may sit in memory
    /// that a partition is about to be loaded into.
    pub host_dtb: Vec<u8>,
    pub gicd: u64,
    pub cpus: Vec<CpuRt>,
    pub partitions: Vec<PartitionRt>,
    /// The physical console's receive interrupt (INTID), if it has one.
    pub console_intid: Option<u32>,
    /// Mediated physical disks (`[[storage]]`).
    pub storage: Vec<crate::storage::StorageRt>,
}

static HV: Once<Hv> = Once::new();

pub fn install(hv: Hv) -> &'static Hv {
    HV.call_once(|| hv)
}

pub fn hv() -> &'static Hv {
    HV.get()
        .expect("hypervisor state used before boot finished")
}

pub fn this_cpu() -> &'static CpuRt {
    &hv().cpus[cpu::current()]
}

/// The partition and vCPU this core runs.
pub fn current_vcpu() -> Option<(&'static PartitionRt, usize)> {
    this_cpu().vcpu.map(|(p, v)| (&hv().partitions[p], v))
}

/// Sets request bits on `cpu` and interrupts it.
pub fn kick(cpu: usize, requests: u32) {
    let target = &hv().cpus[cpu];
    target.requests.fetch_or(requests, Ordering::AcqRel);
    gic::send_sgi(KICK_SGI, target.mpidr);
}

/// Marks a virtual device's SPI pending on the vCPU it is routed to.
pub fn raise_virtual_spi(p: &PartitionRt, intid: u32) {
    let target = p.vgic.lock().spi_target(intid);
    let cpu = p.vcpu_cpus[target];
    hv().cpus[cpu].pending.set(intid);
    if cpu != cpu::current() {
        kick(cpu, 0);
    }
}

/// Partition `index`'s console queue has room again: its UART's transmit
/// FIFO stops being full, which may raise its transmit interrupt.
pub fn console_room(index: usize) {
    let p = &hv().partitions[index];
    let raised = {
        // Busy: the core holding it is writing to this UART and updates the
        // transmit state itself when it is done (and this may be that core,
        // draining inline).
        let Some(mut uart) = p.uart.try_lock() else {
            return;
        };
        let before = uart.interrupt();
        uart.set_tx_full(!crate::console::has_room(index));
        uart.interrupt() && !before
    };
    if raised {
        raise_virtual_spi(p, layout::UART_INTID);
    }
}

/// Level of a virtual device's interrupt line.
pub fn virtual_line_high(p: &PartitionRt, intid: u32) -> bool {
    match intid {
        layout::UART_INTID => p.uart.lock().interrupt(),
        layout::WATCHDOG_INTID => p.watchdog.as_ref().is_some_and(|w| w.lock().interrupt()),
        _ if intid >= layout::VIRTIO_FIRST_INTID => {
            crate::storage::line_high(p, (intid - layout::VIRTIO_FIRST_INTID) as usize)
        }
        _ => false,
    }
}

/// The watchdog's clock, derived from the physical counter.
pub fn watchdog_now() -> u64 {
    let ticks = cpu::counter() as u128 * layout::APB_CLOCK_HZ as u128;
    (ticks / cpu::counter_frequency() as u128) as u64
}

/// Advances the partition's watchdog to now: raises its interrupt on the
/// first expiry, stops or restarts the partition (per `on_fault`) on the
/// second, and arms this core's EL2 timer for its next deadline. Called on
/// a core of the partition, after a watchdog register access or when that
/// timer fires; does not return if the partition is reset.
pub fn service_watchdog(p: &PartitionRt) {
    let Some(watchdog) = &p.watchdog else {
        cpu::set_hyp_timer(None);
        return;
    };
    let (expiry, next) = {
        let mut w = watchdog.lock();
        let expiry = w.poll(watchdog_now());
        (expiry, w.next_deadline())
    };
    match expiry {
        Expiry::Nothing => {}
        Expiry::Interrupt => raise_virtual_spi(p, layout::WATCHDOG_INTID),
        Expiry::Reset => {
            cpu::set_hyp_timer(None);
            let then = if p.desc.on_fault == OnFault::Restart {
                OnFault::Restart
            } else {
                OnFault::Stop
            };
            warn!(
                "partition {}: watchdog expired -> {}",
                p.name(),
                then.as_str()
            );
            stop_partition(p, then);
        }
    }
    let freq = cpu::counter_frequency() as u128;
    let deadline = next.map(|t| (t as u128 * freq).div_ceil(layout::APB_CLOCK_HZ as u128) as u64);
    cpu::set_hyp_timer(deadline);
}

/// Applies a vGIC side effect to the physical GIC.
pub fn apply_effect(p: &PartitionRt, effect: Effect) {
    let hv = hv();
    match effect {
        Effect::SpiEnable { intid, enable } => gic::set_spi_enabled(hv.gicd, intid, enable),
        Effect::SpiRoute { intid, vcpu } => {
            gic::route_spi(hv.gicd, intid, hv.cpus[p.vcpu_cpus[vcpu]].mpidr)
        }
        // Only the virtual timer is backed by a physical PPI; SGIs are
        // purely virtual.
        Effect::PrivateEnable {
            vcpu,
            intid,
            enable,
        } if intid == hv.platform.vtimer_intid => {
            gic::set_private_enabled(hv.cpus[p.vcpu_cpus[vcpu]].rd, intid, enable)
        }
        Effect::PrivateEnable { .. } => {}
    }
}

/// Puts the partition's image and device tree into its (scrubbed) memory
/// and makes vCPU 0 ready to run. Returns an error if the image cannot be
/// loaded; the partition then stays stopped.
pub fn boot_partition(p: &PartitionRt) -> Result<(), String> {
    let hv = hv();
    let image = p.desc.image;
    let header_ok = image.len() >= layout::image::HEADER_SIZE
        && u32::from_le_bytes(image[layout::image::MAGIC..][..4].try_into().unwrap())
            == layout::image::MAGIC_VALUE;
    if !header_ok {
        return Err("image is not an arm64 Image".into());
    }
    let header_u64 = |at: usize| u64::from_le_bytes(image[at..][..8].try_into().unwrap());
    let text_offset = header_u64(layout::image::TEXT_OFFSET);
    let image_size = layout::kernel_size(header_u64(layout::image::IMAGE_SIZE), image.len() as u64);
    let first = p.desc.memory[0];
    let entry = first.guest + text_offset;
    let dtb_gpa = first.guest + first.size - layout::DTB_SLOT_SIZE;
    let initrd_gpa = layout::initrd_address(first.guest, text_offset, image_size);
    let initrd = p.desc.initrd;
    let boot = guest_dt::BootInfo {
        restart_count: p.restarts.load(Ordering::Acquire),
        initrd: (!initrd.is_empty()).then(|| (initrd_gpa, initrd_gpa + initrd.len() as u64)),
        virtio_slots: p.disks.len(),
    };
    let host = fdt::Fdt::new(&hv.host_dtb).map_err(|e| alloc::format!("platform DTB: {e:?}"))?;
    let dtb = guest_dt::build(p.desc, &hv.platform, &host, boot)?;

    let map = p.desc.memory;
    let misfit = |what: &'static str| {
        move |e: guest_mem::OutOfRange| alloc::format!("{what} does not fit at {:#x}", e.gpa)
    };
    guest_mem::scrub(map);
    guest_mem::write(map, entry, image).map_err(misfit("image"))?;
    if !initrd.is_empty() {
        guest_mem::write(map, initrd_gpa, initrd).map_err(misfit("initrd"))?;
    }
    guest_mem::write(map, dtb_gpa, &dtb).map_err(misfit("device tree"))?;

    *p.lifecycle.lock() = Lifecycle::Running;
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
    me.pending.clear();
    *me.power.lock() = Power::Off;
}

/// Stops the partition this core runs, then restarts it or leaves it
/// stopped, and parks this core. Other partitions are not touched.
pub fn stop_partition(p: &PartitionRt, then: OnFault) -> ! {
    {
        let mut state = p.lifecycle.lock();
        if *state != Lifecycle::Running {
            // Someone else is already stopping it; just get out of the way.
            drop(state);
            park();
        }
        *state = Lifecycle::Stopping;
    }
    let hv = hv();
    let me = cpu::current();
    let others: Vec<usize> = p.vcpu_cpus.iter().copied().filter(|&c| c != me).collect();
    for &c in &others {
        kick(c, REQ_STOP);
    }
    stop_local_vcpu();
    for &c in &others {
        while hv.cpus[c].requests.load(Ordering::Acquire) & REQ_STOP != 0 {
            core::hint::spin_loop();
        }
    }
    // Every vCPU of the partition is parked; once its disk requests are done,
    // nothing touches its memory.
    crate::storage::quiesce(p);
    p.vgic.lock().reset(&mut |e| apply_effect(p, e));
    p.uart.lock().reset();
    if let Some(w) = &p.watchdog {
        *w.lock() = Sp805::new();
    }
    cpu::set_hyp_timer(None);
    match then {
        OnFault::Restart => {
            let n = p.restarts.fetch_add(1, Ordering::AcqRel) + 1;
            warn!("partition {}: restarting (restart #{n})", p.name());
            if let Err(e) = boot_partition(p) {
                error!("partition {}: restart failed: {e}; stopped", p.name());
                *p.lifecycle.lock() = Lifecycle::Stopped;
            }
        }
        OnFault::Stop | OnFault::Inject => {
            *p.lifecycle.lock() = Lifecycle::Stopped;
            warn!("partition {}: stopped", p.name());
        }
    }
    park();
}

/// Acts on requests from other cores. Does not return if asked to stop.
pub fn handle_requests() {
    let me = this_cpu();
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
pub fn request_boot(p: &PartitionRt) {
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

/// Where a core waits while its vCPU is off: it serves kicks and starts
/// the vCPU when PSCI CPU_ON (or a partition boot) makes it pending.
pub extern "C" fn idle_loop() -> ! {
    loop {
        crate::traps::service_interrupts();
        handle_requests();
        // Neither waits: the console writes the lines the line rate allows
        // now and says when the next is due; storage starts and finishes
        // requests, and the device's interrupt says when more is done.
        let console_due = crate::console::service();
        crate::storage::service();
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
        if current_vcpu().is_none() {
            // No partition's watchdog uses this core's EL2 timer: it wakes
            // us for the console's next line.
            cpu::set_hyp_timer(console_due);
        }
        cpu::wfi();
    }
}

/// Starts a vCPU from reset at `entry` with x0 = `context`.
fn enter_vcpu(p: &PartitionRt, vcpu: usize, entry: u64, context: u64) -> ! {
    cpu::init_el2(arch::vectors());
    cpu::set_guest_identity(p.vttbr, vcpu);
    cpu::reset_el1();
    gic::reset_virtual_interface();
    if vcpu == 0 {
        info!(
            "partition {}: vcpu 0 booting at {entry:#x} on cpu {}",
            p.name(),
            cpu::current()
        );
    }
    let mut frame = Frame::default();
    frame.x[0] = context;
    frame.elr = entry;
    frame.spsr = 0x3c5; // EL1h, interrupts masked, as the boot protocol requires
    arch::enter_guest(cpu::current(), &frame)
}
