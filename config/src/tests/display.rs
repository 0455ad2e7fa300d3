//! Shared displays: `[[display]]` tables and the partitions' `views`,
//! `protected`, `display_memory_mib` and `display_resources`, one rule at a
//! time, each breaking the valid `BASE` config in one place.

use super::fixture::{BASE, Fixture, with};
use super::rules::{assert_has, assert_only, errors, with_devices};
use crate::OwnedDisplay;
use crate::model::{DEFAULT_FALLBACK, Protected, Region, ScreenRect, View};

/// The instrument cluster's display, from line 26 of `with_screen`'s text
/// (name on 27, device 28, width 29, height 30).
pub(super) const INSTRUMENT: &str = "[[display]]\nname = \"instrument\"\ndevice = \"/virtio_mmio@a003c00\"\nwidth = 1920\nheight = 720\n";
/// The center display, in the slot below `INSTRUMENT`'s; after it in
/// `both()`, from line 32 (name on 33, device 34, width 35, height 36).
pub(super) const CENTER: &str = "[[display]]\nname = \"center\"\ndevice = \"/virtio_mmio@a003a00\"\nwidth = 1280\nheight = 800\n";

pub(super) fn both() -> String {
    format!("{INSTRUMENT}\n{CENTER}")
}

/// `BASE` with `cluster` after the first partition's `cpus` (line 12) and
/// `ivi` after the second's (line 22, if `cluster` is one line), and
/// `displays` from line 26 (if both are one line).
pub(super) fn with_screen(cluster: &str, ivi: &str, displays: &str) -> String {
    let text = with("cpus = [1]", &format!("cpus = [1]\n{cluster}"));
    let text = text.replacen("cpus = [2, 3]", &format!("cpus = [2, 3]\n{ivi}"), 1);
    format!("{text}\n{displays}")
}

/// `with_screen` with both displays, checked.
fn screen(cluster: &str, ivi: &str) -> Vec<String> {
    errors(&with_screen(cluster, ivi, &both()))
}

/// A `views` or `protected` entry.
pub(super) fn rect(display: &str, x: i64, y: i64, width: i64, height: i64) -> String {
    format!("{{ display = \"{display}\", x = {x}, y = {y}, width = {width}, height = {height} }}")
}

/// `views = [...]` of `entries`: the first entry is at column 10.
pub(super) fn views(entries: &[String]) -> String {
    format!("views = [{}]", entries.join(", "))
}

/// `protected = [...]` of `entries`: the first entry is at column 14.
fn protected(entries: &[String]) -> String {
    format!("protected = [{}]", entries.join(", "))
}

/// The cockpit of docs/config.md: the cluster owns the instrument display
/// and protects its top strip, and has a view on the center display with
/// a protected strip along its bottom edge; the IVI owns the center
/// display and has a view in the middle of the instrument display, below
/// the cluster's.
fn cockpit() -> String {
    let cluster = format!(
        "{}\n{}",
        views(&[
            rect("instrument", 0, 0, 1920, 720),
            rect("center", 0, 720, 1280, 80)
        ]),
        protected(&[
            rect("instrument", 0, 0, 1920, 96),
            rect("center", 0, 720, 1280, 80)
        ])
    );
    let ivi = views(&[
        rect("center", 0, 0, 1280, 800),
        rect("instrument", 640, 160, 640, 400),
    ]);
    with_screen(&cluster, &ivi, &both())
}

