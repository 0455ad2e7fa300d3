//! Shared displays: partitions' views composed on the physical displays,
//! judged by pixels of QMP screendumps.

use crate::qmp::{Image, Mtt};
use crate::scenario::{Scenario, Screens};

const RED: u32 = 0xffc0_0000;
const GREEN: u32 = 0xff00_c000;
const BLACK: u32 = 0xff00_0000;

/// Checks that `image` holds `want` at each of `points` (`what` names
/// them in the error).
fn colours(image: &Image, points: &[(&str, u32, u32, u32)]) -> Result<(), String> {
    for &(what, x, y, want) in points {
        match image.at(x, y) {
            Some(p) if p == want => {}
            Some(p) => {
                return Err(format!(
                    "{what} at ({x}, {y}) is {p:#010x}, not {want:#010x}"
                ));
            }
            None => {
                return Err(format!(
                    "({x}, {y}) is off the {}x{} screen",
                    image.width, image.height
                ));
            }
        }
    }
    Ok(())
}

/// The cockpit layout of `config/qemu-virt/tests/display.toml` with the
/// `gpu` test program in both partitions: each view shows its partition's
/// colour in the right place and order; the IVI's navigation view shows
/// through the cluster's transparent window; in the cluster's protected
/// regions its transparent pixels show black, never the IVI's green, on
/// both displays; both partitions' frame counters advance from one
/// screenshot to the next, so their flushes are being shown.
pub(super) fn display_composition() -> Scenario {
    Scenario::new("display-composition", "config/qemu-virt/tests/display.toml")
        .timeout(120)
        .expect(r"^\[hv\] INFO  display instrument: virtio-gpu at 0xa003c00, 1920x720 at 60 Hz, composed on cpu 3$")
        .expect(r"^\[hv\] INFO  display center: virtio-gpu at 0xa003a00, 1280x800 at 60 Hz")
        .expect(r"^\[cluster\] gpu: device at 0xb000000, 2 scanout\(s\)$")
        .expect(r"^\[cluster\] gpu: scanout 0 1920x720 at ")
        .expect(r"^\[cluster\] gpu: scanout 1 1280x100 at ")
        .expect(r"^\[ivi\] gpu: scanout 0 800x320 at ")
        .expect(r"^\[ivi\] gpu: scanout 1 1280x800 at ")
        .expect(r"^\[cluster\] gpu: frame 60$")
        .expect(r"^\[ivi\] gpu: frame 60$")
        .expect_none(r"gpu: .*error|PANIC|FATAL|\[hv\] (WARN|ERROR)")
        .screenshot_on(r"^\[(cluster|ivi)\] gpu: frame 30$", "first")
        .screenshot_on(r"^\[(cluster|ivi)\] gpu: frame 60$", "second")
        .check_screens(
            "each view shows its partition, in priority order",
            |screens, _| {
                let instrument = screens.get("second", "instrument")?;
                colours(
                    instrument,
                    &[
                        ("the cluster", 100, 300, RED),
                        ("the cluster below the window", 960, 600, RED),
                        ("the IVI through the window", 960, 240, GREEN),
                        ("the cluster left of the window", 540, 240, RED),
                    ],
                )?;
                let center = screens.get("second", "center")?;
                colours(
                    center,
                    &[
                        ("the IVI", 640, 300, GREEN),
                        ("the cluster's strip", 100, 750, RED),
                    ],
                )
            },
        )
        .check_screens(
            "nothing of the IVI shows in the cluster's protected regions",
            |screens, _| {
                for label in ["first", "second"] {
                    let instrument = screens.get(label, "instrument")?;
                    let center = screens.get(label, "center")?;
                    // The window in the cluster's layer crosses both its
                    // protected regions: there it is black.
                    let leaks = instrument.count((0, 0, 1920, 80), |p| p == GREEN)
                        + center.count((0, 700, 1280, 100), |p| p == GREEN);
                    if leaks > 0 {
                        return Err(format!("{leaks} green pixel(s) in {label}"));
                    }
                    colours(
                        instrument,
                        &[("the window in the telltale strip", 960, 40, BLACK)],
                    )?;
                    colours(center, &[("the window in the strip", 640, 750, BLACK)])?;
                }
                Ok(())
            },
        )
        .check_screens("both partitions' frame counters advance", |screens, _| {
            counters_advance(
                screens,
                ("first", "second"),
                &[
                    ("cluster", "instrument", 0, 0),
                    ("cluster", "center", 0, 700),
                    ("ivi", "instrument", 560, 80),
                    ("ivi", "center", 0, 0),
                ],
            )
        })
}

