//! The resolved system, laid out for `cargo xtask check-config --explain`
//! (tables) and `--json` (the same data for tools): per partition its
//! memory, cores, passthrough devices and virtual devices; the mediated
//! devices with their home cores and the partitions that share them; the
//! hypervisor's own memory and console.
//!
//! [`Explanation`] is built from a validated [`OwnedSystem`] and holds
//! everything either form shows; [`Explanation::text`] renders the tables
//! and its `Serialize` implementation the JSON, so the two cannot disagree.
//! Addresses and sizes are plain integers in the JSON and hex in the text.

use std::fmt::Write as _;

use serde::Serialize;

use crate::layout;
use crate::model::{Region, ScreenRect};
use crate::owned::{OwnedPartition, OwnedSystem, range, size};

/// A validated system, as `--explain` and `--json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub board: String,
    /// The board device tree the config was checked against.
    pub board_dtb: String,
    pub hypervisor: HypervisorInfo,
    /// The devices the hypervisor drives and shares out, the console first.
    pub mediated: Vec<MediatedInfo>,
    /// In config order.
    pub partitions: Vec<PartitionInfo>,
}

/// An address range: host-physical, or guest-physical where its field says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AddressRange {
    pub base: u64,
    pub size: u64,
}

impl From<Region> for AddressRange {
    fn from(r: Region) -> AddressRange {
        AddressRange {
            base: r.base,
            size: r.size,
        }
    }
}

/// What the hypervisor keeps for itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HypervisorInfo {
    /// Host-physical: its image, heap, stacks and page tables.
    pub memory: AddressRange,
    /// The console UART's device-tree path.
    pub console: String,
    /// Its `reg`.
    pub console_mmio: Vec<AddressRange>,
    /// Its SPIs (GIC INTIDs).
    pub console_interrupts: Vec<u32>,
    /// The board's cores that run no partition.
    pub free_cpus: Vec<u64>,
    /// The core that does the hypervisor's own work and every mediated
    /// device's without a `home_cpu`: the first free core (the boot core,
    /// on boards that boot on their first core, when it is free); `None`
    /// when every core runs a partition.
    pub service_cpu: Option<u64>,
}

/// A physical device the hypervisor drives itself and shares out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediatedInfo {
    /// `console`, `storage`, `display`, `touch panel`, `touch pointer` or
    /// `audio output`.
    pub kind: &'static str,
    /// Its name in the config (for a pointer, its panel's; for the
    /// console, `console`).
    pub name: String,
    /// Device-tree path.
    pub device: String,
    pub mmio: Vec<AddressRange>,
    pub interrupts: Vec<u32>,
    /// Its `home_cpu`: the core its work runs on; `None`: the service core.
    pub home_cpu: Option<u64>,
    /// The partitions that use it, in config order.
    pub shared_by: Vec<String>,
    /// The rest of its configuration, in words.
    pub detail: String,
    /// For the storage device that has them: the GPT partition where the
    /// hypervisor keeps its crash records. Left out of the JSON elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
}

/// A partition, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionInfo {
    pub name: String,
    pub criticality: &'static str,
    pub priority: u8,
    /// Physical cores; vCPU n runs on `cpus[n]`.
    pub cpus: Vec<u64>,
    pub on_fault: &'static str,
    pub watchdog: bool,
    /// Guest-physical to host-physical.
    pub memory: Vec<MemoryInfo>,
    /// Passthrough devices (guest == host), listed or resolved.
    pub devices: Vec<DeviceInfo>,
    /// With `devices = { all_except = [...] }`: the list and what was left
    /// out; `None` for a listed `devices`.
    pub all_except: Option<AllExceptInfo>,
    /// The emulated and virtio devices the hypervisor gives it, by
    /// guest-physical address.
    pub virtual_devices: Vec<VirtualDeviceInfo>,
    /// Its views (view n is scanout n of its virtio-gpu device).
    pub views: Vec<ViewInfo>,
    pub protected: Vec<RectInfo>,
    pub image: String,
    pub image_bytes: u64,
    pub initrd: Option<String>,
    pub bootargs: String,
}

