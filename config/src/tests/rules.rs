//! One test (or a few) per validation rule, each breaking the valid
//! `BASE` config in one place and checking the message and its position.

use super::fixture::{BASE, Fixture, arm64_image, with, with_nth};
use crate::model::{Criticality, MemoryMap, OnFault, Region};

/// Asserts that `errors` has one at `position` (`"line:col"`) whose
/// message contains `text`.
#[track_caller]
pub(super) fn assert_has(errors: &[String], position: &str, text: &str) {
    let prefix = format!("{position}: ");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&prefix) && e.contains(text)),
        "no error at {position} containing {text:?} in:\n{}",
        errors.join("\n")
    );
}

/// Asserts that `errors` is exactly one error, at `position`, containing
/// `text`.
#[track_caller]
pub(super) fn assert_only(errors: &[String], position: &str, text: &str) {
    assert_eq!(
        errors.len(),
        1,
        "expected one error, got:\n{}",
        errors.join("\n")
    );
    assert_has(errors, position, text);
}

pub(super) fn errors(text: &str) -> Vec<String> {
    Fixture::new().errors(text)
}

#[test]
fn base_config_is_valid() {
    let fx = Fixture::new();
    let loaded = fx.load(BASE).unwrap_or_else(|d| panic!("{d:?}"));
    let system = &loaded.system;
    assert_eq!(system.board, "qemu-virt");
    assert_eq!(
        system.hypervisor.memory,
        Region {
            base: 0x4000_0000,
            size: 0x0800_0000
        }
    );
    assert_eq!(system.hypervisor.console, "/pl011@9000000");
    let [cluster, ivi] = &system.partitions[..] else {
        panic!("two partitions")
    };
    assert_eq!(cluster.name, "cluster");
    assert_eq!(cluster.criticality, Criticality::AsilB);
    assert_eq!(cluster.priority, 200);
    assert_eq!(cluster.cpus, [1]);
    assert_eq!(cluster.on_fault, OnFault::Restart);
    assert_eq!(
        cluster.memory,
        [MemoryMap {
            guest: 0x4000_0000,
            host: 0x4800_0000,
            size: 0x0200_0000
        }]
    );
    assert_eq!(
        cluster.image,
        fx.ctx.build_dir.join("hello.img").canonicalize().unwrap()
    );
    assert_eq!(cluster.image_len, 64);
    assert_eq!(cluster.bootargs, "");
    assert!(cluster.devices.is_empty());
    assert_eq!(cluster.initrd, None, "no initrd unless given");
    assert!(!cluster.watchdog, "watchdog defaults to off");
    assert!(cluster.disks.is_empty(), "no disks unless given");
    assert!(system.storage.is_empty(), "no storage unless given");
    assert_eq!(ivi.cpus, [2, 3]);
    assert_eq!(ivi.on_fault, OnFault::Stop, "on_fault defaults to stop");
    let hello = fx.ctx.build_dir.join("hello.img").canonicalize().unwrap();
    let board = fx.ctx.boards_dir.join("qemu-virt");
    assert_eq!(
        loaded.dependencies,
        [
            fx.dir.join("test.toml"),
            board.join("qemu-virt.dtb"),
            board.join("board.toml"),
            hello.clone(),
            hello
        ],
        "config, board files, and each partition's image"
    );
}

// ---- TOML shape ----------------------------------------------------------

#[test]
fn syntax_error() {
    assert_only(
        &errors(&with("priority = 200", "priority = = 200")),
        "10:12",
        "",
    );
}

#[test]
fn unknown_key() {
    let errs = errors(&with("priority = 200", "priority = 200\ncolour = \"red\""));
    assert_only(&errs, "11:1", "unknown key `colour`");
}

#[test]
fn unknown_top_level_key_and_hypervisor_key() {
    assert_only(
        &errors(&format!("{BASE}\n[extra]\n")),
        "24:2",
        "unknown key `extra`",
    );
    assert_only(
        &errors(&with("console =", "uart =")),
        "5:1",
        "unknown key `uart`",
    );
}

#[test]
fn missing_key() {
    assert_only(
        &errors(&with("cpus = [1]\n", "")),
        "7:1",
        "missing required key `cpus`",
    );
    assert_only(
        &errors(&with("board = \"qemu-virt\"\n", "")),
        "1:1",
        "missing required key `board`",
    );
}

#[test]
fn wrong_type() {
    assert_only(
        &errors(&with("cpus = [1]", "cpus = 1")),
        "11:8",
        "expected a sequence",
    );
    assert_only(
        &errors(&with("priority = 200", "priority = \"200\"")),
        "10:12",
        "expected an integer",
    );
    assert_only(
        &errors(&with("name = \"cluster\"", "name = true")),
        "8:8",
        "expected a string",
    );
}

#[test]
fn bad_device_entry_type() {
    let errs = errors(&with("cpus = [1]", "cpus = [1]\ndevices = [ 42 ]"));
    assert_only(
        &errs,
        "12:13",
        "expected a device-tree path or alias, or a table",
    );
}

// ---- partition fields ----------------------------------------------------

#[test]
fn no_partitions() {
    let text = &BASE[..BASE.find("[[partition]]").unwrap()];
    assert_only(&errors(text), "1:1", "no partitions");
    assert_only(
        &errors(&format!("partition = []\n{text}")),
        "1:13",
        "no partitions",
    );
}

#[test]
fn bad_names() {
    for bad in ["Cluster", "1st", "-x", "", "seventeen-chars-x", "a_b", "ä"] {
        let errs = errors(&with("name = \"cluster\"", &format!("name = {bad:?}")));
        assert_only(&errs, "8:8", &format!("bad partition name {bad:?}"));
    }
    assert!(errors(&with("name = \"cluster\"", "name = \"sixteen-chars-xy\"")).is_empty());
    assert!(errors(&with("name = \"cluster\"", "name = \"a\"")).is_empty());
}

#[test]
fn duplicate_name() {
    let errs = errors(&with("name = \"ivi\"", "name = \"cluster\""));
    assert_only(
        &errs,
        "17:8",
        "duplicate partition name \"cluster\" (first used on line 8)",
    );
}

#[test]
fn priority_out_of_range() {
    assert_only(
        &errors(&with("priority = 200", "priority = 256")),
        "10:12",
        "priority 256 of partition \"cluster\" is out of range 0..=255",
    );
    assert_only(
        &errors(&with("priority = 200", "priority = -1")),
        "10:12",
        "out of range 0..=255",
    );
    assert!(errors(&with("priority = 200", "priority = 255")).is_empty());
    assert!(errors(&with("priority = 200", "priority = 0")).is_empty());
}

#[test]
fn duplicate_priority() {
    let errs = errors(&with("priority = 10", "priority = 200"));
    assert_only(
        &errs,
        "19:12",
        "partition \"ivi\" has priority 200, as has partition \"cluster\": priorities must be unique",
    );
}

#[test]
fn unknown_criticality_and_on_fault() {
    let errs = errors(&with("\"asil-b\"", "\"asil-e\""));
    assert_only(
        &errs,
        "9:15",
        "unknown criticality \"asil-e\": expected one of qm, asil-a, asil-b, asil-c, asil-d",
    );
    let errs = errors(&with("\"restart\"", "\"reboot\""));
    assert_only(
        &errs,
        "13:12",
        "unknown on_fault \"reboot\": expected one of stop, restart, inject",
    );
    for (word, expected) in [
        ("stop", OnFault::Stop),
        ("restart", OnFault::Restart),
        ("inject", OnFault::Inject),
    ] {
        let loaded = Fixture::new()
            .load(&with("\"restart\"", &format!("{word:?}")))
            .unwrap();
        assert_eq!(loaded.system.partitions[0].on_fault, expected);
    }
}

#[test]
fn bootargs() {
    let loaded = Fixture::new()
        .load(&with(
            "cpus = [1]",
            "cpus = [1]\nbootargs = \"console=ttyAMA0 quiet\"",
        ))
        .unwrap();
    assert_eq!(
        loaded.system.partitions[0].bootargs,
        "console=ttyAMA0 quiet"
    );
    let errs = errors(&with("cpus = [1]", "cpus = [1]\nbootargs = \"a\\u0000b\""));
    assert_only(&errs, "12:12", "bootargs must not contain a NUL");
}

// ---- cpus ----------------------------------------------------------------

#[test]
fn cpu_absent_from_board() {
    let errs = errors(&with("cpus = [2, 3]", "cpus = [2, 4]"));
    assert_only(
        &errs,
        "20:12",
        "cpu 4 of partition \"ivi\" does not exist on the board (its cpus are 0, 1, 2, 3)",
    );
}

#[test]
fn cpu_in_two_partitions() {
    let errs = errors(&with("cpus = [2, 3]", "cpus = [2, 1]"));
    assert_only(
        &errs,
        "20:12",
        "cpu 1 is in both partition \"cluster\" and partition \"ivi\"",
    );
}

