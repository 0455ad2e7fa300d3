//! Touch panels: `[[touch]]` tables and the partitions' `touch`, one rule at
//! a time, each breaking a valid cockpit in one place.

use super::display::{CENTER, INSTRUMENT, both, rect, views, with_screen};
use super::fixture::{BASE, Fixture};
use super::rules::{assert_has, assert_only, errors, with_devices};
use crate::model::{Input, Region};
use crate::{OwnedTouch, OwnedTouchPointer};

/// A panel on the center display, in the slot below the displays'.
const PANEL: &str =
    "[[touch]]\nname = \"panel\"\ndevice = \"/virtio_mmio@a003800\"\ndisplay = \"center\"\n";
/// `PANEL`'s pointer, in the slot below it (line 44 after `PANEL` in
/// `cockpit`, the value from column 11).
const POINTER: &str = "pointer = \"/virtio_mmio@a003600\"";
/// A panel on the instrument display, in the slot below `PANEL`'s (that
/// of `POINTER`).
const HUD: &str =
    "[[touch]]\nname = \"hud\"\ndevice = \"/virtio_mmio@a003600\"\ndisplay = \"instrument\"\n";

/// The cluster's views: all of the instrument display (view 0), the
/// bottom strip of the center display (view 1).
fn cluster_views() -> String {
    views(&[
        rect("instrument", 0, 0, 1920, 720),
        rect("center", 0, 720, 1280, 80),
    ])
}

/// The IVI's views: all of the center display (view 0), a window on the
/// instrument display (view 1).
fn ivi_views() -> String {
    views(&[
        rect("center", 0, 0, 1280, 800),
        rect("instrument", 640, 160, 640, 400),
    ])
}

/// The cockpit of the display tests with a line `cluster` after the
/// cluster's views (line 13, the views on 12), a line `ivi` after the
/// IVI's (line 24, the views on 23), both displays (from line 28; the
/// center's device on 36) and `panels` from line 40 (the first one's name
/// on 41, device 42, display 43, then its other keys).
fn cockpit(cluster: &str, ivi: &str, panels: &str) -> String {
    with_screen(
        &format!("{}\n{cluster}", cluster_views()),
        &format!("{}\n{ivi}", ivi_views()),
        &format!("{}\n{panels}", both()),
    )
}

/// `cockpit`, checked.
fn touch(cluster: &str, ivi: &str, panels: &str) -> Vec<String> {
    errors(&cockpit(cluster, ivi, panels))
}

/// `PANEL` with `key = value` lines added.
fn panel(more: &str) -> String {
    format!("{PANEL}{more}\n")
}

#[test]
fn panels_and_touch_load() {
    let fx = Fixture::new();
    let text = cockpit("touch = true", "touch = true", PANEL);
    let loaded = fx.load(&text).unwrap_or_else(|d| panic!("{d:?}"));
    let system = &loaded.system;
    assert_eq!(
        system.touch,
        [OwnedTouch {
            name: "panel".into(),
            device: "/virtio_mmio@a003800".into(),
            regions: vec![Region {
                base: 0xa00_3800,
                size: 0x200
            }],
            interrupts: vec![76],
            display: 1,
            pointer: None,
            home_cpu: None,
        }],
        "home_cpu defaults to none, and there is no pointer"
    );
    let [cluster, ivi] = &system.partitions[..] else {
        panic!("two partitions")
    };
    assert!(cluster.touch && ivi.touch);
    // The gpu in slot 0, the input device after it; each through its
    // first view on the center display.
    assert_eq!(
        cluster.inputs(&system.touch),
        [Input {
            panel: 0,
            slot: 1,
            view: 1
        }]
    );
    assert_eq!(
        ivi.inputs(&system.touch),
        [Input {
            panel: 0,
            slot: 1,
            view: 0
        }]
    );
    // `touch` defaults to false: no input device, whatever the panels.
    let loaded = fx.load(&cockpit("", "touch = false", PANEL)).unwrap();
    for p in &loaded.system.partitions {
        assert!(!p.touch);
        assert!(p.inputs(&loaded.system.touch).is_empty());
    }
    // Without panels, none at all.
    let loaded = fx.load(BASE).unwrap();
    assert!(loaded.system.touch.is_empty());
}