/// One `memory` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryInfo {
    pub guest: u64,
    pub host: u64,
    pub size: u64,
}

/// A passthrough device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    pub path: String,
    /// Its `reg` (host-physical == guest-physical).
    pub mmio: Vec<AddressRange>,
    /// SPIs (GIC INTIDs) routed to the partition.
    pub interrupts: Vec<u32>,
}

/// How `all_except` was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllExceptInfo {
    /// The except list, aliases resolved.
    pub except: Vec<String>,
    pub left_out: Vec<LeftOutInfo>,
}

/// A device `all_except` did not give, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOutInfo {
    pub path: String,
    pub reasons: Vec<String>,
}

/// A device the hypervisor emulates or serves in the partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualDeviceInfo {
    /// `gic distributor`, `gic redistributors`, `console`, `watchdog`,
    /// `disk`, `gpu`, `input` or `sound`.
    pub kind: &'static str,
    /// Its virtio-mmio slot, for a virtio device.
    pub slot: Option<usize>,
    /// Guest-physical registers.
    pub mmio: AddressRange,
    /// The INTID it raises, if any.
    pub intid: Option<u32>,
    /// The names of the mediated devices behind it (see
    /// [`MediatedInfo::name`]).
    pub mediated: Vec<String>,
    pub detail: String,
}

/// A view: a scanout shown on a display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewInfo {
    pub scanout: usize,
    pub display: String,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// 0: no deadline.
    pub deadline_ms: u32,
}

/// A protected region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RectInfo {
    pub display: String,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Explanation {
    /// Lays out `system`.
    pub fn of(system: &OwnedSystem) -> Explanation {
        let busy = |cpu: &u64| system.partitions.iter().any(|p| p.cpus.contains(cpu));
        let free_cpus: Vec<u64> = system
            .board_cpus
            .iter()
            .filter(|c| !busy(c))
            .copied()
            .collect();
        let hv = &system.hypervisor;
        Explanation {
            board: system.board.clone(),
            board_dtb: system.board_dtb.display().to_string(),
            hypervisor: HypervisorInfo {
                memory: hv.memory.into(),
                console: hv.console.clone(),
                console_mmio: spans(&hv.console_regions),
                console_interrupts: hv.console_interrupts.clone(),
                service_cpu: free_cpus.first().copied(),
                free_cpus,
            },
            mediated: mediated(system),
            partitions: system
                .partitions
                .iter()
                .map(|p| partition(system, p))
                .collect(),
        }
    }

    /// The tables `--explain` prints.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "board {} ({})", self.board, self.board_dtb);
        let hv = &self.hypervisor;
        let _ = writeln!(out, "\nhypervisor");
        let free: Vec<String> = hv.free_cpus.iter().map(u64::to_string).collect();
        let service = hv
            .service_cpu
            .map_or_else(|| "none".to_owned(), |c| format!("cpu {c}"));
        table(
            &mut out,
            "  ",
            &[],
            vec![
                vec![
                    "memory".into(),
                    format!(
                        "host {} ({})",
                        range(hv.memory.base, hv.memory.size),
                        size(hv.memory.size)
                    ),
                ],
                vec![
                    "console".into(),
                    format!(
                        "{} at {}, interrupts {}",
                        hv.console,
                        mmio(&hv.console_mmio),
                        intids(&hv.console_interrupts)
                    ),
                ],
                vec!["free cores".into(), list_or_none(&free)],
                vec!["service core".into(), service],
            ],
        );

        let _ = writeln!(out, "\nmediated devices");
        table(
            &mut out,
            "  ",
            &[
                "kind",
                "name",
                "device",
                "MMIO",
                "interrupts",
                "home",
                "shared by",
                "what",
            ],
            self.mediated
                .iter()
                .map(|m| {
                    vec![
                        m.kind.to_owned(),
                        m.name.clone(),
                        m.device.clone(),
                        mmio(&m.mmio),
                        intids(&m.interrupts),
                        self.home(m.home_cpu),
                        list_or_none(&m.shared_by),
                        m.detail.clone(),
                    ]
                })
                .collect(),
        );

        for p in &self.partitions {
            partition_text(&mut out, p);
        }
        out
    }

    /// `cpu N`, or the service core and which core that is.
    fn home(&self, home_cpu: Option<u64>) -> String {
        match (home_cpu, self.hypervisor.service_cpu) {
            (Some(cpu), _) => format!("cpu {cpu}"),
            (None, Some(cpu)) => format!("service core (cpu {cpu})"),
            (None, None) => "service core (none free)".to_owned(),
        }
    }
}