#[test]
fn cpu_twice_in_one_partition() {
    let errs = errors(&with("cpus = [2, 3]", "cpus = [3, 3]"));
    assert_only(&errs, "20:12", "cpu 3 is listed twice in partition \"ivi\"");
}

#[test]
fn no_cpus_and_negative_cpu() {
    assert_only(
        &errors(&with("cpus = [1]", "cpus = []")),
        "11:8",
        "partition \"cluster\" has no cpus",
    );
    assert_only(
        &errors(&with("cpus = [1]", "cpus = [-1]")),
        "11:9",
        "cpu of partition \"cluster\" must not be negative (got -1)",
    );
}

#[test]
fn first_cpu_is_kept_first() {
    let loaded = Fixture::new()
        .load(&with("cpus = [2, 3]", "cpus = [3, 2]"))
        .unwrap();
    assert_eq!(loaded.system.partitions[1].cpus, [3, 2]);
}

// ---- memory --------------------------------------------------------------

#[test]
fn misaligned_memory() {
    let errs = errors(&with("host = 0x4800_0000", "host = 0x4800_0800"));
    assert_only(
        &errs,
        "14:42",
        "memory host address 0x48000800 of partition \"cluster\" is misaligned",
    );
    let errs = errors(&with("size = 0x0200_0000", "size = 0x0200_0010"));
    assert_only(
        &errs,
        "14:62",
        "memory size 0x2000010 of partition \"cluster\" is misaligned",
    );
    // A misaligned guest address of a later region (the first must be 2 MiB
    // aligned anyway, which has its own message).
    let text = with(
        "size = 0x0200_0000 } ]",
        "size = 0x0200_0000 }, { guest = 0x8000_0100, host = 0x4a00_0000, size = 0x1000 } ]",
    );
    assert_only(
        &errors(&text),
        "14:87",
        "memory guest address 0x80000100 of partition \"cluster\" is misaligned",
    );
}

#[test]
fn zero_size_and_negative_address() {
    assert_only(
        &errors(&with("size = 0x0200_0000", "size = 0")),
        "14:62",
        "memory size of partition \"cluster\" must not be 0",
    );
    assert_only(
        &errors(&with("host = 0x4800_0000", "host = -4096")),
        "14:42",
        "memory host address of partition \"cluster\" must not be negative (got -4096)",
    );
}

#[test]
fn memory_outside_ram() {
    let errs = errors(&with("host = 0x5000_0000", "host = 0xbe00_0000"));
    assert_only(
        &errs,
        "22:42",
        "memory of partition \"ivi\" (host 0xbe000000..0xc2000000) is not inside board RAM (0x40000000..0xc0000000)",
    );
    let errs = errors(&with("host = 0x4800_0000", "host = 0x0"));
    assert_only(
        &errs,
        "14:42",
        "(host 0x0..0x2000000) is not inside board RAM",
    );
}

#[test]
fn memory_overlap_across_partitions() {
    let errs = errors(&with("host = 0x5000_0000", "host = 0x4900_0000"));
    assert_only(
        &errs,
        "22:42",
        "memory of partition \"ivi\" (host 0x49000000..0x4d000000) overlaps partition \"cluster\" (host 0x48000000..0x4a000000)",
    );
}

#[test]
fn memory_overlap_within_partition() {
    let text = with(
        "size = 0x0200_0000 } ]",
        "size = 0x0200_0000 }, { guest = 0x8000_0000, host = 0x4900_0000, size = 0x1000 } ]",
    );
    assert_only(
        &errors(&text),
        "14:107",
        "memory of partition \"cluster\" (host 0x49000000..0x49001000) overlaps another of its regions (host 0x48000000..0x4a000000)",
    );
}

#[test]
fn memory_overlap_with_hypervisor() {
    let errs = errors(&with("host = 0x4800_0000", "host = 0x4700_0000"));
    assert_only(
        &errs,
        "14:42",
        "memory of partition \"cluster\" (host 0x47000000..0x49000000) overlaps the hypervisor reservation (host 0x40000000..0x48000000)",
    );
}

#[test]
fn guest_overlap_within_partition() {
    let text = with(
        "size = 0x0200_0000 } ]",
        "size = 0x0200_0000 }, { guest = 0x4100_0000, host = 0x4a00_0000, size = 0x1000 } ]",
    );
    assert_only(
        &errors(&text),
        "14:87",
        "memory of partition \"cluster\" (guest 0x41000000..0x41001000) overlaps another of its regions (guest 0x40000000..0x42000000)",
    );
}

#[test]
fn guest_overlap_with_device_window() {
    let text = with(
        "size = 0x0200_0000 } ]",
        "size = 0x0200_0000 }, { guest = 0x09ff_f000, host = 0x4a00_0000, size = 0x2000 } ]",
    );
    assert_only(
        &errors(&text),
        "14:87",
        "memory of partition \"cluster\" (guest 0x9fff000..0xa001000) overlaps the virtual device window (guest 0x8000000..0xa000000)",
    );
}

#[test]
fn guest_overlap_with_passthrough_device() {
    let text = with(
        "size = 0x0200_0000 } ]",
        "size = 0x0200_0000 }, { guest = 0x0a00_0000, host = 0x4a00_0000, size = 0x1000 } ]\ndevices = [\"/virtio_mmio@a000200\"]",
    );
    assert_only(
        &errors(&text),
        "14:87",
        "memory of partition \"cluster\" (guest 0xa000000..0xa001000) overlaps passthrough device /virtio_mmio@a000200 (guest 0xa000000..0xa001000)",
    );
}

#[test]
fn guest_above_39_bits() {
    let text = with(
        "size = 0x0200_0000 } ]",
        "size = 0x0200_0000 }, { guest = 0x7f_ffff_f000, host = 0x4a00_0000, size = 0x2000 } ]",
    );
    assert_only(
        &errors(&text),
        "14:87",
        "ends above the 39-bit guest-physical address space (0x8000000000)",
    );
    let text = with(
        "size = 0x0200_0000 } ]",
        "size = 0x0200_0000 }, { guest = 0x7f_ffff_f000, host = 0x4a00_0000, size = 0x1000 } ]",
    );
    assert!(errors(&text).is_empty(), "the last page below 2^39 is fine");
}

#[test]
fn no_memory() {
    assert_only(
        &errors(&with_nth(1, "memory = [ {", "memory = [] #")),
        "22:10",
        "partition \"ivi\" has no memory",
    );
}

#[test]
fn hypervisor_memory() {
    let errs = errors(&with("base = 0x4000_0000", "base = 0x4010_0000"));
    assert_has(
        &errs,
        "4:19",
        "hypervisor memory base 0x40100000 is misaligned: it must be 2 MiB aligned",
    );
    let errs = errors(&with("size = 0x0800_0000 }", "size = 0x0810_0000 }"));
    assert_only(
        &errs,
        "4:39",
        "hypervisor memory size 0x8100000 is misaligned",
    );
    let errs = errors(&with("base = 0x4000_0000", "base = 0x3fe0_0000"));
    assert_only(
        &errs,
        "4:10",
        "hypervisor memory (host 0x3fe00000..0x47e00000) is not inside board RAM",
    );
    assert_only(
        &errors(&with("size = 0x0800_0000 }", "size = 0 }")),
        "4:39",
        "hypervisor memory size must not be 0",
    );
    // board.toml links the hypervisor at 0x40080000.
    let text = with("base = 0x4000_0000", "base = 0x4020_0000");
    let errs = errors(&text.replace("host = 0x4800_0000", "host = 0x4820_0000"));
    assert_only(
        &errs,
        "4:10",
        "hypervisor memory (host 0x40200000..0x48200000) does not contain the hypervisor's load address 0x40080000 (from ",
    );
}

// ---- images --------------------------------------------------------------

#[test]
fn image_not_found() {
    let fx = Fixture::new();
    let errs = fx.errors(&with("@/hello.img", "@/missing.img"));
    let expected = format!(
        "image not found: {}",
        fx.ctx.build_dir.join("missing.img").display()
    );
    assert_only(&errs, "12:9", &expected);
}

#[test]
fn image_relative_to_config_file() {
    let fx = Fixture::new();
    let path = fx.write("images/k.img", &arm64_image(0, 0x1000));
    let loaded = fx.load(&with("@/hello.img", "images/k.img")).unwrap();
    assert_eq!(
        loaded.system.partitions[0].image,
        path.canonicalize().unwrap()
    );
    assert!(loaded.dependencies.contains(&path.canonicalize().unwrap()));
    let errs = fx.errors(&with("@/hello.img", "images/../nope.img"));
    assert_has(
        &errs,
        "12:9",
        &format!(
            "image not found: {}",
            fx.dir.join("images/../nope.img").display()
        ),
    );
}