#[test]
fn displays_views_and_protected_load() {
    let fx = Fixture::new();
    let loaded = fx.load(&cockpit()).unwrap_or_else(|d| panic!("{d:?}"));
    let system = &loaded.system;
    assert_eq!(
        system.displays,
        [
            OwnedDisplay {
                name: "instrument".into(),
                device: "/virtio_mmio@a003c00".into(),
                regions: vec![Region {
                    base: 0xa00_3c00,
                    size: 0x200
                }],
                interrupts: vec![78],
                width: 1920,
                height: 720,
                refresh_hz: 60,
                home_cpu: None,
            },
            OwnedDisplay {
                name: "center".into(),
                device: "/virtio_mmio@a003a00".into(),
                regions: vec![Region {
                    base: 0xa00_3a00,
                    size: 0x200
                }],
                interrupts: vec![77],
                width: 1280,
                height: 800,
                refresh_hz: 60,
                home_cpu: None,
            }
        ],
        "refresh_hz defaults to 60, home_cpu to none"
    );
    let [cluster, ivi] = &system.partitions[..] else {
        panic!("two partitions")
    };
    let at = |x, y, width, height| ScreenRect {
        x,
        y,
        width,
        height,
    };
    assert_eq!(
        cluster.views,
        [
            View {
                display: 0,
                rect: at(0, 0, 1920, 720),
                deadline_ms: 0,
                fallback: DEFAULT_FALLBACK,
            },
            View {
                display: 1,
                rect: at(0, 720, 1280, 80),
                deadline_ms: 0,
                fallback: DEFAULT_FALLBACK,
            }
        ]
    );
    assert_eq!(
        cluster.protected,
        [
            Protected {
                display: 0,
                rect: at(0, 0, 1920, 96)
            },
            Protected {
                display: 1,
                rect: at(0, 720, 1280, 80)
            }
        ]
    );
    assert_eq!(
        ivi.views,
        [
            View {
                display: 1,
                rect: at(0, 0, 1280, 800),
                deadline_ms: 0,
                fallback: DEFAULT_FALLBACK,
            },
            View {
                display: 0,
                rect: at(640, 160, 640, 400),
                deadline_ms: 0,
                fallback: DEFAULT_FALLBACK,
            }
        ]
    );
    assert!(ivi.protected.is_empty());
    // Twice the views' pixels at 4 bytes each, rounded up to MiB:
    // 2 * (1920 * 720 + 1280 * 80) * 4 = 11878400 bytes, 11.3 MiB.
    assert_eq!(cluster.display_memory, 12 << 20);
    // 2 * (1280 * 800 + 640 * 400) * 4 = 10240000 bytes, 9.8 MiB.
    assert_eq!(ivi.display_memory, 10 << 20);
    assert_eq!(cluster.display_resources, 64, "the default");
    assert_eq!(cluster.gpu_slot(), Some(0), "no disks: slot 0");
    // Without views: no display memory, no resources, no gpu.
    let loaded = fx.load(BASE).unwrap();
    assert!(loaded.system.displays.is_empty());
    for p in &loaded.system.partitions {
        assert!(p.views.is_empty() && p.protected.is_empty());
        assert_eq!((p.display_memory, p.display_resources), (0, 0));
        assert_eq!(p.gpu_slot(), None);
    }
}

#[test]
fn display_keys_are_loaded() {
    let display = format!("{INSTRUMENT}refresh_hz = 30\nhome_cpu = 2\n");
    let text = with_screen(
        &format!(
            "{}\ndisplay_memory_mib = 32\ndisplay_resources = 8",
            views(&[rect("instrument", 0, 0, 1920, 720)])
        ),
        "",
        &display,
    );
    let loaded = Fixture::new()
        .load(&text)
        .unwrap_or_else(|d| panic!("{d:?}"));
    let d = &loaded.system.displays[0];
    assert_eq!((d.refresh_hz, d.home_cpu), (30, Some(2)));
    let cluster = &loaded.system.partitions[0];
    assert_eq!(cluster.display_memory, 32 << 20);
    assert_eq!(cluster.display_resources, 8);
}

#[test]
fn summary_shows_displays_and_views() {
    let fx = Fixture::new();
    let summary = fx.load(&cockpit()).unwrap().system.summary();
    for line in [
        "display \"instrument\": /virtio_mmio@a003c00 at 0xa003c00..0xa003e00 interrupts [78], 1920x720 at 60 Hz, compositor on the service core\n",
        "display \"center\": /virtio_mmio@a003a00 at 0xa003a00..0xa003c00 interrupts [77], 1280x800 at 60 Hz, compositor on the service core\n",
        "  gpu (virtio-mmio guest 0xb000000, INTID 96): 12 MiB of display memory, 64 resources\n  view 0 on display \"instrument\": 1920x720 at (0, 0)\n  view 1 on display \"center\": 1280x80 at (0, 720)\n  protected on display \"instrument\": 1920x96 at (0, 0)\n  protected on display \"center\": 1280x80 at (0, 720)\n",
        "  gpu (virtio-mmio guest 0xb000000, INTID 96): 10 MiB of display memory, 64 resources\n  view 0 on display \"center\": 1280x800 at (0, 0)\n  view 1 on display \"instrument\": 640x400 at (640, 160)\n  image",
    ] {
        assert!(summary.contains(line), "no {line:?} in:\n{summary}");
    }
    // After the disks, in the next slot.
    let text = with_screen(
        &format!(
            "disks = [{{ storage = \"disk0\", gpt = \"a\" }}]\n{}",
            views(&[rect("instrument", 0, 0, 1920, 720)])
        ),
        "",
        &format!(
            "{INSTRUMENT}home_cpu = 3\n\n[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\n"
        ),
    );
    let summary = fx.load(&text).unwrap().system.summary();
    for line in [
        "1920x720 at 60 Hz, compositor on cpu 3\n",
        "  disk 0 (virtio-mmio guest 0xb000000, INTID 96): storage \"disk0\" gpt \"a\"\n  gpu (virtio-mmio guest 0xb000200, INTID 97): 11 MiB of display memory, 64 resources\n",
    ] {
        assert!(summary.contains(line), "no {line:?} in:\n{summary}");
    }
}