#[test]
fn a_partition_gets_an_input_device_per_panel_in_panel_order() {
    let fx = Fixture::new();
    // The panel on the instrument display first: the cluster's view 0.
    let text = cockpit("touch = true", "", &format!("{HUD}home_cpu = 0\n\n{PANEL}"));
    let loaded = fx.load(&text).unwrap_or_else(|d| panic!("{d:?}"));
    let system = &loaded.system;
    let names: Vec<&str> = system.touch.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["hud", "panel"]);
    assert_eq!(
        (system.touch[0].display, system.touch[0].home_cpu),
        (0, Some(0))
    );
    let inputs: Vec<(usize, usize, usize)> = system.partitions[0]
        .inputs(&system.touch)
        .iter()
        .map(|i| (i.panel, i.slot, i.view))
        .collect();
    assert_eq!(inputs, [(0, 1, 0), (1, 2, 1)]);
    // A view on one panel's display is enough: the IVI's only view is on
    // the center display.
    let text = with_screen(
        "",
        &format!(
            "{}\ntouch = true",
            views(&[rect("center", 0, 0, 1280, 800)])
        ),
        &format!("{}\n{HUD}\n{PANEL}", both()),
    );
    let loaded = fx.load(&text).unwrap_or_else(|d| panic!("{d:?}"));
    let system = &loaded.system;
    let inputs = system.partitions[1].inputs(&system.touch);
    assert_eq!(
        inputs,
        [Input {
            panel: 1,
            slot: 1,
            view: 0
        }]
    );
    // Of two views on the panel's display, the first.
    let text = with_screen(
        &format!(
            "{}\ntouch = true",
            views(&[
                rect("instrument", 0, 0, 100, 100),
                rect("center", 640, 0, 640, 800),
                rect("center", 0, 0, 640, 800)
            ])
        ),
        "",
        &format!("{}\n{PANEL}", both()),
    );
    let loaded = fx.load(&text).unwrap_or_else(|d| panic!("{d:?}"));
    let system = &loaded.system;
    assert_eq!(system.partitions[0].inputs(&system.touch)[0].view, 1);
}

#[test]
fn summary_shows_panels_and_input_devices() {
    let fx = Fixture::new();
    let text = cockpit("touch = true", "touch = true", &panel("home_cpu = 3"));
    let summary = fx.load(&text).unwrap().system.summary();
    for line in [
        "display \"center\": /virtio_mmio@a003a00 at 0xa003a00..0xa003c00 interrupts [77], 1280x800 at 60 Hz, compositor on the service core\ntouch panel \"panel\": /virtio_mmio@a003800 at 0xa003800..0xa003a00 interrupts [76], on display \"center\", driver on cpu 3\npartition \"cluster\"",
        "  gpu (virtio-mmio guest 0xb000000, INTID 96): 12 MiB of display memory, 64 resources\n  input (virtio-mmio guest 0xb000200, INTID 97): touch panel \"panel\", contacts in view 1 (1280x80)\n  view 0 on display \"instrument\"",
        "  gpu (virtio-mmio guest 0xb000000, INTID 96): 10 MiB of display memory, 64 resources\n  input (virtio-mmio guest 0xb000200, INTID 97): touch panel \"panel\", contacts in view 0 (1280x800)\n  view 0 on display \"center\"",
    ] {
        assert!(summary.contains(line), "no {line:?} in:\n{summary}");
    }
    let summary = fx.load(&cockpit("", "", PANEL)).unwrap().system.summary();
    assert!(
        summary.contains("driver on the service core\n"),
        "{summary}"
    );
    assert!(!summary.contains("  input"), "{summary}");
    // After the disks and the gpu.
    let text = with_screen(
        &format!(
            "disks = [{{ storage = \"disk0\", gpt = \"a\" }}, {{ storage = \"disk0\", gpt = \"b\" }}]\n{}\ntouch = true",
            cluster_views()
        ),
        "",
        &format!(
            "{}\n{PANEL}\n[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\n",
            both()
        ),
    );
    let summary = fx.load(&text).unwrap().system.summary();
    let line = "  disk 1 (virtio-mmio guest 0xb000200, INTID 97): storage \"disk0\" gpt \"b\"\n  gpu (virtio-mmio guest 0xb000400, INTID 98): 12 MiB of display memory, 64 resources\n  input (virtio-mmio guest 0xb000600, INTID 99): touch panel \"panel\", contacts in view 1 (1280x80)\n";
    assert!(summary.contains(line), "no {line:?} in:\n{summary}");
}

