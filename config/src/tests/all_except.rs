//! `devices = { all_except = [...] }`, resolved against the real qemu-virt
//! device tree: what the partition gets, what is left out and why, the
//! errors, and that the result is compiled exactly as a listed `devices`.

use std::path::Path;

use super::fixture::{BASE, Fixture};
use super::rules::{assert_has, assert_only, errors};
use crate::codegen::rust_source;
use crate::model::Region;
use crate::{Loaded, OwnedPartition};

/// `BASE` with `devices = <cluster>` in the first partition (line 12) and
/// `devices = <ivi>` in the second (line 22), each left out if empty, and
/// `tail` appended.
fn config(cluster: &str, ivi: &str, tail: &str) -> String {
    let line = |value: &str| {
        if value.is_empty() {
            String::new()
        } else {
            format!("\ndevices = {value}")
        }
    };
    let text = BASE
        .replacen("cpus = [1]", &format!("cpus = [1]{}", line(cluster)), 1)
        .replacen("cpus = [2, 3]", &format!("cpus = [2, 3]{}", line(ivi)), 1);
    format!("{text}{tail}")
}

const STORAGE: &str = "\n[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\n";

fn load(text: &str) -> Loaded {
    Fixture::new().load(text).unwrap_or_else(|diagnostics| {
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        panic!("invalid:\n{}", lines.join("\n"))
    })
}

fn paths(p: &OwnedPartition) -> Vec<&str> {
    p.devices.iter().map(|d| d.path.as_str()).collect()
}

fn left_out(p: &OwnedPartition) -> Vec<&str> {
    let all = p.all_except.as_ref().expect("all_except");
    all.left_out.iter().map(|l| l.path.as_str()).collect()
}

/// The reasons `path` was left out of `p`.
fn why<'a>(p: &'a OwnedPartition, path: &str) -> &'a [String] {
    let all = p.all_except.as_ref().expect("all_except");
    &all.left_out
        .iter()
        .find(|l| l.path == path)
        .unwrap_or_else(|| panic!("{path} not left out: {:?}", all.left_out))
        .reasons
}

/// `/virtio_mmio@<base>` for the transports from `first` to `last`.
fn transports(first: u64, last: u64) -> Vec<String> {
    (first..=last)
        .step_by(0x200)
        .map(|base| format!("/virtio_mmio@{base:x}"))
        .collect()
}

#[test]
fn it_takes_what_the_hypervisor_and_the_others_leave() {
    let loaded = load(&config(
        "[\"/pl061@9030000\"]",
        "{ all_except = [\"/flash@0\"] }",
        STORAGE,
    ));
    let [cluster, ivi] = &loaded.system.partitions[..] else {
        panic!("two partitions")
    };
    assert_eq!(paths(cluster), ["/pl061@9030000"]);
    assert!(cluster.all_except.is_none());
    // In device-tree order: not the console, the GIC's ITS, the disk (the
    // hypervisor's), the cluster's GPIO, the excepted flash, nor memory,
    // the CPUs or the PCIe host bridge (no devices of their own); and not
    // the seven transports on the disk's page.
    let mut expected = vec!["/fw-cfg@9020000".to_owned()];
    expected.extend(transports(0xa00_0000, 0xa00_2e00));
    expected.push("/pl031@9010000".to_owned());
    assert_eq!(paths(ivi), expected);
    let rtc = ivi.devices.last().unwrap();
    assert_eq!(
        rtc.regions,
        [Region {
            base: 0x901_0000,
            size: 0x1000
        }]
    );
    assert_eq!(rtc.interrupts, [34], "from the device tree");

    let all = ivi.all_except.as_ref().unwrap();
    assert_eq!(all.except, ["/flash@0"]);
    assert_eq!(left_out(ivi), transports(0xa00_3000, 0xa00_3c00));
    for path in transports(0xa00_3000, 0xa00_3c00) {
        let base = u64::from_str_radix(&path["/virtio_mmio@".len()..], 16).unwrap();
        assert_eq!(
            why(ivi, &path),
            [format!(
                "device {path} (host {base:#x}..{:#x}) shares a 4 KiB page (0xa003000..0xa004000) with storage \"disk0\" (/virtio_mmio@a003e00), which the hypervisor mediates",
                base + 0x200
            )]
        );
    }
}