#[test]
fn image_not_a_file() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.ctx.build_dir.join("dir.img")).unwrap();
    let errs = fx.errors(&with("@/hello.img", "@/dir.img"));
    assert_only(&errs, "12:9", "image is not a regular file: ");
}

#[test]
fn image_too_small_or_without_magic() {
    let fx = Fixture::new();
    fx.write("build/short.img", &arm64_image(0, 0)[..63]);
    let errs = fx.errors(&with("@/hello.img", "@/short.img"));
    assert_only(
        &errs,
        "12:9",
        "is too small to be an arm64 Image (63 bytes; the header alone is 64)",
    );
    let mut elf = arm64_image(0, 0);
    elf[56..60].copy_from_slice(b"\x7fELF");
    fx.write("build/elf.img", &elf);
    let errs = fx.errors(&with("@/hello.img", "@/elf.img"));
    assert_only(
        &errs,
        "12:9",
        "is not an arm64 Image: no \"ARM\\x64\" magic at offset 56",
    );
}

#[test]
fn image_must_fit_below_the_device_tree() {
    let fx = Fixture::new();
    // 32 MiB region: the slot starts at guest 0x41e00000.
    fx.write("build/fits.img", &arm64_image(0x8_0000, 0x1d8_0000));
    assert!(fx.errors(&with("@/hello.img", "@/fits.img")).is_empty());
    fx.write("build/big.img", &arm64_image(0x8_0000, 0x1d8_1000));
    let errs = fx.errors(&with("@/hello.img", "@/big.img"));
    assert_only(
        &errs,
        "12:9",
        "does not fit partition \"cluster\": loaded at guest 0x40080000 (text_offset 0x80000) it takes 0x1d81000 bytes, but the device tree's slot starts at 0x41e00000",
    );
    // image_size 0 ("unknown"): the file length counts.
    let mut unknown = arm64_image(0x1e0_0000, 0);
    unknown.resize(0x1000, 0);
    fx.write("build/unknown.img", &unknown);
    let errs = fx.errors(&with("@/hello.img", "@/unknown.img"));
    assert_only(&errs, "12:9", "it takes 0x1000 bytes");
}

#[test]
fn absurd_text_offset_is_refused_without_overflow() {
    let fx = Fixture::new();
    fx.write("build/wild.img", &arm64_image(u64::MAX - 0x1000, 0x2000));
    fx.write("build/initrd.cpio", b"x");
    let text = with("@/hello.img", "@/wild.img")
        .replace("cpus = [1]", "cpus = [1]\ninitrd = \"@/initrd.cpio\"");
    assert_only(
        &fx.errors(&text),
        "13:9",
        "does not fit partition \"cluster\"",
    );
}

#[test]
fn first_region_size_and_alignment() {
    let errs = errors(&with("size = 0x0200_0000", "size = 0x0030_0000"));
    assert_only(
        &errs,
        "14:62",
        "first memory region of partition \"cluster\" is 3 MiB; it must be at least 4 MiB",
    );
    let errs = errors(&with("guest = 0x4000_0000", "guest = 0x4010_0000"));
    assert_only(
        &errs,
        "14:22",
        "guest address 0x40100000 of the first memory region of partition \"cluster\" is misaligned",
    );
}

// ---- initrd --------------------------------------------------------------

/// `BASE` with `initrd = <value>` in the first partition, on line 12 (the
/// value starts at column 10).
fn with_initrd(value: &str) -> String {
    with("cpus = [1]", &format!("cpus = [1]\ninitrd = {value:?}"))
}

#[test]
fn initrd_is_resolved_like_the_image() {
    let fx = Fixture::new();
    let in_build = fx.write("build/ramdisk.cpio", b"not empty");
    let loaded = fx.load(&with_initrd("@/ramdisk.cpio")).unwrap();
    let initrd = loaded.system.partitions[0].initrd.clone().unwrap();
    assert_eq!(initrd.path, in_build.canonicalize().unwrap());
    assert_eq!(initrd.len, 9);
    assert_eq!(loaded.system.partitions[1].initrd, None);
    // A dependency, right after its partition's image.
    let hello = fx.ctx.build_dir.join("hello.img").canonicalize().unwrap();
    assert_eq!(
        loaded.dependencies[3..],
        [hello.clone(), initrd.path.clone(), hello]
    );

    let beside = fx.write("initrds/r.cpio", b"x");
    let loaded = fx.load(&with_initrd("initrds/r.cpio")).unwrap();
    let initrd = loaded.system.partitions[0].initrd.clone().unwrap();
    assert_eq!(initrd.path, beside.canonicalize().unwrap());
    assert_eq!(initrd.len, 1);
}

#[test]
fn summary_shows_initrd_and_watchdog() {
    let fx = Fixture::new();
    let initrd = fx.write("build/ramdisk.cpio", b"not empty");
    let text = with_initrd("@/ramdisk.cpio").replace("cpus = [1]", "cpus = [1]\nwatchdog = true");
    let summary = fx.load(&text).unwrap().system.summary();
    let hello = fx.ctx.build_dir.join("hello.img").canonicalize().unwrap();
    let cluster = format!(
        "partition \"cluster\": asil-b, priority 200, cpus [1], on_fault restart, watchdog on
  memory guest 0x40000000..0x42000000 -> host 0x48000000..0x4a000000 (32 MiB)
  image {} (64 bytes)
  initrd {} (9 bytes)
partition \"ivi\": qm, priority 10, cpus [2, 3], on_fault stop, watchdog off
",
        hello.display(),
        initrd.canonicalize().unwrap().display()
    );
    assert!(summary.contains(&cluster), "{summary}");
}

#[test]
fn initrd_not_found() {
    let fx = Fixture::new();
    let errs = fx.errors(&with_initrd("@/missing.cpio"));
    let expected = format!(
        "initrd not found: {}",
        fx.ctx.build_dir.join("missing.cpio").display()
    );
    assert_only(&errs, "12:10", &expected);
    let errs = fx.errors(&with_initrd("r/../nope.cpio"));
    let expected = format!(
        "initrd not found: {}",
        fx.dir.join("r/../nope.cpio").display()
    );
    assert_only(&errs, "12:10", &expected);
}

#[test]
fn initrd_must_be_a_non_empty_regular_file() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.ctx.build_dir.join("dir.cpio")).unwrap();
    assert_only(
        &fx.errors(&with_initrd("@/dir.cpio")),
        "12:10",
        "initrd is not a regular file: ",
    );
    let empty = fx.write("build/empty.cpio", b"");
    assert_only(
        &fx.errors(&with_initrd("@/empty.cpio")),
        "12:10",
        &format!(
            "initrd {} is empty",
            empty.canonicalize().unwrap().display()
        ),
    );
    assert_only(
        &fx.errors(&with_initrd("")),
        "12:10",
        "initrd path is empty",
    );
    let errs = fx.errors(&with("cpus = [1]", "cpus = [1]\ninitrd = 7"));
    assert_only(&errs, "12:10", "expected a string");
}

#[test]
fn initrd_must_end_before_the_device_tree() {
    let fx = Fixture::new();
    // The kernel ends at guest 0x41bf0000, so the initrd goes at
    // 0x41c00000 and has the 2 MiB up to the slot at 0x41e00000.
    fx.write("build/big.img", &arm64_image(0x8_0000, 0x1b7_0000));
    let text = with_initrd("@/initrd.cpio").replace("@/hello.img", "@/big.img");
    fx.sized("build/initrd.cpio", 0x20_0000);
    let errs = fx.errors(&text);
    assert!(errs.is_empty(), "an exact fit is a fit: {errs:?}");
    let initrd = fx.sized("build/initrd.cpio", 0x20_0001);
    assert_only(
        &fx.errors(&text),
        "12:10",
        &format!(
            "initrd {} (0x200001 bytes) does not fit partition \"cluster\" by 0x1 bytes: it goes at guest 0x41c00000, the first 2 MiB boundary after the image (28096 KiB at guest 0x40080000), and only 2 MiB is left before the device tree's slot at 0x41e00000",
            initrd.canonicalize().unwrap().display()
        ),
    );
    // A kernel ending on the slot's 2 MiB boundary leaves no room at all.
    fx.write("build/big.img", &arm64_image(0x8_0000, 0x1d8_0000));
    fx.sized("build/initrd.cpio", 0x1000);
    assert_only(
        &fx.errors(&text),
        "12:10",
        "(4 KiB) does not fit partition \"cluster\" by 4 KiB: it goes at guest 0x41e00000, the first 2 MiB boundary after the image (30208 KiB at guest 0x40080000), and no room is left before",
    );
}

