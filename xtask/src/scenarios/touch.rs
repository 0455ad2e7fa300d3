//! Scenarios of the shared touch panel: contacts injected through QMP
//! (`input-send-event`, type `mtt`) into the panel bound to the center
//! display, the mouse (types `abs` and `btn`) into the panel's pointer,
//! and what each partition's touch device reports.

use crate::qmp::{Mtt, Pointer};
use crate::scenario::Scenario;

/// A contact on the center display (1280x800) at pixel (`x`, `y`).
fn center(kind: &'static str, slot: u32, id: u32, x: u32, y: u32) -> Mtt {
    Mtt::at(kind, slot, id, (x, y), (1280, 800))
}

/// The mouse over the center display (1280x800) at pixel (`x`, `y`), its
/// left button `down` or up.
fn mouse(x: u32, y: u32, down: bool) -> Pointer {
    Pointer::at((x, y), (1280, 800), down)
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

/// The panel's pointer (`tests/touch-pointer.toml`, a QEMU tablet on the
/// center display): the hypervisor opens it after the panel, so QEMU gives
/// it the mouse's button as well as its motion. Hovering is no contact; a
/// click-drag on the IVI's area reaches the IVI as one contact (down,
/// moves, up) in its view's coordinates, and stays the IVI's when it
/// crosses into the cluster's protected strip; a finger on the IVI's area
/// meanwhile is a second contact of its own, before and after the mouse
/// lifts; a click on the strip reaches only the cluster, in the strip's
/// coordinates.
pub(super) fn touch_pointer() -> Scenario {
    let ready = r"^\[(cluster|ivi)\] touch: device at ";
    Scenario::new("touch-pointer", "config/qemu-virt/tests/touch-pointer.toml")
        .timeout(120)
        .pointers()
        .expect(
            r"^\[hv\] INFO  touch panel: pointer \(virtio-input\) at 0xa003600, axes x 0\.\.32767 y 0\.\.32767: the mouse is one more contact$",
        )
        .expect(
            r#"^\[ivi\] touch: device at 0x[0-9a-f]+ ".*" x 0\.\.1279 y 0\.\.799 slots 0\.\.9 restarts 0$"#,
        )
        .expect(
            r#"^\[cluster\] touch: device at 0x[0-9a-f]+ ".*" x 0\.\.1279 y 0\.\.99 slots 0\.\.9 restarts 0$"#,
        )
        // Both devices are up (the second "ready"): the mouse hovers over
        // the IVI's area, then over the strip, then goes down on the IVI's.
        .touch_on(ready, "center", vec![])
        .point_on(
            ready,
            "center",
            vec![
                mouse(500, 500, false),
                mouse(600, 750, false),
                mouse(300, 400, true),
            ],
        )
        // A finger beside it.
        .touch_on(
            r"^\[ivi\] touch: frame 1: ",
            "center",
            vec![center("begin", 0, 1, 1000, 100)],
        )
        // The drag, into the strip.
        .point_on(
            r"^\[ivi\] touch: frame 2: ",
            "center",
            vec![mouse(300, 600, true)],
        )
        .point_on(
            r"^\[ivi\] touch: frame 3: ",
            "center",
            vec![mouse(300, 760, true)],
        )
        .point_on(
            r"^\[ivi\] touch: frame 4: ",
            "center",
            vec![mouse(300, 760, false)],
        )
        // The finger goes on without it, and lifts.
        .touch_on(
            r"^\[ivi\] touch: frame 5: slot 0 up$",
            "center",
            vec![center("update", 0, 1, 1010, 110)],
        )
        .touch_on(
            r"^\[ivi\] touch: frame 6: ",
            "center",
            vec![center("end", 0, 1, 1010, 110)],
        )
        // A click on the cluster's strip.
        .point_on(
            r"^\[ivi\] touch: frame 7: slot 1 up$",
            "center",
            vec![mouse(100, 750, true)],
        )
        .point_on(
            r"^\[cluster\] touch: frame 1: ",
            "center",
            vec![mouse(100, 750, false)],
        )
        .expect(r"^\[ivi\] touch: frame 1: slot 0 down id 0 at 300,400$")
        .expect(r"^\[ivi\] touch: frame 1: button 1 pointer 300,400$")
        .expect(r"^\[ivi\] touch: frame 2: slot 1 down id 1 at 1000,100$")
        .expect(r"^\[ivi\] touch: frame 3: slot 0 at 300,600$")
        .expect(r"^\[ivi\] touch: frame 4: slot 0 at 300,760$")
        .expect(r"^\[ivi\] touch: frame 5: slot 0 up$")
        .expect(r"^\[ivi\] touch: frame 6: slot 1 at 1010,110$")
        .expect(r"^\[ivi\] touch: frame 7: slot 1 up$")
        .expect(r"^\[ivi\] touch: frame 7: button 0 pointer 0,0$")
        .expect(r"^\[cluster\] touch: frame 1: slot 0 down id 0 at 100,50$")
        .expect(r"^\[cluster\] touch: frame 1: button 1 pointer 100,50$")
        .expect(r"^\[cluster\] touch: frame 2: slot 0 up$")
        .expect(r"^\[cluster\] touch: frame 2: button 0 pointer 0,0$")
        .expect_exactly(7, r"^\[ivi\] touch: frame \d+: slot")
        .expect_exactly(2, r"^\[cluster\] touch: frame \d+: slot")
        .settle(500)
        .expect_none(r"touch: no device|does not come up|no pointer at|PANIC|FATAL|\[hv\] (WARN|ERROR)")
}

/// `tests/touch-pointer.toml` with no tablet attached, as every other run
/// without a window: the hypervisor finds the pointer's transport empty,
/// says so once and goes on; fingers work as ever.
pub(super) fn touch_pointer_absent() -> Scenario {
    let ready = r"^\[(cluster|ivi)\] touch: device at ";
    Scenario::new(
        "touch-pointer-absent",
        "config/qemu-virt/tests/touch-pointer.toml",
    )
    .timeout(120)
    .touch_on(ready, "center", vec![])
    .touch_on(ready, "center", vec![center("begin", 0, 1, 640, 300)])
    .touch_on(
        r"^\[ivi\] touch: frame 1: ",
        "center",
        vec![center("end", 0, 1, 640, 300)],
    )
    .expect_exactly(
        1,
        r"^\[hv\] INFO  touch panel: no pointer at 0xa003600; mouse input off$",
    )
    .expect(r"^\[ivi\] touch: frame 1: slot 0 down id 0 at 640,300$")
    .expect(r"^\[ivi\] touch: frame 2: slot 0 up$")
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

/// A hostile virtio-input driver (`inputfuzz`) as the IVI beside the
/// cluster reading its touches (`tests/hostile-input.toml`). Every abuse
/// of configuration space, registers, status queue and event queue gets
/// the answer the device model documents or DEVICE_NEEDS_RESET; the
/// hypervisor warns about the malformed rings and about the frames the IVI
/// lost while it posted no buffers, and goes on; after a reset the IVI's
/// device reads a tap correctly. The cluster's three taps (one while the
/// IVI posts no buffers, one while its device is broken, one after the
/// fuzzer is done, while it floods its device with junk) arrive, and
/// nothing else does.
pub(super) fn hostile_input() -> Scenario {
    /// What `inputfuzz` says about each case before the event queue's, in
    /// order: the case and its answer (a regex).
    const INPUTFUZZ_CASES: [(&str, &str); 35] = [
        (
            "config-sweep",
            "65536 selections, 13 with size > 0, 0 above 128",
        ),
        (
            "config-selections",
            "2560 checked, 0 bad; sized: 01/00:18 02/00:5 03/00:8 10/00:1 11/01:42 11/03:8 \
             12/00:20 12/01:20 12/2f:20 12/35:20 12/36:20 12/39:20",
        ),
        ("config-name", r#""Shared touch panel""#),
        (
            "config-writes",
            r"ignored \(size 20 and union read back unchanged\)",
        ),
        ("features-sel-out-of-range", "features read 0"),
        (
            "features-not-offered",
            r"FEATURES_OK refused \(status 0x3\)",
        ),
        (
            "features-without-version-1",
            r"FEATURES_OK refused \(status 0x3\)",
        ),
        ("queue-ready-before-features-ok", "QueueReady stays 0"),
        (
            "queue-sel-out-of-range",
            "QueueNumMax 0, QueueReady stays 0; queue 0 max 64 ready 0",
        ),
        ("queue-num-0", "QueueReady stays 0"),
        ("queue-num-above-max", "QueueReady stays 0"),
        ("queue-num-not-power-of-2", "QueueReady stays 0"),
        ("queue-misaligned-desc", "QueueReady stays 0"),
        ("queue-wrapping-desc", "QueueReady stays 0"),
        ("notify-bad-queue", r"ignored \(status 0xf -> 0xf\)"),
        ("status-abuse", "status 0xf -> 0xf"),
        (
            "read-sweep",
            "960 reads, 0 non-zero narrow/64-bit register reads, 0 config mismatches, \
             0 non-zero bytes past the config",
        ),
        (
            "write-sweep",
            "1920 writes; magic and version ok, device id 18, status 0x0; re-init ok",
        ),
        ("status-led-event", "used, 0 bytes"),
        ("status-device-writable", "used, 0 bytes"),
        ("status-huge-length", "used, 0 bytes"),
        ("status-outside-ram", "used, 0 bytes"),
        ("status-address-0", "used, 0 bytes"),
        ("status-cluster-host-address", "used, 0 bytes"),
        ("status-wrapping-address", "used, 0 bytes"),
        ("status-loop", "used, 0 bytes"),
        ("status-bad-indirect", "used, 0 bytes"),
        ("status-readable-after-writable", "used, 0 bytes"),
        ("status-full-ring", "64 used, 0 bytes each"),
        ("status-desc-table-outside-ram", "used, 0 bytes"),
        ("status-head-out-of-range", "needs-reset"),
        ("status-avail-jump-1000", "needs-reset"),
        ("status-avail-ring-outside-ram", "needs-reset"),
        ("status-used-ring-outside-ram", "needs-reset"),
        // 25 taps are 50 frames of 9 (down) and 5 (up) events, each with
        // its MSC_TIMESTAMP: the device keeps the newest whole ones that
        // fit in its 256 events (the 7 oldest taps dropped), then 64
        // buffers take the oldest kept: 4 whole taps (the next down would
        // not fit).
        (
            "no-buffers",
            "25 taps came, status 0xf; then 64 buffers took 8 frames, 56 events, \
             0 not whole, 0 empty",
        ),
    ];

    /// `inputfuzz`'s event queue cases, in order: each waits for one frame
    /// (a finger down, then up, alternately) and gets this answer.
    const INPUTFUZZ_EVENT_CASES: [(&str, &str); 12] = [
        (
            "event-device-readable",
            r"used, 0 bytes; then the frame whole \(9 events\)",
        ),
        (
            "event-4-bytes",
            r"used, 0 bytes; then the frame whole \(5 events\)",
        ),
        (
            "event-empty",
            r"used, 0 bytes; then the frame whole \(9 events\)",
        ),
        (
            "event-outside-ram",
            r"used, 0 bytes; then the frame whole \(5 events\)",
        ),
        (
            "event-address-0",
            r"used, 0 bytes; then the frame whole \(9 events\)",
        ),
        (
            "event-cluster-host-address",
            r"used, 0 bytes; then the frame whole \(5 events\)",
        ),
        (
            "event-straddling-ram-end",
            r"used, 0 bytes; then the frame whole \(9 events\)",
        ),
        ("event-loop", "needs-reset"),
        ("event-avail-jump-1000", "needs-reset"),
        ("event-indirect-outside-ram", "needs-reset"),
        ("event-loop-before-frame", "needs-reset once a frame came"),
        (
            "event-used-ring-outside-ram",
            "needs-reset once a frame came",
        ),
    ];

    let mut scenario = Scenario::new("hostile-input", "config/qemu-virt/tests/hostile-input.toml")
        .timeout(180)
        .expect(r"^\[ivi\] inputfuzz: device at 0xb000200$");
    // 25 taps on the IVI's area while it has no buffers, one at a time as
    // it asks (with the cluster's first tap behind the 13th).
    for tap in 1..=25u32 {
        let x = 60 + 40 * tap;
        let mut frames = vec![
            vec![center("begin", 0, 100 + tap, x, 200)],
            vec![center("end", 0, 100 + tap, x, 200)],
        ];
        if tap == 13 {
            frames.push(vec![center("begin", 0, 200, 100, 750)]);
            frames.push(vec![center("end", 0, 200, 100, 750)]);
        }
        scenario = scenario.touches_on(
            &format!(r"^\[ivi\] inputfuzz: no-buffers: waiting for tap {tap}$"),
            "center",
            frames,
        );
    }
    for (case, answer) in INPUTFUZZ_CASES {
        scenario = scenario.expect(&format!(r"^\[ivi\] inputfuzz: {case} -> {answer}$"));
    }
    for (i, (case, answer)) in INPUTFUZZ_EVENT_CASES.into_iter().enumerate() {
        let n = i as u32 / 2;
        let kind = if i % 2 == 0 { "begin" } else { "end" };
        let mut frames = vec![vec![center(kind, 0, 300 + n, 300 + 100 * n, 400)]];
        if case == "event-loop" {
            // The cluster's second tap, while the IVI's device is broken.
            frames.push(vec![center("begin", 0, 201, 640, 790)]);
            frames.push(vec![center("end", 0, 201, 640, 790)]);
        }
        scenario = scenario
            .touches_on(
                &format!(r"^\[ivi\] inputfuzz: {case}: waiting for a frame$"),
                "center",
                frames,
            )
            .expect(&format!(r"^\[ivi\] inputfuzz: {case} -> {answer}$"));
    }
    scenario
        .touches_on(
            r"^\[ivi\] inputfuzz: after-reset: waiting for a tap$",
            "center",
            vec![
                vec![center("begin", 0, 400, 640, 300)],
                vec![center("end", 0, 400, 640, 300)],
            ],
        )
        // The IVI's 32nd contact: 25 taps, 6 fingers down in the event
        // queue cases, then this one.
        .expect(
            r"^\[ivi\] inputfuzz: after-reset -> frame 1: slot 0 down id 31 at 640,300; frame 2: slot 0 up$",
        )
        .expect(r"^\[ivi\] inputfuzz: done$")
        // The cluster's third tap, after the fuzzer is done, while it
        // floods its device (with a finger of its own down meanwhile, so
        // that its event queue's junk is taken too).
        .touches_on(
            r"^\[ivi\] inputfuzz: flooding: 1000 rounds$",
            "center",
            vec![
                vec![center("begin", 0, 401, 640, 300)],
                vec![center("begin", 1, 202, 1200, 710)],
                vec![center("end", 1, 202, 1200, 710)],
                vec![center("end", 0, 401, 640, 300)],
            ],
        )
        .check("the flood goes on after the cluster's last tap", |lines| {
            let rest = crate::scenario::after(
                lines,
                r"^\[cluster\] touch: frame 6: button 0 pointer 0,0$",
            )
            .ok_or("no cluster frame 6")?;
            let floods = crate::scenario::count(rest, r"^\[ivi\] inputfuzz: flooding: \d+ rounds$");
            if floods >= 2 {
                Ok(())
            } else {
                Err(format!("{floods} flooding line(s) after it"))
            }
        })
        // Its first dropped frame (it drops fewer than 100 in all).
        .expect_exactly(1, r"^\[hv\] WARN  partition ivi: touch panel: it does not read its events: \d+ frame\(s\) dropped so far$")
        // The broken rings met while a notification is handled: 4 of the
        // status queue, 3 of the event queue. (The two event queue rings
        // met while a frame is delivered break the device unreported.)
        .expect_at_least(
            7,
            r"^\[hv\] WARN  partition ivi: touch: malformed virtqueue request; device needs reset$",
        )
        .check("the hypervisor warns only about the IVI's touch device", |lines| {
            let warn = regex::Regex::new(
                r"^\[hv\] WARN  partition ivi: touch( panel: it does not read its events: \d+ frame\(s\) dropped so far|: malformed virtqueue request; device needs reset)$",
            )
            .map_err(|e| e.to_string())?;
            match lines
                .iter()
                .find(|l| l.starts_with("[hv] WARN ") && !warn.is_match(l))
            {
                Some(other) => Err(format!("unexpected: {other}")),
                None => Ok(()),
            }
        })
        .check("the cluster got its three taps and nothing else", |lines| {
            let got: Vec<&str> = lines
                .iter()
                .filter(|l| l.starts_with("[cluster] touch: frame "))
                .map(String::as_str)
                .collect();
            let want = [
                "[cluster] touch: frame 1: slot 0 down id 0 at 100,50",
                "[cluster] touch: frame 1: button 1 pointer 100,50",
                "[cluster] touch: frame 2: slot 0 up",
                "[cluster] touch: frame 2: button 0 pointer 0,0",
                "[cluster] touch: frame 3: slot 0 down id 1 at 640,90",
                "[cluster] touch: frame 3: button 1 pointer 640,90",
                "[cluster] touch: frame 4: slot 0 up",
                "[cluster] touch: frame 4: button 0 pointer 0,0",
                "[cluster] touch: frame 5: slot 0 down id 2 at 1200,10",
                "[cluster] touch: frame 5: button 1 pointer 1200,10",
                "[cluster] touch: frame 6: slot 0 up",
                "[cluster] touch: frame 6: button 0 pointer 0,0",
            ];
            if got == want {
                Ok(())
            } else {
                Err(format!("the cluster printed {got:#?}"))
            }
        })
        .expect(r"^\[cluster\] touch: frame 6: button 0 pointer 0,0$")
        .expect_none(r"^\[cluster\] touch: frame ([7-9]|[1-9]\d+): ")
        .settle(1000)
        .expect_none(
            r"PANIC|FATAL|\[hv\] ERROR|inputfuzz: re-init -> error|no frame came|unexpected exception|flooding: needs-reset",
        )
}
