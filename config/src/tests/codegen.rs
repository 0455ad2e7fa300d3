//! The generated source: well-formed Rust, the right values, and it
//! compiles against the crate built without `std`, as the hypervisor
//! builds it.

use std::path::Path;
use std::process::Command;

use super::fixture::{BASE, Fixture};
use crate::Loaded;
use crate::codegen::rust_source;

/// `BASE` plus devices, a device override, bootargs that need escaping,
/// an initrd, a watchdog, disks, views and protected regions in the first
/// partition with touch, two storage devices (the first with a
/// crash-records partition), two displays and a touch panel with a
/// pointer, loaded in `fx`.
fn sample(fx: &Fixture) -> Loaded {
    fx.write("build/initrd.cpio", b"070701 a cpio archive, or not");
    let text = BASE.replacen(
        "cpus = [1]",
        "cpus = [1]\ndevices = [\"/pl061@9030000\", { path = \"/virtio_mmio@a000200\", interrupts = [50, 51] }]\nbootargs = \"a=\\\"q\\\" b=\\\\ c=é\"\ninitrd = \"@/initrd.cpio\"\nwatchdog = true\ndisks = [{ storage = \"disk1\", gpt = \"odo \\\"1\\\"\" }, { storage = \"disk0\", lba = 0x800, sectors = 0x1000, read_only = true }]\nviews = [{ display = \"center\", x = 0, y = 720, width = 1280, height = 80 }, { display = \"instrument\", x = 0, y = 0, width = 1920, height = 720 }]\nprotected = [{ display = \"instrument\", x = 0, y = 0, width = 1920, height = 96 }]\ndisplay_resources = 32\ntouch = true\naudio = { priority = 250 }",
        1,
    );
    let text = format!(
        "{text}\n[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\nhome_cpu = 0\nrecords = \"hv-records\"\n\n[[storage]]\nname = \"disk1\"\ndevice = \"/virtio_mmio@a003c00\"\n\n[[display]]\nname = \"instrument\"\ndevice = \"/virtio_mmio@a003a00\"\nwidth = 1920\nheight = 720\nhome_cpu = 0\n\n[[display]]\nname = \"center\"\ndevice = \"/virtio_mmio@a003800\"\nwidth = 1280\nheight = 800\nrefresh_hz = 30\n\n[[touch]]\nname = \"panel\"\ndevice = \"/virtio_mmio@a003600\"\ndisplay = \"center\"\npointer = \"/virtio_mmio@a003400\"\nhome_cpu = 3\n\n[[audio]]\nname = \"speaker\"\ndevice = \"/virtio_mmio@a003200\"\nperiod_ms = 5\nhome_cpu = 0\n"
    );
    fx.load(&text).unwrap_or_else(|d| panic!("{d:?}"))
}

#[test]
fn generated_source_parses_as_a_rust_file() {
    let fx = Fixture::new();
    let loaded = sample(&fx);
    let source = rust_source(&loaded);
    let file = syn::parse_file(&source).unwrap_or_else(|e| panic!("{e}\n{source}"));
    assert_eq!(file.items.len(), 1, "only the static");
    let syn::Item::Static(item) = &file.items[0] else {
        panic!("a static")
    };
    assert_eq!(item.ident, "SYSTEM");
}

