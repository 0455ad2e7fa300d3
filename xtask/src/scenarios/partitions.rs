//! The hypervisor's own behaviour: partitions side by side, SMP, timers,
//! isolation, fault handling (restart, stop, watchdog), a machine that does
//! not match the config, and boot time.

use std::path::Path;

use super::{at_least_after, beats, on_board};
use crate::paths;
use crate::scenario::{Scenario, after, consecutive, numbers};

/// Two partitions boot side by side, each seeing its own cores and memory.
pub(super) fn two_partitions(board: &str) -> Scenario {
    on_board(board, "two-partitions", "two.toml")
        .timeout(30)
        .expect(r"^\[cluster\] hello: cpus=1 memory=32MiB")
        .expect(r"^\[ivi\] hello: cpus=2 memory=64MiB")
        .expect(r"\[cluster\] hello: tick=5 pattern=ok")
        .expect(r"\[ivi\] hello: tick=5 pattern=ok")
}

/// PSCI CPU_ON/CPU_OFF inside a partition: success, ALREADY_ON (-4),
/// INVALID_PARAMETERS (-2) for a core the partition does not own.
pub(super) fn smp(board: &str) -> Scenario {
    on_board(board, "smp", "smp.toml")
        .timeout(30)
        .expect(r"\[smp\] smp: cpu_on\(1\) = 0\b")
        .expect(r"\[smp\] smp: cpu1 up mpidr=0x1\b")
        .expect(r"\[smp\] smp: cpu_on\(1\) again = -4\b")
        .expect(r"\[smp\] smp: cpu_on\(2\) = -2\b")
        .expect(r"\[smp\] smp: cpu1 off")
        .expect(r"\[smp\] smp: done")
        .check("[hello] keeps ticking after `smp: done`", |lines| {
            at_least_after(lines, r"\[smp\] smp: done", r"\[hello\] hello: tick=", 2)
        })
}

/// The virtual timer ticks at the expected rate on both cores, and SGIs
/// reach the right core.
pub(super) fn timer(board: &str) -> Scenario {
    on_board(board, "timer", "timer.toml")
        .timeout(40)
        .check("cpu0 tick count", |lines| ticks_near_100(lines, 0))
        .check("cpu1 tick count", |lines| ticks_near_100(lines, 1))
        .expect(r"sgi: cpu1 received=50 sent=50\b")
        .expect(r"timer: misrouted=0\b")
        .stop_when_all(&[
            r"\[timer\] timer: cpu0 ticks=\d+",
            r"\[timer\] timer: cpu1 ticks=\d+",
            r"sgi: cpu1 received=",
            r"timer: misrouted=",
        ])
}

/// `[timer] timer: cpuN ticks=T expected=100` with T in 98..=102.
fn ticks_near_100(lines: &[String], cpu: u32) -> Result<(), String> {
    let pattern = format!(r"\[timer\] timer: cpu{cpu} ticks=(\d+) expected=100\b");
    let ticks = numbers(lines, &pattern);
    if ticks.is_empty() {
        return Err(format!("no line matches `{pattern}`"));
    }
    match ticks.iter().find(|t| !(98..=102).contains(*t)) {
        Some(t) => Err(format!("ticks={t}, expected 98..=102")),
        None => Ok(()),
    }
}

/// A hostile partition reads and writes every address in its bootargs
/// (`probe=<addr>,...`: other partitions' memory, the hypervisor, devices it
/// does not own). Every access faults and comes back to it as an abort,
/// the hypervisor reports each one, and the victim runs on untouched.
/// What `cargo xtask new-config --board B` writes (kept as
/// `config/<board>/examples/new-config.toml`, which a unit test holds to
/// the generator's output) boots: both placeholder partitions say hello
/// and tick.
pub(super) fn new_config(board: &str) -> Scenario {
    let config = format!("config/{board}/examples/new-config.toml").leak();
    let name = if board == super::QEMU_VIRT {
        "new-config".to_string()
    } else {
        format!("{board}-new-config")
    };
    let scenario = Scenario::new(name.leak(), config).timeout(40);
    let scenario = if crate::disk::layout_path(board).is_file() {
        scenario.disk(crate::disk::QEMU_VIRT_LAYOUT)
    } else {
        scenario
    };
    scenario
        .expect(r"^\[cluster\] hello: cpus=1 ")
        .expect(r"^\[ivi\] hello: cpus=2 ")
        .expect(r"\[cluster\] hello: tick=3 pattern=ok")
        .expect(r"\[ivi\] hello: tick=3 pattern=ok")
}

