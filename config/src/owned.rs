//! The validated system in owned form, as the host sees it: the same
//! shape as [`crate::model`], but with images and initrds still as paths
//! (codegen turns them into `include_bytes!`).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::layout;
use crate::model::{Criticality, Input, MemoryMap, OnFault, Protected, Region, ScreenRect, View};

/// A config that passed validation, and what it was built from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The config file.
    pub source: PathBuf,
    pub system: OwnedSystem,
    /// The config file, the board files and every image and initrd, for
    /// `cargo:rerun-if-changed`.
    pub dependencies: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSystem {
    pub board: String,
    /// The board device tree the config was checked against.
    pub board_dtb: PathBuf,
    /// The board's cores (`/cpus/cpu@N` `reg`), in device-tree order.
    pub board_cpus: Vec<u64>,
    pub hypervisor: OwnedHypervisor,
    pub partitions: Vec<OwnedPartition>,
    /// The mediated block devices, in config order.
    pub storage: Vec<OwnedStorage>,
    /// The displays, in config order.
    pub displays: Vec<OwnedDisplay>,
    /// The touch panels, in config order.
    pub touch: Vec<OwnedTouch>,
    /// The audio outputs, in config order.
    pub audio: Vec<OwnedAudio>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedHypervisor {
    pub memory: Region,
    /// Device-tree path of the console UART, alias resolved.
    pub console: String,
    /// The console's `reg`, as the device tree gives it.
    pub console_regions: Vec<Region>,
    /// The console's SPIs (GIC INTIDs), as the device tree gives them.
    pub console_interrupts: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPartition {
    pub name: String,
    pub criticality: Criticality,
    pub priority: u8,
    pub cpus: Vec<u64>,
    pub memory: Vec<MemoryMap>,
    pub devices: Vec<OwnedDevice>,
    /// With `devices = { all_except = [...] }`: that `devices` are what the
    /// board had left for it, and what was left out. Host-side only: the
    /// generated model has the devices alone, as if listed.
    pub all_except: Option<AllExcept>,
    /// Virtual disks; disk n is virtio-mmio slot n.
    pub disks: Vec<OwnedDisk>,
    /// Absolute path of the kernel image.
    pub image: PathBuf,
    /// Size of the image file in bytes.
    pub image_len: u64,
    /// The initial RAM disk, if the partition has one.
    pub initrd: Option<OwnedInitrd>,
    pub bootargs: String,
    pub on_fault: OnFault,
    /// Whether the partition has the virtual SP805 watchdog.
    pub watchdog: bool,
    /// Its views; view n is scanout n of its virtio-gpu device.
    pub views: Vec<View>,
    /// The screen regions it protects.
    pub protected: Vec<Protected>,
    /// Bytes of display memory (0 without views).
    pub display_memory: u64,
    /// Most virtio-gpu resources at once (0 without views).
    pub display_resources: u32,
    /// Whether it gets an input device per touch panel on whose display it
    /// has a view.
    pub touch: bool,
    /// Its stream on an audio output, if it has `audio`.
    pub audio: Option<OwnedPartitionAudio>,
}

impl OwnedPartition {
    /// The virtio-mmio slot of its virtio-gpu device, as
    /// [`crate::model::Partition::gpu_slot`].
    pub fn gpu_slot(&self) -> Option<usize> {
        (!self.views.is_empty()).then_some(self.disks.len())
    }

    /// The virtio-mmio slot of its virtio-snd device, if it has `audio`:
    /// after its disks, virtio-gpu and input devices, as
    /// [`crate::model::Partition::sound_slot`].
    pub fn sound_slot(&self, touch: &[OwnedTouch]) -> Option<usize> {
        self.audio?;
        Some(self.disks.len() + usize::from(!self.views.is_empty()) + self.inputs(touch).len())
    }

    /// Its virtio-input devices, one per panel of `touch` (the system's
    /// panels) on whose display it has a view, in slot order after its
    /// virtio-gpu device, as [`crate::model::Partition::inputs`].
    pub fn inputs(&self, touch: &[OwnedTouch]) -> Vec<Input> {
        if !self.touch {
            return Vec::new();
        }
        let first = self.disks.len() + 1;
        touch
            .iter()
            .enumerate()
            .filter_map(|(panel, t)| {
                let view = self.views.iter().position(|v| v.display == t.display)?;
                Some((panel, view))
            })
            .enumerate()
            .map(|(n, (panel, view))| Input {
                panel,
                slot: first + n,
                view,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedInitrd {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Its size in bytes (not 0).
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedDevice {
    /// Device-tree path, alias resolved.
    pub path: String,
    /// The device's `reg`, exactly as the device tree gives it (not
    /// rounded to pages), translated to CPU physical addresses.
    pub regions: Vec<Region>,
    /// GIC INTIDs (SPIs).
    pub interrupts: Vec<u32>,
}

/// How a partition's `devices = { all_except = [...] }` was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllExcept {
    /// The except list, aliases resolved, in file order.
    pub except: Vec<String>,
    /// The devices it would have had but for a rule they break, in
    /// device-tree order.
    pub left_out: Vec<LeftOut>,
}

/// A device `all_except` left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// Device-tree path.
    pub path: String,
    /// Each rule it breaks, worded as the error an explicit entry would get.
    pub reasons: Vec<String>,
}

impl LeftOut {
    /// The first reason, and how many more there are.
    pub fn why(&self) -> String {
        match self.reasons.as_slice() {
            [] => "no reason given".to_owned(),
            [one] => one.clone(),
            [first, more @ ..] => format!("{first} (and {} more)", more.len()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedStorage {
    pub name: String,
    /// Device-tree path of the virtio-mmio node, alias resolved.
    pub device: String,
    /// The node's `reg`, as the device tree gives it.
    pub regions: Vec<Region>,
    /// GIC INTIDs (SPIs), from the device tree.
    pub interrupts: Vec<u32>,
    pub home_cpu: Option<u64>,
    /// KiB of lower-priority requests the device may hold at once.
    pub lower_in_flight_kib: u32,
    /// The GPT partition where the hypervisor keeps its crash records, if
    /// this is the device that has it.
    pub records: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedDisplay {
    pub name: String,
    /// Device-tree path of the virtio-mmio node, alias resolved.
    pub device: String,
    /// The node's `reg`, as the device tree gives it.
    pub regions: Vec<Region>,
    /// GIC INTIDs (SPIs), from the device tree.
    pub interrupts: Vec<u32>,
    pub width: u32,
    pub height: u32,
    pub refresh_hz: u32,
    pub home_cpu: Option<u64>,
}

/// An `[[audio]]` output, as [`crate::model::Audio`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedAudio {
    pub name: String,
    /// Device-tree path of the virtio-mmio node, alias resolved.
    pub device: String,
    /// The node's `reg`, as the device tree gives it.
    pub regions: Vec<Region>,
    /// GIC INTIDs (SPIs), from the device tree.
    pub interrupts: Vec<u32>,
    pub period_ms: u32,
    pub periods: u32,
    pub home_cpu: Option<u64>,
}

/// A partition's `audio`, as [`crate::model::PartitionAudio`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedPartitionAudio {
    /// Index into [`OwnedSystem::audio`].
    pub output: usize,
    pub priority: u8,
    pub gain_db: i32,
    /// -96 mutes.
    pub duck_db: i32,
}

/// The lowest `duck_db`: it mutes rather than lowers.
pub const MUTE_DB: i32 = -96;

impl OwnedPartitionAudio {
    /// The gain as a linear Q16 factor (65536 = 0 dB).
    pub fn gain_q16(&self) -> u32 {
        db_to_q16(self.gain_db)
    }

    /// The duck factor as a linear Q16 factor: 0 when it mutes.
    pub fn duck_q16(&self) -> u32 {
        if self.duck_db <= MUTE_DB {
            0
        } else {
            db_to_q16(self.duck_db)
        }
    }
}

/// `db` decibels as a linear Q16 factor, rounded.
fn db_to_q16(db: i32) -> u32 {
    (65536.0 * 10f64.powf(f64::from(db) / 20.0)).round() as u32
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTouch {
    pub name: String,
    /// Device-tree path of the virtio-mmio node, alias resolved.
    pub device: String,
    /// The node's `reg`, as the device tree gives it.
    pub regions: Vec<Region>,
    /// GIC INTIDs (SPIs), from the device tree.
    pub interrupts: Vec<u32>,
    /// Index into [`OwnedSystem::displays`] of the display it lies on.
    pub display: usize,
    /// Its absolute pointer, if it has one.
    pub pointer: Option<OwnedTouchPointer>,
    pub home_cpu: Option<u64>,
}

/// A touch panel's `pointer`, as [`crate::model::TouchPointer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTouchPointer {
    /// Device-tree path of the virtio-mmio node, alias resolved.
    pub device: String,
    /// The node's `reg`, as the device tree gives it.
    pub regions: Vec<Region>,
    /// GIC INTIDs (SPIs), from the device tree.
    pub interrupts: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedDisk {
    /// Index into [`OwnedSystem::storage`].
    pub storage: usize,
    pub extent: OwnedDiskExtent,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedDiskExtent {
    /// A GPT partition, by name.
    Gpt(String),
    /// `sectors` 512-byte sectors from LBA `start`.
    Lba { start: u64, sectors: u64 },
}

impl OwnedDiskExtent {
    /// `gpt "name"` or `sectors a..b, size`, as messages and the summary
    /// show an extent.
    pub(crate) fn describe(&self) -> String {
        match self {
            OwnedDiskExtent::Gpt(name) => format!("gpt {name:?}"),
            OwnedDiskExtent::Lba { start, sectors } => format!(
                "sectors {start}..{}, {}",
                start + sectors,
                size(sectors * layout::SECTOR_SIZE)
            ),
        }
    }
}

impl OwnedSystem {
    /// A few lines a person can check a config against.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let hv = self.hypervisor.memory;
        let _ = writeln!(out, "board {} ({})", self.board, self.board_dtb.display());
        let _ = writeln!(
            out,
            "hypervisor: host {} ({}), console {}",
            range(hv.base, hv.size),
            size(hv.size),
            self.hypervisor.console
        );
        for s in &self.storage {
            let regions: Vec<String> = s.regions.iter().map(|r| range(r.base, r.size)).collect();
            let irqs: Vec<String> = s.interrupts.iter().map(u32::to_string).collect();
            let home = s
                .home_cpu
                .map_or_else(|| "the service core".to_owned(), |c| format!("cpu {c}"));
            let records = s
                .records
                .as_ref()
                .map(|gpt| format!(", crash records in GPT partition {gpt:?}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "storage \"{}\": {} at {} interrupts [{}], I/O on {home}, \
                 {} KiB of lower priorities in flight{records}",
                s.name,
                s.device,
                regions.join(", "),
                irqs.join(", "),
                s.lower_in_flight_kib
            );
        }
        for d in &self.displays {
            let regions: Vec<String> = d.regions.iter().map(|r| range(r.base, r.size)).collect();
            let irqs: Vec<String> = d.interrupts.iter().map(u32::to_string).collect();
            let home = d
                .home_cpu
                .map_or_else(|| "the service core".to_owned(), |c| format!("cpu {c}"));
            let _ = writeln!(
                out,
                "display \"{}\": {} at {} interrupts [{}], {}x{} at {} Hz, compositor on {home}",
                d.name,
                d.device,
                regions.join(", "),
                irqs.join(", "),
                d.width,
                d.height,
                d.refresh_hz
            );
        }
        for t in &self.touch {
            let regions: Vec<String> = t.regions.iter().map(|r| range(r.base, r.size)).collect();
            let irqs: Vec<String> = t.interrupts.iter().map(u32::to_string).collect();
            let home = t
                .home_cpu
                .map_or_else(|| "the service core".to_owned(), |c| format!("cpu {c}"));
            let pointer = t.pointer.as_ref().map_or_else(String::new, |p| {
                let regions: Vec<String> =
                    p.regions.iter().map(|r| range(r.base, r.size)).collect();
                let irqs: Vec<String> = p.interrupts.iter().map(u32::to_string).collect();
                format!(
                    ", pointer {} at {} interrupts [{}]",
                    p.device,
                    regions.join(", "),
                    irqs.join(", ")
                )
            });
            let _ = writeln!(
                out,
                "touch panel \"{}\": {} at {} interrupts [{}]{pointer}, on display \"{}\", driver on {home}",
                t.name,
                t.device,
                regions.join(", "),
                irqs.join(", "),
                self.display_name(t.display)
            );
        }
        for a in &self.audio {
            let regions: Vec<String> = a.regions.iter().map(|r| range(r.base, r.size)).collect();
            let irqs: Vec<String> = a.interrupts.iter().map(u32::to_string).collect();
            let home = a
                .home_cpu
                .map_or_else(|| "the service core".to_owned(), |c| format!("cpu {c}"));
            let _ = writeln!(
                out,
                "audio output \"{}\": {} at {} interrupts [{}], {} periods of {} ms ahead, mixed on {home}",
                a.name,
                a.device,
                regions.join(", "),
                irqs.join(", "),
                a.periods,
                a.period_ms
            );
        }
        for p in &self.partitions {
            let cpus: Vec<String> = p.cpus.iter().map(u64::to_string).collect();
            let _ = writeln!(
                out,
                "partition \"{}\": {}, priority {}, cpus [{}], on_fault {}, watchdog {}",
                p.name,
                p.criticality.as_str(),
                p.priority,
                cpus.join(", "),
                p.on_fault.as_str(),
                if p.watchdog { "on" } else { "off" }
            );
            for m in &p.memory {
                let _ = writeln!(
                    out,
                    "  memory guest {} -> host {} ({})",
                    range(m.guest, m.size),
                    range(m.host, m.size),
                    size(m.size)
                );
            }
            if let Some(all) = &p.all_except {
                let _ = writeln!(
                    out,
                    "  devices: all except [{}]: {} given, {} left out",
                    all.except.join(", "),
                    p.devices.len(),
                    all.left_out.len()
                );
            }
            for d in &p.devices {
                let regions: Vec<String> =
                    d.regions.iter().map(|r| range(r.base, r.size)).collect();
                let irqs: Vec<String> = d.interrupts.iter().map(u32::to_string).collect();
                let _ = writeln!(
                    out,
                    "  device {} at {} interrupts [{}]",
                    d.path,
                    regions.join(", "),
                    irqs.join(", ")
                );
            }
            for left in p.all_except.iter().flat_map(|a| &a.left_out) {
                let _ = writeln!(out, "  left out {}: {}", left.path, left.why());
            }
            for (slot, d) in p.disks.iter().enumerate() {
                let storage = self.storage.get(d.storage).map_or("?", |s| s.name.as_str());
                let _ = writeln!(
                    out,
                    "  disk {slot} (virtio-mmio guest {:#x}, INTID {}): storage \"{storage}\" {}{}",
                    layout::virtio_slot_base(slot),
                    layout::virtio_slot_intid(slot),
                    d.extent.describe(),
                    if d.read_only { ", read-only" } else { "" }
                );
            }
            if let Some(slot) = p.gpu_slot() {
                let _ = writeln!(
                    out,
                    "  gpu (virtio-mmio guest {:#x}, INTID {}): {} of display memory, {} resources",
                    layout::virtio_slot_base(slot),
                    layout::virtio_slot_intid(slot),
                    size(p.display_memory),
                    p.display_resources
                );
            }
            for input in p.inputs(&self.touch) {
                let panel = self.touch.get(input.panel).map_or("?", |t| t.name.as_str());
                let size = p.views.get(input.view).map_or_else(
                    || "?".to_owned(),
                    |v| format!("{}x{}", v.rect.width, v.rect.height),
                );
                let _ = writeln!(
                    out,
                    "  input (virtio-mmio guest {:#x}, INTID {}): touch panel \"{panel}\", contacts in view {} ({size})",
                    layout::virtio_slot_base(input.slot),
                    layout::virtio_slot_intid(input.slot),
                    input.view
                );
            }
            if let (Some(a), Some(slot)) = (&p.audio, p.sound_slot(&self.touch)) {
                let output = self.audio.get(a.output).map_or("?", |o| o.name.as_str());
                let ducked = if a.duck_q16() == 0 {
                    "muted".to_owned()
                } else {
                    format!("{} dB", a.duck_db)
                };
                let _ = writeln!(
                    out,
                    "  sound (virtio-mmio guest {:#x}, INTID {}): audio output \"{output}\", audio priority {}, gain {} dB, {ducked} while ducked",
                    layout::virtio_slot_base(slot),
                    layout::virtio_slot_intid(slot),
                    a.priority,
                    a.gain_db
                );
            }
            for (scanout, v) in p.views.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "  view {scanout} on display \"{}\": {}",
                    self.display_name(v.display),
                    rect(&v.rect)
                );
            }
            for r in &p.protected {
                let _ = writeln!(
                    out,
                    "  protected on display \"{}\": {}",
                    self.display_name(r.display),
                    rect(&r.rect)
                );
            }
            let _ = writeln!(out, "  image {} ({} bytes)", p.image.display(), p.image_len);
            if let Some(initrd) = &p.initrd {
                let _ = writeln!(
                    out,
                    "  initrd {} ({} bytes)",
                    initrd.path.display(),
                    initrd.len
                );
            }
            if !p.bootargs.is_empty() {
                let _ = writeln!(out, "  bootargs {:?}", p.bootargs);
            }
        }
        out
    }
}

impl OwnedSystem {
    fn display_name(&self, index: usize) -> &str {
        self.displays.get(index).map_or("?", |d| d.name.as_str())
    }
}

/// `WxH at (x, y)`, the form messages and the summary show a rectangle on
/// a display in.
pub(crate) fn rect(r: &ScreenRect) -> String {
    rect_of(r.x.into(), r.y.into(), r.width.into(), r.height.into())
}

/// [`rect`] of values not yet known to fit a [`ScreenRect`].
pub(crate) fn rect_of(x: u64, y: u64, width: u64, height: u64) -> String {
    format!("{width}x{height} at ({x}, {y})")
}

/// `base..end` in hex, the form every message uses for a range.
pub(crate) fn range(base: u64, size: u64) -> String {
    format!("{base:#x}..{:#x}", base.wrapping_add(size))
}

/// A byte count in the largest binary unit that divides it.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map_or_else(
            || format!("{bytes:#x} bytes"),
            |(unit, name)| format!("{} {name}", bytes / unit),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size(0x0200_0000), "32 MiB");
        assert_eq!(size(0x8000_0000), "2 GiB");
        assert_eq!(size(0x1000), "4 KiB");
        assert_eq!(size(0x1234), "0x1234 bytes");
        assert_eq!(range(0x4800_0000, 0x0200_0000), "0x48000000..0x4a000000");
    }
}
