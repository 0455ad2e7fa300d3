//! A simulated machine behind the architecture interface, for host tests:
//! the same modules and functions as `arch::aarch64`, acting on a
//! [`Machine`] that belongs to the calling test thread. A test sets up the
//! hardware side (which core runs, the trap syndrome, interrupts waiting
//! to be acknowledged, the counter) and reads back what the hypervisor did
//! (list registers, SGIs sent, interrupts deactivated, timers armed,
//! exceptions injected, memory written).
//!
//! Functions that never return on hardware (parking a core, entering a
//! guest, halting) unwind with a [`Left`] payload, which the test catches.

pub mod cpu;
pub mod dma;
pub mod gic;
pub mod guest_mem;
pub mod mmio;

use super::Frame;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// List registers per simulated core.
pub const NUM_LRS: usize = 4;

/// Why a call that never returns on hardware left (the panic payload).
#[derive(Clone, Debug)]
pub enum Left {
    /// The core parked (went back to the idle loop on a fresh stack).
    Parked { cpu: usize },
    /// The core entered a guest with these registers.
    EnteredGuest { cpu: usize, frame: Box<Frame> },
    /// The core halted.
    Halted { cpu: usize },
}

/// One simulated core's CPU-side state.
#[derive(Clone, Debug, Default)]
pub struct Core {
    /// The list registers.
    pub lrs: [u64; NUM_LRS],
    /// Bit n: the guest has EOIed list register n (ICH_EISR_EL2).
    pub ended: u64,
    /// Underflow maintenance interrupt requested.
    pub underflow: bool,
    /// Maintenance interrupt while no list register is pending requested.
    pub no_pending: bool,
    /// HCR_EL2.VI: a virtual IRQ signalled by the CPU itself.
    pub virtual_irq: bool,
    /// The EL2 timer's deadline, if armed.
    pub hyp_timer: Option<u64>,
    /// Interrupts waiting to be acknowledged, in order.
    pub waiting: Vec<u32>,
    /// Exceptions injected into the guest (ESR values).
    pub injected: Vec<u64>,
    /// A virtual SError is pending.
    pub virtual_serror: bool,
    /// The guest's stack pointer (SP_EL1 or SP_EL0).
    pub guest_sp: u64,
}

/// The simulated machine of the current test thread.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The logical core that is running.
    pub current: usize,
    /// The physical counter.
    pub counter: u64,
    /// Its frequency.
    pub frequency: u64,
    /// Per core.
    pub cores: Vec<Core>,
    /// ESR, FAR and HPFAR of the trap being handled.
    pub trap: cpu::TrapInfo,
    /// SGIs sent: (INTID, target MPIDR).
    pub sgis: Vec<(u32, u64)>,
    /// Interrupts deactivated, in order.
    pub deactivated: Vec<u32>,
    /// SPIs enabled at the distributor.
    pub spis_enabled: BTreeSet<u32>,
    /// SPI routes at the distributor.
    pub spi_routes: BTreeMap<u32, u64>,
    /// Private interrupts enabled, by redistributor frame.
    pub private_enabled: BTreeSet<(u64, u32)>,
    /// Pending and active state at the GIC, by (redistributor frame or 0
    /// for the distributor, INTID).
    pub irq_states: BTreeMap<(u64, u32), crate::arch::IrqState>,
    /// Sparse physical memory, by 4 KiB page.
    pub memory: BTreeMap<u64, Box<[u8; 4096]>>,
    /// Firmware calls made (x0..x3).
    pub firmware_calls: Vec<[u64; 4]>,
    /// Device register blocks opened (`mmio::Registers`): base address to
    /// the leaked memory standing in for the registers.
    pub devices: BTreeMap<u64, usize>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine {
            current: 0,
            counter: 0,
            frequency: 62_500_000,
            cores: vec![Core::default(); super::MAX_CPUS],
            trap: cpu::TrapInfo::default(),
            sgis: Vec::new(),
            deactivated: Vec::new(),
            spis_enabled: BTreeSet::new(),
            spi_routes: BTreeMap::new(),
            private_enabled: BTreeSet::new(),
            irq_states: BTreeMap::new(),
            memory: BTreeMap::new(),
            firmware_calls: Vec::new(),
            devices: BTreeMap::new(),
        }
    }
}

impl Machine {
    /// The running core.
    pub fn core(&mut self) -> &mut Core {
        let c = self.current;
        &mut self.cores[c]
    }

    /// Reads physical memory (zero where never written).
    pub fn read(&self, addr: u64, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = addr + i as u64;
            *b = self
                .memory
                .get(&(a & !0xfff))
                .map_or(0, |p| p[(a & 0xfff) as usize]);
        }
    }

    /// Writes physical memory.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let a = addr + i as u64;
            let page = self
                .memory
                .entry(a & !0xfff)
                .or_insert_with(|| Box::new([0; 4096]));
            page[(a & 0xfff) as usize] = b;
        }
    }
}

std::thread_local! {
    static MACHINE: RefCell<Machine> = RefCell::new(Machine::default());
}

/// Runs `f` on this thread's machine.
pub fn with<R>(f: impl FnOnce(&mut Machine) -> R) -> R {
    MACHINE.with(|m| f(&mut m.borrow_mut()))
}

/// A fresh machine for this thread.
pub fn reset_machine() {
    MACHINE.with(|m| *m.borrow_mut() = Machine::default());
}

/// Address of the (simulated) exception vectors.
pub fn vectors() -> u64 {
    0x4000_0800
}

/// Unwinds with [`Left::Parked`].
pub fn restart_on_fresh_stack(cpu: usize, _f: extern "C" fn() -> !) -> ! {
    std::panic::panic_any(Left::Parked { cpu })
}

/// Unwinds with [`Left::EnteredGuest`].
pub fn enter_guest(cpu: usize, frame: &Frame) -> ! {
    std::panic::panic_any(Left::EnteredGuest {
        cpu,
        frame: Box::new(*frame),
    })
}

/// Unwinds with [`Left::Halted`].
pub fn halt() -> ! {
    std::panic::panic_any(Left::Halted {
        cpu: with(|m| m.current),
    })
}

/// Runs `f`, which is expected to leave the way a non-returning call
/// does; returns how it left, or `None` if it returned. Any other panic
/// goes on unwinding.
pub fn run_until_left(f: impl FnOnce()) -> Option<Left> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    match result {
        Ok(()) => None,
        Err(payload) => match payload.downcast::<Left>() {
            Ok(left) => Some(*left),
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

/// The host's heap is not the hypervisor's: nothing to report.
pub fn heap_in_use() -> usize {
    0
}

/// As [`heap_in_use`].
pub fn heap_high_water() -> usize {
    0
}
