//! Partitions at run time: the physical cores (one vCPU each), the
//! partitions' state, and everything that happens to a partition between
//! boot and stop: traps, trapped MMIO, virtual interrupts, PSCI, the
//! watchdog and the life cycle.
//!
//! This layer sits below the mediators: it knows them only through the
//! [`Mediator`] and [`EmulatedDevice`] traits, and the mediators call down
//! into it through a small interface ([`raise_virtual_spi`], [`kick`],
//! [`hv`]). It reaches the hardware only through `crate::arch`, so it runs
//! under `cargo test` on the host with the fake architecture.
//!
//! Cross-core coordination uses "requests": a bit in the target core's
//! `requests` word plus a physical SGI (the kick). A core acts on its
//! requests when it next enters EL2, which a guest cannot prevent because
//! physical interrupts always trap to EL2.
#![forbid(unsafe_code)]

pub mod crash;
pub mod esr;
pub mod fatal;
pub mod firmware;
pub mod hyp_timer;
pub mod irq;
pub mod lifecycle;
pub mod mediator;
pub mod mmio;
pub mod psci;
pub mod report;
pub mod sysreg;
pub mod trap;
pub mod vgic;
pub mod vgic_mmio;
pub mod virq;
pub mod watchdog;

#[cfg(test)]
mod tests;

pub use lifecycle::{Lifecycle, Power};
pub use mediator::Mediator;
pub use mmio::{Access, Actions, EmulatedDevice, Window};

use crate::arch::{cpu, gic};
use crate::dt::platform::Platform;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use shared_devices::sp805::Sp805;
use spin::Mutex;
use vgic::VGic;
use virq::Pending;

/// Physical SGI used to kick another core into EL2.
pub const KICK_SGI: u32 = 0;

/// A physical core and the vCPU it runs.
pub struct PhysicalCpu {
    /// MPIDR affinity fields.
    pub mpidr: u64,
    /// This core's physical redistributor frame.
    pub redistributor: u64,
    /// (partition index, vCPU index) of the vCPU this core runs, if any.
    pub vcpu: Option<(usize, usize)>,
    /// Whether the vCPU is off, about to start, or running.
    pub power: Mutex<Power>,
    /// Request bits from other cores (`lifecycle::REQ_*`).
    pub requests: AtomicU32,
    /// Virtual interrupts waiting for a list register.
    pub pending: Pending,
    /// Its list registers as it last returned to its vCPU (what other
    /// vCPUs of the partition see of their state).
    pub lr_copy: [AtomicU64; 16],
    /// When each user of its EL2 timer is next due (0: never); see
    /// [`hyp_timer`]. Only the core itself touches it.
    pub timer_due: [AtomicU64; 2],
}

impl PhysicalCpu {
    /// Is its vCPU running guest code (powered on, not just pending)?
    pub fn guest_on(&self) -> bool {
        *self.power.lock() == Power::On
    }

    /// A core, off, with no requests.
    pub fn new(mpidr: u64, redistributor: u64, vcpu: Option<(usize, usize)>) -> Self {
        Self {
            mpidr,
            redistributor,
            vcpu,
            power: Mutex::new(Power::Off),
            requests: AtomicU32::new(0),
            pending: Pending::default(),
            lr_copy: Default::default(),
            timer_due: Default::default(),
        }
    }
}

/// A partition: its config, its stage-2 map and its emulated devices.
pub struct Partition {
    /// Position in the config (and in [`Hypervisor::partitions`]).
    pub index: usize,
    /// What the config says about it.
    pub config: &'static config::model::Partition,
    /// VTTBR_EL2 value: stage-2 root and VMID.
    pub vttbr: u64,
    /// Logical CPU of each vCPU.
    pub vcpu_cpus: Vec<usize>,
    /// Its virtual GIC distributor and redistributors.
    pub vgic: Mutex<VGic>,
    /// Its SP805 watchdog, if the config gives it one.
    pub watchdog: Option<Mutex<Sp805>>,
    /// Its emulated register windows, sorted by address.
    pub windows: Vec<Window>,
    /// How many virtio-mmio slots its device tree lists (slot n at
    /// `layout::VIRTIO_BASE + n * layout::VIRTIO_STRIDE`).
    pub virtio_slots: usize,
    /// Running, stopping or stopped.
    pub lifecycle: Mutex<Lifecycle>,
    /// Whether `lifecycle` is `Running`, readable without its lock (the
    /// cores that complete its device work must not wait for it).
    pub running: AtomicBool,
    /// The vCPU each SPI is routed to, as its vGIC says, readable without
    /// the vGIC's lock (which its own vCPUs may keep busy).
    pub spi_routes: SpiRoutes,
    /// Restarts so far.
    pub restarts: AtomicU32,
    /// Budgets for warnings about what it does.
    pub reports: report::Reports,
    /// Its newest crash records.
    pub records: Mutex<crash::Ring>,
}

impl Partition {
    /// The partition's name from the config.
    pub fn name(&self) -> &'static str {
        self.config.name
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.vcpu_cpus.len()
    }

    /// Is it running (not stopping, not stopped)?
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Moves it to `state` (the caller holds `lifecycle`'s lock).
    pub fn set_lifecycle(&self, lifecycle: &mut Lifecycle, state: Lifecycle) {
        *lifecycle = state;
        self.running
            .store(state == Lifecycle::Running, Ordering::Release);
    }

    /// The window whose virtual SPI is `intid`.
    pub fn window_of_intid(&self, intid: u32) -> Option<&Window> {
        self.windows.iter().find(|w| w.intid == Some(intid))
    }
}

