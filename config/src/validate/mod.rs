//! The config rules. Each rule reports through `Diagnostics` and carries
//! on, so that one run shows every problem; a value that failed its own
//! check is left out of the checks that depend on it, so one mistake does
//! not also show up as a cascade of others.

mod all_except;
mod audio;
mod devices;
mod display;
mod image;
mod memory;
mod storage;
mod touch;

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::Context;
use crate::diag::Diagnostics;
use crate::dtb::{Board, NodeId};
use crate::layout;
use crate::model::{
    Criticality, MemoryMap, OnFault, Protected, Region, ScreenRect, UartKind, View,
};
use crate::owned::{
    AllExcept, OwnedAudio, OwnedDevice, OwnedDisk, OwnedDiskExtent, OwnedDisplay, OwnedHypervisor,
    OwnedInitrd, OwnedPartition, OwnedStorage, OwnedSystem, OwnedTouch, OwnedTouchPointer, range,
};
use crate::raw::{Int, RawConfig, RawPartition, Str};

const MIB: u64 = 1 << 20;
/// Stage-2 translation granule: every mapping is made of 4 KiB pages.
const PAGE: u64 = 4 << 10;
/// Guest-physical addresses are limited to 39 bits: the stage-2 tables
/// start at level 1 with a 4 KiB granule.
const GUEST_PA_LIMIT: u64 = 1 << 39;
/// The virtio-mmio window (see `crate::layout`), kept clear of guest memory
/// and passthrough devices in every partition, however many virtio devices
/// it has.
const VIRTIO_WINDOW: Region = Region {
    base: layout::VIRTIO_BASE,
    size: layout::VIRTIO_WINDOW_SIZE,
};
/// The hypervisor maps its own reservation with 2 MiB blocks.
const HYPERVISOR_ALIGN: u64 = 2 * MIB;
const MAX_NAME_LEN: usize = 16;

const CRITICALITIES: [Criticality; 5] = [
    Criticality::Qm,
    Criticality::AsilA,
    Criticality::AsilB,
    Criticality::AsilC,
    Criticality::AsilD,
];
const ON_FAULTS: [OnFault; 3] = [OnFault::Stop, OnFault::Restart, OnFault::Inject];

type Span = Range<usize>;

/// Checks `raw` and builds the owned system from it. Returns `None` when
/// something was too broken to build; the caller also treats any recorded
/// diagnostic as failure.
pub(crate) fn validate(
    raw: &RawConfig,
    file: &Path,
    ctx: &Context,
    diags: &mut Diagnostics<'_>,
) -> Option<(OwnedSystem, Vec<PathBuf>)> {
    let config_dir = config_dir(file);
    let mut v = Validator {
        diags,
        ctx,
        config_dir,
        board: None,
        console: None,
        load_address: None,
        storage: Vec::new(),
        displays: Vec::new(),
        touch: Vec::new(),
        audio: Vec::new(),
    };
    v.run(raw)
}

/// The folder relative image and initrd paths are resolved against, made
/// absolute so that the generated `include_bytes!` does not depend on
/// where the compiler runs.
fn config_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    dir.canonicalize()
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

struct Validator<'d, 'a> {
    diags: &'d mut Diagnostics<'a>,
    ctx: &'d Context,
    config_dir: PathBuf,
    board: Option<Board>,
    /// The console's node, once resolved: it cannot also be passed through.
    console: Option<NodeId>,
    /// `load_address` from `board/<board>/board.toml`, where the
    /// hypervisor image is linked to run, and that file.
    load_address: Option<(u64, PathBuf)>,
    /// The `[[storage]]` tables, in file order, once checked: disks name
    /// them, and their devices cannot be passed through.
    storage: Vec<Storage>,
    /// The `[[display]]` tables, in file order, once checked: views name
    /// them, and their devices cannot be passed through.
    displays: Vec<Display>,
    /// The `[[touch]]` tables, in file order, once checked: partitions'
    /// `touch` counts them, and their devices and pointers cannot be
    /// passed through.
    touch: Vec<Touch>,
    /// The `[[audio]]` tables, in file order, once checked: partitions'
    /// `audio` names them, and their devices cannot be passed through.
    audio: Vec<Audio>,
}