#[test]
fn initrd_placement_follows_the_file_when_image_size_is_0() {
    let fx = Fixture::new();
    // image_size 0: the 2 MiB file counts, the kernel ends at 0x40280000
    // and the initrd goes at 0x40400000.
    let mut image = arm64_image(0x8_0000, 0);
    image.resize(0x20_0000, 0);
    fx.write("build/old.img", &image);
    fx.sized("build/initrd.cpio", 0x1a0_0001);
    let text = with_initrd("@/initrd.cpio").replace("@/hello.img", "@/old.img");
    assert_only(
        &fx.errors(&text),
        "12:10",
        "by 0x1 bytes: it goes at guest 0x40400000, the first 2 MiB boundary after the image (2 MiB at guest 0x40080000), and only 26 MiB is left",
    );
}

#[test]
fn initrd_fit_is_not_checked_when_the_image_does_not_fit() {
    let fx = Fixture::new();
    fx.write("build/huge.img", &arm64_image(0, 0x1e0_0001));
    fx.write("build/initrd.cpio", b"x");
    let text = with_initrd("@/initrd.cpio").replace("@/hello.img", "@/huge.img");
    assert_only(&fx.errors(&text), "13:9", "image ");
}

// ---- watchdog ------------------------------------------------------------

#[test]
fn watchdog_is_off_unless_asked_for() {
    let fx = Fixture::new();
    for (value, expected) in [("true", true), ("false", false)] {
        let loaded = fx
            .load(&with(
                "cpus = [1]",
                &format!("cpus = [1]\nwatchdog = {value}"),
            ))
            .unwrap();
        assert_eq!(loaded.system.partitions[0].watchdog, expected);
        assert!(!loaded.system.partitions[1].watchdog);
    }
    let errs = errors(&with("cpus = [1]", "cpus = [1]\nwatchdog = 1"));
    assert_only(&errs, "12:12", "expected a boolean");
}

#[test]
fn watchdog_expiry_cannot_be_injected() {
    let text = with("\"restart\"", "\"inject\"");
    let errs = errors(
        &with_nth(0, "cpus = [1]", "cpus = [1]\nwatchdog = true")
            .replace("\"restart\"", "\"inject\""),
    );
    assert_only(
        &errs,
        "12:12",
        "partition \"cluster\" has a watchdog and on_fault = \"inject\": a watchdog expiry cannot be injected; use stop or restart",
    );
    // Without a watchdog, or with it off, inject is fine.
    assert!(errors(&text).is_empty());
    assert!(errors(&text.replace("cpus = [1]", "cpus = [1]\nwatchdog = false")).is_empty());
    // The default on_fault (stop) is fine too.
    assert!(errors(&with("cpus = [2, 3]", "cpus = [2, 3]\nwatchdog = true")).is_empty());
}

// ---- board, console and devices -------------------------------------------

#[test]
fn unknown_board() {
    let errs = errors(&with("board = \"qemu-virt\"", "board = \"nope\""));
    assert_only(
        &errs,
        "1:9",
        "board \"nope\": cannot read board device tree",
    );
    let errs = errors(&with("board = \"qemu-virt\"", "board = \"../qemu-virt\""));
    assert_only(
        &errs,
        "1:9",
        "board \"../qemu-virt\" is not a folder name under board/",
    );
}

#[test]
fn board_independent_rules_still_run_without_a_board() {
    let errs = errors(
        &with("board = \"qemu-virt\"", "board = \"nope\"")
            .replace("priority = 10", "priority = 300"),
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_has(&errs, "19:12", "out of range");
}

#[test]
fn console_must_exist() {
    let errs = errors(&with("\"/pl011@9000000\"", "\"/pl011@9000001\""));
    assert_only(
        &errs,
        "5:11",
        "hypervisor console: no node \"/pl011@9000001\" in board device tree qemu-virt.dtb",
    );
    let errs = errors(&with("\"/pl011@9000000\"", "\"/psci\""));
    assert_only(&errs, "5:11", "hypervisor console /psci has no `reg`");
    // A device with registers, but no UART the hypervisor has a driver for.
    let errs = errors(&with("\"/pl011@9000000\"", "\"/pl031@9010000\""));
    assert_only(
        &errs,
        "5:11",
        "hypervisor console /pl031@9010000 is compatible with [\"arm,pl031\", \"arm,primecell\"]: \
         the hypervisor drives arm,pl011, fsl,imx6q-uart, fsl,imx21-uart",
    );
    let loaded = Fixture::new()
        .load(&with("\"/pl011@9000000\"", "\"serial0\""))
        .unwrap();
    assert_eq!(
        loaded.system.hypervisor.console, "/pl011@9000000",
        "alias resolved"
    );
}

/// `BASE` with `devices` lines added to the first and second partition.
pub(super) fn with_devices(cluster: &str, ivi: &str) -> String {
    let text = with("cpus = [1]", &format!("cpus = [1]\ndevices = [{cluster}]"));
    let at = text.find("cpus = [2, 3]").unwrap();
    format!(
        "{}cpus = [2, 3]\ndevices = [{ivi}]{}",
        &text[..at],
        &text[at + "cpus = [2, 3]".len()..]
    )
}

#[test]
fn passthrough_device() {
    let loaded = Fixture::new()
        .load(&with_devices(
            "\"/pl061@9030000\"",
            "\"/virtio_mmio@a000000\"",
        ))
        .unwrap();
    let gpio = &loaded.system.partitions[0].devices[0];
    assert_eq!(gpio.path, "/pl061@9030000");
    assert_eq!(
        gpio.regions,
        [Region {
            base: 0x903_0000,
            size: 0x1000
        }]
    );
    assert_eq!(gpio.interrupts, [39]);
    let virtio = &loaded.system.partitions[1].devices[0];
    assert_eq!(
        virtio.regions,
        [Region {
            base: 0xa00_0000,
            size: 0x200
        }],
        "exact reg, not rounded"
    );
    assert_eq!(virtio.interrupts, [48]);
}

#[test]
fn unknown_device_path() {
    let errs = errors(&with_devices("\"/gpio@9030000\"", ""));
    assert_only(
        &errs,
        "12:12",
        "device of partition \"cluster\": no node \"/gpio@9030000\" in board device tree qemu-virt.dtb",
    );
    let errs = errors(&with_devices("\"/pl061\"", ""));
    assert_only(&errs, "12:12", "(did you mean \"/pl061@9030000\"?)");
    let errs = errors(&with_devices("\"gpio0\"", ""));
    assert_only(&errs, "12:12", "no node or alias \"gpio0\"");
}

#[test]
fn device_owned_twice() {
    let errs = errors(&with_devices("\"/pl061@9030000\"", "\"/pl061@9030000\""));
    assert_only(
        &errs,
        "22:12",
        "device /pl061@9030000 owned twice: by partition \"cluster\" and partition \"ivi\"",
    );
    let errs = errors(&with_devices(
        "\"/pl061@9030000\", { path = \"/pl061@9030000\" }",
        "",
    ));
    assert_only(
        &errs,
        "12:39",
        "device /pl061@9030000 is listed twice in partition \"cluster\"",
    );
}

#[test]
fn device_sharing_a_page() {
    let errs = errors(&with_devices(
        "\"/virtio_mmio@a000000\"",
        "\"/virtio_mmio@a000200\"",
    ));
    assert_only(
        &errs,
        "22:12",
        "device /virtio_mmio@a000200 of partition \"ivi\" shares a 4 KiB page (0xa000000..0xa001000) with device /virtio_mmio@a000000 of partition \"cluster\"",
    );
    // In one partition that is fine.
    assert!(
        errors(&with_devices(
            "\"/virtio_mmio@a000000\", \"/virtio_mmio@a000200\"",
            ""
        ))
        .is_empty()
    );
}

#[test]
fn console_cannot_be_passed_through() {
    let errs = errors(&with_devices("", "\"serial0\""));
    assert_only(
        &errs,
        "22:12",
        "device /pl011@9000000 is the hypervisor console and cannot be passed through",
    );
}

#[test]
fn interrupt_controller_cannot_be_passed_through() {
    let errs = errors(&with_devices("\"/intc@8000000/its@8080000\"", ""));
    assert_has(
        &errs,
        "12:12",
        "device /intc@8000000/its@8080000 is part of the interrupt controller, which the hypervisor owns",
    );
    let errs = errors(&with_devices("\"/intc@8000000\"", ""));
    assert_only(
        &errs,
        "12:12",
        "device /intc@8000000 is part of the interrupt controller",
    );
    // A device that is not the GIC but sits where the emulated GIC goes.
    let errs = errors(&with_devices("\"/flash@0\"", ""));
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn device_without_reg_or_with_ppi() {
    let errs = errors(&with_devices("\"/pmu\"", ""));
    assert_has(&errs, "12:12", "device /pmu has no `reg`");
    assert_has(
        &errs,
        "12:12",
        "device /pmu raises PPI 7: PPIs are per-core and cannot be passed through",
    );
}

#[test]
fn interrupts_override() {
    let fx = Fixture::new();
    let loaded = fx
        .load(&with_devices(
            "{ path = \"/pl031@9010000\", interrupts = [40, 41] }",
            "",
        ))
        .unwrap();
    assert_eq!(loaded.system.partitions[0].devices[0].interrupts, [40, 41]);
    let loaded = fx
        .load(&with_devices(
            "{ path = \"/pl031@9010000\", interrupts = [] }",
            "",
        ))
        .unwrap();
    assert!(
        loaded.system.partitions[0].devices[0].interrupts.is_empty(),
        "empty list: MMIO only"
    );
    let loaded = fx
        .load(&with_devices("{ path = \"/pl031@9010000\" }", ""))
        .unwrap();
    assert_eq!(
        loaded.system.partitions[0].devices[0].interrupts,
        [34],
        "no list: the device tree's"
    );
    // The override also replaces a PPI the device tree gives.
    let errs = fx.errors(&with_devices("{ path = \"/pmu\", interrupts = [40] }", ""));
    assert_only(&errs, "12:21", "device /pmu has no `reg`");
}

#[test]
fn interrupt_override_values() {
    let errs = errors(&with_devices(
        "{ path = \"/pl031@9010000\", interrupts = [31, 1020, 40, 40] }",
        "",
    ));
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert_has(
        &errs,
        "12:53",
        "interrupt 31 of device /pl031@9010000 is not an SPI INTID (32..=1019)",
    );
    assert_has(
        &errs,
        "12:57",
        "interrupt 1020 of device /pl031@9010000 is not an SPI INTID",
    );
    assert_has(
        &errs,
        "12:67",
        "interrupt 40 is listed twice for device /pl031@9010000",
    );
}

#[test]
fn emulated_interrupts_cannot_be_passed_through() {
    let errs = errors(&with_devices(
        "{ path = \"/pl031@9010000\", interrupts = [33] }",
        "",
    ));
    assert_only(
        &errs,
        "12:53",
        "interrupt 33 of device /pl031@9010000 is the emulated console's interrupt, reserved in every partition",
    );
    // The watchdog's, whether or not the partition has the watchdog.
    let errs = errors(&with_devices(
        "",
        "{ path = \"/pl031@9010000\", interrupts = [34, 42] }",
    ));
    assert_only(
        &errs,
        "22:57",
        "interrupt 42 of device /pl031@9010000 is the emulated watchdog's interrupt, reserved in every partition",
    );
    // Each of the list is refused.
    for intid in crate::layout::EMULATED_INTIDS {
        let errs = errors(&with_devices(
            &format!("{{ path = \"/pl031@9010000\", interrupts = [{intid}] }}"),
            "",
        ));
        assert_only(&errs, "12:53", &format!("interrupt {intid} of device"));
    }
}

#[test]
fn device_on_an_emulated_frame() {
    let fx = Fixture::new();
    // The GPIO's `reg` (2 address and 2 size cells) moved onto the
    // watchdog's frame, 0x0910_0000. No partition has a watchdog: the
    // frame is kept clear regardless.
    let reg = |base: u32| {
        [0, base, 0, 0x1000]
            .iter()
            .flat_map(|c: &u32| c.to_be_bytes())
            .collect::<Vec<u8>>()
    };
    let ctx = fx.patched_board(&reg(0x0903_0000), &reg(0x0910_0000));
    let text = with_devices("\"/pl061@9030000\"", "");
    let errs = match crate::load_str(&fx.dir.join("test.toml"), &text, &ctx) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .collect(),
    };
    assert_only(
        &errs,
        "12:12",
        "device /pl061@9030000 (guest 0x9100000..0x9101000, mapped guest == host) collides with the emulated SP805 watchdog (guest 0x9100000..0x9101000)",
    );
    // And onto the console's.
    let ctx = fx.patched_board(&reg(0x0903_0000), &reg(0x0900_0000));
    let errs = crate::load_str(&fx.dir.join("test.toml"), &text, &ctx).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0]
            .message
            .contains("collides with the emulated PL011 console"),
        "{errs:?}"
    );
}

