//! The config files in the repository: every valid one loads, and every
//! file in `invalid/` fails with the diagnostic its first line expects.

use std::path::{Path, PathBuf};

use super::fixture::Fixture;

fn configs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn valid_configs_load() {
    let fx = Fixture::new();
    let mut files = configs("qemu-virt");
    files.extend(configs("qemu-virt/tests"));
    files.extend(configs("qemu-virt/examples"));
    files.extend(configs("imx8mp-evk/tests"));
    files.extend(configs("imx8mp-evk/examples"));
    assert!(
        files.len() >= 8,
        "default.toml, the six scenario configs and an example"
    );
    for file in files {
        let loaded = crate::load(&file, &fx.ctx).unwrap_or_else(|diagnostics| {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            panic!("{} is invalid:\n{}", file.display(), lines.join("\n"))
        });
        assert_eq!(loaded.dependencies[0], file);
    }
}

#[test]
fn default_config_is_as_specified() {
    let fx = Fixture::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu-virt/default.toml");
    let summary = crate::check(&file, &fx.ctx).unwrap();
    let build = fx.ctx.build_dir.canonicalize().unwrap();
    let expected = format!(
        "board qemu-virt ({dtb})
hypervisor: host 0x40000000..0x48000000 (128 MiB), console /pl011@9000000
storage \"disk0\": /virtio_mmio@a003e00 at 0xa003e00..0xa004000 interrupts [79], I/O on the service core, 1024 KiB of lower priorities in flight, crash records in GPT partition \"hv-records\"
display \"instrument\": /virtio_mmio@a003c00 at 0xa003c00..0xa003e00 interrupts [78], 1920x720 at 60 Hz, compositor on the service core
display \"center\": /virtio_mmio@a003a00 at 0xa003a00..0xa003c00 interrupts [77], 1280x800 at 60 Hz, compositor on the service core
touch panel \"panel\": /virtio_mmio@a003800 at 0xa003800..0xa003a00 interrupts [76], pointer /virtio_mmio@a003600 at 0xa003600..0xa003800 interrupts [75], on display \"center\", driver on the service core
audio output \"speaker\": /virtio_mmio@a003400 at 0xa003400..0xa003600 interrupts [74], 3 periods of 10 ms ahead, mixed on the service core
partition \"cluster\": asil-b, priority 200, cpus [1], on_fault restart, watchdog off
  memory guest 0x40000000..0x41000000 -> host 0x48000000..0x49000000 (16 MiB)
  disk 0 (virtio-mmio guest 0xb000000, INTID 96): storage \"disk0\" gpt \"cluster-odo\"
  gpu (virtio-mmio guest 0xb000200, INTID 97): 12 MiB of display memory, 64 resources
  input (virtio-mmio guest 0xb000400, INTID 98): touch panel \"panel\", contacts in view 1 (1280x100)
  sound (virtio-mmio guest 0xb000600, INTID 99): audio output \"speaker\", audio priority 200, gain 0 dB, -20 dB while ducked
  view 0 on display \"instrument\": 1920x720 at (0, 0)
  view 1 on display \"center\": 1280x100 at (0, 700)
  protected on display \"instrument\": 1920x80 at (0, 0)
  protected on display \"center\": 1280x100 at (0, 700)
  image {build}/cluster.img (64 bytes)
  bootargs \"cluster.window=560,80,800,320\"
partition \"ivi\": qm, priority 10, cpus [2, 3], on_fault restart, watchdog on
  memory guest 0x40000000..0x50000000 -> host 0x50000000..0x60000000 (256 MiB)
  disk 0 (virtio-mmio guest 0xb000000, INTID 96): storage \"disk0\" gpt \"ivi-data\"
  gpu (virtio-mmio guest 0xb000200, INTID 97): 32 MiB of display memory, 64 resources
  input (virtio-mmio guest 0xb000400, INTID 98): touch panel \"panel\", contacts in view 0 (1280x800)
  sound (virtio-mmio guest 0xb000600, INTID 99): audio output \"speaker\", audio priority 10, gain 0 dB, -20 dB while ducked
  view 0 on display \"center\": 1280x800 at (0, 0)
  view 1 on display \"instrument\": 800x320 at (560, 80)
  image {build}/ivi/Image (64 bytes)
  initrd {build}/ivi/initramfs.cpio.gz (2097152 bytes)
  bootargs \"console=ttyAMA0 panic=1 ivi.cpus=2 ivi.mem=256 ivi.allow=watchdog@9100000,virtio_mmio@b000000,virtio_mmio@b000200,virtio_mmio@b000400,virtio_mmio@b000600 ivi.test=draw ivi.touch\"
",
        dtb = fx.ctx.boards_dir.join("qemu-virt/qemu-virt.dtb").display(),
        build = build.display(),
    );
    assert_eq!(summary, expected);
}

