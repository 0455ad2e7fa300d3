//! A scratch directory with fake partition images, and a context pointing
//! at it and at the real board folder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Context, Diagnostic, Loaded};

/// The test partitions' images (`<bin>.img` for every `[[bin]]` of
/// partitions/testkit), which the repository's configs name: faked as
/// small arm64 Images.
fn testkit_images() -> Vec<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../partitions/testkit/Cargo.toml");
    let text = std::fs::read_to_string(manifest).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    let bins = manifest["bin"]
        .as_array()
        .expect("testkit lists its binaries");
    bins.iter()
        .map(|b| format!("{}.img", b["name"].as_str().unwrap()))
        .collect()
}

/// Images the repository's configs name that may not (yet) be a testkit
/// `[[bin]]`; faked all the same.
const EXTRA_IMAGES: [&str; 2] = ["odometer.img", "cluster.img"];

/// The Linux partition's kernel and initramfs (`cargo xtask guests`), faked
/// with the real kernel's layout: text_offset 0, 44 MiB including bss, and
/// a 2 MiB initramfs.
const IVI_IMAGE: &str = "ivi/Image";
const IVI_IMAGE_SIZE: u64 = 44 << 20;
const IVI_INITRD: &str = "ivi/initramfs.cpio.gz";
const IVI_INITRD_SIZE: u64 = 2 << 20;

/// A temporary directory, removed when dropped.
pub struct Fixture {
    pub dir: PathBuf,
    pub ctx: Context,
}

impl Fixture {
    pub fn new() -> Fixture {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("config-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let build_dir = dir.join("build");
        std::fs::create_dir_all(&build_dir).unwrap();
        let mut images = testkit_images();
        for extra in EXTRA_IMAGES {
            if !images.iter().any(|i| i == extra) {
                images.push(extra.to_owned());
            }
        }
        for image in images {
            std::fs::write(build_dir.join(image), arm64_image(0, 0x1_0000)).unwrap();
        }
        std::fs::create_dir_all(build_dir.join("ivi")).unwrap();
        std::fs::write(build_dir.join(IVI_IMAGE), arm64_image(0, IVI_IMAGE_SIZE)).unwrap();
        let initrd = std::fs::File::create(build_dir.join(IVI_INITRD)).unwrap();
        initrd.set_len(IVI_INITRD_SIZE).unwrap();
        let ctx = Context {
            boards_dir: boards_dir().canonicalize().unwrap(),
            build_dir,
        };
        Fixture { dir, ctx }
    }

    /// Loads `text` as if it were `<dir>/test.toml`.
    pub fn load(&self, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
        crate::load_str(&self.dir.join("test.toml"), text, &self.ctx)
    }

    /// The messages of the diagnostics `text` gives, as `line:col: message`.
    pub fn errors(&self, text: &str) -> Vec<String> {
        match self.load(text) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
                .collect(),
        }
    }

    /// A file of `len` bytes (sparse: big ones cost nothing).
    pub fn sized(&self, name: &str, len: u64) -> PathBuf {
        let path = self.write(name, b"");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len))
            .unwrap();
        path
    }

    /// A copy of the qemu-virt board whose DTB has the byte string `from`
    /// (which must occur exactly once) replaced by `to`, and a context that
    /// points at it.
    pub fn patched_board(&self, from: &[u8], to: &[u8]) -> Context {
        assert_eq!(from.len(), to.len(), "a patch keeps the DTB's layout");
        let real = boards_dir().join("qemu-virt");
        let mut dtb = std::fs::read(real.join("qemu-virt.dtb")).unwrap();
        let at: Vec<usize> = dtb
            .windows(from.len())
            .enumerate()
            .filter(|(_, w)| *w == from)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 1, "{from:02x?} occurs {} times", at.len());
        dtb[at[0]..at[0] + to.len()].copy_from_slice(to);
        let board = self.dir.join("boards/qemu-virt");
        std::fs::create_dir_all(&board).unwrap();
        std::fs::write(board.join("qemu-virt.dtb"), dtb).unwrap();
        std::fs::copy(real.join("board.toml"), board.join("board.toml")).unwrap();
        Context {
            boards_dir: self.dir.join("boards"),
            build_dir: self.ctx.build_dir.clone(),
        }
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn boards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../board")
}

/// A 64-byte arm64 Image header: enough for the validator, which reads
/// nothing else.
pub fn arm64_image(text_offset: u64, image_size: u64) -> Vec<u8> {
    let mut header = vec![0u8; 64];
    header[8..16].copy_from_slice(&text_offset.to_le_bytes());
    header[16..24].copy_from_slice(&image_size.to_le_bytes());
    header[56..60].copy_from_slice(b"ARM\x64");
    header
}

/// A valid two-partition config for the rules tests to break one piece
/// at a time. Line numbers matter to some tests: `board` is on line 1.
pub const BASE: &str = r#"board = "qemu-virt"

[hypervisor]
memory = { base = 0x4000_0000, size = 0x0800_0000 }
console = "/pl011@9000000"

[[partition]]
name = "cluster"
criticality = "asil-b"
priority = 200
cpus = [1]
image = "@/hello.img"
on_fault = "restart"
memory = [ { guest = 0x4000_0000, host = 0x4800_0000, size = 0x0200_0000 } ]

[[partition]]
name = "ivi"
criticality = "qm"
priority = 10
cpus = [2, 3]
image = "@/hello.img"
memory = [ { guest = 0x4000_0000, host = 0x5000_0000, size = 0x0400_0000 } ]
"#;

/// `BASE` with the first occurrence of `from` (which must exist) replaced.
pub fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE has no {from:?}");
    BASE.replacen(from, to, 1)
}

/// `BASE` with the `n`th (0-based) occurrence of `from` replaced.
pub fn with_nth(n: usize, from: &str, to: &str) -> String {
    let (at, _) = BASE
        .match_indices(from)
        .nth(n)
        .unwrap_or_else(|| panic!("BASE has no {from:?} #{n}"));
    format!("{}{to}{}", &BASE[..at], &BASE[at + from.len()..])
}