#[test]
fn interrupt_owned_twice() {
    let errs = errors(&with_devices(
        "\"/pl061@9030000\"",
        "{ path = \"/pl031@9010000\", interrupts = [39] }",
    ));
    assert_only(
        &errs,
        "22:53",
        "interrupt 39 owned twice: by device /pl061@9030000 of partition \"cluster\" and device /pl031@9010000 of partition \"ivi\"",
    );
}

// ---- reporting -----------------------------------------------------------

#[test]
fn reports_every_semantic_error_in_order() {
    let text = BASE
        .replace("name = \"ivi\"", "name = \"IVI\"")
        .replace("priority = 10", "priority = 200")
        .replace("cpus = [2, 3]", "cpus = [1, 9]")
        .replace("host = 0x5000_0000", "host = 0x4800_1000")
        .replace("@/hello.img\"\non_fault", "@/gone.img\"\non_fault");
    let errs = errors(&text);
    let positions: Vec<&str> = errs.iter().map(|e| e.split(": ").next().unwrap()).collect();
    assert_eq!(
        positions,
        ["12:9", "17:8", "19:12", "20:9", "20:12", "22:42"],
        "{errs:#?}"
    );
    assert!(errs[0].contains("image not found"));
    assert!(errs[1].contains("bad partition name \"IVI\""));
    assert!(errs[2].contains("priorities must be unique"));
    assert!(errs[3].contains("cpu 1 is in both"));
    assert!(errs[4].contains("cpu 9 of partition \"IVI\" does not exist"));
    assert!(errs[5].contains("overlaps partition \"cluster\""));
}

#[test]
fn load_reports_unreadable_and_non_utf8_files() {
    let fx = Fixture::new();
    let missing = fx.dir.join("absent.toml");
    let errs = crate::load(&missing, &fx.ctx).unwrap_err();
    assert_eq!((errs[0].line, errs[0].col), (1, 1));
    assert!(errs[0].message.starts_with("cannot read config"));

    let path = fx.write("latin1.toml", b"board = \"qemu-virt\"\n# caf\xe9\n");
    let errs = crate::load(&path, &fx.ctx).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        format!("{}:2:6: config is not valid UTF-8", path.display())
    );
}

#[test]
fn crlf_and_tabs_in_positions() {
    let text = with("priority = 200", "\tpriority = 256").replace('\n', "\r\n");
    assert_only(&errors(&text), "10:13", "out of range 0..=255");
}

#[test]
fn malformed_board_toml_is_reported() {
    let fx = Fixture::new();
    let board = fx.dir.join("boards/qemu-virt");
    std::fs::create_dir_all(&board).unwrap();
    let dtb = super::fixture::boards_dir().join("qemu-virt/qemu-virt.dtb");
    std::fs::copy(dtb, board.join("qemu-virt.dtb")).unwrap();
    let ctx = crate::Context {
        boards_dir: fx.dir.join("boards"),
        build_dir: fx.ctx.build_dir.clone(),
    };
    let load = |text: &str| crate::load_str(&fx.dir.join("test.toml"), text, &ctx);

    // No board.toml: the load-address rule has nothing to check.
    let loaded = load(
        &with("base = 0x4000_0000", "base = 0x4020_0000")
            .replace("host = 0x4800_0000", "host = 0x4820_0000"),
    );
    assert!(loaded.is_ok(), "{loaded:?}");

    std::fs::write(board.join("board.toml"), "load_address = \"high\"\n").unwrap();
    let errs = load(BASE).unwrap_err();
    assert_eq!((errs[0].line, errs[0].col), (1, 9));
    assert!(
        errs[0]
            .message
            .contains("load_address \"high\" is not an address"),
        "{errs:?}"
    );
}

// ---- storage and disks ---------------------------------------------------

const DISK0: &str = "[[storage]]\nname = \"disk0\"\ndevice = \"/virtio_mmio@a003e00\"\n";
/// A second storage device, in the slot below `DISK0`'s.
const DISK1: &str = "[[storage]]\nname = \"disk1\"\ndevice = \"/virtio_mmio@a003c00\"\n";

/// `BASE` with a `disks` line in each partition (lines 12 and 22, entries
/// from column 10) and `storage` from line 26.
fn with_disks(cluster: &str, ivi: &str, storage: &str) -> String {
    let text = with("cpus = [1]", &format!("cpus = [1]\ndisks = [{cluster}]"));
    let text = text.replacen(
        "cpus = [2, 3]",
        &format!("cpus = [2, 3]\ndisks = [{ivi}]"),
        1,
    );
    format!("{text}\n{storage}")
}