/// Every case `gpufuzz` tries, with the answer the device must give.
const GPUFUZZ_CASES: &[(&str, &str)] = &[
    ("unknown-command", "ERR_UNSPEC"),
    ("3d-context-create", "ERR_UNSPEC"),
    ("create-id-0", "ERR_INVALID_RESOURCE_ID"),
    ("create-bad-format", "ERR_INVALID_PARAMETER"),
    ("create-zero-size", "ERR_INVALID_PARAMETER"),
    ("create-overflowing-size", "ERR_INVALID_PARAMETER"),
    ("create-bigger-than-memory", "ERR_OUT_OF_MEMORY"),
    ("create-reused-id", "ERR_INVALID_RESOURCE_ID"),
    ("unref-unknown", "ERR_INVALID_RESOURCE_ID"),
    ("attach-outside-ram", "ERR_UNSPEC"),
    ("attach-device-memory", "ERR_UNSPEC"),
    ("attach-wrapping-address", "ERR_UNSPEC"),
    ("attach-100k-entries", "ERR_INVALID_PARAMETER"),
    ("attach-fewer-entries-than-said", "ERR_UNSPEC"),
    ("attach-twice", "ERR_UNSPEC"),
    ("attach-unknown-resource", "ERR_INVALID_RESOURCE_ID"),
    ("transfer-outside-resource", "ERR_INVALID_PARAMETER"),
    ("transfer-overflowing-rect", "ERR_INVALID_PARAMETER"),
    ("transfer-past-backing", "ERR_INVALID_PARAMETER"),
    ("transfer-without-backing", "ERR_UNSPEC"),
    ("flush-outside-resource", "ERR_INVALID_PARAMETER"),
    ("flush-unknown-resource", "ERR_INVALID_RESOURCE_ID"),
    ("scanout-bad-id", "ERR_INVALID_SCANOUT_ID"),
    ("scanout-rect-outside", "ERR_INVALID_PARAMETER"),
    ("scanout-unknown-resource", "ERR_INVALID_RESOURCE_ID"),
    ("short-request", "ERR_UNSPEC"),
    ("half-header", "ERR_UNSPEC"),
    ("tiny-response", r"no response \(len 0\)"),
    ("display-info-too-small", "ERR_UNSPEC"),
    // Its only writable bytes are the request's: the error header goes there.
    (
        "request-device-writable",
        r"(no response \(len 24\)|needs-reset)",
    ),
    (
        "response-device-readable",
        r"(no response \(len 0\)|needs-reset)",
    ),
];