fn partition_text(out: &mut String, p: &PartitionInfo) {
    let cpus: Vec<String> = p.cpus.iter().map(u64::to_string).collect();
    let _ = writeln!(
        out,
        "\npartition \"{}\": {}, priority {}, on_fault {}, watchdog {}",
        p.name,
        p.criticality,
        p.priority,
        p.on_fault,
        if p.watchdog { "on" } else { "off" }
    );
    let vcpus: Vec<String> = cpus
        .iter()
        .enumerate()
        .map(|(v, c)| format!("vCPU {v} on cpu {c}"))
        .collect();
    let _ = writeln!(out, "  cores: {}", vcpus.join(", "));
    let _ = writeln!(out, "  memory");
    table(
        out,
        "    ",
        &["guest", "host", "size"],
        p.memory
            .iter()
            .map(|m| vec![range(m.guest, m.size), range(m.host, m.size), size(m.size)])
            .collect(),
    );
    match &p.all_except {
        Some(all) => {
            let _ = writeln!(
                out,
                "  devices: all except {} ({} given, {} left out)",
                list_or_none(&all.except),
                p.devices.len(),
                all.left_out.len()
            );
        }
        None if p.devices.is_empty() => {
            let _ = writeln!(out, "  devices: none");
        }
        None => {
            let _ = writeln!(out, "  devices");
        }
    }
    if !p.devices.is_empty() {
        table(
            out,
            "    ",
            &["path", "MMIO (guest == host)", "interrupts"],
            p.devices
                .iter()
                .map(|d| vec![d.path.clone(), mmio(&d.mmio), intids(&d.interrupts)])
                .collect(),
        );
    }
    if let Some(all) = p.all_except.as_ref().filter(|a| !a.left_out.is_empty()) {
        let _ = writeln!(out, "  left out by all_except");
        let mut rows = Vec::new();
        for left in &all.left_out {
            for (n, reason) in left.reasons.iter().enumerate() {
                let path = if n == 0 {
                    left.path.clone()
                } else {
                    String::new()
                };
                rows.push(vec![path, reason.clone()]);
            }
        }
        table(out, "    ", &["path", "why"], rows);
    }
    let _ = writeln!(out, "  virtual devices");
    table(
        out,
        "    ",
        &["kind", "slot", "guest MMIO", "INTID", "backed by", "what"],
        p.virtual_devices
            .iter()
            .map(|v| {
                vec![
                    v.kind.to_owned(),
                    v.slot.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    range(v.mmio.base, v.mmio.size),
                    v.intid.map_or_else(|| "-".to_owned(), |i| i.to_string()),
                    if v.mediated.is_empty() {
                        "-".to_owned()
                    } else {
                        v.mediated.join(", ")
                    },
                    v.detail.clone(),
                ]
            })
            .collect(),
    );
    if !p.views.is_empty() || !p.protected.is_empty() {
        let _ = writeln!(out, "  screen");
        let mut rows: Vec<Vec<String>> = p
            .views
            .iter()
            .map(|v| {
                vec![
                    format!("view {}", v.scanout),
                    v.display.clone(),
                    format!("{}x{} at ({}, {})", v.width, v.height, v.x, v.y),
                    if v.deadline_ms == 0 {
                        "none".to_owned()
                    } else {
                        format!("{} ms", v.deadline_ms)
                    },
                ]
            })
            .collect();
        rows.extend(p.protected.iter().map(|r| {
            vec![
                "protected".to_owned(),
                r.display.clone(),
                format!("{}x{} at ({}, {})", r.width, r.height, r.x, r.y),
                "-".to_owned(),
            ]
        }));
        table(out, "    ", &["what", "display", "where", "deadline"], rows);
    }
    let _ = writeln!(out, "  image {} ({} bytes)", p.image, p.image_bytes);
    if let Some(initrd) = &p.initrd {
        let _ = writeln!(out, "  initrd {initrd}");
    }
    if !p.bootargs.is_empty() {
        let _ = writeln!(out, "  bootargs {:?}", p.bootargs);
    }
}