/// A copy of a vGIC's SPI routing, kept by the distributor's window
/// ([`vgic_mmio`]) and read without locks.
pub struct SpiRoutes([AtomicU8; vgic::MAX_INTID]);

impl Default for SpiRoutes {
    fn default() -> Self {
        Self([const { AtomicU8::new(0) }; vgic::MAX_INTID])
    }
}

impl SpiRoutes {
    /// The vCPU SPI `intid` goes to (0 if out of range).
    pub fn get(&self, intid: u32) -> usize {
        self.0
            .get(intid as usize)
            .map_or(0, |r| usize::from(r.load(Ordering::Acquire)))
    }

    /// Records that SPI `intid` goes to `vcpu`.
    pub fn set(&self, intid: u32, vcpu: usize) {
        if let Some(r) = self.0.get(intid as usize) {
            r.store(vcpu as u8, Ordering::Release);
        }
    }
}

/// Everything the hypervisor knows at run time, built once at boot.
pub struct Hypervisor {
    /// What the platform device tree says.
    pub platform: Platform,
    /// A private copy of the platform DTB: the original may sit in memory
    /// that a partition is about to be loaded into.
    pub host_dtb: Vec<u8>,
    /// Physical GIC distributor base.
    pub gicd: u64,
    /// Every core, by logical number.
    pub cpus: Vec<PhysicalCpu>,
    /// Every partition, in config order.
    pub partitions: Vec<Partition>,
    /// The mediators (console, storage, ...), in the order they are served.
    pub mediators: Vec<&'static dyn Mediator>,
    /// Physical interrupts that belong to a mediator.
    pub interrupt_owners: Vec<(u32, &'static dyn Mediator)>,
    /// The GIC does not raise the cores' virtual IRQ line (the board's
    /// `gic_virq_wired = false`): the hypervisor does, with HCR_EL2.VI
    /// (see `virq`).
    pub virq_by_hcr: bool,
    /// Crash-record numbering, and the records waiting for the disk.
    pub records: crash::Log,
}

#[cfg(target_os = "none")]
mod installed {
    use super::Hypervisor;
    use spin::Once;

    static HV: Once<&'static Hypervisor> = Once::new();

    pub fn set(hv: &'static Hypervisor) {
        HV.call_once(|| hv);
    }

    pub fn get() -> Option<&'static Hypervisor> {
        HV.get().copied()
    }
}

/// On the host every test thread is its own machine (see `arch::fake`).
#[cfg(not(target_os = "none"))]
mod installed {
    use super::Hypervisor;
    use core::cell::Cell;

    std::thread_local! {
        static HV: Cell<Option<&'static Hypervisor>> = const { Cell::new(None) };
    }

    pub fn set(hv: &'static Hypervisor) {
        HV.with(|c| c.set(Some(hv)));
    }

    pub fn get() -> Option<&'static Hypervisor> {
        HV.with(|c| c.get())
    }
}

/// Makes `hv` the hypervisor's state for good (once, at the end of boot).
pub fn install(hv: Hypervisor) -> &'static Hypervisor {
    let hv: &'static Hypervisor = alloc::boxed::Box::leak(alloc::boxed::Box::new(hv));
    installed::set(hv);
    hv
}

/// The hypervisor's state.
pub fn hv() -> &'static Hypervisor {
    installed::get().expect("hypervisor state used before boot finished")
}

/// The hypervisor's state, if boot has got that far.
pub fn try_hv() -> Option<&'static Hypervisor> {
    installed::get()
}

/// This core.
pub fn this_cpu() -> &'static PhysicalCpu {
    &hv().cpus[cpu::current()]
}

/// The partition and vCPU this core runs.
pub fn current_vcpu() -> Option<(&'static Partition, usize)> {
    this_cpu().vcpu.map(|(p, v)| (&hv().partitions[p], v))
}

/// Sets request bits on `cpu` and interrupts it.
pub fn kick(cpu: usize, requests: u32) {
    let target = &hv().cpus[cpu];
    target.requests.fetch_or(requests, Ordering::AcqRel);
    gic::send_sgi(KICK_SGI, target.mpidr);
}

/// Marks a virtual device's SPI pending on the vCPU it is routed to, and
/// wakes that vCPU's core. Nothing happens while the partition is not
/// running (a device completing work for a partition being stopped).
pub fn raise_virtual_spi(p: &Partition, intid: u32) {
    if !p.is_running() {
        return;
    }
    let target = p.spi_routes.get(intid);
    let Some(&cpu) = p.vcpu_cpus.get(target) else {
        return;
    };
    hv().cpus[cpu].pending.set(intid);
    if cpu != cpu::current() {
        kick(cpu, 0);
    }
}

/// Runs every mediator's work that is due on this core; returns the
/// earliest counter value at which one wants to run again.
pub fn service_mediators() -> Option<u64> {
    let due = hv().mediators.iter().filter_map(|m| m.service()).min();
    hyp_timer::set(hyp_timer::User::Mediators, due);
    due
}