/// A hostile virtio-gpu driver as the IVI (`gpufuzz`): each malformed or
/// abusive command gets its error answer (or the device resets), 100 000
/// creations stop at the IVI's own resource limit, a valid frame still
/// works afterwards, and its flush flood is paced by the display; all the
/// while the cluster's frame counter advances, its colour is where it
/// should be, and none of the IVI's green appears in the cluster's
/// protected strip (the IVI's view and picture reach into it).
pub(super) fn hostile_gpu() -> Scenario {
    let mut scenario = Scenario::new("hostile-gpu", "config/qemu-virt/tests/hostile-gpu.toml")
        .timeout(120)
        .expect(r"^\[ivi\] gpufuzz: device at 0xb000000$");
    for (case, answer) in GPUFUZZ_CASES {
        scenario = scenario.expect(&format!(r"^\[ivi\] gpufuzz: {case} -> {answer}$"));
    }
    scenario
        // Two resources exist already: 62 more reach the limit of 64.
        .expect(r"^\[ivi\] gpufuzz: 100000 creations -> 62 ok, 99938 out of memory, 0 other$")
        .expect(r"^\[ivi\] gpufuzz: valid frame after abuse -> ok$")
        .expect(r"^\[ivi\] gpufuzz: flooding flushes: 300$")
        .expect(r"^\[cluster\] gpu: frame 90$")
        .expect_none(r"^\[cluster\] gpu: .*error|PANIC|FATAL|re-init -> error|shows signature")
        .screenshot_on(r"^\[ivi\] gpufuzz: flooding flushes: 100$", "flood")
        .screenshot_on(r"^\[ivi\] gpufuzz: flooding flushes: 300$", "later")
        .check_screens(
            "the cluster draws on, the IVI only where it may",
            |screens, _| {
                let first = screens.get("flood", "instrument")?;
                let later = screens.get("later", "instrument")?;
                colours(
                    later,
                    &[
                        ("the cluster", 100, 300, RED),
                        ("the IVI's picture through the window", 580, 150, GREEN),
                        ("the IVI's blank view through the window", 900, 300, BLACK),
                    ],
                )?;
                let leaks = later.count((0, 0, 1920, 80), |p| p == GREEN)
                    + first.count((0, 0, 1920, 80), |p| p == GREEN);
                if leaks > 0 {
                    return Err(format!("{leaks} green pixel(s) in the protected strip"));
                }
                counters_advance(
                    screens,
                    ("flood", "later"),
                    &[("cluster", "instrument", 0, 0)],
                )?;
                Ok(())
            },
        )
}

/// Each frame counter (whose, on which display, at which corner) reads
/// more in screenshot `later` than in `earlier`.
fn counters_advance(
    screens: &Screens,
    (earlier, later): (&str, &str),
    counters: &[(&str, &str, u32, u32)],
) -> Result<(), String> {
    for &(who, display, x, y) in counters {
        let read = |label: &str| {
            screens
                .get(label, display)?
                .frame_counter(x, y)
                .ok_or_else(|| format!("no counter at ({x}, {y}) of {display}"))
        };
        let (first, second) = (read(earlier)?, read(later)?);
        if second <= first {
            return Err(format!(
                "{who}'s counter on {display} went from {first} to {second}"
            ));
        }
    }
    Ok(())
}

/// Pixels of `image` in `rect` that are none of `allowed`.
fn others(image: &Image, rect: (u32, u32, u32, u32), allowed: &[u32]) -> usize {
    image.count(rect, |p| !allowed.contains(&p))
}

const WHITE: u32 = 0xffff_ffff;
/// The cluster's strip after a touch (`colour::ACK`).
const ACK_GREEN: u32 = 0xff1e_7d32;