/// The console, then the storage devices, displays, touch panels (each
/// followed by its pointer) and audio outputs, in config order.
fn mediated(system: &OwnedSystem) -> Vec<MediatedInfo> {
    let names = |pred: &dyn Fn(&OwnedPartition) -> bool| -> Vec<String> {
        system
            .partitions
            .iter()
            .filter(|p| pred(p))
            .map(|p| p.name.clone())
            .collect()
    };
    let hv = &system.hypervisor;
    let mut out = vec![MediatedInfo {
        kind: "console",
        name: "console".to_owned(),
        device: hv.console.clone(),
        mmio: spans(&hv.console_regions),
        interrupts: hv.console_interrupts.clone(),
        home_cpu: None,
        shared_by: names(&|_| true),
        detail: "a virtual UART per partition, output tagged with its name".to_owned(),
        records: None,
    }];
    for (i, s) in system.storage.iter().enumerate() {
        out.push(MediatedInfo {
            kind: "storage",
            name: s.name.clone(),
            device: s.device.clone(),
            mmio: spans(&s.regions),
            interrupts: s.interrupts.clone(),
            home_cpu: s.home_cpu,
            shared_by: names(&|p| p.disks.iter().any(|d| d.storage == i)),
            detail: match &s.records {
                None => format!(
                    "{} KiB of lower priorities in flight",
                    s.lower_in_flight_kib
                ),
                Some(gpt) => format!(
                    "{} KiB of lower priorities in flight, crash records in GPT partition {gpt:?}",
                    s.lower_in_flight_kib
                ),
            },
            records: s.records.clone(),
        });
    }
    for (i, d) in system.displays.iter().enumerate() {
        out.push(MediatedInfo {
            kind: "display",
            name: d.name.clone(),
            device: d.device.clone(),
            mmio: spans(&d.regions),
            interrupts: d.interrupts.clone(),
            home_cpu: d.home_cpu,
            shared_by: names(&|p| {
                p.views.iter().any(|v| v.display == i) || p.protected.iter().any(|r| r.display == i)
            }),
            detail: format!("{}x{} at {} Hz", d.width, d.height, d.refresh_hz),
            records: None,
        });
    }
    for (i, t) in system.touch.iter().enumerate() {
        let shared_by = names(&|p| p.inputs(&system.touch).iter().any(|n| n.panel == i));
        let display = system.displays.get(t.display).map_or("?", |d| &d.name);
        out.push(MediatedInfo {
            kind: "touch panel",
            name: t.name.clone(),
            device: t.device.clone(),
            mmio: spans(&t.regions),
            interrupts: t.interrupts.clone(),
            home_cpu: t.home_cpu,
            shared_by: shared_by.clone(),
            detail: format!("on display \"{display}\""),
            records: None,
        });
        if let Some(pointer) = &t.pointer {
            out.push(MediatedInfo {
                kind: "touch pointer",
                name: t.name.clone(),
                device: pointer.device.clone(),
                mmio: spans(&pointer.regions),
                interrupts: pointer.interrupts.clone(),
                home_cpu: t.home_cpu,
                shared_by,
                detail: format!("one more contact on touch panel \"{}\"", t.name),
                records: None,
            });
        }
    }
    for (i, a) in system.audio.iter().enumerate() {
        out.push(MediatedInfo {
            kind: "audio output",
            name: a.name.clone(),
            device: a.device.clone(),
            mmio: spans(&a.regions),
            interrupts: a.interrupts.clone(),
            home_cpu: a.home_cpu,
            shared_by: names(&|p| p.audio.is_some_and(|x| x.output == i)),
            detail: format!("{} periods of {} ms ahead", a.periods, a.period_ms),
            records: None,
        });
    }
    out
}

