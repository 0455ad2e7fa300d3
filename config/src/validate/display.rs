//! Shared displays: the `[[display]]` devices against the board device
//! tree, each partition's `views` and `protected` regions on their own,
//! then what the views and protected regions of different partitions must
//! not share, and where the compositor may run.

use toml::Spanned;

use super::{Display, MIB, Part, Screen, ScreenArea, Validator, first_use};
use crate::dtb::NodeId;
use crate::layout;
use crate::model::{Criticality, DEFAULT_FALLBACK, ScreenRect};
use crate::owned::{self, rect_of, size};
use crate::raw::{Int, RawConfig, RawDisplay, RawPartition, RawScreenRect};

/// Largest width or height of a display, in pixels.
const MAX_DIMENSION: u32 = 4096;
const MAX_REFRESH_HZ: u32 = 240;
const DEFAULT_REFRESH_HZ: u32 = 60;
/// What the default display memory assumes a pixel takes.
const BYTES_PER_PIXEL: u64 = 4;
const MAX_DISPLAY_MEMORY_MIB: u32 = 512;
/// The device model's own limit (`shared_devices::virtio::gpu::MAX_RESOURCES`).
const MAX_DISPLAY_RESOURCES: u32 = 128;
const DEFAULT_DISPLAY_RESOURCES: u32 = 64;
/// The longest deadline a view may have: 10 s.
const MAX_DEADLINE_MS: u32 = 10_000;

impl Validator<'_, '_> {
    /// The `[[display]]` tables, in file order, each with what passed.
    /// Storage devices must have been checked first: a display cannot take
    /// one's device.
    pub(super) fn display_devices(&mut self, raw: &RawConfig) -> Vec<Display> {
        let Some(list) = &raw.display else {
            return Vec::new();
        };
        let mut displays: Vec<Display> = Vec::new();
        for (i, entry) in list.get_ref().iter().enumerate() {
            let d = self.display_device(entry.get_ref(), &list.get_ref()[..i], &displays);
            displays.push(d);
        }
        displays
    }

    fn display_device(
        &mut self,
        raw: &RawDisplay,
        earlier_raw: &[Spanned<RawDisplay>],
        earlier: &[Display],
    ) -> Display {
        let name = raw.name.get_ref().0.clone();
        let first = first_use(earlier_raw.iter().map(|e| &e.get_ref().name), &raw.name);
        let name_ok = self.check_name(&raw.name, "display", first);
        let what = format!("display \"{name}\"");
        // The storage devices and the earlier displays: the hypervisor has
        // them already.
        let storage = self
            .storage
            .iter()
            .filter_map(|s| Some((format!("storage \"{}\"", s.name), s.device.as_ref()?.node)));
        let displays = earlier
            .iter()
            .filter_map(|d| Some((format!("display \"{}\"", d.name), d.device.as_ref()?.node)));
        let taken: Vec<(String, NodeId)> = storage.chain(displays).collect();
        let device = self.mediated_node(&raw.device, &what, &taken);
        let width = self.ranged(&raw.width, "width", &what, 1, MAX_DIMENSION);
        let height = self.ranged(&raw.height, "height", &what, 1, MAX_DIMENSION);
        let refresh_hz = match &raw.refresh_hz {
            None => Some(DEFAULT_REFRESH_HZ),
            Some(v) => self.ranged(v, "refresh_hz", &what, 1, MAX_REFRESH_HZ),
        };
        let (home_cpu, home_ok) = match &raw.home_cpu {
            None => (None, true),
            Some(value) => match self.home_cpu(value, &what) {
                Some(cpu) => (Some(cpu), true),
                None => (None, false),
            },
        };
        let size = width.zip(height);
        Display {
            ok: name_ok && device.is_some() && size.is_some() && refresh_hz.is_some() && home_ok,
            name,
            device,
            size,
            refresh_hz: refresh_hz.unwrap_or(DEFAULT_REFRESH_HZ),
            home_cpu,
            home_cpu_span: raw.home_cpu.as_ref().map(|v| v.span()),
        }
    }