/// Debian's stock kernel on the displays: virtio_gpu binds to the IVI's
/// virtio-gpu device and fbcon draws the kernel's messages on it (its
/// center view holds text); then the IVI's kernel crashes and the
/// partition restarts: its views go blank, then its console comes back.
/// All along the cluster's frame counter advances and no pixel of the
/// IVI's reaches the cluster's protected strips (only the cluster's red,
/// its counter's black and white, and black where its layer is
/// transparent may be there).
pub(super) fn display_linux() -> Scenario {
    Scenario::new("display-linux", "config/qemu-virt/tests/display-linux.toml")
        .timeout(240)
        .expect(r"^\[ivi\] .*\[drm\] Initialized virtio_gpu")
        .expect(r"^\[ivi\] .*fb0: virtio_gpudrmfb frame buffer device")
        .screenshot_on(r"^\[ivi\] ivi: userspace up after ", "linux")
        .type_on(r"^\[ivi\] ivi: userspace up after ", b"\x1d2")
        .type_on(
            r"console: input goes to partition ivi",
            b"echo c > /proc/sysrq-trigger\r",
        )
        .expect(r"^\[ivi\] .*Kernel panic - not syncing: sysrq triggered crash")
        .expect(r"^\[hv\] WARN  partition ivi: restarting \(restart #1\)$")
        // The next boot line is the restart's.
        .screenshot_on(r"^\[hv\] INFO  partition ivi: vcpu 0 booting ", "restarted")
        .expect_exactly(2, r"^\[ivi\] ivi: userspace up after ")
        .screenshot_on(r"^\[ivi\] ivi: restart count 1$", "again")
        .expect(r"^\[ivi\] ivi: restart count 1$")
        .expect_none(r"^\[cluster\] gpu: .*error|\[hv\] ERROR|shows signature")
        .check_screens("fbcon draws the IVI's console on its view", |screens, _| {
            for label in ["linux", "again"] {
                let text = screens
                    .get(label, "center")?
                    .count((0, 0, 1280, 700), |p| p != BLACK);
                if text < 1000 {
                    return Err(format!(
                        "only {text} lit pixels in the IVI's view ({label})"
                    ));
                }
            }
            Ok(())
        })
        .check_screens("a restarting partition's views are blank", |screens, _| {
            let lit = others(
                screens.get("restarted", "center")?,
                (0, 0, 1280, 700),
                &[BLACK],
            );
            if lit > 0 {
                return Err(format!(
                    "{lit} lit pixels in the IVI's view while it restarts"
                ));
            }
            Ok(())
        })
        .check_screens(
            "the cluster draws on, and nothing of the IVI's is in its strips",
            |screens, _| {
                let mut last = None;
                for label in ["linux", "restarted", "again"] {
                    let instrument = screens.get(label, "instrument")?;
                    let center = screens.get(label, "center")?;
                    let leaks = others(instrument, (0, 0, 1920, 80), &[RED, BLACK, WHITE])
                        + others(center, (0, 700, 1280, 100), &[RED, BLACK, WHITE]);
                    if leaks > 0 {
                        return Err(format!("{leaks} foreign pixel(s) in the strips ({label})"));
                    }
                    let n = instrument.frame_counter(0, 0).ok_or("no counter")?;
                    if let Some(before) = last
                        && n <= before
                    {
                        return Err(format!(
                            "the cluster's counter went from {before} to {n} ({label})"
                        ));
                    }
                    last = Some(n);
                }
                Ok(())
            },
        )
}

const AMBER: u32 = 0xffff_b000;

/// A display homed on a partition's core that never traps again (its
/// partition parked with interrupts masked): the display's refreshes come
/// from the core's EL2 timer, so the IVI's flushes (taken at refreshes)
/// are answered and it draws on. (Before, a mediator homed on a partition
/// core ran only when that partition trapped, or a safety partition's
/// flush woke it: the IVI's flushes waited for the cluster's.)
pub(super) fn display_home_partition() -> Scenario {
    Scenario::new(
        "display-home-partition",
        "config/qemu-virt/tests/display-home-partition.toml",
    )
    .timeout(120)
    .expect(r"^\[hv\] INFO  display instrument: virtio-gpu at 0xa003c00, 1920x720 at 60 Hz, composed on cpu 3$")
    .expect(r"^\[parked\] hello: parked$")
    .expect(r"^\[ivi\] gpu: frame 120$")
    .expect_none(r"gpu: .*error|PANIC|FATAL|\[hv\] (WARN|ERROR)")
    .check("the IVI draws after the display's home partition parked", |lines| {
        let after = crate::scenario::after(lines, r"^\[parked\] hello: parked$")
            .ok_or("the partition never parked")?;
        match crate::scenario::count(after, r"^\[ivi\] gpu: frame \d+$") {
            0 => Err("no IVI frame after the home partition parked".into()),
            _ => Ok(()),
        }
    })
}