// ---- [[display]] ---------------------------------------------------------

#[test]
fn display_names() {
    let errs = errors(&with_screen(
        "",
        "",
        &INSTRUMENT.replace("instrument", "Cluster"),
    ));
    assert_only(
        &errs,
        "27:8",
        "bad display name \"Cluster\": it must be 1 to 16 characters of a-z, 0-9 and '-', starting with a letter",
    );
    let errs = errors(&with_screen(
        "",
        "",
        &format!("{INSTRUMENT}\n{}", CENTER.replace("center", "instrument")),
    ));
    assert_only(
        &errs,
        "33:8",
        "duplicate display name \"instrument\" (first used on line 27)",
    );
    // Partitions, storage devices and displays have names of their own.
    let text = with_screen(
        "",
        "",
        &format!(
            "{}\n[[storage]]\nname = \"ivi\"\ndevice = \"/virtio_mmio@a003e00\"\n",
            INSTRUMENT.replace("instrument", "ivi")
        ),
    );
    assert!(errors(&text).is_empty(), "{:?}", errors(&text));
}

#[test]
fn display_device_must_be_a_virtio_mmio_node() {
    let device = |path: &str| {
        errors(&with_screen(
            "",
            "",
            &INSTRUMENT.replace("/virtio_mmio@a003c00", path),
        ))
    };
    assert_only(
        &device("/virtio_mmio@a004000"),
        "28:10",
        "display \"instrument\": no node \"/virtio_mmio@a004000\" in board device tree qemu-virt.dtb",
    );
    assert_only(
        &device("/pl061@9030000"),
        "28:10",
        "display \"instrument\" device /pl061@9030000 is not a virtio-mmio transport: its compatible is \"arm,pl061\", \"arm,primecell\", not \"virtio,mmio\"",
    );
    assert_only(
        &device("/pl011@9000000"),
        "28:10",
        "display \"instrument\" device /pl011@9000000 is the hypervisor console",
    );
}

#[test]
fn display_device_is_not_a_storage_device_or_another_display() {
    let storage = "[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003c00\"\n";
    assert_only(
        &errors(&with_screen("", "", &format!("{INSTRUMENT}\n{storage}"))),
        "28:10",
        "display \"instrument\" device /virtio_mmio@a003c00 is already storage \"disk0\"",
    );
    assert_only(
        &errors(&with_screen(
            "",
            "",
            &format!(
                "{INSTRUMENT}\n{}",
                CENTER.replace("/virtio_mmio@a003a00", "/virtio_mmio@a003c00")
            ),
        )),
        "34:10",
        "display \"center\" device /virtio_mmio@a003c00 is already display \"instrument\"",
    );
    // A storage device in the same 4 KiB page is fine: both are the
    // hypervisor's.
    let storage = storage.replace("a003c00", "a003e00");
    assert!(errors(&with_screen("", "", &format!("{INSTRUMENT}\n{storage}"))).is_empty());
}

#[test]
fn display_size_and_refresh_rate() {
    let display = |from: &str, to: &str| {
        errors(&with_screen(
            "",
            "",
            &format!("{INSTRUMENT}refresh_hz = 60\n").replace(from, to),
        ))
    };
    assert_only(
        &display("width = 1920", "width = 0"),
        "29:9",
        "width 0 of display \"instrument\" is out of range 1..=4096",
    );
    assert_only(
        &display("width = 1920", "width = 4097"),
        "29:9",
        "width 4097 of display \"instrument\" is out of range 1..=4096",
    );
    assert_only(
        &display("height = 720", "height = -720"),
        "30:10",
        "height -720 of display \"instrument\" is out of range 1..=4096",
    );
    assert_only(
        &display("refresh_hz = 60", "refresh_hz = 0"),
        "31:14",
        "refresh_hz 0 of display \"instrument\" is out of range 1..=240",
    );
    assert_only(
        &display("refresh_hz = 60", "refresh_hz = 241"),
        "31:14",
        "refresh_hz 241 of display \"instrument\" is out of range 1..=240",
    );
    for (from, to) in [
        ("width = 1920", "width = 4096"),
        ("height = 720", "height = 1"),
        ("refresh_hz = 60", "refresh_hz = 240"),
        ("refresh_hz = 60", "refresh_hz = 1"),
    ] {
        assert!(display(from, to).is_empty(), "{to}");
    }
}