fn partition(system: &OwnedSystem, p: &OwnedPartition) -> PartitionInfo {
    let display = |i: usize| system.displays.get(i).map_or("?", |d| &d.name).to_owned();
    let rect = |display: String, r: &ScreenRect| RectInfo {
        display,
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    };
    PartitionInfo {
        name: p.name.clone(),
        criticality: p.criticality.as_str(),
        priority: p.priority,
        cpus: p.cpus.clone(),
        on_fault: p.on_fault.as_str(),
        watchdog: p.watchdog,
        memory: p
            .memory
            .iter()
            .map(|m| MemoryInfo {
                guest: m.guest,
                host: m.host,
                size: m.size,
            })
            .collect(),
        devices: p
            .devices
            .iter()
            .map(|d| DeviceInfo {
                path: d.path.clone(),
                mmio: spans(&d.regions),
                interrupts: d.interrupts.clone(),
            })
            .collect(),
        all_except: p.all_except.as_ref().map(|a| AllExceptInfo {
            except: a.except.clone(),
            left_out: a
                .left_out
                .iter()
                .map(|l| LeftOutInfo {
                    path: l.path.clone(),
                    reasons: l.reasons.clone(),
                })
                .collect(),
        }),
        virtual_devices: virtual_devices(system, p),
        views: p
            .views
            .iter()
            .enumerate()
            .map(|(scanout, v)| ViewInfo {
                scanout,
                display: display(v.display),
                x: v.rect.x,
                y: v.rect.y,
                width: v.rect.width,
                height: v.rect.height,
                deadline_ms: v.deadline_ms,
            })
            .collect(),
        protected: p
            .protected
            .iter()
            .map(|r| rect(display(r.display), &r.rect))
            .collect(),
        image: p.image.display().to_string(),
        image_bytes: p.image_len,
        initrd: p.initrd.as_ref().map(|i| i.path.display().to_string()),
        bootargs: p.bootargs.clone(),
    }
}