    /// `key` of `what` as a number in `min..=max`.
    fn ranged(
        &mut self,
        value: &Spanned<Int>,
        key: &str,
        what: &str,
        min: u32,
        max: u32,
    ) -> Option<u32> {
        let Int(v) = *value.get_ref();
        match u32::try_from(v) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.diags.error(
                    value.span(),
                    format!("{key} {v} of {what} is out of range {min}..={max}"),
                );
                None
            }
        }
    }

    /// A partition's `views`, `protected`, `display_memory_mib` and
    /// `display_resources`, on their own: what fails is left out.
    pub(super) fn screen(
        &mut self,
        raw: &RawPartition,
        name: &str,
        criticality: Option<Criticality>,
    ) -> Screen {
        let raw_views = raw.views.as_ref().map_or(&[][..], |v| v.get_ref());
        let views = self.views(raw_views, name);
        let all_views_ok = views.len() == raw_views.len();
        let protected = self.protected(raw, name, criticality, &views, all_views_ok);
        let Some(views_span) = raw.views.as_ref().filter(|v| !v.get_ref().is_empty()) else {
            for (key, value) in [
                ("display_memory_mib", &raw.display_memory_mib),
                ("display_resources", &raw.display_resources),
            ] {
                if let Some(value) = value {
                    self.diags.error(
                        value.span(),
                        format!(
                            "partition \"{name}\" has {key} but no views: without views it has no virtio-gpu device for {key} to apply to"
                        ),
                    );
                }
            }
            return Screen {
                protected,
                ..Screen::default()
            };
        };
        let views_span = views_span.span();
        // The virtio-gpu device takes the slot after the disks. Too many
        // disks have been reported already.
        let disks = raw.disks.as_ref().map_or(0, |d| d.get_ref().len());
        if disks == layout::VIRTIO_SLOTS {
            self.diags.error(
                views_span.clone(),
                format!(
                    "partition \"{name}\" has {disks} disks and views: its virtio-gpu device takes the virtio-mmio slot after its disks, and they take all {} (give it at most {} disks)",
                    layout::VIRTIO_SLOTS,
                    layout::VIRTIO_SLOTS - 1
                ),
            );
        }
        let what = format!("partition \"{name}\"");
        let memory = match &raw.display_memory_mib {
            Some(v) => self
                .ranged(v, "display_memory_mib", &what, 1, MAX_DISPLAY_MEMORY_MIB)
                .map(|mib| u64::from(mib) * MIB),
            None => {
                let pixels: u64 = views
                    .iter()
                    .map(|v| u64::from(v.rect.width) * u64::from(v.rect.height))
                    .sum();
                let bytes = 2 * pixels * BYTES_PER_PIXEL;
                let mib = bytes.div_ceil(MIB);
                if mib > u64::from(MAX_DISPLAY_MEMORY_MIB) {
                    self.diags.error(
                        views_span,
                        format!(
                            "the views of partition \"{name}\" would get {mib} MiB of display memory by default (twice their {} at {BYTES_PER_PIXEL} bytes per pixel), more than the {MAX_DISPLAY_MEMORY_MIB} MiB a partition may have: give display_memory_mib (1..={MAX_DISPLAY_MEMORY_MIB})",
                            size(pixels * BYTES_PER_PIXEL)
                        ),
                    );
                    None
                } else {
                    Some(mib * MIB)
                }
            }
        };
        let resources = match &raw.display_resources {
            Some(v) => self.ranged(v, "display_resources", &what, 1, MAX_DISPLAY_RESOURCES),
            None => Some(DEFAULT_DISPLAY_RESOURCES),
        };
        Screen {
            views,
            protected,
            memory: memory.unwrap_or(0),
            resources: resources.unwrap_or(0),
        }
    }

    /// `views`: each on a display, inside it, and clear of the partition's
    /// other views there.
    fn views(&mut self, list: &[Spanned<RawScreenRect>], name: &str) -> Vec<ScreenArea> {
        let mut views: Vec<ScreenArea> = Vec::new();
        for (index, entry) in list.iter().enumerate() {
            if index == layout::GPU_MAX_SCANOUTS {
                self.diags.error(
                    entry.span(),
                    format!(
                        "partition \"{name}\" has more than {n} views: each is one of the {n} scanouts of its virtio-gpu device",
                        n = layout::GPU_MAX_SCANOUTS
                    ),
                );
            }
            let what = format!("view {index} of partition \"{name}\"");
            let Some((display, [x, y, width, height])) = self.screen_area(entry.get_ref(), &what)
            else {
                continue;
            };
            let Some((dw, dh)) = self.displays[display].size else {
                continue;
            };
            let raw = entry.get_ref();
            let d = &self.displays[display].name;
            let mut fits = true;
            for (edge, axis, start, end, limit, start_value, len_value) in [
                ("right", "x", x, x + width, dw, &raw.x, &raw.width),
                ("bottom", "y", y, y + height, dh, &raw.y, &raw.height),
            ] {
                let limit = u64::from(limit);
                if end > limit {
                    // At the start if that is off the display already,
                    // else at the length.
                    let at = if start >= limit {
                        start_value.span()
                    } else {
                        len_value.span()
                    };
                    let message = format!(
                        "{what} runs past the {edge} edge of display \"{d}\": it ends at {axis} = {end}, and the display is {dw}x{dh}"
                    );
                    self.diags.error(at, message);
                    fits = false;
                }
            }
            if !fits {
                continue;
            }
            // It fits a display of at most 4096x4096 pixels.
            let rect = ScreenRect {
                x: x as u32,
                y: y as u32,
                width: width as u32,
                height: height as u32,
            };
            if let Some(other) = views
                .iter()
                .find(|v| v.display == display && v.rect.overlaps(&rect))
            {
                let message = format!(
                    "{what} ({}) overlaps its view {} ({}) on display \"{}\": a partition's views on one display must not overlap",
                    owned::rect(&rect),
                    other.index,
                    owned::rect(&other.rect),
                    self.displays[display].name
                );
                self.diags.error(entry.span(), message);
            }
            let (deadline_ms, fallback) = self.deadline(raw, &what);
            views.push(ScreenArea {
                index,
                display,
                rect,
                deadline_ms,
                fallback,
                span: entry.span(),
            });
        }
        views
    }

    /// `protected`: only in a safety partition, each region inside one of
    /// its own `views` (checked only if all of them passed, or a broken
    /// view would make its regions fail too).
    fn protected(
        &mut self,
        raw: &RawPartition,
        name: &str,
        criticality: Option<Criticality>,
        views: &[ScreenArea],
        all_views_ok: bool,
    ) -> Vec<ScreenArea> {
        let Some(list) = &raw.protected else {
            return Vec::new();
        };
        if list.get_ref().is_empty() {
            return Vec::new();
        }
        if criticality == Some(Criticality::Qm) {
            self.diags.error(
                list.span(),
                format!(
                    "partition \"{name}\" is qm: only a safety partition (criticality asil-*) may protect screen regions"
                ),
            );
            return Vec::new();
        }
        let mut protected = Vec::new();
        for (index, entry) in list.get_ref().iter().enumerate() {
            let what = format!("protected region {index} of partition \"{name}\"");
            for (key, value) in [
                ("deadline_ms", &entry.get_ref().deadline_ms),
                ("fallback", &entry.get_ref().fallback),
            ] {
                if let Some(value) = value {
                    self.diags.error(
                        value.span(),
                        format!("{what} has {key}: only a view has a deadline and a fallback"),
                    );
                }
            }
            let Some((display, [x, y, width, height])) = self.screen_area(entry.get_ref(), &what)
            else {
                continue;
            };
            let rect = match (
                u32::try_from(x),
                u32::try_from(y),
                u32::try_from(width),
                u32::try_from(height),
            ) {
                (Ok(x), Ok(y), Ok(width), Ok(height)) => Some(ScreenRect {
                    x,
                    y,
                    width,
                    height,
                }),
                _ => None,
            };
            let inside = rect.filter(|r| {
                views
                    .iter()
                    .any(|v| v.display == display && v.rect.contains(r))
            });
            let Some(rect) = inside else {
                if all_views_ok {
                    let d = &self.displays[display].name;
                    let own: Vec<String> = views
                        .iter()
                        .filter(|v| v.display == display)
                        .map(|v| format!("view {} {}", v.index, owned::rect(&v.rect)))
                        .collect();
                    let views = if own.is_empty() {
                        format!("it has no view on display \"{d}\"")
                    } else {
                        format!("its views there are {}", own.join(", "))
                    };
                    let message = format!(
                        "{what} ({}) on display \"{d}\" is not inside one of the partition's views ({views}): a partition may protect only pixels it shows",
                        rect_of(x, y, width, height)
                    );
                    self.diags.error(entry.span(), message);
                }
                continue;
            };
            protected.push(ScreenArea {
                index,
                display,
                rect,
                deadline_ms: 0,
                fallback: 0,
                span: entry.span(),
            });
        }
        protected
    }

    /// A view's `deadline_ms` (0 without one) and fallback colour
    /// (`0xRRGGBB`).
    fn deadline(&mut self, raw: &RawScreenRect, what: &str) -> (u32, u32) {
        let deadline = raw
            .deadline_ms
            .as_ref()
            .and_then(|v| self.ranged(v, "deadline_ms", what, 1, MAX_DEADLINE_MS))
            .unwrap_or(0);
        let fallback = match &raw.fallback {
            None => DEFAULT_FALLBACK,
            Some(v) if raw.deadline_ms.is_none() => {
                self.diags.error(
                    v.span(),
                    format!("{what} has a fallback but no deadline_ms: the fallback shows when a deadline is missed"),
                );
                DEFAULT_FALLBACK
            }
            Some(v) => match *v.get_ref() {
                Int(c) if (0..=0xff_ffff).contains(&c) => c as u32,
                Int(c) => {
                    self.diags.error(
                        v.span(),
                        format!("fallback of {what} must be a colour 0xRRGGBB (0 to 0xffffff), got {c:#x}"),
                    );
                    DEFAULT_FALLBACK
                }
            },
        };
        (deadline, fallback)
    }

    /// An entry's display and `[x, y, width, height]`, each checked on its
    /// own: a display that exists, a position that is not negative, a size
    /// of at least one pixel.
    fn screen_area(&mut self, raw: &RawScreenRect, what: &str) -> Option<(usize, [u64; 4])> {
        let wanted = &raw.display.get_ref().0;
        let display = self.displays.iter().position(|d| d.name == *wanted);
        if display.is_none() {
            let known: Vec<String> = self
                .displays
                .iter()
                .map(|d| format!("\"{}\"", d.name))
                .collect();
            let known = if known.is_empty() {
                "there is no [[display]] table".to_owned()
            } else {
                format!("the displays are {}", known.join(", "))
            };
            self.diags.error(
                raw.display.span(),
                format!("{what}: unknown display \"{wanted}\" ({known})"),
            );
        }
        let x = self.uint(&raw.x, &format!("x of {what}"));
        let y = self.uint(&raw.y, &format!("y of {what}"));
        let mut at_least_one = |value: &Spanned<Int>, key: &str| {
            let Int(v) = *value.get_ref();
            if v < 1 {
                self.diags.error(
                    value.span(),
                    format!("{key} of {what} must be at least 1 (got {v})"),
                );
                return None;
            }
            Some(v as u64)
        };
        let width = at_least_one(&raw.width, "width");
        let height = at_least_one(&raw.height, "height");
        Some((display?, [x?, y?, width?, height?]))
    }

    /// Views of two partitions of the same priority must not overlap (which
    /// is on top would be ambiguous), and two partitions' protected regions
    /// never. Each conflict is reported once, at the later entry.
    pub(super) fn screen_sharing(&mut self, parts: &[Part<'_>]) {
        for (j, part) in parts.iter().enumerate() {
            for earlier in &parts[..j] {
                if let Some(priority) = part.priority.filter(|_| part.priority == earlier.priority)
                {
                    let why = format!(
                        ", and both partitions have priority {priority}: which is on top would be ambiguous (views are stacked by their partition's priority)"
                    );
                    let (mine, theirs) = (&part.screen.views, &earlier.screen.views);
                    self.clashes("view", (&part.name, mine), (&earlier.name, theirs), &why);
                }
                let (mine, theirs) = (&part.screen.protected, &earlier.screen.protected);
                self.clashes(
                    "protected region",
                    (&part.name, mine),
                    (&earlier.name, theirs),
                    ": two partitions cannot protect the same pixels",
                );
            }
        }
    }

    /// Reports each of a partition's `kind`s that overlaps one of an
    /// earlier partition's on the same display, each with its partition's
    /// name.
    fn clashes(
        &mut self,
        kind: &str,
        (name, areas): (&str, &[ScreenArea]),
        (earlier_name, earlier): (&str, &[ScreenArea]),
        why: &str,
    ) {
        for area in areas {
            for other in earlier {
                if other.display != area.display || !other.rect.overlaps(&area.rect) {
                    continue;
                }
                let message = format!(
                    "{kind} {} of partition \"{name}\" ({}) overlaps {kind} {} of partition \"{earlier_name}\" ({}) on display \"{}\"{why}",
                    area.index,
                    owned::rect(&area.rect),
                    other.index,
                    owned::rect(&other.rect),
                    self.displays[area.display].name,
                );
                self.diags.error(area.span.clone(), message);
            }
        }
    }
}