/// A partition's values that passed their own checks (`None` where not).
struct Part<'r> {
    raw: &'r RawPartition,
    name: String,
    criticality: Option<Criticality>,
    priority: Option<u8>,
    cpus: Vec<u64>,
    /// Per entry, in file order; `None` for an entry that failed.
    memory: Vec<Option<MemoryMap>>,
    /// Its passthrough devices: the entries that passed their checks, or
    /// with `all_except`, once resolved, what it takes.
    devices: Vec<Device>,
    /// Its `devices = { all_except = [...] }`, if it has one (and is the
    /// only partition that does).
    all_except: Option<all_except::Remainder>,
    /// The disks that passed their own checks.
    disks: Vec<Disk>,
    /// The views and protected regions that passed their own checks, and
    /// the display memory and resources (0 without views).
    screen: Screen,
    image: Option<Image>,
    initrd: Option<Initrd>,
    bootargs: String,
    on_fault: OnFault,
    watchdog: bool,
    /// `touch = true`.
    touch: bool,
    /// Its `audio`, if it has one that passed.
    audio: Option<crate::owned::OwnedPartitionAudio>,
}

struct Device {
    path: String,
    node: NodeId,
    regions: Vec<Region>,
    interrupts: Vec<(u32, Span)>,
    span: Span,
}

/// A `[[storage]]` table.
struct Storage {
    name: String,
    /// The device's node, path, `reg` and interrupts, if it passed its
    /// checks.
    device: Option<MediatedDevice>,
    home_cpu: Option<u64>,
    /// Where `home_cpu` is written.
    home_cpu_span: Option<Span>,
    lower_in_flight_kib: u32,
    /// Its `records` GPT partition name, if it has one that passed, and
    /// where it is written.
    records: Option<(String, Span)>,
    /// Whether everything about it passed.
    ok: bool,
}

/// The virtio-mmio transport of a storage device, display, touch panel or
/// touch panel's pointer: the hypervisor's.
struct MediatedDevice {
    node: NodeId,
    path: String,
    regions: Vec<Region>,
    interrupts: Vec<u32>,
}

/// A `[[display]]` table.
struct Display {
    name: String,
    /// The device's node, path, `reg` and interrupts, if it passed its
    /// checks.
    device: Option<MediatedDevice>,
    /// Width and height in pixels, if both passed.
    size: Option<(u32, u32)>,
    refresh_hz: u32,
    home_cpu: Option<u64>,
    /// Where `home_cpu` is written.
    home_cpu_span: Option<Span>,
    /// Whether everything about it passed.
    ok: bool,
}

/// An `[[audio]]` table.
struct Audio {
    name: String,
    /// The device's node, path, `reg` and interrupts, if it passed its
    /// checks.
    device: Option<MediatedDevice>,
    period_ms: u32,
    periods: u32,
    home_cpu: Option<u64>,
    /// Where `home_cpu` is written.
    home_cpu_span: Option<Span>,
    /// Whether everything about it passed.
    ok: bool,
}

/// A `[[touch]]` table.
struct Touch {
    name: String,
    /// The device's node, path, `reg` and interrupts, if it passed its
    /// checks.
    device: Option<MediatedDevice>,
    /// Its `pointer`'s, if it has one and it passed its checks.
    pointer: Option<MediatedDevice>,
    /// Index into `Validator::displays` of the display it lies on, if
    /// that exists.
    display: Option<usize>,
    home_cpu: Option<u64>,
    /// Where `home_cpu` is written.
    home_cpu_span: Option<Span>,
    /// Whether everything about it passed.
    ok: bool,
}

/// A partition's views and protected regions, and what its virtio-gpu
/// device may use.
#[derive(Default)]
struct Screen {
    views: Vec<ScreenArea>,
    protected: Vec<ScreenArea>,
    /// Bytes.
    memory: u64,
    resources: u32,
}