// ---- [[touch]] -----------------------------------------------------------

#[test]
fn panel_names() {
    assert_only(
        &touch("", "", &PANEL.replace("\"panel\"", "\"Panel\"")),
        "41:8",
        "bad touch panel name \"Panel\": it must be 1 to 16 characters of a-z, 0-9 and '-', starting with a letter",
    );
    let second = HUD.replace("\"hud\"", "\"panel\"");
    assert_only(
        &touch("", "", &format!("{PANEL}\n{second}")),
        "46:8",
        "duplicate touch panel name \"panel\" (first used on line 41)",
    );
    // Displays, storage devices and partitions have names of their own.
    let text = cockpit("", "", &PANEL.replace("\"panel\"", "\"center\""));
    assert!(errors(&text).is_empty(), "{:?}", errors(&text));
    let text = cockpit("", "", &PANEL.replace("\"panel\"", "\"ivi\""));
    assert!(errors(&text).is_empty(), "{:?}", errors(&text));
}

#[test]
fn panel_device_must_be_a_virtio_mmio_node() {
    let device = |path: &str| touch("", "", &PANEL.replace("/virtio_mmio@a003800", path));
    assert_only(
        &device("/virtio_mmio@a004000"),
        "42:10",
        "touch panel \"panel\": no node \"/virtio_mmio@a004000\" in board device tree qemu-virt.dtb",
    );
    assert_only(
        &device("/pl061@9030000"),
        "42:10",
        "touch panel \"panel\" device /pl061@9030000 is not a virtio-mmio transport: its compatible is \"arm,pl061\", \"arm,primecell\", not \"virtio,mmio\"",
    );
    assert_only(
        &device("/pl011@9000000"),
        "42:10",
        "touch panel \"panel\" device /pl011@9000000 is the hypervisor console",
    );
}

#[test]
fn panel_device_is_not_a_storage_device_a_display_or_another_panel() {
    assert_only(
        &touch("", "", &PANEL.replace("a003800", "a003a00")),
        "42:10",
        "touch panel \"panel\" device /virtio_mmio@a003a00 is already display \"center\"",
    );
    let storage = "[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003800\"\n";
    assert_only(
        &touch("", "", &format!("{PANEL}\n{storage}")),
        "42:10",
        "touch panel \"panel\" device /virtio_mmio@a003800 is already storage \"disk0\"",
    );
    let second = HUD.replace("a003600", "a003800");
    assert_only(
        &touch("", "", &format!("{PANEL}\n{second}")),
        "47:10",
        "touch panel \"hud\" device /virtio_mmio@a003800 is already touch panel \"panel\"",
    );
    // Sharing a page with them is fine: they are all the hypervisor's.
    let storage = storage.replace("a003800", "a003e00");
    assert!(touch("", "", &format!("{PANEL}\n{storage}")).is_empty());
}

#[test]
fn panel_device_cannot_be_passed_through() {
    let text = format!(
        "{}\n{}\n{PANEL}",
        with_devices("", "\"/virtio_mmio@a003800\""),
        both()
    );
    assert_only(
        &errors(&text),
        "22:12",
        "device /virtio_mmio@a003800 is touch panel \"panel\", which the hypervisor mediates: it cannot also be passed through",
    );
    // Nor a device sharing its 4 KiB page (with no display in that page).
    let elsewhere = format!(
        "{INSTRUMENT}\n{}\n{}",
        CENTER.replace("a003a00", "a003e00"),
        PANEL.replace("a003800", "a002e00")
    );
    let text = format!(
        "{}\n{elsewhere}",
        with_devices("\"/virtio_mmio@a002c00\"", "")
    );
    assert_only(
        &errors(&text),
        "12:12",
        "device /virtio_mmio@a002c00 (host 0xa002c00..0xa002e00) shares a 4 KiB page (0xa002000..0xa003000) with touch panel \"panel\" (/virtio_mmio@a002e00), which the hypervisor mediates",
    );
    // Nor its interrupt.
    let text = format!(
        "{}\n{}\n{PANEL}",
        with_devices("{ path = \"/pl031@9010000\", interrupts = [76] }", ""),
        both()
    );
    assert_only(
        &errors(&text),
        "12:53",
        "interrupt 76 of device /pl031@9010000 is the interrupt of touch panel \"panel\" (/virtio_mmio@a003800), which the hypervisor mediates",
    );
    // A device in another page is fine.
    let text = format!(
        "{}\n{elsewhere}",
        with_devices("\"/virtio_mmio@a001e00\"", "")
    );
    assert!(errors(&text).is_empty(), "{:?}", errors(&text));
}

