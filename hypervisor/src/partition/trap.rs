//! Exceptions taken from guests: MMIO emulation, PSCI, trapped system
//! registers, interrupts, and faults handled per the partition's
//! `on_fault` policy. Nothing a guest does here can panic the hypervisor.

use super::esr::{self, ec};
use super::lifecycle;
use super::{
    Partition, crash, current_vcpu, fatal, firmware, irq, mmio, service_mediators, sysreg,
    this_cpu, virq, watchdog,
};
use crate::arch::Frame;
use crate::arch::cpu::{self, El1Exception};
use config::model::OnFault;
use log::warn;
use shared_devices::crash_record::Cause;

/// What went wrong, for the record and for injection.
enum Fault {
    Stage2 { ipa: u64, far: u64, write: bool },
    InstructionAbort { ipa: u64, far: u64 },
    Undefined,
    SError,
}

impl Fault {
    fn cause(&self) -> Cause {
        match self {
            Fault::Stage2 { .. } => Cause::DataAbort,
            Fault::InstructionAbort { .. } => Cause::InstructionAbort,
            Fault::Undefined => Cause::Undefined,
            Fault::SError => Cause::SError,
        }
    }

    /// (FAR, IPA) of an abort.
    fn addresses(&self) -> (u64, u64) {
        match *self {
            Fault::Stage2 { ipa, far, .. } | Fault::InstructionAbort { ipa, far } => (far, ipa),
            Fault::Undefined | Fault::SError => (0, 0),
        }
    }
}

/// Applies the partition's fault policy, after making the fault's crash
/// record (whose summary is the log line). Returns only for `inject`.
fn fault(p: &Partition, frame: &mut Frame, esr: u64, f: Fault) {
    let action = crash::action(p.config.on_fault);
    let (far, ipa) = f.addresses();
    let event = crash::Event {
        cause: f.cause(),
        action,
        esr,
        far,
        ipa,
    };
    crash::record(p, event, Some(frame));
    if p.config.on_fault != OnFault::Inject {
        lifecycle::stop_partition(p, p.config.on_fault);
    }
    let from_el0 = frame.spsr & 0b1111 == 0;
    let il = 1 << 25;
    const EXTERNAL_ABORT: u64 = 0x10;
    let e = match f {
        Fault::Stage2 { far, write, .. } => {
            let class = if from_el0 { 0x24 } else { 0x25 };
            El1Exception {
                esr: (class << 26) | il | ((write as u64) << 6) | EXTERNAL_ABORT,
                far: Some(far),
            }
        }
        Fault::InstructionAbort { far, .. } => {
            let class = if from_el0 { 0x20 } else { 0x21 };
            El1Exception {
                esr: (class << 26) | il | EXTERNAL_ABORT,
                far: Some(far),
            }
        }
        Fault::Undefined => El1Exception { esr: il, far: None },
        Fault::SError => {
            cpu::raise_virtual_serror();
            return;
        }
    };
    cpu::inject_sync(frame, e);
}

pub fn lower_sync(frame: &mut Frame) {
    let Some((p, vcpu)) = current_vcpu() else {
        unreachable_guest();
    };
    let info = cpu::trap_info();
    match esr::class(info.esr) {
        ec::DATA_ABORT_LOWER => {
            let ipa = ((info.hpfar >> 4) << 12) | (info.far & 0xfff);
            match esr::mmio_access(info.esr) {
                Some(access) if mmio::emulate(p, vcpu, frame, ipa, access) => step(frame, info.esr),
                _ => {
                    let write = info.esr & (1 << 6) != 0;
                    fault(
                        p,
                        frame,
                        info.esr,
                        Fault::Stage2 {
                            ipa,
                            far: info.far,
                            write,
                        },
                    );
                }
            }
        }
        ec::INSTR_ABORT_LOWER => {
            let ipa = ((info.hpfar >> 4) << 12) | (info.far & 0xfff);
            let f = Fault::InstructionAbort { ipa, far: info.far };
            fault(p, frame, info.esr, f);
        }
        // The preferred return address of HVC is the next instruction; of
        // a trapped SMC, the SMC itself.
        ec::HVC64 => firmware::call(p, frame),
        ec::SMC64 => {
            frame.elr += 4;
            firmware::call(p, frame);
        }
        ec::SYSREG => match sysreg::emulate(p, vcpu, frame, esr::sysreg_access(info.esr)) {
            sysreg::Outcome::Done => step(frame, info.esr),
            sysreg::Outcome::Undefined => fault(p, frame, info.esr, Fault::Undefined),
        },
        ec::WFX => step(frame, info.esr),
        _ => fault(p, frame, info.esr, Fault::Undefined),
    }
    before_guest_return(p, vcpu);
}

pub fn lower_irq(frame: &mut Frame) {
    if let Some((p, then)) = irq::service_interrupts() {
        watchdog::expire(p, then, Some(frame));
    }
    // A mediator homed on this partition core (storage's `home_cpu`): its
    // work is done here, between the partition's instructions, in steps
    // that never wait for the device.
    service_mediators();
    if let Some((p, vcpu)) = current_vcpu() {
        before_guest_return(p, vcpu);
    }
}

pub fn lower_serror(frame: &mut Frame) {
    let Some((p, _)) = current_vcpu() else {
        unreachable_guest();
    };
    fault(p, frame, cpu::trap_info().esr, Fault::SError);
}

/// An exception taken from EL2 itself is a hypervisor bug: the whole
/// system stops (see `partition::fatal`).
pub fn hv_exception(frame: &mut Frame) -> ! {
    let info = cpu::trap_info();
    fatal::hypervisor_bug(format_args!(
        "exception at EL2: ESR {:#x} ELR {:#x} FAR {:#x}",
        info.esr, frame.elr, info.far
    ))
}

fn unreachable_guest() -> ! {
    warn!(
        "cpu {}: trap from a guest on a core with no vCPU; parking",
        cpu::current()
    );
    lifecycle::park()
}

/// Resumes the guest after the instruction the hypervisor emulated.
fn step(frame: &mut Frame, esr: u64) {
    (frame.elr, frame.spsr) = esr::step_over(frame.elr, frame.spsr, esr);
}

/// Cross-core requests and pending interrupts, on every way back to a guest.
fn before_guest_return(p: &Partition, vcpu: usize) {
    lifecycle::handle_requests();
    virq::flush(this_cpu(), p, vcpu);
}