#[test]
fn generated_source_holds_the_values() {
    let fx = Fixture::new();
    let loaded = sample(&fx);
    let source = rust_source(&loaded);
    let hello = fx.ctx.build_dir.join("hello.img").canonicalize().unwrap();
    let initrd = fx.ctx.build_dir.join("initrd.cpio").canonicalize().unwrap();
    for expected in [
        "pub static SYSTEM: ::config::model::System = ::config::model::System {".to_owned(),
        "board: \"qemu-virt\",".to_owned(),
        "memory: ::config::model::Region { base: 0x40000000, size: 0x8000000 },".to_owned(),
        "console: \"/pl011@9000000\",".to_owned(),
        "criticality: ::config::model::Criticality::AsilB,".to_owned(),
        "priority: 200,".to_owned(),
        "cpus: &[0x2, 0x3],".to_owned(),
        "memory: &[::config::model::MemoryMap { guest: 0x40000000, host: 0x48000000, size: 0x2000000 }],".to_owned(),
        "::config::model::Device { path: \"/pl061@9030000\", regions: &[::config::model::Region { base: 0x9030000, size: 0x1000 }], interrupts: &[39] },".to_owned(),
        "::config::model::Device { path: \"/virtio_mmio@a000200\", regions: &[::config::model::Region { base: 0xa000200, size: 0x200 }], interrupts: &[50, 51] },".to_owned(),
        format!("image: ::core::include_bytes!({:?}),", hello.to_str().unwrap()),
        "bootargs: \"a=\\\"q\\\" b=\\\\ c=é\",".to_owned(),
        "on_fault: ::config::model::OnFault::Restart,".to_owned(),
        "on_fault: ::config::model::OnFault::Stop,".to_owned(),
        "devices: &[\n            ],".to_owned(),
        format!("initrd: ::core::include_bytes!({:?}),", initrd.to_str().unwrap()),
        "initrd: &[],".to_owned(),
        "watchdog: true,".to_owned(),
        "watchdog: false,".to_owned(),
        "::config::model::Storage { name: \"disk0\", device: \"/virtio_mmio@a003e00\", regions: &[::config::model::Region { base: 0xa003e00, size: 0x200 }], interrupts: &[79], home_cpu: ::core::option::Option::Some(0x0), lower_in_flight_kib: 1024, records: ::core::option::Option::Some(\"hv-records\") },".to_owned(),
        "::config::model::Storage { name: \"disk1\", device: \"/virtio_mmio@a003c00\", regions: &[::config::model::Region { base: 0xa003c00, size: 0x200 }], interrupts: &[78], home_cpu: ::core::option::Option::None, lower_in_flight_kib: 1024, records: ::core::option::Option::None },".to_owned(),
        "::config::model::Disk { storage: 1, extent: ::config::model::DiskExtent::Gpt(\"odo \\\"1\\\"\"), read_only: false },".to_owned(),
        "::config::model::Disk { storage: 0, extent: ::config::model::DiskExtent::Lba { start: 0x800, sectors: 0x1000 }, read_only: true },".to_owned(),
        "disks: &[\n            ],".to_owned(),
        "displays: &[\n        ::config::model::Display { name: \"instrument\", device: \"/virtio_mmio@a003a00\", regions: &[::config::model::Region { base: 0xa003a00, size: 0x200 }], interrupts: &[77], width: 1920, height: 720, refresh_hz: 60, home_cpu: ::core::option::Option::Some(0x0) },\n        ::config::model::Display { name: \"center\", device: \"/virtio_mmio@a003800\", regions: &[::config::model::Region { base: 0xa003800, size: 0x200 }], interrupts: &[76], width: 1280, height: 800, refresh_hz: 30, home_cpu: ::core::option::Option::None },\n    ],".to_owned(),
        "views: &[\n                ::config::model::View { display: 1, rect: ::config::model::ScreenRect { x: 0, y: 720, width: 1280, height: 80 }, deadline_ms: 0, fallback: 0xffb000 },\n                ::config::model::View { display: 0, rect: ::config::model::ScreenRect { x: 0, y: 0, width: 1920, height: 720 }, deadline_ms: 0, fallback: 0xffb000 },\n            ],".to_owned(),
        "protected: &[\n                ::config::model::Protected { display: 0, rect: ::config::model::ScreenRect { x: 0, y: 0, width: 1920, height: 96 } },\n            ],".to_owned(),
        // 2 * (1280 * 80 + 1920 * 720) * 4 bytes, rounded up to 12 MiB.
        "display_memory: 0xc00000,".to_owned(),
        "display_resources: 32,\n            touch: true,\n            audio: ::core::option::Option::Some(::config::model::PartitionAudio { output: 0, priority: 250, gain_db: 0, gain_q16: 65536, duck_db: -20, duck_q16: 6554 }),\n        },".to_owned(),
        "display_resources: 0,\n            touch: false,\n            audio: ::core::option::Option::None,\n        },".to_owned(),
        "touch: &[\n        ::config::model::Touch { name: \"panel\", device: \"/virtio_mmio@a003600\", regions: &[::config::model::Region { base: 0xa003600, size: 0x200 }], interrupts: &[75], display: 1, pointer: ::core::option::Option::Some(::config::model::TouchPointer { device: \"/virtio_mmio@a003400\", regions: &[::config::model::Region { base: 0xa003400, size: 0x200 }], interrupts: &[74] }), home_cpu: ::core::option::Option::Some(0x3) },\n    ],\n    audio: &[\n        ::config::model::Audio { name: \"speaker\", device: \"/virtio_mmio@a003200\", regions: &[::config::model::Region { base: 0xa003200, size: 0x200 }], interrupts: &[73], period_ms: 5, periods: 3, home_cpu: ::core::option::Option::Some(0x0) },\n    ],\n};".to_owned(),
        "views: &[\n            ],\n            protected: &[\n            ],\n            display_memory: 0x0,\n            display_resources: 0,".to_owned(),
    ] {
        assert!(source.contains(&expected), "missing {expected:?} in:\n{source}");
    }
}

