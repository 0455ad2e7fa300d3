//! Exceptions taken from guests: MMIO emulation, PSCI, trapped system
//! registers, interrupts, and faults handled per the partition's
//! `on_fault` policy. Nothing a guest does here can panic the hypervisor.

use crate::arch::cpu::{self, El1Exception};
use crate::arch::{Frame, gic};
use crate::console;
use crate::runtime::{self, PartitionRt, Power, hv, this_cpu};
use crate::virq;
use config::layout;
use config::model::OnFault;
use hypervisor::esr::{self, MmioAccess, ec};
use hypervisor::{guest_map, psci, vgic};
use log::warn;

/// What went wrong, for the log and for injection.
enum Fault {
    Stage2 { ipa: u64, far: u64, write: bool },
    InstructionAbort { ipa: u64, far: u64 },
    Undefined { esr: u64 },
    SError { esr: u64 },
}

impl Fault {
    fn describe(&self) -> alloc::string::String {
        match *self {
            Fault::Stage2 { ipa, write, .. } => {
                alloc::format!(
                    "stage-2 fault: {} at IPA {ipa:#x}",
                    if write { "write" } else { "read" }
                )
            }
            Fault::InstructionAbort { ipa, .. } => {
                alloc::format!("stage-2 fault: instruction fetch at IPA {ipa:#x}")
            }
            Fault::Undefined { esr } => {
                alloc::format!("undefined trap: EC {:#x} (ESR {esr:#x})", esr::class(esr))
            }
            Fault::SError { esr } => alloc::format!("SError (ESR {esr:#x})"),
        }
    }
}

/// Applies the partition's fault policy. Returns only for `inject`.
fn fault(p: &PartitionRt, frame: &mut Frame, f: Fault) {
    let action = match p.desc.on_fault {
        OnFault::Inject => "inject abort",
        OnFault::Stop => "stop",
        OnFault::Restart => "restart",
    };
    warn!(
        "partition {}: {} (pc {:#x}) -> {action}",
        p.name(),
        f.describe(),
        frame.elr
    );
    if p.desc.on_fault != OnFault::Inject {
        runtime::stop_partition(p, p.desc.on_fault);
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
        Fault::Undefined { .. } => El1Exception { esr: il, far: None },
        Fault::SError { .. } => {
            cpu::raise_virtual_serror();
            return;
        }
    };
    cpu::inject_sync(frame, e);
}

