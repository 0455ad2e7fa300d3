//! The Linux partition: booting it, and its reboots, crashes and
//! power-off.

use super::{at_least_after, beats, on_board};
use crate::qmp::Mtt;
use crate::scenario::{Scenario, consecutive, numbers};

/// The default cockpit: Debian's stock kernel boots to userspace on its
/// two cores beside the instrument cluster; its self-check sees exactly its
/// own CPUs, memory and devices (its virtio-gpu included); it draws its
/// navigation screen on both its views while the cluster draws its gauges
/// and says it is alive every second; console input reaches it after
/// Ctrl-] 2.
pub(super) fn ivi_boot() -> Scenario {
    Scenario::new("ivi-boot", "config/qemu-virt/default.toml")
        .disk(crate::disk::QEMU_VIRT_LAYOUT)
        .timeout(180)
        .expect(r"^\[ivi\] \[ *[0-9.]+\] Linux version 6\.12")
        .expect(r"^\[ivi\] \[ *[0-9.]+\] smp: Brought up 1 node, 2 CPUs$")
        .expect(r"^\[ivi\] ivi: userspace up after ")
        .expect(r"^\[ivi\] ivi-tool: check ok cpus=2 ")
        .expect(r"^\[ivi\] ivi-tool: draw: Virtual-1 1280x800 crtc \d+ \(page flips\)$")
        .expect(r"^\[ivi\] ivi-tool: draw: Virtual-2 800x320 crtc \d+ \(page flips\)$")
        .type_on(r"^\[ivi\] ivi-tool: draw: Virtual-2 ", b"\x1d2")
        .type_on(
            r"console: input goes to partition ivi",
            b"echo typed-$((6*7))\r",
        )
        .expect(r"typed-42$")
        // Stock Linux's virtio_input and evdev on the touch panel: a tap
        // on the IVI's area reaches `ivi-tool touch` in its view's
        // coordinates; a tap on the cluster's strip does not. The shell
        // starts meanwhile: its prompt may begin any of these lines, so
        // they are matched after the partition's prefix, wherever.
        .touch_on(
            r"^\[ivi\] .*ivi-tool: touch: /dev/input/event\d+ ",
            "center",
            vec![Mtt::at("begin", 0, 1, (640, 300), (1280, 800))],
        )
        .touch_on(
            r"^\[ivi\] .*ivi-tool: touch: slot 0 down",
            "center",
            vec![Mtt::at("end", 0, 1, (640, 300), (1280, 800))],
        )
        .touches_on(
            r"^\[ivi\] .*ivi-tool: touch: slot 0 up",
            "center",
            vec![
                vec![Mtt::at("begin", 0, 2, (100, 750), (1280, 800))],
                vec![Mtt::at("end", 0, 2, (100, 750), (1280, 800))],
            ],
        )
        .expect(r#"^\[ivi\] .*ivi-tool: touch: /dev/input/event\d+ "Shared touch panel"$"#)
        .expect(r"^\[ivi\] .*ivi-tool: touch: slot 0 down id 0 at 640,300$")
        .expect(r"^\[ivi\] .*ivi-tool: touch: slot 0 up id 0$")
        .expect_exactly(1, r"^\[ivi\] .*ivi-tool: touch: slot 0 down")
        .expect(r"^\[cluster\] cluster: first frame shown at counter \d+ ")
        .expect_at_least(3, r"^\[cluster\] cluster: alive frame=\d+ ")
        .expect_none(r"^\[hv\] (WARN|ERROR)|cluster: .*error")
        .check("the cluster's frames advance every second", |lines| {
            let frames = numbers(lines, r"^\[cluster\] cluster: alive frame=(\d+) ");
            if frames.windows(2).all(|w| w[1] > w[0]) {
                Ok(())
            } else {
                Err(format!("frames {frames:?}"))
            }
        })
}

/// The Linux IVI on a board with nothing to share but the console: the
/// stock kernel boots to userspace on its two cores beside a bare-metal
/// partition, its self-check sees exactly its own CPUs, memory and the
/// emulated watchdog, its console lines reach the board's UART through the
/// console mediator, and input typed there after Ctrl-] 2 reaches its
/// shell.
pub(super) fn ivi_console(board: &str) -> Scenario {
    on_board(board, "ivi-console", "ivi.toml")
        .timeout(180)
        .expect(r"^\[ivi\] \[ *[0-9.]+\] Linux version 6\.12")
        .expect(r"^\[ivi\] \[ *[0-9.]+\] smp: Brought up 1 node, 2 CPUs$")
        .expect(r"^\[ivi\] ivi: userspace up after ")
        .expect(r"^\[ivi\] ivi-tool: check ok cpus=2 ")
        .type_on(r"^\[ivi\] ivi-tool: check ok", b"\x1d2")
        .type_on(
            r"console: input goes to partition ivi",
            b"echo typed-$((6*7))\r",
        )
        .expect(r"typed-42$")
        .expect(r"^\[cluster\] hello: tick=5 pattern=ok")
        .expect_none(r"^\[hv\] (WARN|ERROR)")
}

/// Five reboots, a kernel crash and a watchdog expiry of the Linux
/// partition, each with its disk writes in flight, contained by the
/// hypervisor, then a power-off that stops it for good (and its crash
/// records, dumped on the console, hold the panic's last lines), while the
/// cluster's heartbeat (every 20 ms) goes on without missing a beat and
/// every one of its disk reads on the same physical disk succeeds, and
/// the hypervisor's heap stays flat. The worst gap and disk read are
/// reported, not judged. The worst gap
/// between beats is reported, not judged: without -icount it is wall-clock
/// time under TCG, so a bound on it judges how busy the host is (it went
/// past the heartbeat's 200 ms LATE mark once in a 100-restart soak while
/// the machine also built the project).
pub(super) fn ivi_lifecycle() -> Scenario {
    Scenario::new("ivi-lifecycle", "config/qemu-virt/tests/ivi-lifecycle.toml")
        .disk(crate::disk::QEMU_VIRT_LAYOUT)
        .timeout(240)
        .expect(r"^\[ivi\] ivi: lifecycle: writing vda in the background$")
        .expect(r"^\[ivi\] ivi: lifecycle: boot 4, rebooting$")
        // Five reboots, and the panic's own reboot (panic=1).
        .expect_exactly(
            6,
            r"^\[hv\] INFO  partition ivi: PSCI SYSTEM_RESET \(record #\d+\)$",
        )
        .expect(r"^\[ivi\] ivi: lifecycle: boot 5, crashing the kernel$")
        .expect(r"^\[ivi\] .*Kernel panic - not syncing: sysrq triggered crash")
        .expect(r"^\[ivi\] ivi: lifecycle: boot 6, starving the watchdog$")
        .expect(r"^\[hv\] WARN  partition ivi: watchdog expired -> restart \(record #\d+\)$")
        .expect(r"^\[hv\] WARN  partition ivi: restarting \(restart #7\)$")
        .expect(r"^\[ivi\] ivi: lifecycle: done after 7 restarts, powering off$")
        .expect(r"^\[hv\] INFO  partition ivi: PSCI SYSTEM_OFF \(record #\d+\)$")
        .expect(r"^\[hv\] WARN  partition ivi: stopped$")
        // Its crash records, from hypervisor memory: the panic's reset
        // keeps the panic's lines, the watchdog's its registers.
        .type_on(r"^\[hv\] WARN  partition ivi: stopped$", b"\x1dr")
        .expect(concat!(
            r"^\[hv\] record #\d+ \(boot 0, [0-9.]+ s after power-on\): partition ivi, ",
            r"vcpu \d on cpu \d, after 5 restart\(s\)$"
        ))
        .expect(r"^\[hv\]   \| \[ *[0-9.]+\] Kernel panic - not syncing: sysrq triggered crash$")
        .expect(r"^\[hv\]   \| \[ *[0-9.]+\] Rebooting in 1 seconds\.\.$")
        .expect(r"^\[hv\]   watchdog expired -> restart$")
        .expect(r"^\[hv\] INFO  console: end of crash records$")
        .check("the cluster beats on after the IVI is off", |lines| {
            at_least_after(
                lines,
                r"partition ivi: stopped$",
                r"^\[cluster\] heartbeat: n=",
                25,
            )
        })
        .check(
            "restarts leave the hypervisor's heap as it was",
            super::hostile::heap_flat,
        )
        .check("the cluster's heartbeat never skips", |lines| {
            let beats = beats(lines, "cluster");
            if beats.len() < 100 {
                return Err(format!("only {} heartbeats", beats.len()));
            }
            consecutive(&beats)
        })
        .cluster_disk_reads_all_succeed()
        .report(cluster_report)
}

/// What the cluster saw while the IVI restarted: its heartbeat and its
/// reads of the shared disk.
fn cluster_report(lines: &[String]) -> String {
    let worst_gap = numbers(lines, r"^\[cluster\] heartbeat: .* max_gap_ms=(\d+)$")
        .into_iter()
        .max()
        .unwrap_or(0);
    let reads = numbers(lines, r"^\[cluster\] heartbeat: disk reads=(\d+) ")
        .into_iter()
        .max()
        .unwrap_or(0);
    let worst_read = numbers(
        lines,
        r"^\[cluster\] heartbeat: disk reads=.* max_us=(\d+) ",
    )
    .into_iter()
    .max()
    .unwrap_or(0);
    format!(
        "cluster heartbeat: {} beats, none missed, worst gap {worst_gap} ms (period 20 ms); {reads} disk reads, worst {worst_read} us",
        beats(lines, "cluster").len()
    )
}

/// Checks for a cluster running `heartbeat disk`.
trait ClusterDisk {
    fn cluster_disk_reads_all_succeed(self) -> Self;
}

impl ClusterDisk for Scenario {
    /// The cluster found its disk, read it all along, and no read failed.
    fn cluster_disk_reads_all_succeed(self) -> Self {
        self.expect(r"^\[cluster\] heartbeat: disk \d+ sectors$")
            .expect(r"^\[cluster\] heartbeat: disk reads=\d+ .* errors=0$")
            .expect_none(r"^\[cluster\] heartbeat: disk (read \d+ -> error|reads=.* errors=[1-9])")
    }
}

/// The IVI crash-loop config (`cargo xtask soak ivi` writes its own with
/// the number of restarts asked for).
pub const IVI_CRASH_LOOP_CONFIG: &str = "config/qemu-virt/tests/ivi-crashloop.toml";
/// Restarts in that config.
pub const IVI_CRASH_LOOP_RESTARTS: u64 = 100;

/// The IVI (Linux) restarted `restarts` times, by reboot, kernel panic,
/// watchdog starvation and a stage-2 fault in turn, each with its disk
/// writes in flight: the cluster's heartbeat never skips, its reads of the
/// same disk all succeed, the hypervisor's heap stays flat, and the worst
/// heartbeat gap and disk read are reported (not judged: see `ivi_lifecycle`). Too long for the suite (Linux boots each
/// time); `ivi-lifecycle` is its short version.
pub fn ivi_crash_loop_of(config: &'static str, restarts: u64) -> Scenario {
    Scenario::new("ivi-crash-loop", config)
        .disk(crate::disk::QEMU_VIRT_LAYOUT)
        .timeout(60 + 30 * restarts)
        .expect(&format!(
            r"^\[ivi\] ivi: crashloop: done after {restarts} restarts, powering off$"
        ))
        .expect(r"^\[hv\] WARN  partition ivi: stopped$")
        .expect_none(r"PANIC|FATAL|restart failed")
        .check("the cluster's heartbeat never skips", |lines| {
            consecutive(&beats(lines, "cluster"))
        })
        .check(
            "restarts leave the hypervisor's heap as it was",
            super::hostile::heap_flat,
        )
        .cluster_disk_reads_all_succeed()
        .report(cluster_report)
}
