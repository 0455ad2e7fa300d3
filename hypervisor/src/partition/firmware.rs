//! PSCI and SMCCC calls from guests (HVC, or SMC trapped by HCR_EL2.TSC),
//! emulated per partition: CPU_ON and AFFINITY_INFO reach only the
//! partition's own vCPUs, SYSTEM_OFF and SYSTEM_RESET stop or restart only
//! the partition, nothing reaches firmware. Decoding is in [`super::psci`].

use super::lifecycle::{self, Lifecycle, Power};
use super::{Partition, crash, hv, kick, psci, report};
use crate::arch::Frame;
use crate::memory::guest_map;
use config::model::OnFault;
use shared_devices::crash_record::{Action, Cause};

/// SMCCC return code for an entry point outside the partition's memory.
const INVALID_ADDRESS: i64 = -9;

/// Handles the call in the guest's x0..x3 and puts the result in x0. Does
/// not return for CPU_OFF, SYSTEM_OFF and SYSTEM_RESET.
pub fn call(p: &Partition, frame: &mut Frame) {
    let ret = match psci::decode([frame.x[0], frame.x[1], frame.x[2], frame.x[3]]) {
        psci::Call::Version | psci::Call::SmcccVersion => psci::VERSION_1_1,
        psci::Call::Features(fid) => psci::features(fid),
        psci::Call::CpuOn {
            target,
            entry,
            context,
        } => cpu_on(p, target, entry, context),
        psci::Call::CpuOff => lifecycle::cpu_off(),
        psci::Call::AffinityInfo {
            target,
            lowest_level,
        } => affinity_info(p, target, lowest_level),
        psci::Call::SystemOff => {
            crash::record(p, crash::Event::new(Cause::Off, Action::Stop), Some(frame));
            lifecycle::stop_partition(p, OnFault::Stop)
        }
        psci::Call::SystemReset => {
            let event = crash::Event::new(Cause::Reset, Action::Restart);
            crash::record(p, event, Some(frame));
            lifecycle::stop_partition(p, OnFault::Restart)
        }
        psci::Call::Unsupported(_) => psci::NOT_SUPPORTED,
    };
    frame.x[0] = ret as u64;
}

fn cpu_on(p: &Partition, target: u64, entry: u64, context: u64) -> i64 {
    let Some(vcpu) = psci::target_vcpu(target, p.vcpus()) else {
        report::warn(
            p,
            report::Kind::Firmware,
            format_args!("PSCI CPU_ON of cpu {target:#x}, which it does not own: denied"),
        );
        return psci::INVALID_PARAMETERS;
    };
    if guest_map::to_host(p.config.memory, entry, 4).is_none() {
        return INVALID_ADDRESS;
    }
    let cpu = p.vcpu_cpus[vcpu];
    // Held until the vCPU is pending: a partition that starts stopping
    // after this sees it and stops it; one already stopping gets no new
    // vCPU, which would run beside the restarted vCPU 0.
    let state = p.lifecycle.lock();
    if *state != Lifecycle::Running {
        return psci::DENIED;
    }
    let mut power = hv().cpus[cpu].power.lock();
    match *power {
        Power::On => psci::ALREADY_ON,
        Power::OnPending { .. } => psci::ON_PENDING,
        Power::Off => {
            *power = Power::OnPending { entry, context };
            drop(power);
            drop(state);
            kick(cpu, 0);
            psci::SUCCESS
        }
    }
}

fn affinity_info(p: &Partition, target: u64, lowest_level: u64) -> i64 {
    let Some(vcpu) = psci::target_vcpu(target, p.vcpus()).filter(|_| lowest_level == 0) else {
        report::warn(
            p,
            report::Kind::Firmware,
            format_args!("PSCI AFFINITY_INFO of cpu {target:#x}, which it does not own: denied"),
        );
        return psci::INVALID_PARAMETERS;
    };
    match *hv().cpus[p.vcpu_cpus[vcpu]].power.lock() {
        Power::On => psci::AFFINITY_ON,
        Power::Off => psci::AFFINITY_OFF,
        Power::OnPending { .. } => psci::AFFINITY_ON_PENDING,
    }
}
