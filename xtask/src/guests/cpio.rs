//! A writer for the cpio "newc" format, the one the Linux kernel unpacks
//! as an initramfs (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Entries are collected first and written sorted by path, so every folder
//! precedes what it holds and the archive depends only on its contents:
//! owner root, time 0, inode numbers in order.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    CharDevice { major: u32, minor: u32 },
}

#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    /// Permission bits only.
    mode: u32,
}

/// An archive being put together. Paths are relative (`bin/sh`); missing
/// parent folders are added with mode 0755.
#[derive(Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    pub fn dir(&mut self, path: &str) -> Result<()> {
        self.add(path, Kind::Dir, 0o755)
    }

    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> Result<()> {
        self.add(path, Kind::File(data), mode)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.add(path, Kind::Symlink(target.to_string()), 0o777)
    }

    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> Result<()> {
        self.add(path, Kind::CharDevice { major, minor }, mode)
    }

    fn add(&mut self, path: &str, kind: Kind, mode: u32) -> Result<()> {
        let ok = !path.is_empty()
            && !path.starts_with('/')
            && !path.ends_with('/')
            && path
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !ok {
            bail!("cpio: bad path `{path}`");
        }
        if mode & !0o7777 != 0 {
            bail!("cpio: {path}: mode {mode:o} has more than permission bits");
        }
        let mut parent = path;
        while let Some((up, _)) = parent.rsplit_once('/') {
            match self.entries.get(up) {
                Some(Entry {
                    kind: Kind::Dir, ..
                }) => {}
                Some(_) => bail!("cpio: {path}: {up} is not a folder"),
                None => {
                    self.entries.insert(
                        up.to_string(),
                        Entry {
                            kind: Kind::Dir,
                            mode: 0o755,
                        },
                    );
                }
            }
            parent = up;
        }
        match self.entries.get(path) {
            Some(old) if old.kind == Kind::Dir && kind == Kind::Dir => {}
            Some(_) => bail!("cpio: {path} added twice"),
            None => {}
        }
        self.entries.insert(path.to_string(), Entry { kind, mode });
        Ok(())
    }

    /// The archive: every entry in path order, then the trailer.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut ino = 0;
        for (path, entry) in &self.entries {
            ino += 1;
            let (kind_bits, data, rdev): (u32, &[u8], (u32, u32)) = match &entry.kind {
                Kind::Dir => (S_IFDIR, &[], (0, 0)),
                Kind::File(data) => (S_IFREG, data, (0, 0)),
                Kind::Symlink(target) => (S_IFLNK, target.as_bytes(), (0, 0)),
                Kind::CharDevice { major, minor } => (S_IFCHR, &[], (*major, *minor)),
            };
            let nlink = if entry.kind == Kind::Dir { 2 } else { 1 };
            write_entry(
                &mut out,
                path,
                ino,
                kind_bits | entry.mode,
                nlink,
                rdev,
                data,
            );
        }
        write_entry(&mut out, "TRAILER!!!", 0, 0, 1, (0, 0), &[]);
        out
    }
}

/// One header (13 fields of 8 hex digits after the magic), the name with
/// its NUL, the data, each padded to 4 bytes.
fn write_entry(
    out: &mut Vec<u8>,
    name: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &[u8],
) {
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        u32::try_from(data.len()).expect("cpio entries are below 4 GiB"),
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        u32::try_from(name.len() + 1).expect("short names"),
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry as read back: (name, mode, rdev, data).
    type Parsed = (String, u32, (u32, u32), Vec<u8>);

    /// A minimal newc reader for the tests.
    fn parse(mut bytes: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        let start = bytes.len();
        loop {
            assert_eq!(&bytes[..6], b"070701");
            assert_eq!((start - bytes.len()) % 4, 0);
            let field = |i: usize| {
                let text = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(text, 16).unwrap() as usize
            };
            let (mode, size, rdev, namesize) =
                (field(1), field(6), (field(9), field(10)), field(11));
            let name_end = 110 + namesize;
            let name = std::str::from_utf8(&bytes[110..name_end - 1])
                .unwrap()
                .to_string();
            assert_eq!(bytes[name_end - 1], 0);
            let data_start = name_end.next_multiple_of(4);
            let data = bytes[data_start..data_start + size].to_vec();
            bytes = &bytes[(data_start + size).next_multiple_of(4)..];
            if name == "TRAILER!!!" {
                assert!(bytes.is_empty());
                return out;
            }
            out.push((name, mode as u32, (rdev.0 as u32, rdev.1 as u32), data));
        }
    }

    #[test]
    fn entries_parents_and_padding() {
        let mut a = Archive::new();
        a.file("init", 0o755, b"#!/bin/sh\n".to_vec()).unwrap();
        a.file("bin/busybox", 0o755, vec![7; 5]).unwrap();
        a.symlink("bin/sh", "busybox").unwrap();
        a.char_device("dev/console", 0o600, 5, 1).unwrap();
        a.dir("lib/modules/6.12").unwrap();
        a.dir("lib/modules").unwrap();
        let bytes = a.finish();
        assert_eq!(bytes.len() % 4, 0);
        let entries = parse(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "dev/console",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/6.12"
            ]
        );
        let find = |n: &str| entries.iter().find(|e| e.0 == n).unwrap();
        assert_eq!(find("bin").1, 0o040_755);
        assert_eq!(find("bin/busybox").1, 0o100_755);
        assert_eq!(find("bin/busybox").3, vec![7; 5]);
        assert_eq!(find("bin/sh").1, 0o120_777);
        assert_eq!(find("bin/sh").3, b"busybox");
        assert_eq!(find("dev/console").1, 0o020_600);
        assert_eq!(find("dev/console").2, (5, 1));
        assert_eq!(find("init").3, b"#!/bin/sh\n");
    }

    #[test]
    fn refuses_bad_paths_and_clashes() {
        let mut a = Archive::new();
        for bad in ["", "/init", "a//b", "a/../b", "a/", "./a"] {
            assert!(a.dir(bad).is_err(), "{bad:?}");
        }
        a.file("x", 0o644, Vec::new()).unwrap();
        assert!(a.file("x", 0o644, Vec::new()).is_err());
        assert!(a.file("x/y", 0o644, Vec::new()).is_err());
        assert!(a.file("z", 0o100_644, Vec::new()).is_err());
    }

    #[test]
    fn same_contents_same_bytes() {
        let build = |order: &[&str]| {
            let mut a = Archive::new();
            for name in order {
                a.file(name, 0o644, name.as_bytes().to_vec()).unwrap();
            }
            a.finish()
        };
        assert_eq!(build(&["a/b", "c", "a/d"]), build(&["c", "a/d", "a/b"]));
    }
}
