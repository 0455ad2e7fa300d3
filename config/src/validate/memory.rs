//! Partition memory: each region on its own, then who owns which host
//! range, then what shares a partition's guest-physical space.

use super::{GUEST_PA_LIMIT, PAGE, Part, Span, VIRTIO_WINDOW, Validator, overlaps, page_span};
use crate::layout;
use crate::model::{MemoryMap, Region};
use crate::owned::range;
use crate::raw::{RawConfig, RawMap, RawPartition};

/// Every partition gets emulated devices here (see `crate::layout`).
const DEVICE_WINDOW: Region = Region {
    base: layout::DEVICE_WINDOW_BASE,
    size: layout::DEVICE_WINDOW_SIZE,
};

impl Validator<'_, '_> {
    pub(super) fn memory(&mut self, raw: &RawPartition, name: &str) -> Vec<Option<MemoryMap>> {
        let list = raw.memory.get_ref();
        if list.is_empty() {
            self.diags.error(
                raw.memory.span(),
                format!("partition \"{name}\" has no memory: list at least one region"),
            );
        }
        list.iter()
            .map(|m| self.memory_map(m.get_ref(), name))
            .collect()
    }

    fn memory_map(&mut self, raw: &RawMap, name: &str) -> Option<MemoryMap> {
        let guest = self.uint(
            &raw.guest,
            &format!("memory guest address of partition \"{name}\""),
        );
        let host = self.uint(
            &raw.host,
            &format!("memory host address of partition \"{name}\""),
        );
        let size = self.uint(&raw.size, &format!("memory size of partition \"{name}\""));
        let (guest, host, size) = (guest?, host?, size?);
        let mut ok = true;
        if size == 0 {
            self.diags.error(
                raw.size.span(),
                format!("memory size of partition \"{name}\" must not be 0"),
            );
            return None;
        }
        for (value, key, span) in [
            (guest, "guest address", raw.guest.span()),
            (host, "host address", raw.host.span()),
            (size, "size", raw.size.span()),
        ] {
            if !value.is_multiple_of(PAGE) {
                self.diags.error(span, format!("memory {key} {value:#x} of partition \"{name}\" is misaligned: it must be a multiple of 4 KiB"));
                ok = false;
            }
        }
        match guest.checked_add(size) {
            Some(end) if end <= GUEST_PA_LIMIT => {}
            _ => {
                self.diags.error(
                    raw.guest.span(),
                    format!(
                        "memory of partition \"{name}\" (guest {}) ends above the 39-bit guest-physical address space ({GUEST_PA_LIMIT:#x})",
                        range(guest, size)
                    ),
                );
                ok = false;
            }
        }
        if host.checked_add(size).is_none() {
            self.diags.error(raw.host.span(), format!("memory of partition \"{name}\" (host {host:#x} + {size:#x}) runs past the end of the address space"));
            return None;
        }
        if let Some(message) = self.outside_ram(Region { base: host, size }) {
            self.diags.error(
                raw.host.span(),
                format!(
                    "memory of partition \"{name}\" (host {}) {message}",
                    range(host, size)
                ),
            );
            ok = false;
        }
        ok.then_some(MemoryMap { guest, host, size })
    }

    /// Host memory is owned by exactly one of: the hypervisor, one
    /// partition's region.
    pub(super) fn host_overlaps(
        &mut self,
        hypervisor: Option<Region>,
        raw: &RawConfig,
        parts: &[Part<'_>],
    ) {
        struct Use<'n> {
            owner: Option<&'n str>,
            region: Region,
            span: Span,
        }
        let mut uses: Vec<Use<'_>> = Vec::new();
        if let Some(region) = hypervisor {
            uses.push(Use {
                owner: None,
                region,
                span: raw.hypervisor.get_ref().memory.span(),
            });
        }
        for part in parts {
            for (map, raw_map) in part.memory.iter().zip(part.raw.memory.get_ref()) {
                if let Some(m) = map {
                    let region = Region {
                        base: m.host,
                        size: m.size,
                    };
                    uses.push(Use {
                        owner: Some(&part.name),
                        region,
                        span: raw_map.get_ref().host.span(),
                    });
                }
            }
        }
        for (j, later) in uses.iter().enumerate() {
            let Some(name) = later.owner else { continue };
            let here = format!(
                "memory of partition \"{name}\" (host {})",
                range(later.region.base, later.region.size)
            );
            for earlier in uses[..j]
                .iter()
                .filter(|e| overlaps(e.region, later.region))
            {
                let there = range(earlier.region.base, earlier.region.size);
                let message = match earlier.owner {
                    None => format!("{here} overlaps the hypervisor reservation (host {there})"),
                    Some(other) if other == name => {
                        format!("{here} overlaps another of its regions (host {there})")
                    }
                    Some(other) => format!("{here} overlaps partition \"{other}\" (host {there})"),
                };
                self.diags.error(later.span.clone(), message);
            }
        }
    }

    /// Inside one partition, guest-physical space holds its RAM, the
    /// emulated device window, the virtio-mmio window and its passthrough
    /// devices, none sharing.
    pub(super) fn guest_overlaps(&mut self, part: &Part<'_>) {
        let name = &part.name;
        let maps: Vec<(MemoryMap, Span)> = part
            .memory
            .iter()
            .zip(part.raw.memory.get_ref())
            .filter_map(|(m, raw)| Some(((*m)?, raw.get_ref().guest.span())))
            .collect();
        for (j, (map, span)) in maps.iter().enumerate() {
            let guest = Region {
                base: map.guest,
                size: map.size,
            };
            let here = format!(
                "memory of partition \"{name}\" (guest {})",
                range(guest.base, guest.size)
            );
            for (earlier, _) in &maps[..j] {
                let other = Region {
                    base: earlier.guest,
                    size: earlier.size,
                };
                if overlaps(guest, other) {
                    self.diags.error(
                        span.clone(),
                        format!(
                            "{here} overlaps another of its regions (guest {})",
                            range(other.base, other.size)
                        ),
                    );
                }
            }
            if overlaps(guest, DEVICE_WINDOW) {
                self.diags.error(
                    span.clone(),
                    format!(
                        "{here} overlaps the virtual device window (guest {}) where every partition has its emulated devices",
                        range(DEVICE_WINDOW.base, DEVICE_WINDOW.size)
                    ),
                );
            }
            if overlaps(guest, VIRTIO_WINDOW) {
                self.diags.error(
                    span.clone(),
                    format!(
                        "{here} overlaps the virtio-mmio window (guest {}) where every partition has its virtio devices",
                        range(VIRTIO_WINDOW.base, VIRTIO_WINDOW.size)
                    ),
                );
            }
            for device in &part.devices {
                for pages in device.regions.iter().map(|r| page_span(*r)) {
                    if overlaps(guest, pages) {
                        self.diags.error(
                            span.clone(),
                            format!(
                                "{here} overlaps passthrough device {} (guest {})",
                                device.path,
                                range(pages.base, pages.size)
                            ),
                        );
                    }
                }
            }
        }
    }
}
