//! Scenarios of the shared touch panel: contacts injected through QMP
//! (`input-send-event`, type `mtt`) into the panel bound to the center
//! display, and what each partition's touch device reports.

use crate::qmp::Mtt;
use crate::scenario::Scenario;

/// A contact on the center display (1280x800) at pixel (`x`, `y`).
fn center(kind: &'static str, slot: u32, id: u32, x: u32, y: u32) -> Mtt {
    Mtt::at(kind, slot, id, (x, y), (1280, 800))
}

/// The shared touch panel, routed by region (`tests/touch.toml`): a tap
/// in the IVI's area reaches the IVI in its coordinates and nothing
/// reaches the cluster; a tap in the cluster's protected strip reaches
/// only the cluster, in its strip's coordinates; a drag that starts in the
/// IVI's area and crosses into the strip stays the IVI's to the end; two
/// simultaneous contacts in the two regions reach their two partitions,
/// each as its own slot 0.
pub(super) fn touch_routing() -> Scenario {
    let ready = r"^\[(cluster|ivi)\] touch: device at ";
    Scenario::new("touch-routing", "config/qemu-virt/tests/touch.toml")
        .timeout(120)
        .expect(
            r#"^\[ivi\] touch: device at 0x[0-9a-f]+ ".*" x 0\.\.1279 y 0\.\.799 slots 0\.\.9 restarts 0$"#,
        )
        .expect(
            r#"^\[cluster\] touch: device at 0x[0-9a-f]+ ".*" x 0\.\.1279 y 0\.\.99 slots 0\.\.9 restarts 0$"#,
        )
        // Both devices are up before the first tap (the second "ready").
        .touch_on(ready, "center", vec![])
        .touch_on(ready, "center", vec![center("begin", 0, 1, 640, 300)])
        .touch_on(
            r"^\[ivi\] touch: frame 1: ",
            "center",
            vec![center("end", 0, 1, 640, 300)],
        )
        .touch_on(
            r"^\[ivi\] touch: frame 2: slot 0 up",
            "center",
            vec![center("begin", 0, 2, 100, 750)],
        )
        .touch_on(
            r"^\[cluster\] touch: frame 1: ",
            "center",
            vec![center("end", 0, 2, 100, 750)],
        )
        // The drag: down in the IVI's area, into the strip, up there.
        .touch_on(
            r"^\[cluster\] touch: frame 2: slot 0 up",
            "center",
            vec![center("begin", 1, 3, 200, 600)],
        )
        .touch_on(
            r"^\[ivi\] touch: frame 3: ",
            "center",
            vec![center("update", 1, 3, 200, 780)],
        )
        .touch_on(
            r"^\[ivi\] touch: frame 4: ",
            "center",
            vec![center("end", 1, 3, 200, 780)],
        )
        // Two at once, one in each region.
        .touch_on(
            r"^\[ivi\] touch: frame 5: slot 0 up",
            "center",
            vec![
                center("begin", 0, 4, 1000, 100),
                center("begin", 1, 5, 1000, 790),
            ],
        )
        .touch_on(
            r"^\[cluster\] touch: frame 3: ",
            "center",
            vec![
                center("end", 0, 4, 1000, 100),
                center("end", 1, 5, 1000, 790),
            ],
        )
        .expect(r"^\[ivi\] touch: frame 1: slot 0 down id 0 at 640,300$")
        .expect(r"^\[ivi\] touch: frame 1: button 1 pointer 640,300$")
        .expect(r"^\[ivi\] touch: frame 2: slot 0 up$")
        .expect(r"^\[cluster\] touch: frame 1: slot 0 down id 0 at 100,50$")
        .expect(r"^\[cluster\] touch: frame 2: slot 0 up$")
        .expect(r"^\[ivi\] touch: frame 3: slot 0 down id 1 at 200,600$")
        .expect(r"^\[ivi\] touch: frame 4: slot 0 at 200,780$")
        .expect(r"^\[ivi\] touch: frame 5: slot 0 up$")
        .expect(r"^\[ivi\] touch: frame 6: slot 0 down id 2 at 1000,100$")
        .expect(r"^\[cluster\] touch: frame 3: slot 0 down id 1 at 1000,90$")
        .expect(r"^\[ivi\] touch: frame 7: slot 0 up$")
        .expect(r"^\[cluster\] touch: frame 4: slot 0 up$")
        .expect_exactly(4, r"^\[cluster\] touch: frame \d+: slot")
        .expect_none(r"touch: no device|does not come up|PANIC|FATAL|\[hv\] (WARN|ERROR)")
}

