//! Kernel modules: which ones a guest needs, in which order, and the
//! `modules.dep` that lets busybox's `modprobe` find them.
//!
//! Dependencies come from each module's own `.modinfo` section
//! (`depends=a,b`), the same source `depmod` uses; `modules.builtin` says
//! which drivers are part of the kernel already.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result, bail};

/// A module file as shipped: its path below `lib/modules/<release>/` and
/// its (possibly xz-compressed) bytes.
pub type Shipped = BTreeMap<String, Vec<u8>>;

/// A module chosen for the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Module name, `-` written as `_`.
    pub name: String,
    /// Path below `lib/modules/<release>/`, without compression suffix.
    pub path: String,
    /// Direct dependencies (names).
    pub depends: Vec<String>,
    /// The uncompressed .ko.
    pub data: Vec<u8>,
}

/// What a guest's module list comes to.
#[derive(Debug, Default)]
pub struct Selection {
    /// Modules to ship, each after its dependencies.
    pub modules: Vec<Module>,
    /// Requested modules the kernel has built in.
    pub builtin: Vec<String>,
    /// Requested modules that are shipped, in the requested order: what
    /// /init loads.
    pub load: Vec<String>,
}

/// `virtio-gpu` and `virtio_gpu` are the same module.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of `kernel/drivers/gpu/drm/virtio/virtio-gpu.ko.xz`.
pub fn name_of(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = file
        .strip_suffix(".ko.xz")
        .or_else(|| file.strip_suffix(".ko"))?;
    Some(normalize(stem))
}

/// Names listed in `modules.builtin`.
pub fn builtin_names(modules_builtin: &str) -> BTreeSet<String> {
    modules_builtin
        .lines()
        .filter_map(|l| name_of(l.trim()))
        .collect()
}

/// Resolves `wanted` against the kernel's `modules.builtin` and its shipped
/// modules: adds dependencies, decompresses what is needed, and orders it
/// so each module follows its dependencies.
pub fn select(wanted: &[String], modules_builtin: &str, shipped: &Shipped) -> Result<Selection> {
    let builtin = builtin_names(modules_builtin);
    let mut by_name: BTreeMap<String, &str> = BTreeMap::new();
    for path in shipped.keys() {
        if let Some(name) = name_of(path) {
            by_name.insert(name, path);
        }
    }
    let mut selection = Selection::default();
    let mut done = BTreeSet::new();
    for name in wanted {
        let name = normalize(name);
        if builtin.contains(&name) {
            selection.builtin.push(name);
            continue;
        }
        if !by_name.contains_key(&name) {
            bail!("module `{name}` is neither built into the kernel nor shipped with it");
        }
        add(
            &name,
            &builtin,
            &by_name,
            shipped,
            &mut done,
            &mut Vec::new(),
            &mut selection.modules,
        )?;
        selection.load.push(name);
    }
    Ok(selection)
}

/// Depth first: dependencies, then the module. `stack` catches cycles.
fn add(
    name: &str,
    builtin: &BTreeSet<String>,
    by_name: &BTreeMap<String, &str>,
    shipped: &Shipped,
    done: &mut BTreeSet<String>,
    stack: &mut Vec<String>,
    out: &mut Vec<Module>,
) -> Result<()> {
    if done.contains(name) || builtin.contains(name) {
        return Ok(());
    }
    if stack.iter().any(|s| s == name) {
        bail!(
            "modules depend on each other in a cycle: {} -> {name}",
            stack.join(" -> ")
        );
    }
    let path = *by_name.get(name).with_context(|| {
        format!(
            "module `{name}` (needed by `{}`) is not shipped",
            stack.join("` <- `")
        )
    })?;
    let data = decompress(path, &shipped[path])?;
    let depends: Vec<String> = modinfo(&data)
        .with_context(|| format!("{path}: cannot read .modinfo"))?
        .into_iter()
        .filter(|(key, _)| key == "depends")
        .flat_map(|(_, value)| {
            value
                .split(',')
                .filter(|d| !d.is_empty())
                .map(normalize)
                .collect::<Vec<_>>()
        })
        .collect();
    stack.push(name.to_string());
    for dep in &depends {
        add(dep, builtin, by_name, shipped, done, stack, out)?;
    }
    stack.pop();
    done.insert(name.to_string());
    out.push(Module {
        name: name.to_string(),
        path: path.strip_suffix(".xz").unwrap_or(path).to_string(),
        depends,
        data,
    });
    Ok(())
}