#[test]
fn display_home_cpu_must_exist() {
    let home = |cpu: i64| {
        errors(&with_screen(
            "",
            "",
            &format!("{INSTRUMENT}home_cpu = {cpu}\n"),
        ))
    };
    assert_only(
        &home(7),
        "31:12",
        "home_cpu 7 of display \"instrument\" does not exist on the board (its cpus are 0, 1, 2, 3)",
    );
    assert_only(
        &home(-1),
        "31:12",
        "home_cpu of display \"instrument\" must not be negative (got -1)",
    );
}

/// The compositor never runs on a safety partition's core.
#[test]
fn display_home_cpu_not_on_a_safety_partition() {
    let home = |cpu: u32| with_screen("", "", &format!("{INSTRUMENT}home_cpu = {cpu}\n"));
    assert_only(
        &errors(&home(1)),
        "31:12",
        "home_cpu 1 of display \"instrument\" is a core of partition \"cluster\" (asil-b): the compositor must never run on a safety partition's core; use a core of a qm partition, a free core, or leave home_cpu out (the service core)",
    );
    // A qm partition's core or a free core: fine.
    for cpu in [0, 2, 3] {
        assert!(errors(&home(cpu)).is_empty(), "home_cpu {cpu}");
    }
    // Whatever the safety level.
    let text = home(2).replace("criticality = \"qm\"", "criticality = \"asil-a\"");
    assert_only(
        &errors(&text),
        "31:12",
        "home_cpu 2 of display \"instrument\" is a core of partition \"ivi\" (asil-a)",
    );
    // A partition whose criticality is broken is not judged.
    let text = home(1).replace("criticality = \"asil-b\"", "criticality = \"asil-x\"");
    assert_only(&errors(&text), "9:15", "unknown criticality \"asil-x\"");
}

#[test]
fn display_device_cannot_be_passed_through() {
    let text = format!(
        "{}\n{INSTRUMENT}",
        with_devices("", "\"/virtio_mmio@a003c00\"")
    );
    assert_only(
        &errors(&text),
        "22:12",
        "device /virtio_mmio@a003c00 is display \"instrument\", which the hypervisor mediates: it cannot also be passed through",
    );
    // Nor a device sharing its 4 KiB page.
    let text = format!(
        "{}\n{INSTRUMENT}",
        with_devices("\"/virtio_mmio@a003e00\"", "")
    );
    assert_only(
        &errors(&text),
        "12:12",
        "device /virtio_mmio@a003e00 (host 0xa003e00..0xa004000) shares a 4 KiB page (0xa003000..0xa004000) with display \"instrument\" (/virtio_mmio@a003c00), which the hypervisor mediates",
    );
    // Nor its interrupt.
    let text = format!(
        "{}\n{INSTRUMENT}",
        with_devices("{ path = \"/pl031@9010000\", interrupts = [78] }", "")
    );
    assert_only(
        &errors(&text),
        "12:53",
        "interrupt 78 of device /pl031@9010000 is the interrupt of display \"instrument\" (/virtio_mmio@a003c00), which the hypervisor mediates",
    );
    // A device in another page is fine.
    let text = format!(
        "{}\n{INSTRUMENT}",
        with_devices("\"/virtio_mmio@a002e00\"", "")
    );
    assert!(errors(&text).is_empty());
}

// ---- views -----------------------------------------------------------------

#[test]
fn view_names_a_defined_display() {
    let errs = screen(&views(&[rect("hud", 0, 0, 10, 10)]), "");
    assert_only(
        &errs,
        "12:22",
        "view 0 of partition \"cluster\": unknown display \"hud\" (the displays are \"instrument\", \"center\")",
    );
    let errs = errors(&with_screen(
        "",
        &views(&[rect("center", 0, 0, 10, 10)]),
        "",
    ));
    assert_only(
        &errs,
        "22:22",
        "view 0 of partition \"ivi\": unknown display \"center\" (there is no [[display]] table)",
    );
}