/// An entry of a partition's `views` or `protected`.
struct ScreenArea {
    /// Its index in the partition's list: for a view, its scanout.
    index: usize,
    /// Index into `Validator::displays`.
    display: usize,
    rect: ScreenRect,
    /// A view's deadline (0: none) and fallback colour.
    deadline_ms: u32,
    fallback: u32,
    /// The entry.
    span: Span,
}

/// An entry of a partition's `disks`.
struct Disk {
    /// Its index in the partition's list: its virtio-mmio slot.
    slot: usize,
    /// Index into `Validator::storage`.
    storage: usize,
    extent: OwnedDiskExtent,
    read_only: bool,
    /// The value that says which sectors it is (`gpt` or `lba`).
    span: Span,
}

struct Image {
    path: PathBuf,
    len: u64,
    text_offset: u64,
    image_size: u64,
    span: Span,
}

struct Initrd {
    path: PathBuf,
    len: u64,
    span: Span,
}

impl Validator<'_, '_> {
    fn run(&mut self, raw: &RawConfig) -> Option<(OwnedSystem, Vec<PathBuf>)> {
        let board_name = self.board(&raw.board);
        let hypervisor = self.hypervisor(raw);
        self.storage = self.storage_devices(raw);
        self.displays = self.display_devices(raw);
        self.touch = self.touch_panels(raw);
        self.audio = self.audio_outputs(raw);

        let mut parts: Vec<Part<'_>> = Vec::new();
        match &raw.partition {
            None => self
                .diags
                .error(0..0, "no partitions: add at least one [[partition]] table"),
            Some(list) if list.get_ref().is_empty() => self.diags.error(
                list.span(),
                "no partitions: add at least one [[partition]] table",
            ),
            Some(list) => {
                for p in list.get_ref() {
                    let part = self.partition(p.get_ref(), &parts);
                    parts.push(part);
                }
            }
        }
        self.resolve_all_except(&mut parts);

        let hv_memory = hypervisor.as_ref().map(|h| h.memory);
        self.host_overlaps(hv_memory, raw, &parts);
        for part in &parts {
            self.guest_overlaps(part);
            self.image_fits(part);
        }
        self.device_sharing(&parts);
        self.disk_sharing(&parts);
        self.records_unused(&parts);
        self.home_cores(&parts);
        self.screen_sharing(&parts);
        self.mediator_home_cores(&parts);
        self.display_memory_fits(raw, hv_memory.map(|m| m.size), &parts);

        let board = self.board.take()?;
        let hypervisor = hypervisor?;
        let mut dependencies = vec![board.dtb.clone()];
        dependencies.extend(self.load_address.as_ref().map(|(_, file)| file.clone()));
        let mut partitions = Vec::new();
        for part in parts {
            let image = part.image?;
            dependencies.push(image.path.clone());
            dependencies.extend(part.initrd.as_ref().map(|i| i.path.clone()));
            partitions.push(OwnedPartition {
                name: part.name,
                criticality: part.criticality?,
                priority: part.priority?,
                cpus: part.cpus,
                memory: part.memory.into_iter().collect::<Option<_>>()?,
                devices: part
                    .devices
                    .into_iter()
                    .map(|d| OwnedDevice {
                        path: d.path,
                        regions: d.regions,
                        interrupts: d.interrupts.into_iter().map(|(i, _)| i).collect(),
                    })
                    .collect(),
                all_except: part.all_except.map(|r| AllExcept {
                    except: r.except.iter().map(|&n| board.path(n).to_owned()).collect(),
                    left_out: r.left_out,
                }),
                disks: part
                    .disks
                    .into_iter()
                    .map(|d| OwnedDisk {
                        storage: d.storage,
                        extent: d.extent,
                        read_only: d.read_only,
                    })
                    .collect(),
                image: image.path,
                image_len: image.len,
                initrd: part.initrd.map(|i| OwnedInitrd {
                    path: i.path,
                    len: i.len,
                }),
                bootargs: part.bootargs,
                on_fault: part.on_fault,
                watchdog: part.watchdog,
                views: part
                    .screen
                    .views
                    .iter()
                    .map(|v| View {
                        display: v.display,
                        rect: v.rect,
                        deadline_ms: v.deadline_ms,
                        fallback: v.fallback,
                    })
                    .collect(),
                protected: part
                    .screen
                    .protected
                    .iter()
                    .map(|r| Protected {
                        display: r.display,
                        rect: r.rect,
                    })
                    .collect(),
                display_memory: part.screen.memory,
                display_resources: part.screen.resources,
                touch: part.touch,
                audio: part.audio,
            });
        }
        let storage = std::mem::take(&mut self.storage)
            .into_iter()
            .map(|s| {
                let device = s.device.filter(|_| s.ok)?;
                Some(OwnedStorage {
                    name: s.name,
                    device: device.path,
                    regions: device.regions,
                    interrupts: device.interrupts,
                    home_cpu: s.home_cpu,
                    lower_in_flight_kib: s.lower_in_flight_kib,
                    records: s.records.map(|(gpt, _)| gpt),
                })
            })
            .collect::<Option<_>>()?;
        let displays = std::mem::take(&mut self.displays)
            .into_iter()
            .map(|d| {
                let device = d.device.filter(|_| d.ok)?;
                let (width, height) = d.size?;
                Some(OwnedDisplay {
                    name: d.name,
                    device: device.path,
                    regions: device.regions,
                    interrupts: device.interrupts,
                    width,
                    height,
                    refresh_hz: d.refresh_hz,
                    home_cpu: d.home_cpu,
                })
            })
            .collect::<Option<_>>()?;
        let touch = std::mem::take(&mut self.touch)
            .into_iter()
            .map(|t| {
                let device = t.device.filter(|_| t.ok)?;
                Some(OwnedTouch {
                    name: t.name,
                    device: device.path,
                    regions: device.regions,
                    interrupts: device.interrupts,
                    display: t.display?,
                    pointer: t.pointer.map(|p| OwnedTouchPointer {
                        device: p.path,
                        regions: p.regions,
                        interrupts: p.interrupts,
                    }),
                    home_cpu: t.home_cpu,
                })
            })
            .collect::<Option<_>>()?;
        let audio = std::mem::take(&mut self.audio)
            .into_iter()
            .map(|a| {
                let device = a.device.filter(|_| a.ok)?;
                Some(OwnedAudio {
                    name: a.name,
                    device: device.path,
                    regions: device.regions,
                    interrupts: device.interrupts,
                    period_ms: a.period_ms,
                    periods: a.periods,
                    home_cpu: a.home_cpu,
                })
            })
            .collect::<Option<_>>()?;
        let system = OwnedSystem {
            board: board_name?,
            board_cpus: board.cpus(),
            board_dtb: board.dtb,
            hypervisor,
            partitions,
            storage,
            displays,
            touch,
            audio,
        };
        Some((system, dependencies))
    }