#[test]
fn an_empty_list_excepts_nothing() {
    let loaded = load(&config("", "{ all_except = [] }", ""));
    let ivi = &loaded.system.partitions[1];
    let mut expected = vec!["/fw-cfg@9020000".to_owned()];
    expected.extend(transports(0xa00_0000, 0xa00_3e00));
    expected.extend(["/pl061@9030000", "/pl031@9010000", "/flash@0"].map(str::to_owned));
    assert_eq!(paths(ivi), expected);
    assert!(left_out(ivi).is_empty());
    assert!(ivi.all_except.as_ref().unwrap().except.is_empty());
}

/// A node of the list excepts what lies below it too: `/` is everything.
#[test]
fn a_node_excepts_what_lies_below_it() {
    let loaded = load(&config("", "{ all_except = [\"/\"] }", ""));
    let ivi = &loaded.system.partitions[1];
    assert!(ivi.devices.is_empty(), "{:?}", paths(ivi));
    assert!(left_out(ivi).is_empty());
}

/// The hypervisor cannot tell: the generated model of an `all_except`
/// partition is that of one listing the same devices.
#[test]
fn resolved_devices_are_compiled_as_listed_ones() {
    let fx = Fixture::new();
    let resolved = fx
        .load(&config(
            "[\"/pl061@9030000\"]",
            "{ all_except = [\"/flash@0\", \"serial0\"] }",
            STORAGE,
        ))
        .unwrap();
    let list: Vec<String> = paths(&resolved.system.partitions[1])
        .iter()
        .map(|p| format!("{p:?}"))
        .collect();
    let listed = fx
        .load(&config(
            "[\"/pl061@9030000\"]",
            &format!("[{}]", list.join(", ")),
            STORAGE,
        ))
        .unwrap();
    assert_eq!(
        resolved.system.partitions[1].devices,
        listed.system.partitions[1].devices
    );
    assert_eq!(rust_source(&resolved), rust_source(&listed));
}

#[test]
fn candidates_that_would_break_a_rule_are_left_out_with_why() {
    // The cluster has a transport and fw-cfg with the RTC's interrupt; the
    // IVI excepts a transport and has memory where the flash is.
    let text = config(
        "[\"/virtio_mmio@a000000\", { path = \"/fw-cfg@9020000\", interrupts = [34] }]",
        "{ all_except = [\"/virtio_mmio@a001000\"] }",
        "",
    )
    .replacen(
        "host = 0x5000_0000, size = 0x0400_0000 }",
        "host = 0x5000_0000, size = 0x0400_0000 }, { guest = 0, host = 0x5800_0000, size = 0x10_0000 }",
        1,
    );
    let loaded = load(&text);
    let ivi = &loaded.system.partitions[1];
    let mut expected = transports(0xa00_0200, 0xa00_0e00);
    expected.extend(transports(0xa00_1200, 0xa00_1e00));
    expected.extend(["/pl031@9010000", "/flash@0"].map(str::to_owned));
    let mut got = left_out(ivi);
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
    assert_eq!(
        why(ivi, "/virtio_mmio@a000200"),
        [
            "device /virtio_mmio@a000200 shares a 4 KiB page (0xa000000..0xa001000) with device /virtio_mmio@a000000 of partition \"cluster\""
        ]
    );
    assert_eq!(
        why(ivi, "/pl031@9010000"),
        [
            "interrupt 34 of device /pl031@9010000 is also raised by device /fw-cfg@9020000 of partition \"cluster\""
        ]
    );
    assert_eq!(
        why(ivi, "/virtio_mmio@a001e00"),
        [
            "device /virtio_mmio@a001e00 shares a 4 KiB page (0xa001000..0xa002000) with /virtio_mmio@a001000, which all_except leaves out"
        ]
    );
    assert_eq!(
        why(ivi, "/flash@0"),
        [
            "device /flash@0 (guest 0x0..0x4000000, mapped guest == host) overlaps memory of partition \"ivi\" (guest 0x0..0x100000)"
        ]
    );
    // What is left is what no rule keeps from it.
    let mut given = transports(0xa00_2000, 0xa00_3e00);
    given.push("/pl061@9030000".to_owned());
    assert_eq!(paths(ivi), given);
}

#[test]
fn a_device_on_the_console_page_is_left_out() {
    // The console UART moved from 0x9000000 to 0x9020000, fw-cfg's page.
    let fx = Fixture::new();
    let ctx = fx.patched_board(
        &[0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0],
        &[0x09, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0],
    );
    let text = config("", "{ all_except = [] }", "");
    let loaded =
        crate::load_str(&fx.dir.join("test.toml"), &text, &ctx).unwrap_or_else(|d| panic!("{d:?}"));
    let ivi = &loaded.system.partitions[1];
    assert_eq!(
        why(ivi, "/fw-cfg@9020000"),
        [
            "device /fw-cfg@9020000 shares a 4 KiB page (0x9020000..0x9021000) with the hypervisor console (/pl011@9000000)"
        ]
    );
}