#[test]
fn view_position_and_size() {
    let view = |x, y, width, height| screen(&views(&[rect("center", x, y, width, height)]), "");
    assert_only(
        &view(-1, 0, 10, 10),
        "12:36",
        "x of view 0 of partition \"cluster\" must not be negative (got -1)",
    );
    assert_only(
        &view(0, -2, 10, 10),
        "12:43",
        "y of view 0 of partition \"cluster\" must not be negative (got -2)",
    );
    assert_only(
        &view(0, 0, 0, 10),
        "12:54",
        "width of view 0 of partition \"cluster\" must be at least 1 (got 0)",
    );
    assert_only(
        &view(0, 0, 10, -3),
        "12:67",
        "height of view 0 of partition \"cluster\" must be at least 1 (got -3)",
    );
    // Every problem of a view is reported.
    let errs = screen(&views(&[rect("hud", -1, -1, 0, 0)]), "");
    assert_eq!(errs.len(), 5, "{errs:?}");
    assert!(view(0, 0, 1, 1).is_empty());
}

#[test]
fn view_must_fit_its_display() {
    let view = |x, y, width, height| screen(&views(&[rect("center", x, y, width, height)]), "");
    assert!(view(0, 0, 1280, 800).is_empty());
    assert!(view(1279, 799, 1, 1).is_empty());
    // At the size, if the view starts on the display.
    assert_only(
        &view(100, 0, 1280, 800),
        "12:56",
        "view 0 of partition \"cluster\" runs past the right edge of display \"center\": it ends at x = 1380, and the display is 1280x800",
    );
    assert_only(
        &view(0, 100, 1280, 800),
        "12:71",
        "view 0 of partition \"cluster\" runs past the bottom edge of display \"center\": it ends at y = 900, and the display is 1280x800",
    );
    // At the position, if it starts off the display.
    assert_only(
        &view(1280, 0, 1, 800),
        "12:36",
        "view 0 of partition \"cluster\" runs past the right edge of display \"center\": it ends at x = 1281, and the display is 1280x800",
    );
    let errs = view(0, 4000, 1281, 1);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_has(&errs, "12:57", "ends at x = 1281");
    assert_has(&errs, "12:43", "ends at y = 4001");
    // Huge values do not overflow.
    let huge = i64::MAX;
    let errs = view(huge, huge, huge, huge);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_has(&errs, "12:36", "ends at x = 18446744073709551614");
}

#[test]
fn at_most_16_views() {
    let entry = rect("instrument", 0, 0, 1, 1);
    // Sixteen views side by side.
    let many = |n: i64| {
        views(
            &(0..n)
                .map(|i| rect("instrument", i, 0, 1, 1))
                .collect::<Vec<_>>(),
        )
    };
    assert!(screen(&many(16), "").is_empty());
    let errs = screen(&many(17), "");
    // Entries 10 to 16 are one character longer: x has two digits.
    let col = 10 + 16 * (entry.len() + 2) + 6;
    assert_only(
        &errs,
        &format!("12:{col}"),
        "partition \"cluster\" has more than 16 views: each is one of the 16 scanouts of its virtio-gpu device",
    );
}

#[test]
fn views_of_one_partition_do_not_overlap_on_one_display() {
    let errs = screen(
        &views(&[
            rect("center", 0, 0, 640, 400),
            rect("center", 639, 399, 10, 10),
        ]),
        "",
    );
    let second = 10 + rect("center", 0, 0, 640, 400).len() + 2;
    assert_only(
        &errs,
        &format!("12:{second}"),
        "view 1 of partition \"cluster\" (10x10 at (639, 399)) overlaps its view 0 (640x400 at (0, 0)) on display \"center\": a partition's views on one display must not overlap",
    );
    // Side by side, or on different displays: fine.
    assert!(
        screen(
            &views(&[
                rect("center", 0, 0, 640, 400),
                rect("center", 640, 0, 640, 400),
                rect("center", 0, 400, 640, 400)
            ]),
            ""
        )
        .is_empty()
    );
    assert!(
        screen(
            &views(&[
                rect("center", 0, 0, 640, 400),
                rect("instrument", 0, 0, 640, 400)
            ]),
            ""
        )
        .is_empty()
    );
}

