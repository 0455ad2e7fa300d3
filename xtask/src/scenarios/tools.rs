//! The operator's tools on a running system: `cargo xtask gdb`, and crash
//! records (the console's dump, `cargo xtask records` on the disk).

use super::beats;
use crate::gdb::{self, Symbols};
use crate::paths;
use crate::scenario::{Scenario, after};

const CONFIG: &str = "config/qemu-virt/tests/gdb.toml";

/// What the scripted session does once attached: a breakpoint in the
/// cluster's frame loop (`alive`, every 60th frame), the frame number it
/// was called with, then the machine is let go.
const COMMANDS: &str = "\
pbreak cluster::alive
continue
print frame
delete
detach
";

/// `cargo xtask gdb`'s session, scripted: gdb-multiarch with the cluster's
/// symbols stops the machine in the cluster's frame loop (on its core
/// only, though the heartbeat partition runs code at the same addresses),
/// reads a variable and lets go; the cluster goes on drawing and the other
/// partition beating.
pub(super) fn gdb_cluster() -> Scenario {
    let port = gdb::free_port().unwrap_or(47_000);
    let mut scenario = Scenario::new("gdb-cluster", CONFIG)
        .timeout(90)
        .run_on(
            r"^\[cluster\] cluster: first frame shown",
            "gdb",
            move || {
                gdb::ensure_gdb().map_err(|e| format!("{e:#}"))?;
                let config = paths::root().join(CONFIG);
                let symbols =
                    Symbols::for_config(&config, Some("cluster")).map_err(|e| format!("{e:#}"))?;
                gdb::batch(&symbols, port, COMMANDS).map_err(|e| format!("{e:#}"))
            },
        )
        .expect(r"^xtask: gdb: Thread 2 hit Breakpoint 1, cluster::alive \(frame=\d+")
        .expect(r"^xtask: gdb: \$1 = \d+$")
        .expect(r"^xtask: gdb: \[Inferior 1 \(process 1\) detached\]")
        .stop_when(
            "the cluster alive and 5 heartbeats after gdb let go",
            |lines| {
                after(lines, r"^xtask: gdb: \[Inferior 1 .*detached\]").is_some_and(|rest| {
                    rest.iter()
                        .any(|l| l.starts_with("[cluster] cluster: alive"))
                        && beats(rest, "ivi").len() >= 5
                })
            },
        )
        .check(
            "the frame gdb read is the one the breakpoint reported",
            |lines| {
                let hit =
                    crate::scenario::numbers(lines, r"^xtask: gdb: Thread 2 hit .*\(frame=(\d+)");
                let read = crate::scenario::numbers(lines, r"^xtask: gdb: \$1 = (\d+)$");
                if !hit.is_empty() && hit == read {
                    Ok(())
                } else {
                    Err(format!(
                        "breakpoint said frame {hit:?}, print said {read:?}"
                    ))
                }
            },
        );
    scenario.machine.gdb_port = Some(port);
    scenario
}

const RECORDS_CONFIG: &str = "config/qemu-virt/tests/records.toml";

/// Runs of the crash-records series (boots of the same disk).
pub const RECORDS_RUNS: u32 = 2;

/// Crash records across a power cycle, run `run` (from 0) of a series on
/// one disk: `crashloop` dies three times (PSCI SYSTEM_RESET, a stage-2
/// fault with a mark in x20, an undefined instruction); each death prints
/// its record's one-line summary and the record is saved in the disk's
/// `hv-records` partition, which is all the disk that changes. The first
/// run dumps the records on the console (Ctrl-] r: registers, console
/// lines); the second boots on what the first left: numbering goes on
/// (boot 2, records 4 to 6), and `cargo xtask records` on the image reads
/// all six back, the first boot's intact.
pub(super) fn crash_records(run: u32) -> Scenario {
    let boot = run + 1;
    let before = 3 * u64::from(run);
    let name: &'static str = format!("crash-records-{boot}").leak();
    let record = |n: u64| before + n;
    let scenario = Scenario::new(name, RECORDS_CONFIG)
        .disk_left_by("crash-records", crate::disk::QEMU_VIRT_LAYOUT, run == 0)
        .timeout(60)
        .expect(&format!(
            "{}{before} from earlier boots; this is boot {boot}$",
            r"^\[hv\] INFO  storage disk0: crash records in GPT partition hv-records \(64 slots\): "
        ))
        .expect(&format!(
            r"^\[hv\] INFO  partition crashloop: PSCI SYSTEM_RESET \(record #{}\)$",
            record(1)
        ))
        .expect(&format!(
            "{}{}{}\\)$",
            r"^\[hv\] WARN  partition crashloop: stage-2 fault: read at IPA 0x30000000 ",
            r"\(pc 0x4008[0-9a-f]{4}\) -> restart \(record #",
            record(2)
        ))
        .expect(&format!(
            r"^\[hv\] WARN  partition crashloop: undefined trap: EC 0x18 .* -> restart \(record #{}\)$",
            record(3)
        ))
        .expect_exactly(3, r"^\[hv\] INFO  storage disk0: crash record #\d+ saved")
        .expect(r"^\[crashloop\] crashloop: done boots=4$")
        .expect_none(r"PANIC|FATAL|not saved|unknown request")
        .writes_only_inside(&["hv-records"]);
    if run == 0 {
        scenario
            .type_on(r"crash record #3 saved", b"\x1dr")
            .expect(concat!(
                r"^\[hv\] record #2 \(boot 1, \d+\.\d{6} s after power-on\): ",
                r"partition crashloop, vcpu 0 on cpu 2, after 1 restart\(s\)$",
            ))
            .expect(r"^\[hv\]   x20 0xc0ffee0000000020 x21 0x0000000000000001 ")
            .expect(r"^\[hv\]   \| crashloop: boot 1$")
            .stop_when_all(&[r"console: end of crash records", r"done boots=4"])
    } else {
        scenario
            .stop_when_all(&[
                &format!(r"crash record #{} saved", record(3)),
                r"done boots=4",
            ])
            .check_disk("cargo xtask records reads both boots' records", |image| {
                let out =
                    std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
                        .args(["records", "--disk"])
                        .arg(image)
                        .output()
                        .map_err(|e| format!("cargo xtask records: {e}"))?;
                let text = String::from_utf8_lossy(&out.stdout);
                if !out.status.success() {
                    return Err(format!(
                        "cargo xtask records failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                let wanted = [
                    "6 record(s) from boots 1 to 2",
                    "record #1 (boot 1,",
                    "record #2 (boot 1,",
                    "record #3 (boot 1,",
                    "record #4 (boot 2,",
                    "record #6 (boot 2,",
                    "  PSCI SYSTEM_RESET",
                    "  x20 0xc0ffee0000000020 x21 0x0000000000000001",
                    "  | crashloop: boot 2",
                ];
                match wanted.iter().find(|w| !text.contains(*w)) {
                    None => Ok(()),
                    Some(w) => Err(format!("`{w}` missing from:\n{text}")),
                }
            })
    }
}
