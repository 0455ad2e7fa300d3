//! The operator's tools on a running system: `cargo xtask gdb`.

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