/// `devices = { all_except = [...] }` gives the partition what
/// `check-config` says it does, and only that: the hypervisor reports as
/// many devices as the summary's "N given"; the probe reaches a given
/// device (a free virtio-mmio transport reads its magic, "virt"), and
/// faults on an excepted one (fw-cfg), one left out (the transport in the
/// shared disk's page) and another partition's (the cluster's GPIO).
pub(super) fn all_except() -> Scenario {
    const CONFIG: &str = "config/qemu-virt/tests/all-except.toml";
    let scenario = Scenario::new("all-except", CONFIG)
        .timeout(40)
        .disk(crate::disk::QEMU_VIRT_LAYOUT);
    let given = match crate::check_config::check(&paths::root().join(CONFIG)) {
        Ok(summary) => numbers(
            &summary.lines().map(str::to_owned).collect::<Vec<_>>(),
            r"devices: all except .*: (\d+) given",
        ),
        Err(e) => return scenario.check("the config", move |_| Err(e.join("\n"))),
    };
    let Some(&given) = given.first() else {
        return scenario.check("the config", |_| {
            Err("check-config's summary has no \"N given\"".into())
        });
    };
    let mut scenario = scenario
        .expect(&format!(
            r"^\[hv\] INFO  partition probe: .* {given} device\(s\)"
        ))
        .expect(r"\[probe\] probe: read 0x0a000000 LEAK value=0x[0-9a-f]*74726976$")
        .expect(r"\[probe\] probe: done faults=6 leaks=2\b");
    for address in ["0x09020000", "0x0a003000", "0x09030000"] {
        scenario = scenario
            .expect(&format!(r"\[probe\] probe: read {address} fault"))
            .expect(&format!(r"\[probe\] probe: write {address} fault"));
    }
    scenario
}

pub(super) fn isolation(board: &str) -> Scenario {
    let mut scenario = on_board(board, "isolation", "isolation.toml").timeout(40);
    let addresses = match probe_addresses(&paths::root().join(scenario.config)) {
        Ok(addresses) => addresses,
        Err(e) => return scenario.check("the probe's addresses", move |_| Err(e.clone())),
    };
    for address in &addresses {
        scenario = scenario
            .expect(&format!(r"\[probe\] probe: read {address} fault"))
            .expect(&format!(r"\[probe\] probe: write {address} fault"));
    }
    let faults = 2 * addresses.len();
    scenario
        .expect(&format!(r"probe: done faults={faults} leaks=0\b"))
        .expect_at_least(faults, r"\[hv\] WARN .*partition probe: .*fault")
        .expect_none("LEAK")
        .expect_none("pattern=BAD")
        .check(
            "[victim] keeps ticking after `probe: done`",
            victim_ticks_on,
        )
        .stop_when("`probe: done` and 3 [victim] ticks after it", |lines| {
            victim_ticks_on(lines).is_ok()
        })
}

/// The addresses in the `probe=` bootarg of the partition named `probe`,
/// as the probe prints them (`0x` and 8 hex digits).
fn probe_addresses(config: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let bootargs = table
        .get("partition")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some("probe"))
        .and_then(|p| p.get("bootargs")?.as_str())
        .ok_or_else(|| format!("{}: no partition `probe` with bootargs", config.display()))?;
    let list = bootargs
        .split_whitespace()
        .find_map(|arg| arg.strip_prefix("probe="))
        .ok_or_else(|| format!("{}: no `probe=` in the probe's bootargs", config.display()))?;
    list.split(',')
        .map(|a| {
            let hex = a.trim().trim_start_matches("0x").replace('_', "");
            u64::from_str_radix(&hex, 16)
                .map(|v| format!("{v:#010x}"))
                .map_err(|_| format!("{}: bad probe address {a:?}", config.display()))
        })
        .collect()
}

fn victim_ticks_on(lines: &[String]) -> Result<(), String> {
    at_least_after(
        lines,
        r"probe: done",
        r"\[victim\] hello: tick=\d+ pattern=ok",
        3,
    )
}

/// A partition with `on_fault = "restart"` crashes on each boot and is
/// restarted; its neighbour never misses a tick.
pub(super) fn restart(board: &str) -> Scenario {
    on_board(board, "restart", "restart.toml")
        .timeout(45)
        .expect(r"\[crash\] crash: boot restarts=0\b")
        .expect(r"\[crash\] crash: boot restarts=1\b")
        .expect(r"\[crash\] crash: boot restarts=2\b")
        // What each life left in its memory was scrubbed before the next.
        .expect_at_least(3, r"^\[crash\] crash: memory clean$")
        .expect_none(r"crash: memory (LEFT|too small)")
        .expect(r"\[hv\] WARN .*partition crash: .*restart")
        .check("[hello] ticks never skip", hello_ticks_consecutive)
        .check(
            "[hello] keeps ticking after the second restart",
            hello_after_restarts,
        )
        .check(
            "restarts leave the hypervisor's heap as it was",
            super::hostile::heap_flat,
        )
        .stop_when("3 [hello] ticks after `restarts=2`", |lines| {
            hello_after_restarts(lines).is_ok()
        })
}