/// An IVI that stops reading its touch events (`touch.stop=2`, after its
/// first tap): 30 more taps in its area fill its device, which drops its
/// own oldest frames whole and counts them (the hypervisor says so); the
/// cluster's tap afterwards arrives as if nothing happened.
pub(super) fn touch_stop() -> Scenario {
    let taps: Vec<Vec<Mtt>> = (0..30u32)
        .flat_map(|i| {
            let at = (100 + 10 * i, 200);
            [
                vec![center("begin", 0, 10 + i, at.0, at.1)],
                vec![center("end", 0, 10 + i, at.0, at.1)],
            ]
        })
        .collect();
    Scenario::new("touch-stop", "config/qemu-virt/tests/touch-stop.toml")
        .timeout(120)
        .touch_on(r"^\[(cluster|ivi)\] touch: device at ", "center", vec![])
        .touch_on(
            r"^\[(cluster|ivi)\] touch: device at ",
            "center",
            vec![center("begin", 0, 1, 640, 300)],
        )
        .touch_on(r"^\[ivi\] touch: frame 1: ", "center", vec![center("end", 0, 1, 640, 300)])
        .touches_on(r"^\[ivi\] touch: not reading any more$", "center", taps)
        .touch_on(
            r"^\[hv\] WARN  partition ivi: touch panel: it does not read its events: \d+ frame",
            "center",
            vec![center("begin", 0, 99, 100, 750)],
        )
        .touch_on(r"^\[cluster\] touch: frame 1: ", "center", vec![center("end", 0, 99, 100, 750)])
        .expect(r"^\[ivi\] touch: frame 2: slot 0 up$")
        .expect(r"^\[ivi\] touch: not reading any more$")
        .expect(r"^\[hv\] WARN  partition ivi: touch panel: it does not read its events: \d+ frame\(s\) dropped so far$")
        .expect(r"^\[cluster\] touch: frame 1: slot 0 down id 0 at 100,50$")
        .expect(r"^\[cluster\] touch: frame 2: slot 0 up$")
        .expect_none(r"^\[cluster\] touch: frame [3-9]")
        .check("the IVI got only the frames its posted buffers held", |lines| {
            let frames = crate::scenario::numbers(lines, r"^\[ivi\] touch: frame (\d+): ");
            match frames.iter().max() {
                Some(&n) if n < 62 => Ok(()),
                n => Err(format!("the IVI read {n:?} of 62 frames")),
            }
        })
        .expect_none(r"touch: no device|PANIC|FATAL|\[hv\] ERROR")
}

/// The IVI restarts with a finger on its area (`touch.fault=1`: it faults
/// after its first frame with the contact down): the hypervisor restarts
/// it and says the contact is lost; the finger's lift reaches nobody (not
/// the restarted IVI, not the cluster), and the restarted IVI's next tap
/// starts afresh as slot 0, id 0.
pub(super) fn touch_restart() -> Scenario {
    Scenario::new("touch-restart", "config/qemu-virt/tests/touch-restart.toml")
        .timeout(120)
        .touch_on(r"^\[(cluster|ivi)\] touch: device at ", "center", vec![])
        .touch_on(
            r"^\[(cluster|ivi)\] touch: device at ",
            "center",
            vec![center("begin", 0, 1, 640, 300)],
        )
        // The lost finger moves into the cluster's strip and lifts; then a
        // new tap on the IVI's area.
        .touches_on(
            r"^\[ivi\] touch: device at .* restarts 1$",
            "center",
            vec![
                vec![center("update", 0, 1, 640, 760)],
                vec![center("end", 0, 1, 640, 760)],
                vec![center("begin", 1, 2, 20, 30)],
            ],
        )
        .touch_on(
            r"^\[ivi\] touch: frame 1: ",
            "center",
            vec![center("end", 1, 2, 20, 30)],
        )
        .expect(r"^\[ivi\] touch: frame 1: slot 0 down id 0 at 640,300$")
        .expect(r"^\[ivi\] touch: faulting with a contact down$")
        .expect(r"^\[hv\] INFO  partition ivi: touch panel: 1 contact\(s\) down lost until lifted$")
        .expect(r"^\[hv\] WARN  partition ivi: restarting \(restart #1\)$")
        .expect(r"^\[ivi\] touch: frame 1: slot 0 down id 0 at 20,30$")
        .expect(r"^\[ivi\] touch: frame 2: slot 0 up$")
        .expect_exactly(2, r"^\[ivi\] touch: frame 1: slot 0 down")
        .expect_none(r"^\[cluster\] touch: frame|touch: no device|PANIC|FATAL|\[hv\] ERROR")
}