/// The z-order is the partitions' priority: two partitions of the same
/// priority may not overlap, as which is on top would be ambiguous.
#[test]
fn views_of_two_partitions_overlap_only_at_different_priorities() {
    let cluster = views(&[rect("center", 0, 0, 640, 400)]);
    let ivi = views(&[rect("center", 600, 300, 680, 500)]);
    // Different priorities: the cluster's view is above the IVI's.
    assert!(screen(&cluster, &ivi).is_empty());
    let text = with_screen(&cluster, &ivi, &both()).replace("priority = 10", "priority = 200");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_has(&errs, "20:12", "priorities must be unique");
    assert_has(
        &errs,
        "22:10",
        "view 0 of partition \"ivi\" (680x500 at (600, 300)) overlaps view 0 of partition \"cluster\" (640x400 at (0, 0)) on display \"center\", and both partitions have priority 200: which is on top would be ambiguous (views are stacked by their partition's priority)",
    );
    // Side by side at the same priority: no view is on top of another.
    let ivi = views(&[rect("center", 640, 0, 640, 400)]);
    let text = with_screen(&cluster, &ivi, &both()).replace("priority = 10", "priority = 200");
    assert_only(&errors(&text), "20:12", "priorities must be unique");
}

// ---- protected ---------------------------------------------------------------

#[test]
fn only_a_safety_partition_protects() {
    let ivi = format!(
        "{}\n{}",
        views(&[rect("center", 0, 0, 1280, 800)]),
        protected(&[rect("center", 0, 0, 1280, 40)])
    );
    assert_only(
        &screen("", &ivi),
        "23:13",
        "partition \"ivi\" is qm: only a safety partition (criticality asil-*) may protect screen regions",
    );
    // Nothing to protect is fine.
    let ivi = format!(
        "{}\n{}",
        views(&[rect("center", 0, 0, 1280, 800)]),
        protected(&[])
    );
    assert!(screen("", &ivi).is_empty());
}

#[test]
fn protected_region_lies_inside_one_of_its_views() {
    let cluster =
        |v: &[String], p: &[String]| screen(&format!("{}\n{}", views(v), protected(p)), "");
    let top = rect("instrument", 0, 0, 960, 720);
    let bottom = rect("instrument", 960, 0, 960, 720);
    assert!(
        cluster(
            std::slice::from_ref(&top),
            &[rect("instrument", 0, 0, 960, 96)]
        )
        .is_empty()
    );
    assert!(
        cluster(
            std::slice::from_ref(&top),
            &[rect("instrument", 0, 0, 960, 720)]
        )
        .is_empty()
    );
    // Across two views is not inside one.
    assert_only(
        &cluster(
            &[top.clone(), bottom.clone()],
            &[rect("instrument", 0, 0, 1920, 96)],
        ),
        "13:14",
        "protected region 0 of partition \"cluster\" (1920x96 at (0, 0)) on display \"instrument\" is not inside one of the partition's views (its views there are view 0 960x720 at (0, 0), view 1 960x720 at (960, 0)): a partition may protect only pixels it shows",
    );
    // Nor on a display it has no view on.
    assert_only(
        &cluster(std::slice::from_ref(&top), &[rect("center", 0, 0, 10, 10)]),
        "13:14",
        "protected region 0 of partition \"cluster\" (10x10 at (0, 0)) on display \"center\" is not inside one of the partition's views (it has no view on display \"center\")",
    );
    // Nor off the display, however far.
    let huge = i64::MAX;
    assert_only(
        &cluster(
            std::slice::from_ref(&top),
            &[rect("instrument", huge, 0, 1, 1)],
        ),
        "13:14",
        "(1x1 at (9223372036854775807, 0)) on display \"instrument\" is not inside",
    );
    // Its own checks first.
    assert_only(
        &cluster(std::slice::from_ref(&top), &[rect("hud", 0, 0, 10, 10)]),
        "13:26",
        "protected region 0 of partition \"cluster\": unknown display \"hud\" (the displays are \"instrument\", \"center\")",
    );
    assert_only(
        &cluster(
            std::slice::from_ref(&top),
            &[rect("instrument", 0, 0, 10, 0)],
        ),
        "13:75",
        "height of protected region 0 of partition \"cluster\" must be at least 1 (got 0)",
    );
    // A view that failed does not make its regions fail too.
    assert_only(
        &cluster(
            &[rect("instrument", 0, 0, 1921, 720)],
            &[rect("instrument", 0, 0, 1920, 96)],
        ),
        "12:58",
        "runs past the right edge",
    );
}

