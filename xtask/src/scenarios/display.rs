//! Shared displays: partitions' views composed on the physical displays,
//! judged by pixels of QMP screendumps.

use crate::qmp::Image;
use crate::scenario::Scenario;

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
        .expect(r"^\[hv\] INFO  display instrument: virtio-gpu at 0xa003c00, 1920x720 at 60 Hz")
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
            let counter = |label: &str, display: &str, x: u32, y: u32| {
                screens
                    .get(label, display)?
                    .frame_counter(x, y)
                    .ok_or_else(|| format!("no counter at ({x}, {y}) of {display}"))
            };
            for (who, display, x, y) in [
                ("cluster", "instrument", 0, 0),
                ("cluster", "center", 0, 700),
                ("ivi", "instrument", 560, 80),
                ("ivi", "center", 0, 0),
            ] {
                let first = counter("first", display, x, y)?;
                let second = counter("second", display, x, y)?;
                if second <= first {
                    return Err(format!(
                        "{who}'s counter on {display} went from {first} to {second}"
                    ));
                }
            }
            Ok(())
        })
}