#[test]
fn panel_lies_on_a_defined_display() {
    assert_only(
        &touch("", "", &PANEL.replace("\"center\"", "\"centre\"")),
        "43:11",
        "touch panel \"panel\": unknown display \"centre\" (the displays are \"instrument\", \"center\")",
    );
    let text = format!("{BASE}\n{PANEL}");
    assert_only(
        &errors(&text),
        "27:11",
        "touch panel \"panel\": unknown display \"center\" (there is no [[display]] table)",
    );
}

#[test]
fn at_most_one_panel_per_display() {
    let second = HUD.replace("\"instrument\"", "\"center\"");
    assert_only(
        &touch("", "", &format!("{PANEL}\n{second}")),
        "48:11",
        "touch panel \"hud\" lies on display \"center\", as does touch panel \"panel\" (line 43): a display has at most one touch panel",
    );
    // A partition with touch is not also told about it.
    assert_only(
        &touch("touch = true", "", &format!("{PANEL}\n{second}")),
        "48:11",
        "a display has at most one touch panel",
    );
}

#[test]
fn panel_home_cpu_must_exist() {
    assert_only(
        &touch("", "", &panel("home_cpu = 4")),
        "44:12",
        "home_cpu 4 of touch panel \"panel\" does not exist on the board (its cpus are 0, 1, 2, 3)",
    );
    assert_only(
        &touch("", "", &panel("home_cpu = -1")),
        "44:12",
        "home_cpu of touch panel \"panel\" must not be negative (got -1)",
    );
}

/// The panel's driver never runs on a safety partition's core.
#[test]
fn panel_home_cpu_not_on_a_safety_partition() {
    let home = |cpu: u32| cockpit("", "", &panel(&format!("home_cpu = {cpu}")));
    assert_only(
        &errors(&home(1)),
        "44:12",
        "home_cpu 1 of touch panel \"panel\" is a core of partition \"cluster\" (asil-b): a touch panel's driver must never run on a safety partition's core; use a core of a qm partition, a free core, or leave home_cpu out (the service core)",
    );
    // A qm partition's core or a free core: fine.
    for cpu in [0, 2, 3] {
        assert!(errors(&home(cpu)).is_empty(), "home_cpu {cpu}");
    }
    // Whatever the safety level.
    let text = home(3).replace("criticality = \"qm\"", "criticality = \"asil-d\"");
    assert_only(
        &errors(&text),
        "44:12",
        "home_cpu 3 of touch panel \"panel\" is a core of partition \"ivi\" (asil-d)",
    );
}

// ---- pointer ---------------------------------------------------------------

#[test]
fn a_panel_with_a_pointer_loads() {
    let fx = Fixture::new();
    let text = cockpit("touch = true", "touch = true", &panel(POINTER));
    let loaded = fx.load(&text).unwrap_or_else(|d| panic!("{d:?}"));
    let system = &loaded.system;
    assert_eq!(
        system.touch[0].pointer,
        Some(OwnedTouchPointer {
            device: "/virtio_mmio@a003600".into(),
            regions: vec![Region {
                base: 0xa00_3600,
                size: 0x200
            }],
            interrupts: vec![75],
        })
    );
    // It gives no partition a device of its own: its contacts go through
    // the panel's.
    let slots: Vec<usize> = system
        .partitions
        .iter()
        .flat_map(|p| p.inputs(&system.touch))
        .map(|i| i.slot)
        .collect();
    assert_eq!(slots, [1, 1]);
    let summary = system.summary();
    let line = "touch panel \"panel\": /virtio_mmio@a003800 at 0xa003800..0xa003a00 interrupts [76], pointer /virtio_mmio@a003600 at 0xa003600..0xa003800 interrupts [75], on display \"center\", driver on the service core\n";
    assert!(summary.contains(line), "no {line:?} in:\n{summary}");
}