/// What the hypervisor puts in the partition's guest-physical space
/// besides its memory and passthrough devices, in address order.
fn virtual_devices(system: &OwnedSystem, p: &OwnedPartition) -> Vec<VirtualDeviceInfo> {
    let emulated = |kind, base, size, intid, detail: String| VirtualDeviceInfo {
        kind,
        slot: None,
        mmio: AddressRange { base, size },
        intid,
        mediated: Vec::new(),
        detail,
    };
    let virtio = |kind, slot: usize, mediated: Vec<String>, detail: String| VirtualDeviceInfo {
        kind,
        slot: Some(slot),
        mmio: AddressRange {
            base: layout::virtio_slot_base(slot),
            size: layout::VIRTIO_STRIDE,
        },
        intid: Some(layout::virtio_slot_intid(slot)),
        mediated,
        detail,
    };
    let vcpus = p.cpus.len().max(1) as u64;
    let mut out = vec![
        emulated(
            "gic distributor",
            layout::GICD_BASE,
            layout::GICD_SIZE,
            None,
            "emulated GICv3".to_owned(),
        ),
        emulated(
            "gic redistributors",
            layout::GICR_BASE,
            layout::GICR_STRIDE * vcpus,
            None,
            format!("one per vCPU ({vcpus})"),
        ),
        VirtualDeviceInfo {
            mediated: vec!["console".to_owned()],
            ..emulated(
                "console",
                layout::UART_BASE,
                layout::UART_SIZE,
                Some(layout::UART_INTID),
                format!("emulated PL011, output tagged \"{}\"", p.name),
            )
        },
    ];
    if p.watchdog {
        out.push(emulated(
            "watchdog",
            layout::WATCHDOG_BASE,
            layout::WATCHDOG_SIZE,
            Some(layout::WATCHDOG_INTID),
            format!("emulated SP805; on expiry: {}", p.on_fault.as_str()),
        ));
    }
    for (slot, d) in p.disks.iter().enumerate() {
        let storage = system.storage.get(d.storage).map_or("?", |s| &s.name);
        out.push(virtio(
            "disk",
            slot,
            vec![storage.to_owned()],
            format!(
                "virtio-blk: {}{}",
                d.extent.describe(),
                if d.read_only { ", read-only" } else { "" }
            ),
        ));
    }
    if let Some(slot) = p.gpu_slot() {
        let mut displays: Vec<String> = Vec::new();
        for v in &p.views {
            let name = system.displays.get(v.display).map_or("?", |d| &d.name);
            if !displays.iter().any(|d| d == name) {
                displays.push(name.to_owned());
            }
        }
        out.push(virtio(
            "gpu",
            slot,
            displays,
            format!(
                "virtio-gpu: {} scanouts, {} of display memory, {} resources",
                p.views.len(),
                size(p.display_memory),
                p.display_resources
            ),
        ));
    }
    for input in p.inputs(&system.touch) {
        let panel = system.touch.get(input.panel).map_or("?", |t| &t.name);
        let view = p.views.get(input.view).map_or_else(
            || "?".to_owned(),
            |v| format!("{}x{}", v.rect.width, v.rect.height),
        );
        out.push(virtio(
            "input",
            input.slot,
            vec![panel.to_owned()],
            format!(
                "virtio-input multi-touch, contacts in view {} ({view})",
                input.view
            ),
        ));
    }
    if let (Some(a), Some(slot)) = (&p.audio, p.sound_slot(&system.touch)) {
        let output = system.audio.get(a.output).map_or("?", |o| &o.name);
        let ducked = if a.duck_q16() == 0 {
            "muted".to_owned()
        } else {
            format!("{} dB", a.duck_db)
        };
        out.push(virtio(
            "sound",
            slot,
            vec![output.to_owned()],
            format!(
                "virtio-snd: audio priority {}, gain {} dB, {ducked} while ducked",
                a.priority, a.gain_db
            ),
        ));
    }
    out
}

fn spans(regions: &[Region]) -> Vec<AddressRange> {
    regions.iter().copied().map(AddressRange::from).collect()
}

/// `a..b, c..d`, or `none`.
fn mmio(spans: &[AddressRange]) -> String {
    let all: Vec<String> = spans.iter().map(|s| range(s.base, s.size)).collect();
    list_or_none(&all)
}

/// `33, 34`, or `none`.
fn intids(intids: &[u32]) -> String {
    let all: Vec<String> = intids.iter().map(u32::to_string).collect();
    list_or_none(&all)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// Appends `rows` under `header` (none if empty), each line indented by
/// `indent`, columns padded to their widest cell.
fn table(out: &mut String, indent: &str, header: &[&str], rows: Vec<Vec<String>>) {
    let mut lines: Vec<Vec<String>> = Vec::new();
    if !header.is_empty() {
        lines.push(header.iter().map(|h| (*h).to_owned()).collect());
    }
    lines.extend(rows);
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &lines {
        let mut text = String::from(indent);
        for (c, cell) in line.iter().enumerate() {
            let _ = write!(text, "{cell:<width$}  ", width = widths[c]);
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_to_the_widest_cell() {
        let mut out = String::new();
        table(
            &mut out,
            "  ",
            &["a", "bb"],
            vec![
                vec!["long".into(), "x".into()],
                vec!["s".into(), String::new()],
            ],
        );
        assert_eq!(out, "  a     bb\n  long  x\n  s\n");
    }
}