/// Disks on `DISK0`.
fn disks(cluster: &str, ivi: &str) -> Vec<String> {
    errors(&with_disks(cluster, ivi, DISK0))
}

/// A disk on `disk0` with the given extent keys.
fn disk(keys: &str) -> String {
    format!("{{ storage = \"disk0\", {keys} }}")
}

#[test]
fn storage_and_disks_load() {
    use crate::{OwnedDisk, OwnedDiskExtent, OwnedStorage};
    let fx = Fixture::new();
    let loaded = fx
        .load(&with_disks(
            &disk("gpt = \"cluster-odo\""),
            &format!(
                "{}, {}",
                disk("lba = 34816, sectors = 65536"),
                disk("gpt = \"shared-ro\", read_only = true")
            ),
            &format!("{DISK0}home_cpu = 2\n"),
        ))
        .unwrap_or_else(|d| panic!("{d:?}"));
    let system = &loaded.system;
    assert_eq!(
        system.storage,
        [OwnedStorage {
            name: "disk0".into(),
            device: "/virtio_mmio@a003e00".into(),
            regions: vec![Region {
                base: 0xa00_3e00,
                size: 0x200
            }],
            interrupts: vec![79],
            home_cpu: Some(2),
            lower_in_flight_kib: 1024,
            records: None,
        }],
        "lower_in_flight_kib defaults to 1 MiB, no records unless given"
    );
    assert_eq!(
        system.partitions[0].disks,
        [OwnedDisk {
            storage: 0,
            extent: OwnedDiskExtent::Gpt("cluster-odo".into()),
            read_only: false,
        }],
        "read_only defaults to false"
    );
    assert_eq!(
        system.partitions[1].disks,
        [
            OwnedDisk {
                storage: 0,
                extent: OwnedDiskExtent::Lba {
                    start: 34816,
                    sectors: 65536
                },
                read_only: false,
            },
            OwnedDisk {
                storage: 0,
                extent: OwnedDiskExtent::Gpt("shared-ro".into()),
                read_only: true,
            }
        ]
    );
    // Without home_cpu, none; without storage and disks, none.
    let loaded = fx
        .load(&with_disks(&disk("gpt = \"a\""), "", DISK0))
        .unwrap();
    assert_eq!(loaded.system.storage[0].home_cpu, None);
    let loaded = fx.load(BASE).unwrap();
    assert!(loaded.system.storage.is_empty());
    assert!(loaded.system.partitions.iter().all(|p| p.disks.is_empty()));
}

#[test]
fn storage_is_indexed_in_file_order() {
    let fx = Fixture::new();
    let loaded = fx
        .load(&with_disks(
            "{ storage = \"disk1\", gpt = \"a\" }",
            "{ storage = \"disk0\", gpt = \"a\" }",
            &format!("{DISK0}\n{DISK1}"),
        ))
        .unwrap();
    let names: Vec<&str> = loaded
        .system
        .storage
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["disk0", "disk1"]);
    assert_eq!(loaded.system.partitions[0].disks[0].storage, 1);
    assert_eq!(loaded.system.partitions[1].disks[0].storage, 0);
}

#[test]
fn summary_shows_storage_and_disks() {
    let fx = Fixture::new();
    let summary = fx
        .load(&with_disks(
            &disk("gpt = \"cluster-odo\""),
            &format!(
                "{}, {}",
                disk("lba = 34816, sectors = 65536"),
                disk("gpt = \"shared-ro\", read_only = true")
            ),
            DISK0,
        ))
        .unwrap()
        .system
        .summary();
    for line in [
        "storage \"disk0\": /virtio_mmio@a003e00 at 0xa003e00..0xa004000 interrupts [79], I/O on the service core, 1024 KiB of lower priorities in flight\n",
        "  disk 0 (virtio-mmio guest 0xb000000, INTID 96): storage \"disk0\" gpt \"cluster-odo\"\n",
        "  disk 0 (virtio-mmio guest 0xb000000, INTID 96): storage \"disk0\" sectors 34816..100352, 32 MiB\n",
        "  disk 1 (virtio-mmio guest 0xb000200, INTID 97): storage \"disk0\" gpt \"shared-ro\", read-only\n",
    ] {
        assert!(summary.contains(line), "no {line:?} in:\n{summary}");
    }
    let summary = fx
        .load(&with_disks("", "", &format!("{DISK0}home_cpu = 3\n")))
        .unwrap()
        .system
        .summary();
    assert!(
        summary.contains("interrupts [79], I/O on cpu 3, 1024 KiB of lower priorities in flight\n"),
        "{summary}"
    );
}