#[test]
fn protected_regions_of_two_partitions_do_not_overlap() {
    let cluster = format!(
        "{}\n{}",
        views(&[rect("center", 0, 0, 1280, 100)]),
        protected(&[rect("center", 0, 0, 640, 50)])
    );
    let ivi = |region: String| {
        format!(
            "{}\n{}",
            views(&[rect("center", 0, 0, 1280, 800)]),
            protected(&[region])
        )
    };
    let text =
        |region| with_screen(&cluster, &ivi(region), &both()).replace("\"qm\"", "\"asil-a\"");
    assert_only(
        &errors(&text(rect("center", 600, 0, 100, 100))),
        "24:14",
        "protected region 0 of partition \"ivi\" (100x100 at (600, 0)) overlaps protected region 0 of partition \"cluster\" (640x50 at (0, 0)) on display \"center\": two partitions cannot protect the same pixels",
    );
    assert!(errors(&text(rect("center", 640, 0, 100, 100))).is_empty());
    // Within a partition, regions may overlap.
    let cluster = format!(
        "{}\n{}",
        views(&[rect("center", 0, 0, 1280, 100)]),
        protected(&[rect("center", 0, 0, 640, 50), rect("center", 0, 0, 50, 100)])
    );
    assert!(screen(&cluster, "").is_empty());
}

// ---- display memory, resources and the virtio-mmio slot --------------------

#[test]
fn display_memory_and_resources() {
    let view = views(&[rect("instrument", 0, 0, 1920, 720)]);
    let load = |extra: &str| {
        Fixture::new()
            .load(&with_screen(&format!("{view}\n{extra}"), "", &both()))
            .map(|l| {
                let p = &l.system.partitions[0];
                (p.display_memory >> 20, p.display_resources)
            })
            .map_err(|d| d[0].to_string())
    };
    // 2 * 1920 * 720 * 4 bytes = 10.5 MiB.
    assert_eq!(load(""), Ok((11, 64)));
    assert_eq!(load("display_memory_mib = 1"), Ok((1, 64)));
    assert_eq!(load("display_memory_mib = 100"), Ok((100, 64)));
    // 512 is in range, but more than the hypervisor's 128 MiB hold.
    assert!(load("display_memory_mib = 512").is_err_and(|e| e.contains("the displays need")));
    assert_eq!(load("display_resources = 1"), Ok((11, 1)));
    assert_eq!(load("display_resources = 128"), Ok((11, 128)));
    let cluster = |extra: &str| screen(&format!("{view}\n{extra}"), "");
    assert_only(
        &cluster("display_memory_mib = 0"),
        "13:22",
        "display_memory_mib 0 of partition \"cluster\" is out of range 1..=512",
    );
    assert_only(
        &cluster("display_memory_mib = 513"),
        "13:22",
        "display_memory_mib 513 of partition \"cluster\" is out of range 1..=512",
    );
    assert_only(
        &cluster("display_resources = 0"),
        "13:21",
        "display_resources 0 of partition \"cluster\" is out of range 1..=128",
    );
    assert_only(
        &cluster("display_resources = 129"),
        "13:21",
        "display_resources 129 of partition \"cluster\" is out of range 1..=128",
    );
}

#[test]
fn display_memory_and_resources_need_views() {
    assert_only(
        &screen("display_memory_mib = 32", ""),
        "12:22",
        "partition \"cluster\" has display_memory_mib but no views: without views it has no virtio-gpu device for display_memory_mib to apply to",
    );
    assert_only(
        &screen("", "views = []\ndisplay_resources = 8"),
        "23:21",
        "partition \"ivi\" has display_resources but no views",
    );
}

/// Five 4096x4096 views need 640 MiB by default: more than a partition may
/// have, unless it says how much it takes.
#[test]
fn default_display_memory_is_at_most_512_mib() {
    let slots = ["a003c00", "a003a00", "a003800", "a003600", "a003400"];
    let displays: Vec<String> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            format!(
                "[[display]]\nname = \"d{i}\"\ndevice = \"/virtio_mmio@{slot}\"\nwidth = 4096\nheight = 4096\n"
            )
        })
        .collect();
    let view = |n: usize| {
        views(
            &(0..n)
                .map(|i| rect(&format!("d{i}"), 0, 0, 4096, 4096))
                .collect::<Vec<_>>(),
        )
    };
    let text = |n: usize, extra: &str| {
        with_screen(&format!("{}{extra}", view(n)), "", &displays.join("\n"))
    };
    // (Five 4096x4096 framebuffers alone are more than the hypervisor's
    // 128 MiB: that error is not what this test is about.)
    let others = |text: &str| -> Vec<String> {
        errors(text)
            .into_iter()
            .filter(|e| !e.contains("the displays need"))
            .collect()
    };
    assert!(others(&text(4, "")).is_empty(), "4 x 128 MiB = 512 MiB");
    assert_only(
        &others(&text(5, "")),
        "12:9",
        "the views of partition \"cluster\" would get 640 MiB of display memory by default (twice their 320 MiB at 4 bytes per pixel), more than the 512 MiB a partition may have: give display_memory_mib (1..=512)",
    );
    assert!(others(&text(5, "\ndisplay_memory_mib = 512")).is_empty());
}

