//! PSCI (Arm DEN 0022) and SMCCC calls made by guests, decoded into what
//! the hypervisor emulates. Every partition gets its own PSCI: CPU_ON and
//! friends only ever reach that partition's own vCPUs, SYSTEM_OFF and
//! SYSTEM_RESET stop or restart only that partition, and nothing is
//! forwarded to firmware.

pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_SUSPEND: u32 = 0x8400_0001;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON_32: u32 = 0x8400_0003;
pub const CPU_ON_64: u32 = 0xc400_0003;
pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const SYSTEM_RESET: u32 = 0x8400_0009;
pub const PSCI_FEATURES: u32 = 0x8400_000a;
pub const SMCCC_VERSION: u32 = 0x8000_0000;

/// Return codes, as the signed values placed in x0.
pub const SUCCESS: i64 = 0;
pub const NOT_SUPPORTED: i64 = -1;
pub const INVALID_PARAMETERS: i64 = -2;
pub const DENIED: i64 = -3;
pub const ALREADY_ON: i64 = -4;
pub const ON_PENDING: i64 = -5;

/// PSCI 1.1 and SMCCC 1.1, encoded major << 16 | minor.
pub const VERSION_1_1: i64 = 0x1_0001;

/// AFFINITY_INFO results.
pub const AFFINITY_ON: i64 = 0;
pub const AFFINITY_OFF: i64 = 1;
pub const AFFINITY_ON_PENDING: i64 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Version,
    Features(u32),
    CpuOn {
        target: u64,
        entry: u64,
        context: u64,
    },
    CpuOff,
    AffinityInfo {
        target: u64,
        lowest_level: u64,
    },
    SystemOff,
    SystemReset,
    SmcccVersion,
    /// Anything else, including CPU_SUSPEND: NOT_SUPPORTED.
    Unsupported(u32),
}

/// Decodes a call from the guest's x0..x3. 32-bit calling-convention
/// arguments are truncated to 32 bits as SMC32 requires.
pub fn decode(x: [u64; 4]) -> Call {
    let fid = x[0] as u32;
    let w = |v: u64| v & 0xffff_ffff;
    match fid {
        PSCI_VERSION => Call::Version,
        PSCI_FEATURES => Call::Features(x[1] as u32),
        CPU_ON_64 => Call::CpuOn {
            target: x[1],
            entry: x[2],
            context: x[3],
        },
        CPU_ON_32 => Call::CpuOn {
            target: w(x[1]),
            entry: w(x[2]),
            context: w(x[3]),
        },
        CPU_OFF => Call::CpuOff,
        AFFINITY_INFO_64 => Call::AffinityInfo {
            target: x[1],
            lowest_level: x[2],
        },
        AFFINITY_INFO_32 => Call::AffinityInfo {
            target: w(x[1]),
            lowest_level: w(x[2]),
        },
        SYSTEM_OFF => Call::SystemOff,
        SYSTEM_RESET => Call::SystemReset,
        SMCCC_VERSION => Call::SmcccVersion,
        other => Call::Unsupported(other),
    }
}

/// PSCI_FEATURES: SUCCESS for what is emulated, NOT_SUPPORTED otherwise.
pub fn features(fid: u32) -> i64 {
    match decode([fid as u64, 0, 0, 0]) {
        Call::Unsupported(_) => NOT_SUPPORTED,
        _ => SUCCESS,
    }
}

/// The vCPU a PSCI target MPIDR names in a partition with `vcpus` vCPUs:
/// vCPU n has affinity Aff0 = n and all higher levels 0.
pub fn target_vcpu(target_mpidr: u64, vcpus: usize) -> Option<usize> {
    const AFFINITY_MASK: u64 = 0xff_00ff_ffff;
    let aff = target_mpidr & AFFINITY_MASK;
    (aff < vcpus as u64).then_some(aff as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_calling_conventions() {
        assert_eq!(
            decode([CPU_ON_64 as u64, 1, 0x4008_0000, 7]),
            Call::CpuOn {
                target: 1,
                entry: 0x4008_0000,
                context: 7
            }
        );
        assert_eq!(
            decode([CPU_ON_32 as u64, 0x1_0000_0001, 0xffff_ffff_4008_0000, 0]),
            Call::CpuOn {
                target: 1,
                entry: 0x4008_0000,
                context: 0
            }
        );
        // Upper bits of x0 are ignored for the function ID.
        assert_eq!(decode([0xdead_0000_8400_0000, 0, 0, 0]), Call::Version);
        assert_eq!(
            decode([CPU_SUSPEND as u64, 0, 0, 0]),
            Call::Unsupported(CPU_SUSPEND)
        );
        assert_eq!(
            decode([0xc200_0000, 0, 0, 0]),
            Call::Unsupported(0xc200_0000)
        );
    }

    #[test]
    fn features_match_what_is_emulated() {
        for fid in [
            PSCI_VERSION,
            CPU_ON_64,
            CPU_OFF,
            AFFINITY_INFO_64,
            SYSTEM_OFF,
            SYSTEM_RESET,
            PSCI_FEATURES,
        ] {
            assert_eq!(features(fid), SUCCESS, "{fid:#x}");
        }
        assert_eq!(features(CPU_SUSPEND), NOT_SUPPORTED);
        assert_eq!(features(0x8400_0006), NOT_SUPPORTED, "MIGRATE_INFO_TYPE");
    }

    #[test]
    fn targets_are_the_partitions_own_vcpus_only() {
        assert_eq!(target_vcpu(0, 2), Some(0));
        assert_eq!(target_vcpu(1, 2), Some(1));
        assert_eq!(target_vcpu(2, 2), None);
        assert_eq!(target_vcpu(0x100, 2), None, "Aff1 != 0");
        assert_eq!(
            target_vcpu(0x8000_0001, 2),
            Some(1),
            "non-affinity bits ignored"
        );
    }
}