#[test]
fn except_paths_must_exist_once() {
    let errs = errors(&config("", "{ all_except = [\"/pl031@901000\"] }", ""));
    assert_only(
        &errs,
        "21:27",
        "all_except of partition \"ivi\": no node \"/pl031@901000\" in board device tree qemu-virt.dtb (did you mean \"/pl031@9010000\"?)",
    );
    let errs = errors(&config("", "{ all_except = [\"/flash@0\", \"rtc0\"] }", ""));
    assert_only(
        &errs,
        "21:39",
        "all_except of partition \"ivi\": no node or alias \"rtc0\"",
    );
    // The console by its path and by its alias.
    let errs = errors(&config(
        "",
        "{ all_except = [\"/pl011@9000000\", \"serial0\"] }",
        "",
    ));
    assert_only(
        &errs,
        "21:45",
        "device /pl011@9000000 is listed twice in all_except of partition \"ivi\"",
    );
}

#[test]
fn only_one_partition_may_take_the_rest() {
    let errs = errors(&config(
        "{ all_except = [] }",
        "{ all_except = [\"/flash@0\"] }",
        "",
    ));
    assert_only(
        &errs,
        "22:11",
        "partition \"ivi\" has devices = { all_except = [...] }, as has partition \"cluster\" (line 12): only one partition may take the devices no one else has",
    );
    // The second one's list is not even looked at.
    let errs = errors(&config(
        "{ all_except = [] }",
        "{ all_except = [\"/nowhere@0\"] }",
        "",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
}

#[test]
fn the_summary_says_where_the_devices_came_from() {
    let loaded = load(&config(
        "[\"/pl061@9030000\"]",
        "{ all_except = [\"/flash@0\"] }",
        STORAGE,
    ));
    let summary = loaded.system.summary();
    let ivi = &summary[summary.find("partition \"ivi\"").unwrap()..];
    for line in [
        "  devices: all except [/flash@0]: 26 given, 7 left out\n",
        "  device /fw-cfg@9020000 at 0x9020000..0x9020018 interrupts []\n",
        "  device /pl031@9010000 at 0x9010000..0x9011000 interrupts [34]\n",
        "  left out /virtio_mmio@a003000: device /virtio_mmio@a003000 (host 0xa003000..0xa003200) shares a 4 KiB page (0xa003000..0xa004000) with storage \"disk0\" (/virtio_mmio@a003e00), which the hypervisor mediates\n",
    ] {
        assert!(ivi.contains(line), "no {line:?} in\n{ivi}");
    }
    // The list first, then the devices, then what was left out.
    let at = |s: &str| ivi.find(s).unwrap();
    assert!(at("  devices: all except") < at("  device /fw-cfg"));
    assert!(at("  device /pl031") < at("  left out "));
    let cluster = &summary[..summary.find("partition \"ivi\"").unwrap()];
    assert!(!cluster.contains("all except"), "{cluster}");
}

#[test]
fn without_a_board_nothing_is_resolved_and_nothing_panics() {
    let text = config("", "{ all_except = [\"/flash@0\"] }", "").replacen(
        "board = \"qemu-virt\"",
        "board = \"no-such-board\"",
        1,
    );
    let errs = errors(&text);
    assert_has(&errs, "1:9", "board \"no-such-board\"");
}

/// The example in config/qemu-virt/examples/ resolves as its comments say.
#[test]
fn the_example_config_resolves() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu-virt/examples/all-except.toml");
    let fx = Fixture::new();
    let loaded = crate::load(&file, &fx.ctx).unwrap_or_else(|diagnostics| {
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        panic!("{} is invalid:\n{}", file.display(), lines.join("\n"))
    });
    let [cluster, ivi] = &loaded.system.partitions[..] else {
        panic!("two partitions")
    };
    assert_eq!(paths(cluster), ["/pl061@9030000"]);
    let all = ivi.all_except.as_ref().expect("the IVI has all_except");
    assert_eq!(all.except, ["/flash@0", "/fw-cfg@9020000"]);
    let mut expected = transports(0xa00_0000, 0xa00_2e00);
    expected.push("/pl031@9010000".to_owned());
    assert_eq!(paths(ivi), expected);
    assert_eq!(left_out(ivi), transports(0xa00_3000, 0xa00_3c00));
}