#[test]
fn storage_config_is_as_specified() {
    let fx = Fixture::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("qemu-virt/tests/storage.toml");
    let summary = crate::check(&file, &fx.ctx).unwrap();
    let build = fx.ctx.build_dir.canonicalize().unwrap();
    let expected = format!(
        "board qemu-virt ({dtb})
hypervisor: host 0x40000000..0x48000000 (128 MiB), console /pl011@9000000
storage \"disk0\": /virtio_mmio@a003e00 at 0xa003e00..0xa004000 interrupts [79], I/O on the service core, 1024 KiB of lower priorities in flight
partition \"cluster\": asil-b, priority 200, cpus [1], on_fault stop, watchdog off
  memory guest 0x40000000..0x41000000 -> host 0x48000000..0x49000000 (16 MiB)
  disk 0 (virtio-mmio guest 0xb000000, INTID 96): storage \"disk0\" gpt \"cluster-odo\"
  image {build}/odometer.img (64 bytes)
  bootargs \"odometer.reboot=3\"
partition \"ivi\": qm, priority 10, cpus [2, 3], on_fault stop, watchdog off
  memory guest 0x40000000..0x50000000 -> host 0x50000000..0x60000000 (256 MiB)
  disk 0 (virtio-mmio guest 0xb000000, INTID 96): storage \"disk0\" gpt \"ivi-data\"
  disk 1 (virtio-mmio guest 0xb000200, INTID 97): storage \"disk0\" gpt \"shared-ro\", read-only
  image {build}/ivi/Image (64 bytes)
  initrd {build}/ivi/initramfs.cpio.gz (2097152 bytes)
  bootargs \"console=ttyAMA0 panic=1 ivi.test=storage\"
",
        dtb = fx.ctx.boards_dir.join("qemu-virt/qemu-virt.dtb").display(),
        build = build.display(),
    );
    assert_eq!(summary, expected);
}

/// The GPT names the storage test config's disks use are partitions of
/// the disk image `cargo xtask disk` builds for the board.
#[test]
fn storage_config_names_partitions_of_the_board_disk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let Ok(disk) = std::fs::read_to_string(root.join("board/qemu-virt/disk.toml")) else {
        return;
    };
    let disk: toml::Table = toml::from_str(&disk).unwrap();
    let names: Vec<&str> = disk["partition"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let fx = Fixture::new();
    let loaded = crate::load(&root.join("config/qemu-virt/tests/storage.toml"), &fx.ctx).unwrap();
    for p in &loaded.system.partitions {
        for d in &p.disks {
            if let crate::OwnedDiskExtent::Gpt(name) = &d.extent {
                assert!(names.contains(&name.as_str()), "{name} not in {names:?}");
            }
        }
    }
}

/// `# expect: <line>:<col>: <text>` → (line, col, text).
fn expectation(file: &Path) -> (usize, usize, String) {
    let text = std::fs::read_to_string(file).unwrap();
    let first = text.lines().next().unwrap_or_default();
    let parse = || {
        let rest = first.strip_prefix("# expect: ")?;
        let (line, rest) = rest.split_once(':')?;
        let (col, message) = rest.split_once(": ")?;
        Some((line.parse().ok()?, col.parse().ok()?, message.to_owned()))
    };
    parse().unwrap_or_else(|| {
        panic!(
            "{}: first line must be `# expect: <line>:<col>: <text>`",
            file.display()
        )
    })
}

#[test]
fn invalid_configs_fail_as_expected() {
    let fx = Fixture::new();
    let files = configs("qemu-virt/invalid");
    assert!(files.len() >= 16, "one file per error class");
    let mut failures = Vec::new();
    for file in &files {
        let (line, col, text) = expectation(file);
        match crate::load(file, &fx.ctx) {
            Ok(_) => failures.push(format!(
                "{}: loaded, expected {line}:{col}: {text}",
                file.display()
            )),
            Err(diagnostics) => {
                let first = &diagnostics[0];
                if (first.line, first.col) != (line, col) || !first.message.contains(&text) {
                    failures.push(format!(
                        "{}: expected {line}:{col}: {text}\n  got {first}",
                        file.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The first TOML block after `heading` in docs/config.md.
fn documented_example(heading: &str) -> String {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md");
    let doc = std::fs::read_to_string(&doc).unwrap();
    let section = &doc[doc.find(heading).expect("example section")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    section[start..start + section[start..].find("```").unwrap()].to_owned()
}

/// Loads a documented example, or panics with its diagnostics.
fn load_documented(heading: &str, fx: &Fixture) -> crate::Loaded {
    fx.load(&documented_example(heading))
        .unwrap_or_else(|diagnostics| {
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            panic!(
                "the example of {heading:?} is invalid:\n{}",
                lines.join("\n")
            )
        })
}

/// The annotated example in docs/config.md is a valid config.
#[test]
fn documented_example_is_valid() {
    load_documented("## An annotated example", &Fixture::new());
}

/// So is the cockpit of its Displays section, with the display memory it
/// says.
#[test]
fn documented_cockpit_is_valid() {
    let loaded = load_documented("## Displays", &Fixture::new());
    let system = &loaded.system;
    let names: Vec<&str> = system.displays.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["instrument", "center"]);
    let [cluster, ivi] = &system.partitions[..] else {
        panic!("two partitions")
    };
    assert_eq!((cluster.views.len(), cluster.protected.len()), (2, 2));
    assert_eq!((ivi.views.len(), ivi.protected.len()), (2, 0));
    assert_eq!(cluster.display_memory, 12 << 20);
    assert_eq!(ivi.display_memory, 10 << 20);
    assert_eq!(cluster.display_resources, 64);
}