#[unsafe(no_mangle)]
extern "C" fn handle_lower_sync(frame: &mut Frame) {
    let Some((p, vcpu)) = runtime::current_vcpu() else {
        unreachable_guest();
    };
    let info = cpu::trap_info();
    match esr::class(info.esr) {
        ec::DATA_ABORT_LOWER => {
            let ipa = ((info.hpfar >> 4) << 12) | (info.far & 0xfff);
            match esr::mmio_access(info.esr) {
                Some(access) if emulate_mmio(p, vcpu, frame, ipa, access) => frame.elr += 4,
                _ => {
                    let write = info.esr & (1 << 6) != 0;
                    fault(
                        p,
                        frame,
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
            fault(p, frame, Fault::InstructionAbort { ipa, far: info.far });
        }
        // The preferred return address of HVC is the next instruction; of
        // a trapped SMC, the SMC itself.
        ec::HVC64 => firmware_call(p, vcpu, frame),
        ec::SMC64 => {
            frame.elr += 4;
            firmware_call(p, vcpu, frame);
        }
        ec::SYSREG => {
            let access = esr::sysreg_access(info.esr);
            if access.id == esr::ICC_SGI1R_EL1 && !access.read {
                send_sgi(p, vcpu, frame.reg(access.reg));
                frame.elr += 4;
            } else {
                fault(p, frame, Fault::Undefined { esr: info.esr });
            }
        }
        ec::WFX => frame.elr += 4,
        _ => fault(p, frame, Fault::Undefined { esr: info.esr }),
    }
    before_guest_return(p, vcpu);
}

#[unsafe(no_mangle)]
extern "C" fn handle_lower_irq(_frame: &mut Frame) {
    service_interrupts();
    // A storage device homed on this partition core (`home_cpu`): its work
    // is done here, between the partition's instructions, in steps that
    // never wait for the device.
    crate::storage::service();
    if let Some((p, vcpu)) = runtime::current_vcpu() {
        before_guest_return(p, vcpu);
    }
}

#[unsafe(no_mangle)]
extern "C" fn handle_lower_serror(frame: &mut Frame) {
    let Some((p, _)) = runtime::current_vcpu() else {
        unreachable_guest();
    };
    fault(
        p,
        frame,
        Fault::SError {
            esr: cpu::trap_info().esr,
        },
    );
}

/// An exception taken from EL2 itself is a hypervisor bug: report and halt
/// this core (the others keep running their partitions).
#[unsafe(no_mangle)]
extern "C" fn handle_hv_exception(frame: &mut Frame) -> ! {
    let info = cpu::trap_info();
    console::emergency(format_args!(
        "\n[hv] FATAL cpu {}: exception at EL2: ESR {:#x} ELR {:#x} FAR {:#x}; core halted\n",
        cpu::current(),
        info.esr,
        frame.elr,
        info.far
    ));
    crate::halt()
}

fn unreachable_guest() -> ! {
    warn!(
        "cpu {}: trap from a guest on a core with no vCPU; parking",
        cpu::current()
    );
    runtime::park()
}

/// Cross-core requests and pending interrupts, on every way back to a guest.
fn before_guest_return(p: &PartitionRt, vcpu: usize) {
    runtime::handle_requests();
    virq::flush(this_cpu(), p, vcpu);
}

/// Acknowledges and dispatches every pending physical interrupt.
pub fn service_interrupts() {
    let hv = hv();
    let me = this_cpu();
    loop {
        let intid = gic::ack();
        if intid >= gic::SPURIOUS - 3 {
            break;
        }
        gic::eoi(intid);
        if Some(intid) == hv.console_intid {
            console::receive();
            gic::deactivate(intid);
            continue;
        }
        if crate::storage::interrupt(intid) {
            gic::deactivate(intid);
            continue;
        }
        if intid == hv.platform.hyp_timer_intid {
            // Disarm and deactivate first: servicing may reset the partition.
            crate::arch::cpu::set_hyp_timer(None);
            gic::deactivate(intid);
            if let Some((p, _)) = runtime::current_vcpu() {
                runtime::service_watchdog(p);
            }
            continue;
        }
        if intid == hv.platform.gic_maintenance {
            if let Some((p, _)) = runtime::current_vcpu() {
                virq::end_of_interrupts(me, p);
            }
            gic::deactivate(intid);
            continue;
        }
        let running = (*me.power.lock() == Power::On)
            .then(runtime::current_vcpu)
            .flatten();
        let forward = match running {
            Some((p, _)) if intid == hv.platform.vtimer_intid => Some(p),
            Some((p, _)) if intid >= 32 && p.vgic.lock().owns_spi(intid) => Some(p),
            _ => None,
        };
        match forward {
            Some(p) => virq::inject_hardware(me, p, me.vcpu.map_or(0, |v| v.1), intid),
            // Kicks and maintenance interrupts need no more than waking us;
            // anything else belongs to no running vCPU and is dropped.
            None => gic::deactivate(intid),
        }
    }
}

// ---- MMIO emulation ----

fn emulate_mmio(p: &PartitionRt, vcpu: usize, frame: &mut Frame, ipa: u64, a: MmioAccess) -> bool {
    let mask = if a.size == 8 {
        !0
    } else {
        (1u64 << (8 * a.size)) - 1
    };
    let value = frame.reg(a.reg) & mask;
    let gicr_end = layout::GICR_BASE + layout::GICR_STRIDE * p.vcpus() as u64;
    let read = if (layout::GICD_BASE..layout::GICD_BASE + layout::GICD_SIZE).contains(&ipa) {
        let off = ipa - layout::GICD_BASE;
        let mut vgic = p.vgic.lock();
        if a.write {
            vgic.dist_write(off, a.size, value, &mut |e| runtime::apply_effect(p, e));
            None
        } else {
            Some(vgic.dist_read(off, a.size))
        }
    } else if (layout::GICR_BASE..gicr_end).contains(&ipa) {
        let target = ((ipa - layout::GICR_BASE) / layout::GICR_STRIDE) as usize;
        let off = (ipa - layout::GICR_BASE) % layout::GICR_STRIDE;
        let mut vgic = p.vgic.lock();
        if a.write {
            vgic.redist_write(target, off, a.size, value, &mut |e| {
                runtime::apply_effect(p, e)
            });
            None
        } else {
            Some(vgic.redist_read(target, off, a.size))
        }
    } else if (layout::UART_BASE..layout::UART_BASE + layout::UART_SIZE).contains(&ipa) {
        let off = ipa - layout::UART_BASE;
        let mut uart = p.uart.lock();
        let before = uart.interrupt();
        let read = if a.write {
            uart.write(off, value as u32, &mut |line| {
                console::partition_line(p.index, line)
            });
            uart.set_tx_full(!console::has_room(p.index));
            None
        } else {
            Some(uart.read(off) as u64)
        };
        // A rising line raises the SPI; a line that stays high after the
        // guest's EOI is raised again by the EOI maintenance interrupt.
        if uart.interrupt() && !before {
            runtime::raise_virtual_spi(p, layout::UART_INTID);
        }
        read
    } else if let Some(slot) = virtio_slot(p, ipa) {
        let off = (ipa - layout::VIRTIO_BASE) % layout::VIRTIO_STRIDE;
        let value = crate::storage::mmio(p, slot, off, a.size, a.write.then_some(value));
        (!a.write).then_some(value)
    } else if let Some(watchdog) = p.watchdog.as_ref().filter(|_| {
        (layout::WATCHDOG_BASE..layout::WATCHDOG_BASE + layout::WATCHDOG_SIZE).contains(&ipa)
    }) {
        let off = ipa - layout::WATCHDOG_BASE;
        let now = runtime::watchdog_now();
        let read = if a.write {
            watchdog.lock().write(off, value as u32, now);
            None
        } else {
            Some(watchdog.lock().read(off, now) as u64)
        };
        // Re-arm this core's timer for the (possibly new) deadline.
        runtime::service_watchdog(p);
        read
    } else {
        return false;
    };
    let _ = vcpu;
    if let Some(v) = read {
        let mut v = v & mask;
        if a.sign_extend && a.size < 8 && v & (1 << (8 * a.size - 1)) != 0 {
            v |= !mask;
        }
        if !a.sixty_four {
            v &= 0xffff_ffff;
        }
        frame.set_reg(a.reg, v);
    }
    true
}

/// The partition's virtio slot whose registers `ipa` falls in.
fn virtio_slot(p: &PartitionRt, ipa: u64) -> Option<usize> {
    let offset = ipa.checked_sub(layout::VIRTIO_BASE)?;
    let slot = (offset / layout::VIRTIO_STRIDE) as usize;
    (slot < p.disks.len()).then_some(slot)
}

// ---- virtual SGIs ----

fn send_sgi(p: &PartitionRt, sender: usize, value: u64) {
    let (intid, targets) = vgic::sgi_targets(value, sender, p.vcpus());
    for vcpu in (0..p.vcpus()).filter(|v| targets & (1 << v) != 0) {
        let cpu = p.vcpu_cpus[vcpu];
        hv().cpus[cpu].pending.set(intid);
        if cpu != cpu::current() {
            runtime::kick(cpu, 0);
        }
    }
}

// ---- PSCI / SMCCC ----

const INVALID_ADDRESS: i64 = -9;

fn firmware_call(p: &PartitionRt, vcpu: usize, frame: &mut Frame) {
    let call = psci::decode([frame.x[0], frame.x[1], frame.x[2], frame.x[3]]);
    let ret = match call {
        psci::Call::Version | psci::Call::SmcccVersion => psci::VERSION_1_1,
        psci::Call::Features(fid) => psci::features(fid),
        psci::Call::CpuOn {
            target,
            entry,
            context,
        } => cpu_on(p, target, entry, context),
        psci::Call::CpuOff => runtime::cpu_off(),
        psci::Call::AffinityInfo {
            target,
            lowest_level,
        } => affinity_info(p, target, lowest_level),
        psci::Call::SystemOff => {
            log::info!("partition {}: PSCI SYSTEM_OFF", p.name());
            runtime::stop_partition(p, OnFault::Stop)
        }
        psci::Call::SystemReset => {
            log::info!("partition {}: PSCI SYSTEM_RESET", p.name());
            runtime::stop_partition(p, OnFault::Restart)
        }
        psci::Call::Unsupported(_) => psci::NOT_SUPPORTED,
    };
    let _ = vcpu;
    frame.x[0] = ret as u64;
}

fn cpu_on(p: &PartitionRt, target: u64, entry: u64, context: u64) -> i64 {
    let Some(vcpu) = psci::target_vcpu(target, p.vcpus()) else {
        warn!(
            "partition {}: PSCI CPU_ON of cpu {target:#x}, which it does not own: denied",
            p.name()
        );
        return psci::INVALID_PARAMETERS;
    };
    if guest_map::to_host(p.desc.memory, entry, 4).is_none() {
        return INVALID_ADDRESS;
    }
    let cpu = p.vcpu_cpus[vcpu];
    let mut power = hv().cpus[cpu].power.lock();
    match *power {
        Power::On => psci::ALREADY_ON,
        Power::OnPending { .. } => psci::ON_PENDING,
        Power::Off => {
            *power = Power::OnPending { entry, context };
            drop(power);
            runtime::kick(cpu, 0);
            psci::SUCCESS
        }
    }
}

fn affinity_info(p: &PartitionRt, target: u64, lowest_level: u64) -> i64 {
    let Some(vcpu) = psci::target_vcpu(target, p.vcpus()).filter(|_| lowest_level == 0) else {
        warn!(
            "partition {}: PSCI AFFINITY_INFO of cpu {target:#x}, which it does not own: denied",
            p.name()
        );
        return psci::INVALID_PARAMETERS;
    };
    match *hv().cpus[p.vcpu_cpus[vcpu]].power.lock() {
        Power::On => psci::AFFINITY_ON,
        Power::Off => psci::AFFINITY_OFF,
        Power::OnPending { .. } => psci::AFFINITY_ON_PENDING,
    }
}
