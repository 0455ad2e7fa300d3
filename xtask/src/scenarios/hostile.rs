//! Hostile guests: partitions that attack the hypervisor itself (issue 9).
//! The virtio-blk attacks are in `storage.rs` (`hostile-blk`).

use super::beats;
use crate::scenario::{Scenario, consecutive, count, numbers};

/// Boots of the hostile partition (its `boots=` bootarg).
const BOOTS: usize = 5;
/// How long the scenario may run, in seconds.
const TIMEOUT_S: u64 = 120;
/// What `partition::report` lets one partition say about one kind of
/// event: 16 lines at once, then 2 a second.
const REPORT_BURST: u64 = 16;
const REPORT_PER_SECOND: u64 = 2;

/// `hostile` (testkit) attacks through every door it has, boot after boot:
/// every instruction form at every offset around each emulated register
/// window, random HVC/SMC (x4-x17 must come back unchanged), PSCI of cores
/// it does not own and entries outside its memory (all refused), SGIs
/// with every routing, and a reset raced by its second vCPU's PSCI calls
/// and SGIs. The heartbeat beside it never skips; the hypervisor neither
/// panics nor floods its log with the thousands of faults (rate-limited,
/// with the count of what was held back).
pub(super) fn hostile_partition() -> Scenario {
    let boots_before_done = BOOTS - 1;
    Scenario::new("hostile", "config/qemu-virt/tests/hostile.toml")
        .disk(crate::disk::QEMU_VIRT_LAYOUT)
        .timeout(TIMEOUT_S)
        .expect_exactly(
            boots_before_done,
            r"^\[hostile\] hostile: mmio windows=4 accesses=\d+ faults=[1-9]",
        )
        .expect_exactly(
            boots_before_done,
            r"^\[hostile\] hostile: firmware calls=\d+ clobbered=0$",
        )
        .expect_exactly(
            boots_before_done,
            r"^\[hostile\] hostile: psci calls=\d+ accepted=0$",
        )
        .expect_exactly(boots_before_done, r"^\[hostile\] hostile: sgi writes=2000$")
        .expect_exactly(boots_before_done, r"^\[hostile\] hostile: race reset$")
        .expect(&format!(r"^\[hostile\] hostile: done boots={BOOTS}$"))
        .expect(r"^\[hv\] WARN  partition hostile: .* \(\d+ more like it not shown\)$")
        .expect_none(r"PANIC|FATAL|unexpected exception|SYSTEM_RESET returned")
        .expect(r"^\[beat\] heartbeat: n=\d+ ")
        .check("the heartbeat never skips", |lines| {
            consecutive(&beats(lines, "beat"))
        })
        .check(
            "the hypervisor's reports of the faults are rate-limited",
            |lines| {
                let shown = count(lines, r"^\[hv\] WARN  partition hostile: .*-> inject abort");
                let most = REPORT_BURST + REPORT_PER_SECOND * TIMEOUT_S;
                if shown as u64 <= most {
                    Ok(())
                } else {
                    Err(format!("{shown} fault lines, more than {most}"))
                }
            },
        )
}

/// The virtual machine matches its device tree, and a restart leaves no
/// trace: `leftovers` (testkit) takes 10 ticks of the EL1 physical timer
/// its device tree advertises (its registers used to trap and come back as
/// an undefined instruction), finds no PMU (PMCR_EL0 reads 0: the PMU
/// traps, so it cannot count the hypervisor's events), leaves values in
/// FP/SIMD, FPCR, the physical timer, a breakpoint, MDSCR, PAR, AFSR0 and
/// CONTEXTIDR, resets itself, and must find them all zero after.
pub(super) fn leftovers() -> Scenario {
    Scenario::new("leftovers", "config/qemu-virt/tests/leftovers.toml")
        .timeout(40)
        .expect(r"^\[leftovers\] leftovers: boot 0 ptimer ticks=10 pmcr=0x0$")
        .expect(r"^\[leftovers\] leftovers: boot 1 ")
        .expect(r"^\[leftovers\] leftovers: clean$")
        .expect_none(r"LEFT|PANIC|FATAL|unexpected exception|SYSTEM_RESET returned|-> stop")
        .expect(r"^\[beat\] heartbeat: n=\d+ ")
        .check("the heartbeat never skips", |lines| {
            consecutive(&beats(lines, "beat"))
        })
}

/// The crash-loop config: `crashloop` dies right after every boot.
pub const CRASH_LOOP_CONFIG: &str = "config/qemu-virt/tests/crashloop.toml";
/// Boots of `crashloop` in the suite's run (its `boots=` bootarg there);
/// `cargo xtask soak restarts` runs more.
pub const CRASH_LOOP_BOOTS: u64 = 300;

/// A partition that dies right after every boot (PSCI SYSTEM_RESET, a
/// stage-2 fault, an undefined instruction, in turn) is restarted
/// `CRASH_LOOP_BOOTS` times: the heartbeat beside it never skips and the
/// hypervisor's heap in use is the same after every restart.
pub(super) fn crash_loop() -> Scenario {
    crash_loop_of(CRASH_LOOP_CONFIG, CRASH_LOOP_BOOTS)
}

/// [`crash_loop`] for `config` with `boots` boots (the soak's, too).
pub fn crash_loop_of(config: &'static str, boots: u64) -> Scenario {
    Scenario::new("crash-loop", config)
        // Restarts take a few milliseconds each under TCG; generous.
        .timeout(60 + boots / 20)
        .expect(&format!(r"^\[crashloop\] crashloop: done boots={boots}$"))
        .expect_none(r"still alive|PANIC|FATAL|restart failed")
        .expect(r"^\[beat\] heartbeat: n=\d+ ")
        .check("the heartbeat never skips", |lines| {
            consecutive(&beats(lines, "beat"))
        })
        .check("restarts leave the hypervisor's heap as it was", heap_flat)
        .report(|lines| {
            let used = numbers(lines, HEAP_AFTER_RESTART);
            format!(
                "{} restart report(s) shown (the rest rate-limited), heap {:?} bytes",
                used.len(),
                used.first()
            )
        })
}

/// The log line each restart ends with, with the heap in use.
pub const HEAP_AFTER_RESTART: &str = r"restart #\d+ done; hypervisor heap: (\d+) bytes in use";

/// The heap in use after each restart (the line each restart ends with)
/// does not grow: the last figure is no higher than the first, and the
/// second half of the figures are all the same (early ones may differ
/// while other partitions are still booting, which allocates too).
pub fn heap_flat(lines: &[String]) -> Result<(), String> {
    let used = numbers(lines, HEAP_AFTER_RESTART);
    let (first, last) = match (used.first(), used.last()) {
        (Some(first), Some(last)) if used.len() >= 2 => (first, last),
        _ => {
            return Err(format!(
                "{} restart(s) reported their heap; need 2",
                used.len()
            ));
        }
    };
    let steady = &used[used.len() / 2..];
    if last <= first && steady.iter().all(|u| u == last) {
        Ok(())
    } else {
        Err(format!("heap in use after each restart: {used:?}"))
    }
}