/// The framebuffers and the partitions' display memory come out of the
/// hypervisor's reservation, after the images it holds.
#[test]
fn display_memory_fits_the_hypervisor() {
    let view = views(&[rect("instrument", 0, 0, 1920, 720)]);
    let cluster = |extra: &str| screen(&format!("{view}\n{extra}"), "");
    // 128 MiB - 8 MiB for the hypervisor - the (small) test images: 104
    // MiB of display memory and the two framebuffers (9.4 MiB) fit.
    assert!(cluster("display_memory_mib = 104").is_empty());
    assert_only(
        &cluster("display_memory_mib = 112"),
        "4:10",
        "the displays need 122 MiB of the hypervisor's memory (10 MiB of framebuffers, 112 MiB of partitions' display_memory_mib), but its 128 MiB leave about 119 MiB after the partitions' images and initrds (1 MiB) and the hypervisor itself (8 MiB): make [hypervisor] memory larger or display_memory_mib smaller",
    );
}

/// The virtio-gpu device takes the slot after the disks.
#[test]
fn gpu_takes_the_slot_after_the_disks() {
    let disks = |n: usize| {
        format!(
            "disks = [{}]",
            vec!["{ storage = \"disk0\", gpt = \"x\", read_only = true }"; n].join(", ")
        )
    };
    let storage = format!(
        "{}\n[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\n",
        both()
    );
    let view = views(&[rect("center", 0, 0, 1280, 800)]);
    let text = |n: usize| with_screen(&format!("{}\n{view}", disks(n)), "", &storage);
    let loaded = Fixture::new()
        .load(&text(15))
        .unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(loaded.system.partitions[0].gpu_slot(), Some(15));
    assert_only(
        &errors(&text(16)),
        "13:9",
        "partition \"cluster\" has 16 disks and views: its virtio-gpu device takes the virtio-mmio slot after its disks, and they take all 16 (give it at most 15 disks)",
    );
    // Too many disks are reported as such, once.
    let errs = errors(&text(17));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("has more than 16 disks"), "{errs:?}");
}

#[test]
fn view_deadlines_and_fallbacks() {
    let load = |view: &str| {
        Fixture::new()
            .load(&with_screen(&format!("views = [{view}]"), "", &both()))
            .map(|l| {
                let v = l.system.partitions[0].views[0];
                (v.deadline_ms, v.fallback)
            })
            .map_err(|d| d[0].to_string())
    };
    let view = "{ display = \"instrument\", x = 0, y = 0, width = 1920, height = 720";
    assert_eq!(load(&format!("{view} }}")), Ok((0, DEFAULT_FALLBACK)));
    assert_eq!(
        load(&format!("{view}, deadline_ms = 100 }}")),
        Ok((100, DEFAULT_FALLBACK))
    );
    assert_eq!(
        load(&format!(
            "{view}, deadline_ms = 10000, fallback = 0xff0000 }}"
        )),
        Ok((10000, 0xff0000))
    );
    let cluster = |extra: &str| screen(&format!("views = [{view}, {extra} }}]"), "");
    assert_only(
        &cluster("deadline_ms = 0"),
        "12:92",
        "deadline_ms 0 of view 0 of partition \"cluster\" is out of range 1..=10000",
    );
    assert_only(
        &cluster("fallback = 0xff0000"),
        "12:89",
        "view 0 of partition \"cluster\" has a fallback but no deadline_ms",
    );
    assert_only(
        &cluster("deadline_ms = 50, fallback = 0x1000000"),
        "12:107",
        "fallback of view 0 of partition \"cluster\" must be a colour 0xRRGGBB (0 to 0xffffff), got 0x1000000",
    );
    let region = format!(
        "views = [{view} }}]\nprotected = [{{ display = \"instrument\", x = 0, y = 0, width = 1920, height = 80, deadline_ms = 5 }}]"
    );
    assert_only(
        &screen(&region, ""),
        "13:95",
        "protected region 0 of partition \"cluster\" has deadline_ms: only a view has a deadline and a fallback",
    );
}