/// A view's deadline: the cluster (`gpu.stall`) stops drawing for 3 s; the
/// hypervisor says it missed its 500 ms deadline (generous: under TCG
/// without -icount, virtual time is the host's, and a loaded host can
/// hold a vCPU back for a good part of 100 ms) and the fallback (amber
/// and black stripes) replaces its protected strip, while the rest of its
/// picture stays as it was and the IVI draws on; when it draws again the
/// fallback goes and its picture returns.
pub(super) fn display_deadline() -> Scenario {
    Scenario::new("display-deadline", "config/qemu-virt/tests/display-deadline.toml")
        .timeout(120)
        .expect(r"^\[cluster\] gpu: stalling after frame 60 for 3000 ms$")
        .expect(r"^\[hv\] WARN  partition cluster: display instrument: view 0: missed its 500 ms deadline: fallback shown$")
        .expect(r"^\[cluster\] gpu: resumed after frame 60$")
        .expect(r"^\[hv\] INFO  partition cluster: display instrument: view 0: drew again: fallback removed$")
        .expect(r"^\[cluster\] gpu: frame 90$")
        .expect_none(r"shows signature")
        // (It may also miss it at start-up: the fallback shows until the
        // cluster's first frame.)
        .check("the stall misses the deadline", |lines| {
            let after = crate::scenario::after(lines, r"gpu: stalling after frame 60")
                .ok_or("no stall")?;
            match crate::scenario::count(after, r"missed its 500 ms deadline") {
                0 => Err("no miss after the stall began".into()),
                _ => Ok(()),
            }
        })
        .screenshot_on(r"^\[cluster\] gpu: frame 30$", "before")
        // The first IVI report after the warning: the fallback is shown.
        .screenshot_on(r"missed its 500 ms deadline", "warned")
        .screenshot_on(r"^\[ivi\] gpu: frame \d+$", "stalled")
        .screenshot_on(r"drew again: fallback removed", "drew")
        .screenshot_on(r"^\[ivi\] gpu: frame \d+$", "resumed")
        .check_screens("the fallback covers the strip while the cluster stalls", |screens, _| {
            let stalled = screens.get("stalled", "instrument")?;
            let strip = (0, 0, 1920, 80);
            let amber = stalled.count(strip, |p| p == AMBER);
            let other = others(stalled, strip, &[AMBER, BLACK]);
            if amber < 1920 * 80 / 3 || other > 0 {
                return Err(format!(
                    "the strip has {amber} amber pixels and {other} that are neither amber nor black"
                ));
            }
            colours(
                stalled,
                &[
                    ("the cluster's stale picture", 100, 300, RED),
                    ("the IVI", 960, 240, GREEN),
                ],
            )
        })
        .check_screens("before and after, the cluster's picture is in the strip", |screens, _| {
            for label in ["before", "resumed"] {
                let image = screens.get(label, "instrument")?;
                let amber = image.count((0, 0, 1920, 80), |p| p == AMBER);
                if amber > 0 {
                    return Err(format!("{amber} amber pixels in the strip ({label})"));
                }
                colours(image, &[("the strip", 960, 40, RED)])?;
            }
            Ok(())
        })
}

/// The IVI's own drawing through stock Linux DRM/KMS (`ivi-tool draw`):
/// dumb buffers and page flips on both its scanouts, paced by the
/// hypervisor's flush answers; its frame counter advances on both displays
/// between two screenshots, at its views' corners, as does the cluster's,
/// and nothing of the IVI's reaches the cluster's protected strips.
pub(super) fn display_ivi_draw() -> Scenario {
    Scenario::new(
        "display-ivi-draw",
        "config/qemu-virt/tests/display-ivi-draw.toml",
    )
    .timeout(180)
    .expect(r"^\[ivi\] ivi-tool: draw: Virtual-1 1280x800 crtc \d+ \(page flips\)$")
    .expect(r"^\[ivi\] ivi-tool: draw: Virtual-2 800x320 crtc \d+ \(page flips\)$")
    .expect(r"ivi-tool: draw: frames=90$")
    .expect_none(r"ivi-tool: draw: .*: |\[hv\] (WARN|ERROR)")
    .screenshot_on(r"ivi-tool: draw: frames=30$", "first")
    .screenshot_on(r"ivi-tool: draw: frames=90$", "second")
    .check_screens(
        "both partitions' frame counters advance on both displays",
        |screens, _| {
            counters_advance(
                screens,
                ("first", "second"),
                &[
                    ("cluster", "instrument", 0, 0),
                    ("ivi", "center", 0, 0),
                    ("ivi", "instrument", 560, 80),
                ],
            )
        },
    )
    .check_screens(
        "nothing of the IVI's is in the cluster's strips",
        |screens, _| {
            for label in ["first", "second"] {
                let leaks = others(
                    screens.get(label, "instrument")?,
                    (0, 0, 1920, 80),
                    &[RED, BLACK, WHITE],
                ) + others(
                    screens.get(label, "center")?,
                    (0, 700, 1280, 100),
                    &[RED, BLACK, WHITE],
                );
                if leaks > 0 {
                    return Err(format!("{leaks} foreign pixel(s) in the strips ({label})"));
                }
            }
            Ok(())
        },
    )
}