fn hello_ticks_consecutive(lines: &[String]) -> Result<(), String> {
    let ticks = numbers(lines, r"\[hello\] hello: tick=(\d+)");
    if ticks.is_empty() {
        return Err("no [hello] tick at all".to_string());
    }
    consecutive(&ticks)
}

fn hello_after_restarts(lines: &[String]) -> Result<(), String> {
    at_least_after(
        lines,
        r"\[crash\] crash: boot restarts=2\b",
        r"\[hello\] hello: tick=",
        3,
    )
}

/// A partition with `on_fault = "stop"` crashes once and stays stopped;
/// its neighbour runs on.
pub(super) fn stop() -> Scenario {
    Scenario::new("stop", "config/qemu-virt/tests/stop.toml")
        .timeout(50)
        .expect_exactly(1, r"crash: boot restarts=0\b")
        .expect(r"\[hv\] WARN .*partition crash: .*stop")
        .check(
            "[hello] reaches tick=20 after the stop",
            hello_reaches_20_after_stop,
        )
        .stop_when("[hello] tick=20 after the stop", |lines| {
            hello_reaches_20_after_stop(lines).is_ok()
        })
}

fn hello_reaches_20_after_stop(lines: &[String]) -> Result<(), String> {
    let marker = r"\[hv\] WARN .*partition crash: .*stop";
    let Some(rest) = after(lines, marker) else {
        return Err(format!("no line matches `{marker}`"));
    };
    let ticks = numbers(rest, r"\[hello\] hello: tick=(\d+)");
    match ticks.iter().max() {
        Some(&max) if max >= 20 => Ok(()),
        Some(max) => Err(format!("last [hello] tick after the stop is {max}")),
        None => Err("no [hello] tick after the stop".to_string()),
    }
}

/// Booted at EL1 (no `virtualization=on`), the hypervisor says so on the
/// early UART and parks instead of crashing.
pub(super) fn bad_entry_el() -> Scenario {
    Scenario::new("bad-entry-el", "config/qemu-virt/tests/two.toml")
        .machine("virt,gic-version=3")
        .timeout(20)
        .expect("entered at EL1")
        .expect_none(r"(?i)panic|qemu: fatal|exception|abort")
        .stop_on("entered at EL1")
        .settle(2000)
}

/// The two-partition config booted on a machine with 2 cores and 256 MiB:
/// the hypervisor names each mismatch (missing cores, memory outside RAM)
/// and starts no partition at all.
pub(super) fn platform_mismatch() -> Scenario {
    Scenario::new("platform-mismatch", "config/qemu-virt/tests/two.toml")
        .smp(2)
        .memory("256M")
        .timeout(20)
        .expect(r"config does not match this platform: partition ivi: cpu 0x2 is not in this platform's /cpus")
        .expect(r"config does not match this platform: partition ivi: cpu 0x3 is not in this platform's /cpus")
        .expect(r"config does not match this platform: partition ivi: memory 0x50000000\+0x4000000 is outside the platform's RAM")
        .expect(r"no partition was started; the system is halted")
        .expect_none(r"^\[(cluster|ivi)\]|booting at")
        .stop_on("no partition was started")
        .settle(1000)
}

/// A partition that stops feeding its SP805 watchdog is restarted by the
/// hypervisor; the heartbeat partition never notices.
pub(super) fn watchdog() -> Scenario {
    Scenario::new("watchdog", "config/qemu-virt/tests/watchdog.toml")
        .timeout(40)
        .expect(r"^\[wdog\] watchdog: boot restarts=0$")
        .expect(r"^\[wdog\] watchdog: stopped feeding$")
        .expect(r"^\[hv\] WARN  partition wdog: watchdog expired -> restart \(record #\d+\)$")
        .expect(r"^\[hv\] WARN  partition wdog: restarting \(restart #1\)$")
        .expect(r"^\[wdog\] watchdog: boot restarts=1$")
        .expect_none(r"watchdog: still alive")
        .expect(r"^\[beat\] heartbeat: n=\d+ ")
        .check("the heartbeat never skips", |lines| {
            consecutive(&beats(lines, "beat"))
        })
}