/// A .ko as it is, or a .ko.xz decompressed.
fn decompress(path: &str, data: &[u8]) -> Result<Vec<u8>> {
    if path.ends_with(".ko") {
        return Ok(data.to_vec());
    }
    let mut out = Vec::new();
    lzma_rs::xz_decompress(&mut &data[..], &mut out)
        .map_err(|e| anyhow::anyhow!("{path}: cannot decompress: {e}"))?;
    Ok(out)
}

/// `modules.dep` for `modules` (in load order): one line per module, its
/// path, then every module it needs directly or indirectly, the last to
/// load first (the order `depmod` writes and `modprobe` reads backwards).
pub fn modules_dep(modules: &[Module]) -> String {
    let position: BTreeMap<&str, usize> = modules
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let mut out = String::new();
    for (i, module) in modules.iter().enumerate() {
        let mut needed = BTreeSet::new();
        let mut todo: Vec<&str> = module.depends.iter().map(String::as_str).collect();
        while let Some(dep) = todo.pop() {
            if let Some(&at) = position.get(dep)
                && needed.insert(at)
            {
                todo.extend(modules[at].depends.iter().map(String::as_str));
            }
        }
        debug_assert!(needed.iter().all(|&at| at < i));
        out.push_str(&module.path);
        out.push(':');
        for &at in needed.iter().rev() {
            out.push(' ');
            out.push_str(&modules[at].path);
        }
        out.push('\n');
    }
    out
}

/// The `key=value` strings of an ELF64 little-endian object's `.modinfo`
/// section.
pub fn modinfo(elf: &[u8]) -> Result<Vec<(String, String)>> {
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        bail!("not a 64-bit little-endian ELF file");
    }
    let shoff = le64(elf, 0x28)? as usize;
    let shentsize = le16(elf, 0x3a)? as usize;
    let shnum = le16(elf, 0x3c)? as usize;
    let shstrndx = le16(elf, 0x3e)? as usize;
    let section = |i: usize| -> Result<(u32, &[u8])> {
        let header = shoff + i * shentsize;
        let name = le32(elf, header)?;
        let offset = le64(elf, header + 24)? as usize;
        let size = le64(elf, header + 32)? as usize;
        let data = elf
            .get(offset..offset.saturating_add(size))
            .context("a section lies outside the file")?;
        Ok((name, data))
    };
    let (_, names) = section(shstrndx)?;
    for i in 0..shnum {
        let (name, data) = section(i)?;
        let name = names
            .get(name as usize..)
            .and_then(|rest| rest.split(|&b| b == 0).next())
            .unwrap_or_default();
        if name == b".modinfo" {
            return Ok(data
                .split(|&b| b == 0)
                .filter_map(|entry| {
                    let text = std::str::from_utf8(entry).ok()?;
                    let (key, value) = text.split_once('=')?;
                    Some((key.to_string(), value.to_string()))
                })
                .collect());
        }
    }
    bail!("no .modinfo section")
}