/// Builds the config crate the way the hypervisor depends on it (no
/// default features, so `no_std` and only `model`), then the generated
/// source as a `no_std` crate against it. `rustc` comes from the
/// toolchain this workspace pins; `--emit=metadata` type-checks without
/// code generation, which is all this needs.
#[test]
fn generated_source_compiles_in_a_no_std_crate() {
    let fx = Fixture::new();
    let loaded = sample(&fx);
    let out = fx.dir.join("rustc");
    std::fs::create_dir_all(&out).unwrap();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rustc = |args: &[&str]| {
        let output = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .current_dir(crate_dir)
            .args(["--edition", "2024", "--emit=metadata", "--out-dir"])
            .arg(&out)
            .args(args)
            .output()
            .expect("rustc runs");
        assert!(
            output.status.success(),
            "rustc {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    rustc(&[
        "--crate-type",
        "rlib",
        "--crate-name",
        "config",
        "src/lib.rs",
    ]);

    let system = out.join("system.rs");
    std::fs::write(&system, format!("#![no_std]\n{}", rust_source(&loaded))).unwrap();
    let extern_config = format!("config={}", out.join("libconfig.rmeta").display());
    rustc(&[
        "--crate-type",
        "rlib",
        "--crate-name",
        "system",
        "--extern",
        &extern_config,
        system.to_str().unwrap(),
    ]);
}

/// A config with crash records, from its file to the generated source:
/// the storage device names its records partition, and the source still
/// parses.
#[test]
fn generated_source_names_the_crash_records_partition() {
    let fx = Fixture::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu-virt/examples/records.toml");
    let loaded = crate::load(&file, &fx.ctx).unwrap_or_else(|d| panic!("{d:?}"));
    let source = rust_source(&loaded);
    let expected = "::config::model::Storage { name: \"disk0\", device: \"/virtio_mmio@a003e00\", regions: &[::config::model::Region { base: 0xa003e00, size: 0x200 }], interrupts: &[79], home_cpu: ::core::option::Option::None, lower_in_flight_kib: 1024, records: ::core::option::Option::Some(\"hv-records\") },";
    assert!(
        source.contains(expected),
        "missing {expected:?} in:\n{source}"
    );
    syn::parse_file(&source).unwrap_or_else(|e| panic!("{e}\n{source}"));
}