/// 32-bit user code in a partition (AArch32 EL0, as an armhf binary on
/// the IVI): its interrupts and its trapped loads from an emulated device
/// reach the hypervisor from AArch32 state. A trapped 16-bit T32 load must
/// be stepped over by 2 bytes (it was always 4, which skipped the user
/// code's next instruction: its loop count stayed 0). Every tick of the
/// partition's timer is taken from its user code; the other partition
/// beats on.
pub(super) fn aarch32_el0() -> Scenario {
    Scenario::new("aarch32-el0", "config/qemu-virt/tests/aarch32.toml")
        .timeout(40)
        .expect(r"^\[aarch32\] aarch32: entering EL0 AArch32 at 0x")
        .expect(r"^\[aarch32\] aarch32: tick=100 from=el0-aarch32 loops=[1-9]\d*$")
        .expect(r"^\[aarch32\] aarch32: done ticks=100$")
        .expect_none(r"FATAL|PANIC|unexpected exception|from=elsewhere")
        .expect(r"^\[beat\] heartbeat: n=\d+ ")
        .check("the heartbeat never skips", |lines| {
            consecutive(&beats(lines, "beat"))
        })
}

/// Boot times of the default system in deterministic virtual time (QEMU
/// `-icount`, one instruction per nanosecond): from hypervisor entry to the
/// cluster's first frame on the screen and to the start of Linux userspace.
pub(super) fn boot_time() -> Scenario {
    let clock = r"^\[ivi\] ivi-tool: clock (\d+) ticks at \d+ Hz";
    let entry = r"^\[hv\] INFO  entered at counter (\d+) \(\d+ ms at \d+ Hz\)";
    let beat = r"^\[cluster\] cluster: first frame shown at counter (\d+) ";
    Scenario::new("boot-time", "config/qemu-virt/default.toml")
        .disk(crate::disk::QEMU_VIRT_LAYOUT)
        .icount("shift=0")
        .timeout(240)
        .expect(entry)
        .expect(beat)
        .expect(clock)
        .report(move |lines| {
            let first = |re: &str| numbers(lines, re).first().copied();
            let hz = numbers(lines, r"^\[hv\] INFO  entered at counter \d+ \(\d+ ms at (\d+) Hz\)");
            match (first(entry), first(beat), first(clock), hz.first()) {
                (Some(e), Some(b), Some(u), Some(&hz)) if hz > 0 => {
                    let ms = |t: u64| t.saturating_sub(e) as f64 * 1000.0 / hz as f64;
                    format!(
                        "boot (QEMU -icount shift=0): hypervisor entry -> cluster's first frame on screen {:.1} ms, -> ivi userspace {:.1} ms",
                        ms(b),
                        ms(u)
                    )
                }
                _ => "boot times: markers missing".into(),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::console_lines as lines;

    #[test]
    fn probe_addresses_come_from_the_config() {
        let dir = paths::target_dir().join("xtask-test-probe");
        paths::create_dir(&dir).unwrap();
        let config = dir.join("isolation.toml");
        let text = "[[partition]]\nname = \"victim\"\n\n[[partition]]\nname = \"probe\"\n\
                    bootargs = \"x=1 probe=0x48000000,0x9030000,0x4000_0000\"\n";
        std::fs::write(&config, text).unwrap();
        assert_eq!(
            probe_addresses(&config).unwrap(),
            ["0x48000000", "0x09030000", "0x40000000"]
        );
        std::fs::write(&config, "[[partition]]\nname = \"probe\"\n").unwrap();
        assert!(probe_addresses(&config).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn timer_ticks() {
        let ok = lines(
            "[timer] timer: cpu0 ticks=99 expected=100\n[timer] timer: cpu1 ticks=103 expected=100",
        );
        assert_eq!(ticks_near_100(&ok, 0), Ok(()));
        assert_eq!(
            ticks_near_100(&ok, 1),
            Err("ticks=103, expected 98..=102".to_string())
        );
    }

    #[test]
    fn stop_scenario_check() {
        let log = lines(
            "[hello] hello: tick=1\n[hv] WARN  partition crash: fault, stop\n[hello] hello: tick=19\n",
        );
        assert!(hello_reaches_20_after_stop(&log).is_err());
        let mut log = log;
        log.push("[hello] hello: tick=20".to_string());
        assert_eq!(hello_reaches_20_after_stop(&log), Ok(()));
    }

    #[test]
    fn restart_ticks() {
        let log = lines("[hello] hello: tick=1\n[hello] hello: tick=2\n[hello] hello: tick=4");
        assert!(hello_ticks_consecutive(&log).is_err());
        assert!(hello_ticks_consecutive(&log[..2]).is_ok());
    }
}
