//! Reading files out of a .deb without unpacking it: `dpkg-deb
//! --fsys-tarfile` (part of dpkg, so on every Debian machine, and fast at
//! the xz decompression) streams the data archive as a plain tar, which is
//! read here and only the wanted files kept, in memory.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, Result, bail};

use crate::process::{Cmd, check};

/// The regular files of `deb` whose paths (relative, without `./`) `want`
/// accepts, by path.
pub fn files(deb: &Path, want: impl Fn(&str) -> bool) -> Result<BTreeMap<String, Vec<u8>>> {
    let cmd = Cmd::new("dpkg-deb").arg("--fsys-tarfile").arg(deb);
    let text = cmd.text().to_string();
    let mut command = cmd.into_command();
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| crate::process::spawn_error(&text, e))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Drain what follows the end-of-archive marker, so dpkg-deb can finish.
    let read = from_tar(&mut stdout, want)
        .and_then(|files| Ok(std::io::copy(&mut stdout, &mut std::io::sink()).map(|_| files)?));
    // Whatever happened, reap dpkg-deb; a read error usually explains a
    // failed exit, so it goes first.
    if read.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().with_context(|| format!("`{text}`"))?;
    let files = read.with_context(|| format!("reading the output of `{text}`"))?;
    check(&text, status)?;
    Ok(files)
}

/// The wanted regular files of a tar stream.
pub fn from_tar(
    stream: impl Read,
    want: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = tar::Archive::new(stream);
    let mut files = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path.strip_prefix("./").unwrap_or(&path).to_string();
        if !want(&path) {
            continue;
        }
        let mut data = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry.read_to_end(&mut data)?;
        if files.insert(path.clone(), data).is_some() {
            bail!("{path} appears twice");
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_wanted_regular_files() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, data: &[u8], kind: tar::EntryType| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, data).unwrap();
        };
        add("./boot/vmlinuz-1", b"kernel", tar::EntryType::Regular);
        add("./boot/config-1", b"config", tar::EntryType::Regular);
        add("./lib/modules/1/kernel", b"", tar::EntryType::Directory);
        let long = format!("./lib/modules/1/kernel/{}/x.ko.xz", "d".repeat(120));
        add(&long, b"ko", tar::EntryType::Regular);
        let tar = builder.into_inner().unwrap();
        let files = from_tar(&tar[..], |p| {
            p.starts_with("boot/vmlinuz") || p.starts_with("lib/")
        })
        .unwrap();
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, ["boot/vmlinuz-1", &long[2..]]);
        assert_eq!(files["boot/vmlinuz-1"], b"kernel");
    }
}