fn le16(data: &[u8], at: usize) -> Result<u16> {
    let b = data.get(at..at + 2).context("ELF header is cut short")?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn le32(data: &[u8], at: usize) -> Result<u32> {
    let b = data.get(at..at + 4).context("ELF header is cut short")?;
    Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

fn le64(data: &[u8], at: usize) -> Result<u64> {
    let b = data.get(at..at + 8).context("ELF header is cut short")?;
    Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 object with a section-name table and a `.modinfo`
    /// section holding `entries`.
    fn fake_ko(entries: &[&str]) -> Vec<u8> {
        let mut modinfo = Vec::new();
        for e in entries {
            modinfo.extend_from_slice(e.as_bytes());
            modinfo.push(0);
        }
        let names = b"\0.shstrtab\0.modinfo\0".to_vec();
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let names_at = elf.len();
        elf.extend_from_slice(&names);
        let modinfo_at = elf.len();
        elf.extend_from_slice(&modinfo);
        elf.resize(elf.len().next_multiple_of(8), 0);
        let shoff = elf.len();
        let mut header = |name: u32, offset: usize, size: usize| {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[24..32].copy_from_slice(&(offset as u64).to_le_bytes());
            h[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&h);
        };
        header(0, 0, 0);
        header(1, names_at, names.len());
        header(11, modinfo_at, modinfo.len());
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        elf
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut &data[..], &mut out).unwrap();
        out
    }

    /// virtio_gpu -> drm_kms_helper, drm ; drm_kms_helper -> drm ;
    /// snd-pcm -> snd, snd-timer ; snd-timer -> snd ; one built-in dep.
    fn shipped() -> Shipped {
        let mut s = Shipped::new();
        let mut ship = |path: &str, depends: &str| {
            let ko = fake_ko(&["license=GPL", &format!("depends={depends}"), "intree=Y"]);
            if path.ends_with(".xz") {
                s.insert(path.to_string(), xz(&ko));
            } else {
                s.insert(path.to_string(), ko);
            }
        };
        ship("kernel/gpu/virtio-gpu.ko.xz", "drm_kms_helper,drm,virtio");
        ship("kernel/gpu/drm_kms_helper.ko.xz", "drm");
        ship("kernel/gpu/drm.ko.xz", "");
        ship("kernel/sound/snd-pcm.ko", "snd,snd-timer");
        ship("kernel/sound/snd-timer.ko.xz", "snd");
        ship("kernel/sound/snd.ko.xz", "");
        ship("kernel/loop/a.ko.xz", "b");
        ship("kernel/loop/b.ko.xz", "a");
        s
    }

    const BUILTIN: &str = "kernel/drivers/virtio/virtio.ko\nkernel/drivers/tty/amba-pl011.ko\n";

    #[test]
    fn names() {
        assert_eq!(
            name_of("kernel/a/virtio-gpu.ko.xz").as_deref(),
            Some("virtio_gpu")
        );
        assert_eq!(name_of("kernel/a/snd.ko").as_deref(), Some("snd"));
        assert_eq!(name_of("kernel/a/modules.order"), None);
        assert!(builtin_names(BUILTIN).contains("amba_pl011"));
    }

    #[test]
    fn reads_modinfo() {
        let info = modinfo(&fake_ko(&["depends=a,b", "name=x"])).unwrap();
        assert_eq!(
            info,
            [
                ("depends".into(), "a,b".into()),
                ("name".into(), "x".into())
            ]
        );
        assert!(modinfo(b"\x7fELF\x01\x01").is_err());
    }

    #[test]
    fn dependencies_first_builtins_skipped() {
        let wanted = ["virtio-gpu", "amba_pl011", "snd_pcm", "drm"].map(String::from);
        let sel = select(&wanted, BUILTIN, &shipped()).unwrap();
        let order: Vec<&str> = sel.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "drm",
                "drm_kms_helper",
                "virtio_gpu",
                "snd",
                "snd_timer",
                "snd_pcm"
            ]
        );
        assert_eq!(sel.builtin, ["amba_pl011"]);
        assert_eq!(sel.load, ["virtio_gpu", "snd_pcm", "drm"]);
        assert_eq!(sel.modules[2].path, "kernel/gpu/virtio-gpu.ko");
        assert_eq!(&sel.modules[2].data[..4], b"\x7fELF", "decompressed");
        assert_eq!(
            modules_dep(&sel.modules),
            "kernel/gpu/drm.ko:\n\
             kernel/gpu/drm_kms_helper.ko: kernel/gpu/drm.ko\n\
             kernel/gpu/virtio-gpu.ko: kernel/gpu/drm_kms_helper.ko kernel/gpu/drm.ko\n\
             kernel/sound/snd.ko:\n\
             kernel/sound/snd-timer.ko: kernel/sound/snd.ko\n\
             kernel/sound/snd-pcm.ko: kernel/sound/snd-timer.ko kernel/sound/snd.ko\n"
        );
    }

    #[test]
    fn unknown_and_cyclic_modules_fail() {
        let err = select(&["nope".into()], BUILTIN, &shipped()).unwrap_err();
        assert!(
            err.to_string().contains("`nope` is neither built into"),
            "{err}"
        );
        let err = select(&["a".into()], BUILTIN, &shipped()).unwrap_err();
        assert!(format!("{err:#}").contains("cycle"), "{err:#}");
    }
}