    /// `board`: a folder under `board/` holding `<board>.dtb`.
    fn board(&mut self, name: &Spanned<Str>) -> Option<String> {
        let value = &name.get_ref().0;
        let plain = !value.is_empty()
            && value != "."
            && value != ".."
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !plain {
            self.diags.error(
                name.span(),
                format!("board \"{value}\" is not a folder name under board/"),
            );
            return None;
        }
        match Board::load(&self.ctx.boards_dir, value) {
            Ok(board) => self.board = Some(board),
            Err(e) => self
                .diags
                .error(name.span(), format!("board \"{value}\": {e}")),
        }
        match board_load_address(&self.ctx.boards_dir.join(value).join("board.toml")) {
            Ok(found) => self.load_address = found,
            Err(e) => self
                .diags
                .error(name.span(), format!("board \"{value}\": {e}")),
        }
        Some(value.clone())
    }

    fn hypervisor(&mut self, raw: &RawConfig) -> Option<OwnedHypervisor> {
        let hv = raw.hypervisor.get_ref();
        let mem = hv.memory.get_ref();
        let base = self.uint(&mem.base, "hypervisor memory base");
        let size = self.uint(&mem.size, "hypervisor memory size");
        let memory = match (base, size) {
            (Some(base), Some(size)) => self.hypervisor_memory(base, size, raw),
            _ => None,
        };

        let console = &hv.console;
        let node = self
            .board
            .as_ref()
            .map(|board| match board.resolve(&console.get_ref().0) {
                Ok(node) if board.regs(node).ok().flatten().is_none() => Err(format!(
                    "hypervisor console {} has no `reg`: not a UART",
                    board.path(node)
                )),
                Ok(node) if UartKind::for_compatible(board.compatible(node)).is_none() => {
                    Err(format!(
                        "hypervisor console {} is compatible with {:?}: the hypervisor drives {}",
                        board.path(node),
                        board.compatible(node),
                        UartKind::COMPATIBLE
                            .iter()
                            .map(|(name, _)| *name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
                Ok(node) => Ok(node),
                Err(e) => Err(format!("hypervisor console: {e}")),
            });
        let node = match node? {
            Ok(node) => node,
            Err(message) => {
                self.diags.error(console.span(), message);
                return None;
            }
        };
        self.console = Some(node);
        let board = self.board.as_ref()?;
        Some(OwnedHypervisor {
            memory: memory?,
            console: board.path(node).to_owned(),
            console_regions: board.regs(node).ok().flatten().unwrap_or_default(),
            console_interrupts: board.spis(node),
        })
    }

    fn hypervisor_memory(&mut self, base: u64, size: u64, raw: &RawConfig) -> Option<Region> {
        let mem = raw.hypervisor.get_ref().memory.get_ref();
        let mut ok = true;
        if size == 0 {
            self.diags
                .error(mem.size.span(), "hypervisor memory size must not be 0");
            return None;
        }
        if !base.is_multiple_of(HYPERVISOR_ALIGN) {
            self.diags.error(
                mem.base.span(),
                format!("hypervisor memory base {base:#x} is misaligned: it must be 2 MiB aligned"),
            );
            ok = false;
        }
        if !size.is_multiple_of(HYPERVISOR_ALIGN) {
            self.diags.error(
                mem.size.span(),
                format!(
                    "hypervisor memory size {size:#x} is misaligned: it must be a multiple of 2 MiB"
                ),
            );
            ok = false;
        }
        if base.checked_add(size).is_none() {
            self.diags.error(
                mem.size.span(),
                "hypervisor memory runs past the end of the address space",
            );
            return None;
        }
        let region = Region { base, size };
        if let Some((load, file)) = &self.load_address
            && !(base..base + size).contains(load)
        {
            self.diags.error(
                raw.hypervisor.get_ref().memory.span(),
                format!(
                    "hypervisor memory (host {}) does not contain the hypervisor's load address {load:#x} (from {})",
                    range(base, size),
                    file.display()
                ),
            );
            ok = false;
        }
        if let Some(message) = self.outside_ram(region) {
            self.diags.error(
                raw.hypervisor.get_ref().memory.span(),
                format!("hypervisor memory (host {}) {message}", range(base, size)),
            );
            ok = false;
        }
        ok.then_some(region)
    }

    /// `Some(reason)` if `region` is not inside one RAM bank of the board.
    fn outside_ram(&self, region: Region) -> Option<String> {
        let board = self.board.as_ref()?;
        let ram = board.ram();
        let inside = ram
            .iter()
            .any(|r| region.base >= r.base && region.base + region.size <= r.base + r.size);
        if inside {
            return None;
        }
        let banks: Vec<String> = ram.iter().map(|r| range(r.base, r.size)).collect();
        Some(format!("is not inside board RAM ({})", banks.join(", ")))
    }

    fn uint(&mut self, value: &Spanned<Int>, what: &str) -> Option<u64> {
        let Int(v) = *value.get_ref();
        u64::try_from(v)
            .map_err(|_| {
                self.diags.error(
                    value.span(),
                    format!("{what} must not be negative (got {v})"),
                )
            })
            .ok()
    }

    fn partition<'r>(&mut self, raw: &'r RawPartition, earlier: &[Part<'_>]) -> Part<'r> {
        let name = self.name(raw, earlier);
        let criticality = self.choice(
            &raw.criticality,
            "criticality",
            &CRITICALITIES,
            Criticality::as_str,
        );
        let on_fault = match &raw.on_fault {
            Some(v) => self
                .choice(v, "on_fault", &ON_FAULTS, OnFault::as_str)
                .unwrap_or(OnFault::Stop),
            None => OnFault::Stop,
        };
        let watchdog = self.watchdog(raw, &name, on_fault);
        let priority = self.priority(raw, &name, earlier);
        let cpus = self.cpus(raw, &name, earlier);
        let bootargs = match &raw.bootargs {
            Some(b) if b.get_ref().0.contains('\0') => {
                self.diags
                    .error(b.span(), "bootargs must not contain a NUL character");
                String::new()
            }
            Some(b) => b.get_ref().0.clone(),
            None => String::new(),
        };
        let memory = self.memory(raw, &name);
        let devices = self.devices(raw, &name, cpus.len());
        let all_except = self.all_except(raw, &name, earlier);
        let disks = self.disks(raw, &name);
        let screen = self.screen(raw, &name, criticality);
        let touch = self.partition_touch(raw, &name, &screen);
        let audio = self.partition_audio(raw, &name, priority, &screen, touch);
        let image = self.image(raw);
        let initrd = self.initrd(raw);
        Part {
            raw,
            name,
            criticality,
            priority,
            cpus,
            memory,
            devices,
            all_except,
            disks,
            screen,
            image,
            initrd,
            bootargs,
            on_fault,
            watchdog,
            touch,
            audio,
        }
    }

    /// `watchdog = true` gives the partition the virtual SP805; its expiry
    /// is handled per `on_fault`, so that must be something the
    /// hypervisor can do on its own.
    fn watchdog(&mut self, raw: &RawPartition, name: &str, on_fault: OnFault) -> bool {
        let Some(value) = &raw.watchdog else {
            return false;
        };
        let on = *value.get_ref();
        if on && on_fault == OnFault::Inject {
            self.diags.error(
                value.span(),
                format!(
                    "partition \"{name}\" has a watchdog and on_fault = \"inject\": a watchdog expiry cannot be injected; use stop or restart"
                ),
            );
        }
        on
    }

    /// `^[a-z][a-z0-9-]{0,15}$` and unique.
    fn name(&mut self, raw: &RawPartition, earlier: &[Part<'_>]) -> String {
        let name = &raw.name.get_ref().0;
        let first = earlier
            .iter()
            .find(|p| p.name == *name)
            .map(|p| p.raw.name.span().start);
        self.check_name(&raw.name, "partition", first);
        name.clone()
    }

    /// A partition's, storage device's, display's or touch panel's name
    /// (`what`): `^[a-z][a-z0-9-]{0,15}$`, and not already used at byte
    /// offset `first_use`. Whether it passed.
    fn check_name(&mut self, value: &Spanned<Str>, what: &str, first_use: Option<usize>) -> bool {
        let name = &value.get_ref().0;
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && name.len() <= MAX_NAME_LEN;
        if !well_formed {
            self.diags.error(
                value.span(),
                format!(
                    "bad {what} name \"{name}\": it must be 1 to {MAX_NAME_LEN} characters of a-z, 0-9 and '-', starting with a letter"
                ),
            );
            return false;
        }
        if let Some(first) = first_use {
            let (line, _) = self.diags.position(first);
            self.diags.error(
                value.span(),
                format!("duplicate {what} name \"{name}\" (first used on line {line})"),
            );
            return false;
        }
        true
    }

    fn choice<T: Copy>(
        &mut self,
        value: &Spanned<Str>,
        key: &str,
        all: &[T],
        as_str: fn(T) -> &'static str,
    ) -> Option<T> {
        let given = &value.get_ref().0;
        let found = all.iter().copied().find(|&c| as_str(c) == given);
        if found.is_none() {
            let names: Vec<&str> = all.iter().map(|&c| as_str(c)).collect();
            self.diags.error(
                value.span(),
                format!(
                    "unknown {key} \"{given}\": expected one of {}",
                    names.join(", ")
                ),
            );
        }
        found
    }

    fn priority(&mut self, raw: &RawPartition, name: &str, earlier: &[Part<'_>]) -> Option<u8> {
        let Int(value) = *raw.priority.get_ref();
        let Ok(priority) = u8::try_from(value) else {
            self.diags.error(
                raw.priority.span(),
                format!("priority {value} of partition \"{name}\" is out of range 0..=255"),
            );
            return None;
        };
        if let Some(other) = earlier.iter().find(|p| p.priority == Some(priority)) {
            self.diags.error(
                raw.priority.span(),
                format!(
                    "partition \"{name}\" has priority {priority}, as has partition \"{}\": priorities must be unique",
                    other.name
                ),
            );
        }
        Some(priority)
    }

    fn cpus(&mut self, raw: &RawPartition, name: &str, earlier: &[Part<'_>]) -> Vec<u64> {
        if raw.cpus.get_ref().is_empty() {
            self.diags.error(
                raw.cpus.span(),
                format!("partition \"{name}\" has no cpus: list at least one"),
            );
        }
        let present = self.board.as_ref().map(Board::cpus);
        let mut cpus: Vec<u64> = Vec::new();
        for cpu in raw.cpus.get_ref() {
            let Some(id) = self.uint(cpu, &format!("cpu of partition \"{name}\"")) else {
                continue;
            };
            if let Some(present) = &present
                && !present.contains(&id)
            {
                let list: Vec<String> = present.iter().map(u64::to_string).collect();
                self.diags.error(
                    cpu.span(),
                    format!("cpu {id} of partition \"{name}\" does not exist on the board (its cpus are {})", list.join(", ")),
                );
                continue;
            }
            if cpus.contains(&id) {
                self.diags.error(
                    cpu.span(),
                    format!("cpu {id} is listed twice in partition \"{name}\""),
                );
                continue;
            }
            if let Some(other) = earlier.iter().find(|p| p.cpus.contains(&id)) {
                self.diags.error(
                    cpu.span(),
                    format!(
                        "cpu {id} is in both partition \"{}\" and partition \"{name}\"",
                        other.name
                    ),
                );
            }
            cpus.push(id);
        }
        cpus
    }
}

/// The `load_address` of a board's `board.toml`, if the file exists and
/// gives one; other keys there are the hypervisor build's business.
fn board_load_address(file: &Path) -> Result<Option<(u64, PathBuf)>, String> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(None);
    };
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {}", file.display(), e.message()))?;
    match table.get("load_address") {
        None => Ok(None),
        Some(toml::Value::Integer(a)) if *a >= 0 => Ok(Some((*a as u64, file.to_path_buf()))),
        Some(other) => Err(format!(
            "{}: load_address {other} is not an address",
            file.display()
        )),
    }
}

/// `region` rounded out to whole pages: what stage 2 actually maps.
fn page_span(region: Region) -> Region {
    let base = region.base & !(PAGE - 1);
    let end = region
        .base
        .saturating_add(region.size)
        .saturating_add(PAGE - 1)
        & !(PAGE - 1);
    Region {
        base,
        size: end - base,
    }
}

fn overlaps(a: Region, b: Region) -> bool {
    a.base < b.base.saturating_add(b.size) && b.base < a.base.saturating_add(a.size)
}

/// Where `name` was first used among `earlier` names (the offset of the
/// first one equal to it), for "duplicate ... (first used on line N)".
fn first_use<'a>(
    earlier: impl IntoIterator<Item = &'a Spanned<Str>>,
    name: &Spanned<Str>,
) -> Option<usize> {
    earlier
        .into_iter()
        .find(|e| e.get_ref().0 == name.get_ref().0)
        .map(|e| e.span().start)
}