/// What the hypervisor needs of its own reservation besides its heap:
/// code and data, stacks, the page-table arena, the partitions' device
/// trees and the disks' DMA areas (about 3 MiB today; the rest is margin).
pub(super) const HYPERVISOR_OVERHEAD_MIB: u64 = 8;

impl Validator<'_, '_> {
    /// The displays' framebuffers and the partitions' display memory come
    /// out of the hypervisor's reservation, after its image (which holds
    /// the partitions' images and initrds): they must fit what is left, or
    /// the hypervisor would refuse them at boot.
    pub(super) fn display_memory_fits(
        &mut self,
        raw: &RawConfig,
        hv_size: Option<u64>,
        parts: &[Part<'_>],
    ) {
        let Some(reservation) = hv_size else { return };
        let framebuffers: u64 = self
            .displays
            .iter()
            .filter_map(|d| d.size)
            .map(|(w, h)| u64::from(w) * u64::from(h) * BYTES_PER_PIXEL + 64 * 1024)
            .sum();
        let arenas: u64 = parts.iter().map(|p| p.screen.memory).sum();
        if framebuffers + arenas == 0 {
            return;
        }
        let images: u64 = parts
            .iter()
            .map(|p| p.image.as_ref().map_or(0, |i| i.len) + p.initrd.as_ref().map_or(0, |i| i.len))
            .sum();
        let overhead = HYPERVISOR_OVERHEAD_MIB * MIB;
        let left = reservation.saturating_sub(images + overhead);
        if framebuffers + arenas > left {
            let mib = |b: u64| b.div_ceil(MIB);
            self.diags.error(
                raw.hypervisor.get_ref().memory.span(),
                format!(
                    "the displays need {} MiB of the hypervisor's memory ({} MiB of framebuffers, {} MiB of partitions' display_memory_mib), but its {} MiB leave about {} MiB after the partitions' images and initrds ({} MiB) and the hypervisor itself ({HYPERVISOR_OVERHEAD_MIB} MiB): make [hypervisor] memory larger or display_memory_mib smaller",
                    mib(framebuffers + arenas),
                    mib(framebuffers),
                    mib(arenas),
                    reservation / MIB,
                    left / MIB,
                    mib(images),
                ),
            );
        }
    }
}