#[test]
fn pointer_must_be_a_virtio_mmio_node() {
    let pointer = |path: &str| touch("", "", &panel(&format!("pointer = \"{path}\"")));
    assert_only(
        &pointer("/virtio_mmio@a004000"),
        "44:11",
        "touch panel \"panel\" pointer: no node \"/virtio_mmio@a004000\" in board device tree qemu-virt.dtb",
    );
    assert_only(
        &pointer("/pl061@9030000"),
        "44:11",
        "touch panel \"panel\" pointer device /pl061@9030000 is not a virtio-mmio transport: its compatible is \"arm,pl061\", \"arm,primecell\", not \"virtio,mmio\"",
    );
    assert_only(
        &pointer("/pl011@9000000"),
        "44:11",
        "touch panel \"panel\" pointer device /pl011@9000000 is the hypervisor console",
    );
    // A partition with touch is not also told about the panel.
    assert_only(
        &touch(
            "touch = true",
            "touch = true",
            &panel("pointer = \"/pl011@9000000\""),
        ),
        "44:11",
        "is the hypervisor console",
    );
}

#[test]
fn pointer_is_nothing_else_the_hypervisor_has() {
    let pointer = |path: &str| panel(&format!("pointer = \"{path}\""));
    assert_only(
        &touch("", "", &pointer("/virtio_mmio@a003800")),
        "44:11",
        "touch panel \"panel\" pointer device /virtio_mmio@a003800 is already touch panel \"panel\"",
    );
    assert_only(
        &touch("", "", &pointer("/virtio_mmio@a003a00")),
        "44:11",
        "touch panel \"panel\" pointer device /virtio_mmio@a003a00 is already display \"center\"",
    );
    let storage = "[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003600\"\n";
    assert_only(
        &touch("", "", &format!("{}\n{storage}", panel(POINTER))),
        "44:11",
        "touch panel \"panel\" pointer device /virtio_mmio@a003600 is already storage \"disk0\"",
    );
    // Another panel's device or pointer, either way round.
    let hud = HUD.replace("a003600", "a003400");
    assert_only(
        &touch("", "", &format!("{}\n{hud}{POINTER}\n", panel(POINTER))),
        "50:11",
        "touch panel \"hud\" pointer device /virtio_mmio@a003600 is already the pointer of touch panel \"panel\"",
    );
    assert_only(
        &touch("", "", &format!("{}\n{HUD}", panel(POINTER))),
        "48:10",
        "touch panel \"hud\" device /virtio_mmio@a003600 is already the pointer of touch panel \"panel\"",
    );
    assert_only(
        &touch(
            "",
            "",
            &format!(
                "{}\n{hud}pointer = \"/virtio_mmio@a003800\"\n",
                panel(POINTER)
            ),
        ),
        "50:11",
        "touch panel \"hud\" pointer device /virtio_mmio@a003800 is already touch panel \"panel\"",
    );
    // Two panels, each with a pointer of its own: fine.
    let text = cockpit(
        "",
        "",
        &format!(
            "{}\n{hud}pointer = \"/virtio_mmio@a003200\"\n",
            panel(POINTER)
        ),
    );
    assert!(errors(&text).is_empty(), "{:?}", errors(&text));
}

#[test]
fn pointer_cannot_be_passed_through() {
    let text = format!(
        "{}\n{}\n{}",
        with_devices("", "\"/virtio_mmio@a003600\""),
        both(),
        panel(POINTER)
    );
    assert_only(
        &errors(&text),
        "22:12",
        "device /virtio_mmio@a003600 is the pointer of touch panel \"panel\", which the hypervisor mediates: it cannot also be passed through",
    );
    // Nor a device sharing its 4 KiB page (with nothing else of the
    // hypervisor's in that page).
    let elsewhere = format!(
        "{INSTRUMENT}\n{}\n{PANEL}pointer = \"/virtio_mmio@a002e00\"\n",
        CENTER.replace("a003a00", "a003e00"),
    );
    let text = format!(
        "{}\n{elsewhere}",
        with_devices("\"/virtio_mmio@a002c00\"", "")
    );
    assert_only(
        &errors(&text),
        "12:12",
        "device /virtio_mmio@a002c00 (host 0xa002c00..0xa002e00) shares a 4 KiB page (0xa002000..0xa003000) with the pointer of touch panel \"panel\" (/virtio_mmio@a002e00), which the hypervisor mediates",
    );
    // Nor its interrupt.
    let text = format!(
        "{}\n{}\n{}",
        with_devices("{ path = \"/pl031@9010000\", interrupts = [75] }", ""),
        both(),
        panel(POINTER)
    );
    assert_only(
        &errors(&text),
        "12:53",
        "interrupt 75 of device /pl031@9010000 is the interrupt of the pointer of touch panel \"panel\" (/virtio_mmio@a003600), which the hypervisor mediates",
    );
}

