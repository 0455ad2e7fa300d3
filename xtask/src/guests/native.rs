//! Booting a Linux guest's assets directly on QEMU, without the
//! hypervisor: to try them by hand (`cargo xtask guests --boot`) and as the
//! `guest/<name>-native` test.
//!
//! QEMU's own `virt` device tree has many more devices than a partition
//! gets, so the kernel command line asks the self-check to report rather
//! than fail (`ivi.check=report`); the CPU and memory checks still count.

use std::time::Duration;

use anyhow::Result;

use super::Assets;
use crate::paths;
use crate::prereqs::QEMU;
use crate::process::{Cmd, step};
use crate::scenario::Scenario;

/// The machine: what the ivi partition gets on the default config, as far
/// as plain QEMU can give it.
pub const CPUS: u32 = 2;
pub const MEM_MIB: u32 = 256;
/// TCG boots the Debian kernel in well under a minute; this leaves room
/// for a loaded machine.
const TIMEOUT_SECONDS: u64 = 240;

/// `qemu-system-aarch64 ... -kernel Image -initrd initramfs.cpio.gz`.
pub fn command(assets: &Assets) -> Cmd {
    Cmd::new(QEMU)
        .args(["-M", "virt,gic-version=3", "-cpu", "cortex-a72"])
        .arg("-smp")
        .arg(CPUS.to_string())
        .arg("-m")
        .arg(format!("{MEM_MIB}M"))
        .arg("-nographic")
        .arg("-kernel")
        .arg(&assets.image)
        .arg("-initrd")
        .arg(&assets.initramfs)
        .arg("-append")
        .arg(format!(
            "console=ttyAMA0 ivi.cpus={CPUS} ivi.mem={MEM_MIB} ivi.check=report"
        ))
}

/// Boots on this terminal until QEMU is quit.
pub fn boot(assets: &Assets, extra: &[String]) -> Result<()> {
    let cmd = command(assets).args(extra);
    step("Starting QEMU without the hypervisor (quit with Ctrl-A then X)");
    crate::qemu::run_interactive(cmd)
}

/// Boots to the shell and judges the console: userspace comes up, the
/// modules load, and the self-check finds the CPUs and memory right (its
/// only complaint may be QEMU's extra devices). Returns how long QEMU ran.
pub fn test(assets: &Assets, name: &'static str) -> (Duration, Result<(), String>) {
    let scenario = Scenario::new(name, "partitions/ivi/guest.toml")
        .timeout(TIMEOUT_SECONDS)
        .expect(r"^ivi: userspace up after [0-9.]+s, kernel \S+, modules:")
        .expect(&format!(r"^ivi-tool: cpus: {CPUS} in /proc/cpuinfo"))
        .expect(r"^ivi-tool: check (ok|FAILED: unexpected device-tree nodes: [^;]*$)")
        .expect_none(r"Kernel panic|modprobe \S+ failed|ivi-tool: check FAILED: .*;")
        .stop_on(r"^ivi-tool: check ");
    let log_dir = paths::test_logs_dir();
    if let Err(e) = paths::create_dir(&log_dir) {
        return (Duration::ZERO, Err(format!("{e:#}")));
    }
    let log = log_dir.join(format!("{}.log", name.replace('/', "-")));
    let cmd = command(assets);
    let text = cmd.text().to_string();
    println!("$ {text}");
    let outcome = match scenario.run(cmd.into_command(), &text, &log) {
        Ok(outcome) => outcome,
        Err(e) => return (Duration::ZERO, Err(format!("{e:#}"))),
    };
    if outcome.passed() {
        return (outcome.duration, Ok(()));
    }
    let mut why = outcome.failures.join("\n");
    let tail = outcome.lines.len().saturating_sub(30);
    why.push_str(&format!(
        "\nserial log {} (the last {} lines):",
        paths::display(&log),
        outcome.lines.len() - tail
    ));
    for line in &outcome.lines[tail..] {
        why.push_str("\n  | ");
        why.push_str(line);
    }
    (outcome.duration, Err(why))
}