/// The cockpit with its real partitions: the instrument cluster draws its
/// gauges (its frame counter advances between screenshots, its liveness
/// line reports the drive), the IVI's navigation screen shows through the
/// cluster's window on the instrument display and fills the center
/// display (its counters advance there too), and nothing of the IVI's
/// reaches the cluster's protected strips.
pub(super) fn cockpit() -> Scenario {
    Scenario::new("cockpit", "config/qemu-virt/tests/cockpit.toml")
        .timeout(180)
        .expect(r"^\[cluster\] cluster: display 1920x720 \+ strip 1280x100$")
        .expect(r"^\[cluster\] cluster: alive frame=\d+ speed=\d+ rpm=\d+ gear=\S+ odo=\d+$")
        .expect(r"^\[ivi\] ivi-tool: draw: Virtual-1 1280x800 crtc \d+ \(page flips\)$")
        .expect(r"ivi-tool: draw: frames=90$")
        .expect_none(r"cluster: .*error|ivi-tool: draw: .*: |\[hv\] ERROR|shows signature")
        .screenshot_on(r"ivi-tool: draw: frames=30$", "first")
        .screenshot_on(r"ivi-tool: draw: frames=90$", "second")
        // A finger on the cluster's strip (center display, y 700..800):
        // the cluster acknowledges it; the IVI's evdev hears nothing.
        .touches_on(
            r"ivi-tool: draw: frames=90$",
            "center",
            vec![
                vec![Mtt::at("begin", 0, 1, (300, 760), (1280, 800))],
                vec![Mtt::at("end", 0, 1, (300, 760), (1280, 800))],
            ],
        )
        .expect(r"^\[cluster\] cluster: touch: device at 0x[0-9a-f]+$")
        .expect(r"^\[cluster\] cluster: touch: acknowledged at 300,60$")
        .expect(r"^\[cluster\] cluster: touch: acknowledgement shown at frame \d+$")
        .screenshot_on(
            r"cluster: touch: acknowledgement shown at frame",
            "acknowledged",
        )
        .expect_none(r"ivi-tool: touch: slot")
        .check_screens(
            "a finger on the strip acknowledges the warning",
            |screens, _| {
                let green = |label| -> Result<usize, String> {
                    let strip = screens.get(label, "center")?;
                    Ok(strip.count((0, 700, 1280, 100), |p| p == ACK_GREEN))
                };
                let (before, after) = (green("first")?, green("acknowledged")?);
                if before > 0 || after < 1280 * 100 / 2 {
                    return Err(format!(
                        "acknowledgement-green pixels in the strip: {before} before the touch, {after} after"
                    ));
                }
                Ok(())
            },
        )
        .check_screens("both partitions' pictures advance", |screens, _| {
            counters_advance(
                screens,
                ("first", "second"),
                &[
                    ("cluster", "instrument", 0, 0),
                    ("ivi", "center", 0, 0),
                    ("ivi", "instrument", 560, 80),
                ],
            )
        })
        .check_screens(
            "the IVI's navigation shows only where the cluster lets it",
            |screens, _| {
                let second = screens.get("second", "instrument")?;
                // The IVI's map (dark blue-grey, never pure black) fills the
                // cluster's window.
                let window = second.count((600, 120, 720, 240), |p| p != BLACK);
                if window < 720 * 240 / 2 {
                    return Err(format!("only {window} lit pixels in the cluster's window"));
                }
                Ok(())
            },
        )
}