// ---- touch -----------------------------------------------------------------

#[test]
fn touch_needs_a_view_on_a_panels_display() {
    // No panel at all.
    assert_only(
        &touch("touch = true", "", ""),
        "13:9",
        "partition \"cluster\" has touch = true but there is no [[touch]] panel: touch gives a partition an input device for each touch panel on whose display it has a view",
    );
    // No view on the display of the one there is.
    let only_instrument = views(&[rect("instrument", 0, 0, 1920, 720)]);
    let text = with_screen(
        &format!("{only_instrument}\ntouch = true"),
        "",
        &format!("{}\n{PANEL}", both()),
    );
    assert_only(
        &errors(&text),
        "13:9",
        "partition \"cluster\" has touch = true but no view on a display with a touch panel (display \"center\" has one): it would get no input device",
    );
    // Nor on any of several.
    let text = with_screen(
        &format!("{only_instrument}\ntouch = true"),
        "",
        &format!(
            "{}\n{PANEL}\n{}\n[[display]]\nname = \"hud\"\ndevice = \"/virtio_mmio@a003400\"\nwidth = 640\nheight = 480\n",
            both(),
            HUD.replace("\"instrument\"", "\"hud\"")
        ),
    );
    assert_only(
        &errors(&text),
        "13:9",
        "(displays \"center\", \"hud\" have one): it would get no input device",
    );
    // No views at all.
    let text = with_screen("touch = true", "", &format!("{}\n{PANEL}", both()));
    assert_only(
        &errors(&text),
        "12:9",
        "partition \"cluster\" has touch = true but no view on a display with a touch panel",
    );
    // touch = false needs nothing.
    assert!(errors(&with_screen("touch = false", "", "")).is_empty());
}

/// A view or a panel that failed its own checks is not also reported as
/// the reason a partition's `touch` finds nothing.
#[test]
fn touch_is_not_judged_on_broken_views_or_panels() {
    let text = with_screen(
        &format!(
            "{}\ntouch = true",
            views(&[rect("center", 0, 0, 1281, 800)])
        ),
        "",
        &format!("{}\n{PANEL}", both()),
    );
    assert_only(&errors(&text), "12:54", "runs past the right edge");
    let unknown = PANEL.replace("\"center\"", "\"centre\"");
    assert_only(
        &touch("touch = true", "", &unknown),
        "43:11",
        "unknown display \"centre\"",
    );
}

/// Disks, the gpu and the input devices share the 16 virtio-mmio slots.
#[test]
fn input_devices_take_the_slots_after_the_gpu() {
    let disks = |n: usize| {
        format!(
            "disks = [{}]",
            vec!["{ storage = \"disk0\", gpt = \"x\", read_only = true }"; n].join(", ")
        )
    };
    let storage = format!(
        "{}\n{PANEL}\n{HUD}\n[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\n",
        both()
    );
    let text = |n: usize| {
        with_screen(
            &format!("{}\n{}\ntouch = true", disks(n), cluster_views()),
            "",
            &storage,
        )
    };
    // 13 disks, the gpu and two input devices: all 16 slots.
    let loaded = Fixture::new()
        .load(&text(13))
        .unwrap_or_else(|d| panic!("{d:?}"));
    let system = &loaded.system;
    let slots: Vec<usize> = system.partitions[0]
        .inputs(&system.touch)
        .iter()
        .map(|i| i.slot)
        .collect();
    assert_eq!(slots, [14, 15]);
    assert_only(
        &errors(&text(14)),
        "14:9",
        "partition \"cluster\" has 14 disks, a virtio-gpu device and 2 touch input devices (one per touch panel on whose display it has a view): they need 17 virtio-mmio slots, and it has 16",
    );
    assert_has(&errors(&text(15)), "14:9", "they need 18 virtio-mmio slots");
    // Disks that leave no slot for the gpu are reported as such, once.
    let errs = errors(&text(16));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("its virtio-gpu device takes"), "{errs:?}");
}