#[test]
fn storage_names() {
    let errs = errors(&with_disks("", "", &DISK0.replace("disk0", "Disk0")));
    assert_only(
        &errs,
        "27:8",
        "bad storage name \"Disk0\": it must be 1 to 16 characters of a-z, 0-9 and '-', starting with a letter",
    );
    let errs = errors(&with_disks(
        "",
        "",
        &format!("{DISK0}\n{}", DISK1.replace("disk1", "disk0")),
    ));
    assert_only(
        &errs,
        "31:8",
        "duplicate storage name \"disk0\" (first used on line 27)",
    );
    // Partitions and storage devices have names of their own.
    let errs = errors(&with_disks("", "", &DISK0.replace("disk0", "ivi")));
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn storage_device_must_be_a_virtio_mmio_node() {
    let errs = errors(&with_disks(
        "",
        "",
        &DISK0.replace("/virtio_mmio@a003e00", "/virtio_mmio@a004000"),
    ));
    assert_only(
        &errs,
        "28:10",
        "storage \"disk0\": no node \"/virtio_mmio@a004000\" in board device tree qemu-virt.dtb",
    );
    let errs = errors(&with_disks(
        "",
        "",
        &DISK0.replace("/virtio_mmio@a003e00", "/pl061@9030000"),
    ));
    assert_only(
        &errs,
        "28:10",
        "storage \"disk0\" device /pl061@9030000 is not a virtio-mmio transport: its compatible is \"arm,pl061\", \"arm,primecell\", not \"virtio,mmio\"",
    );
    let errs = errors(&with_disks(
        "",
        "",
        &DISK0.replace("/virtio_mmio@a003e00", "/cpus"),
    ));
    assert_has(
        &errs,
        "28:10",
        "storage \"disk0\" device /cpus is not a virtio-mmio transport: it has no compatible",
    );
    assert_has(
        &errs,
        "28:10",
        "storage \"disk0\" device /cpus has no `reg`",
    );
}

#[test]
fn storage_device_cannot_be_the_console_or_another_storage() {
    let text = with_disks(
        "",
        "",
        &DISK0.replace("/virtio_mmio@a003e00", "/pl011@9000000"),
    );
    assert_has(
        &errors(&text),
        "28:10",
        "storage \"disk0\" device /pl011@9000000 is the hypervisor console",
    );
    // The other way round, a virtio transport is no console UART.
    let text = with_disks("", "", DISK0).replace(
        "console = \"/pl011@9000000\"",
        "console = \"/virtio_mmio@a003e00\"",
    );
    assert_only(
        &errors(&text),
        "5:11",
        "hypervisor console /virtio_mmio@a003e00 is compatible with [\"virtio,mmio\"]",
    );
    let twice = format!(
        "{DISK0}\n{}",
        DISK1.replace("/virtio_mmio@a003c00", "/virtio_mmio@a003e00")
    );
    assert_only(
        &errors(&with_disks("", "", &twice)),
        "32:10",
        "storage \"disk1\" device /virtio_mmio@a003e00 is already storage \"disk0\"",
    );
}

#[test]
fn home_cpu_must_exist() {
    let errs = errors(&with_disks("", "", &format!("{DISK0}home_cpu = 7\n")));
    assert_only(
        &errs,
        "29:12",
        "home_cpu 7 of storage \"disk0\" does not exist on the board (its cpus are 0, 1, 2, 3)",
    );
    let errs = errors(&with_disks("", "", &format!("{DISK0}home_cpu = -1\n")));
    assert_only(
        &errs,
        "29:12",
        "home_cpu of storage \"disk0\" must not be negative (got -1)",
    );
    // Any core of the board, a partition's too.
    for cpu in 0..4 {
        let text = with_disks("", "", &format!("{DISK0}home_cpu = {cpu}\n"));
        assert!(errors(&text).is_empty(), "home_cpu {cpu}");
    }
}

/// The lower partitions' budget on a device: in range, or an error at
/// the value.
#[test]
fn lower_in_flight_kib_in_range() {
    for (value, column) in [("3", "23"), ("65537", "23"), ("-1", "23")] {
        let text = with_disks("", "", &format!("{DISK0}lower_in_flight_kib = {value}\n"));
        assert_only(
            &errors(&text),
            &format!("29:{column}"),
            &format!(
                "lower_in_flight_kib {value} of storage \"disk0\" is out of range 4..=65536 KiB"
            ),
        );
    }
    let text = with_disks("", "", &format!("{DISK0}lower_in_flight_kib = 256\n"));
    let loaded = Fixture::new()
        .load(&text)
        .unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(loaded.system.storage[0].lower_in_flight_kib, 256);
}

/// `DISK0` with its crash records in GPT partition "hv-records" (line 29).
fn disk0_records() -> String {
    format!("{DISK0}records = \"hv-records\"\n")
}

/// A storage device's crash-records partition: loaded, in the summary, and
/// none unless given (see `storage_and_disks_load`).
#[test]
fn storage_records_load() {
    let fx = Fixture::new();
    let loaded = fx
        .load(&with_disks(
            &disk("gpt = \"cluster-odo\""),
            &disk("lba = 34816, sectors = 65536"),
            &format!("{}\n{DISK1}", disk0_records()),
        ))
        .unwrap_or_else(|d| panic!("{d:?}"));
    let storage = &loaded.system.storage;
    assert_eq!(storage[0].records.as_deref(), Some("hv-records"));
    assert_eq!(storage[1].records, None);
    let summary = loaded.system.summary();
    assert!(
        summary.contains("interrupts [79], I/O on the service core, 1024 KiB of lower priorities in flight, crash records in GPT partition \"hv-records\"\n"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "interrupts [78], I/O on the service core, 1024 KiB of lower priorities in flight\n"
        ),
        "{summary}"
    );
}

/// `records` is a GPT partition name, as a disk's `gpt` is.
#[test]
fn storage_records_is_a_gpt_name() {
    let records = |value: &str| with_disks("", "", &format!("{DISK0}records = {value}\n"));
    assert_only(
        &errors(&records("\"\"")),
        "29:11",
        "GPT partition name of records of storage \"disk0\" is empty",
    );
    let long = "a-name-of-thirty-seven-characters-xyz";
    assert_only(
        &errors(&records(&format!("\"{long}\""))),
        "29:11",
        &format!(
            "GPT partition name \"{long}\" of records of storage \"disk0\" is 37 UTF-16 code units long: a GPT name holds at most 36"
        ),
    );
    assert_only(
        &errors(&records("\"a\\u0000b\"")),
        "29:11",
        "GPT partition name of records of storage \"disk0\" must not contain a NUL character",
    );
    assert_only(
        &errors(&records("1")),
        "29:11",
        "invalid type: integer `1`, expected a string",
    );
    // 36 UTF-16 code units, some of them outside ASCII, are fine.
    let fits = format!("\"{}\"", "é".repeat(36));
    assert!(errors(&records(&fits)).is_empty());
}

/// The hypervisor keeps one crash-records area: on one storage device.
#[test]
fn storage_records_on_one_device_only() {
    let twice = format!("{}\n{DISK1}records = \"other\"\n", disk0_records());
    assert_only(
        &errors(&with_disks("", "", &twice)),
        "34:11",
        "storage \"disk1\" has records, as has storage \"disk0\" (line 29): the hypervisor keeps one crash-records area, on one storage device",
    );
    // Even when the first one's name is refused.
    let twice = format!("{DISK0}records = \"\"\n\n{DISK1}records = \"other\"\n");
    let errs = errors(&with_disks("", "", &twice));
    assert_has(&errs, "29:11", "is empty");
    assert_has(
        &errs,
        "34:11",
        "storage \"disk1\" has records, as has storage \"disk0\" (line 29)",
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
}

/// No partition's disk is the crash-records partition of its storage
/// device, not even read-only. A GPT partition of that name on another
/// device, or an LBA range (which only the hypervisor, at boot, can place
/// against the GPT), is not refused here.
#[test]
fn no_disk_is_the_records_partition() {
    let records = disk("gpt = \"hv-records\"");
    assert_only(
        &errors(&with_disks("", &records, &disk0_records())),
        "22:37",
        "disk 0 of partition \"ivi\": GPT partition \"hv-records\" of storage \"disk0\" is the hypervisor's crash-records area (records, line 29): no partition's disk may use it",
    );
    let read_only = disk("gpt = \"hv-records\", read_only = true");
    let both = format!("{}, {read_only}", disk("gpt = \"ivi-data\""));
    assert_only(
        &errors(&with_disks("", &both, &disk0_records())),
        "22:78",
        "disk 1 of partition \"ivi\": GPT partition \"hv-records\" of storage \"disk0\" is the hypervisor's crash-records area",
    );
    // On another storage device, "hv-records" is just a name.
    let other = "{ storage = \"disk1\", gpt = \"hv-records\" }";
    let text = with_disks(other, "", &format!("{}\n{DISK1}", disk0_records()));
    assert!(errors(&text).is_empty(), "{:?}", errors(&text));
    // An LBA range, even over the whole disk: the hypervisor checks at boot.
    let text = with_disks(&disk("lba = 0, sectors = 131072"), "", &disk0_records());
    assert!(errors(&text).is_empty(), "{:?}", errors(&text));
    // Names are compared exactly, as GPT names are.
    let text = with_disks(&disk("gpt = \"HV-records\""), "", &disk0_records());
    assert!(errors(&text).is_empty(), "{:?}", errors(&text));
}

/// A partition's core may be a storage's home only if no lower-priority
/// partition uses that storage: it would do their I/O.
#[test]
fn home_cpu_not_on_a_partition_above_another_user() {
    let cluster = disk("gpt = \"cluster-odo\"");
    let ivi = disk("gpt = \"ivi-data\"");
    let home = |cpu: u32| format!("{DISK0}home_cpu = {cpu}\n");
    assert_only(
        &errors(&with_disks(&cluster, &ivi, &home(1))),
        "29:12",
        "home_cpu 1 of storage \"disk0\" is a core of partition \"cluster\" (priority 200), which would do the I/O of lower-priority partition \"ivi\": use a core of the lowest-priority partition on this storage, a free core, or leave home_cpu out (the service core)",
    );
    // The lowest-priority user's core, a free core, or the cluster's own
    // core while only the cluster uses the storage: fine.
    for (cluster, ivi, cpu) in [
        (&cluster, &ivi, 3),
        (&cluster, &ivi, 0),
        (&cluster, &String::new(), 1),
    ] {
        let text = with_disks(cluster, ivi, &home(cpu));
        assert!(
            errors(&text).is_empty(),
            "home_cpu {cpu}: {:?}",
            errors(&text)
        );
    }
}

#[test]
fn storage_device_cannot_be_passed_through() {
    let text = format!("{}\n{DISK0}", with_devices("", "\"/virtio_mmio@a003e00\""));
    assert_only(
        &errors(&text),
        "22:12",
        "device /virtio_mmio@a003e00 is storage \"disk0\", which the hypervisor mediates: it cannot also be passed through",
    );
    // Nor a device sharing its 4 KiB page.
    let text = format!("{}\n{DISK0}", with_devices("\"/virtio_mmio@a003c00\"", ""));
    assert_only(
        &errors(&text),
        "12:12",
        "device /virtio_mmio@a003c00 (host 0xa003c00..0xa003e00) shares a 4 KiB page (0xa003000..0xa004000) with storage \"disk0\" (/virtio_mmio@a003e00), which the hypervisor mediates",
    );
    // Nor its interrupt.
    let text = format!(
        "{}\n{DISK0}",
        with_devices("{ path = \"/pl031@9010000\", interrupts = [79] }", "")
    );
    assert_only(
        &errors(&text),
        "12:53",
        "interrupt 79 of device /pl031@9010000 is the interrupt of storage \"disk0\" (/virtio_mmio@a003e00), which the hypervisor mediates",
    );
    // A device in another page is fine.
    let text = format!("{}\n{DISK0}", with_devices("\"/virtio_mmio@a002e00\"", ""));
    assert!(errors(&text).is_empty());
}

#[test]
fn disk_names_a_defined_storage() {
    let errs = disks("{ storage = \"disk1\", gpt = \"a\" }", "");
    assert_only(
        &errs,
        "12:22",
        "disk 0 of partition \"cluster\": unknown storage \"disk1\" (the storage devices are \"disk0\")",
    );
    let errs = errors(&with_disks("", "{ storage = \"disk0\", gpt = \"a\" }", ""));
    assert_only(
        &errs,
        "22:22",
        "disk 0 of partition \"ivi\": unknown storage \"disk0\" (there is no [[storage]] table)",
    );
    // Every problem of a disk is reported.
    let errs = disks("{ storage = \"disk1\", gpt = \"\" }", "");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_has(&errs, "12:22", "unknown storage \"disk1\"");
    assert_has(
        &errs,
        "12:37",
        "GPT partition name of disk 0 of partition \"cluster\" is empty",
    );
}

#[test]
fn disk_is_either_gpt_or_lba_and_sectors() {
    let both = "disk 0 of partition \"cluster\" gives both gpt and an LBA range: a disk is either a GPT partition (gpt) or an LBA range (lba and sectors)";
    assert_only(
        &disks(&disk("gpt = \"a\", lba = 0, sectors = 8"), ""),
        "12:48",
        both,
    );
    assert_only(&disks(&disk("gpt = \"a\", sectors = 8"), ""), "12:52", both);
    // Whichever comes first is pointed at.
    assert_only(
        &disks(&disk("sectors = 8, lba = 0, gpt = \"a\""), ""),
        "12:41",
        both,
    );
    assert_only(
        &disks(&disk("lba = 0"), ""),
        "12:37",
        "disk 0 of partition \"cluster\" has lba but no sectors: an LBA range needs both",
    );
    assert_only(
        &disks(&disk("sectors = 8"), ""),
        "12:41",
        "disk 0 of partition \"cluster\" has sectors but no lba: an LBA range needs both",
    );
    assert_only(
        &disks("{ storage = \"disk0\" }", ""),
        "12:10",
        "disk 0 of partition \"cluster\" says not which sectors it is: give gpt = \"<GPT partition name>\", or lba and sectors",
    );
}

#[test]
fn gpt_names_are_1_to_36_utf16_units() {
    let name = |n: &str| disks(&disk(&format!("gpt = \"{n}\"")), "");
    assert!(name(&"x".repeat(36)).is_empty());
    assert!(name(&"é".repeat(36)).is_empty(), "one unit each");
    assert!(name(&"𝄞".repeat(18)).is_empty(), "two units each");
    assert_only(
        &name(&"x".repeat(37)),
        "12:37",
        "is 37 UTF-16 code units long: a GPT name holds at most 36",
    );
    assert_only(
        &name(&"𝄞".repeat(19)),
        "12:37",
        "is 38 UTF-16 code units long",
    );
    assert_only(&name(""), "12:37", "is empty");
    assert_only(
        &name("a\\u0000b"),
        "12:37",
        "GPT partition name of disk 0 of partition \"cluster\" must not contain a NUL character",
    );
}

#[test]
fn lba_ranges() {
    let range =
        |lba: &str, sectors: &str| disks(&disk(&format!("lba = {lba}, sectors = {sectors}")), "");
    assert!(range("0", "1").is_empty());
    assert_only(
        &range("0", "0"),
        "12:50",
        "sectors of disk 0 of partition \"cluster\" must not be 0",
    );
    assert_only(
        &range("-1", "8"),
        "12:37",
        "lba of disk 0 of partition \"cluster\" must not be negative (got -1)",
    );
    assert_only(
        &range("0", "-8"),
        "12:50",
        "sectors of disk 0 of partition \"cluster\" must not be negative (got -8)",
    );
    // The end, in bytes, must be a u64: sector 2^55 is one past it.
    let last = (1u64 << 55) - 1;
    assert!(range(&format!("{}", last - 1), "1").is_empty());
    assert_only(
        &range(&format!("{last}"), "1"),
        "12:66",
        "disk 0 of partition \"cluster\" (sectors 36028797018963967..36028797018963968) ends at or beyond byte 2^64: byte offsets on a disk are 64-bit",
    );
    let errs = range("0x7fff_ffff_ffff_ffff", "0x7fff_ffff_ffff_ffff");
    assert_only(
        &errs,
        "12:70",
        "disk 0 of partition \"cluster\" (sectors 9223372036854775807..18446744073709551614) ends at or beyond byte 2^64",
    );
}

#[test]
fn at_most_16_disks() {
    let many = |n: usize| vec![disk("gpt = \"x\", read_only = true"); n].join(", ");
    assert!(disks(&many(16), "").is_empty());
    let errs = disks(&many(17), "");
    let entry = disk("gpt = \"x\", read_only = true");
    let col = 10 + 16 * (entry.len() + 2);
    assert_only(
        &errs,
        &format!("12:{col}"),
        "partition \"cluster\" has more than 16 disks: each takes one of its 16 virtio-mmio slots",
    );
}

#[test]
fn disks_share_sectors_only_if_both_are_read_only() {
    let lba = |start: u64, sectors: u64, ro: bool| {
        disk(&format!(
            "lba = {start}, sectors = {sectors}, read_only = {ro}"
        ))
    };
    // Across partitions: writable with writable, writable with read-only.
    let errs = disks(&lba(2048, 4096, false), &lba(4096, 4096, false));
    assert_only(
        &errs,
        "22:37",
        "disk 0 of partition \"ivi\" (sectors 4096..8192, 2 MiB) overlaps disk 0 of partition \"cluster\" (sectors 2048..6144, 2 MiB) on storage \"disk0\": two disks may share sectors only if both are read_only",
    );
    let errs = disks(&lba(2048, 4096, true), &lba(4096, 4096, false));
    assert_only(
        &errs,
        "22:37",
        "(sectors 4096..8192, 2 MiB) overlaps disk 0 of partition \"cluster\" (sectors 2048..6144, 2 MiB, read-only)",
    );
    assert!(disks(&lba(2048, 4096, true), &lba(4096, 4096, true)).is_empty());
    // Adjacent ranges do not overlap.
    assert!(disks(&lba(2048, 2048, false), &lba(4096, 4096, false)).is_empty());
    // Within one partition, the same rule.
    let errs = disks(&format!("{}, {}", lba(0, 100, false), lba(99, 1, true)), "");
    assert_only(
        &errs,
        "12:103",
        "disk 1 of partition \"cluster\" (sectors 99..100, 0x200 bytes, read-only) overlaps disk 0 of partition \"cluster\" (sectors 0..100, 50 KiB)",
    );
    // On different storage devices, the same sectors are different ones.
    let text = with_disks(
        &lba(0, 8, false),
        &lba(0, 8, false).replace("disk0", "disk1"),
        &format!("{DISK0}\n{DISK1}"),
    );
    assert!(errors(&text).is_empty());
}

#[test]
fn gpt_disks_share_a_name_only_if_both_are_read_only() {
    let gpt = |name: &str, ro: bool| disk(&format!("gpt = \"{name}\", read_only = {ro}"));
    let errs = disks(&gpt("data", false), &gpt("data", true));
    assert_only(
        &errs,
        "22:37",
        "disk 0 of partition \"ivi\" (gpt \"data\", read-only) overlaps disk 0 of partition \"cluster\" (gpt \"data\") on storage \"disk0\": two disks may share sectors only if both are read_only",
    );
    assert!(disks(&gpt("data", true), &gpt("data", true)).is_empty());
    assert!(disks(&gpt("data", false), &gpt("Data", false)).is_empty());
    // Where a GPT partition lies is known only at boot.
    assert!(disks(&gpt("data", false), &disk("lba = 0, sectors = 0x10000")).is_empty());
    // Each conflicting pair once, at the later disk.
    let errs = disks(
        &format!("{}, {}", gpt("a", false), gpt("a", false)),
        &gpt("a", false),
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn virtio_window_is_kept_clear() {
    // Guest memory.
    let errs = errors(&with(
        "memory = [ { guest = 0x4000_0000, host = 0x4800_0000",
        "memory = [ { guest = 0x0a20_0000, host = 0x4800_0000",
    ));
    assert_only(
        &errs,
        "14:22",
        "memory of partition \"cluster\" (guest 0xa200000..0xc200000) overlaps the virtio-mmio window (guest 0xb000000..0xb002000) where every partition has its virtio devices",
    );
    // Passthrough devices: the GPIO moved into the window.
    let fx = Fixture::new();
    let reg = |base: u32| {
        [0, base, 0, 0x1000]
            .iter()
            .flat_map(|c: &u32| c.to_be_bytes())
            .collect::<Vec<u8>>()
    };
    let ctx = fx.patched_board(&reg(0x0903_0000), &reg(0x0b00_1000));
    let text = with_devices("\"/pl061@9030000\"", "");
    let errs = crate::load_str(&fx.dir.join("test.toml"), &text, &ctx).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].message,
        "device /pl061@9030000 (guest 0xb001000..0xb002000, mapped guest == host) collides with the virtio-mmio window (guest 0xb000000..0xb002000)"
    );
    // And their interrupts.
    for (intid, slot) in [(96, 0), (111, 15)] {
        let errs = errors(&with_devices(
            &format!("{{ path = \"/pl031@9010000\", interrupts = [{intid}] }}"),
            "",
        ));
        assert_only(
            &errs,
            "12:53",
            &format!(
                "interrupt {intid} of device /pl031@9010000 is the interrupt of virtio-mmio slot {slot}, reserved in every partition"
            ),
        );
    }
    assert!(
        errors(&with_devices(
            "{ path = \"/pl031@9010000\", interrupts = [95, 112] }",
            ""
        ))
        .is_empty()
    );
}
