//! Passthrough devices: each one against the board device tree, then
//! what two partitions' devices must not share (the device, a page, an
//! interrupt).

use std::collections::BTreeMap;

use toml::Spanned;

use super::{Device, GUEST_PA_LIMIT, Part, Span, VIRTIO_WINDOW, Validator, overlaps, page_span};
use crate::dtb::{DtInterrupt, MAX_SPI_INTID, NodeId};
use crate::layout;
use crate::model::Region;
use crate::owned::range;
use crate::raw::{Int, RawDevice, RawPartition};

/// The emulated devices every partition sees (see `crate::layout`). A
/// passthrough device is mapped guest == host and must not land on them.
const EMULATED_GICD: Region = Region {
    base: layout::GICD_BASE,
    size: layout::GICD_SIZE,
};
const EMULATED_UART: Region = Region {
    base: layout::UART_BASE,
    size: layout::UART_SIZE,
};
/// Kept clear in every partition, whether or not it has the watchdog: one
/// rule, and turning the watchdog on never breaks a device assignment.
const EMULATED_WATCHDOG: Region = Region {
    base: layout::WATCHDOG_BASE,
    size: layout::WATCHDOG_SIZE,
};

impl Validator<'_, '_> {
    pub(super) fn devices(&mut self, raw: &RawPartition, name: &str, vcpus: usize) -> Vec<Device> {
        let Some(list) = &raw.devices else {
            return Vec::new();
        };
        let mut devices: Vec<Device> = Vec::new();
        for entry in list.get_ref().list() {
            let (path, path_span, overrides) = match entry.get_ref() {
                RawDevice::Path(p) => (p.as_str(), entry.span(), None),
                RawDevice::Table(t) => (
                    t.path.get_ref().0.as_str(),
                    t.path.span(),
                    t.interrupts.as_ref(),
                ),
            };
            let Some(device) = self.device(path, path_span.clone(), overrides, name, vcpus) else {
                continue;
            };
            if devices.iter().any(|d| d.path == device.path) {
                self.diags.error(
                    path_span,
                    format!(
                        "device {} is listed twice in partition \"{name}\"",
                        device.path
                    ),
                );
                continue;
            }
            devices.push(device);
        }
        devices
    }

    /// An explicit `devices` entry: found in the board DT, then every rule
    /// of [`Self::device_rules`], each broken one reported.
    fn device(
        &mut self,
        given: &str,
        span: Span,
        overrides: Option<&Spanned<Vec<Spanned<Int>>>>,
        name: &str,
        vcpus: usize,
    ) -> Option<Device> {
        let board = self.board.as_ref()?;
        let node = match board.resolve(given) {
            Ok(node) => node,
            Err(e) => {
                self.diags
                    .error(span, format!("device of partition \"{name}\": {e}"));
                return None;
            }
        };
        match self.device_rules(node, span, overrides, vcpus) {
            Ok(device) => Some(device),
            Err(errors) => {
                for (at, message) in errors {
                    self.diags.error(at, message);
                }
                None
            }
        }
    }

    /// What a passthrough device must be, on its own: a node with a `reg`
    /// that the hypervisor does not keep (the GIC, the console, a mediated
    /// device) and that misses RAM, the emulated devices and the mediated
    /// devices' pages and interrupts, with SPIs only. `span` is where
    /// the config names it (and its interrupts, unless `overrides` gives
    /// them). The same rules judge an explicit entry (each broken one is
    /// an error) and an `all_except` candidate (which is left out).
    pub(super) fn device_rules(
        &self,
        node: NodeId,
        span: Span,
        overrides: Option<&Spanned<Vec<Spanned<Int>>>>,
        vcpus: usize,
    ) -> Result<Device, Vec<(Span, String)>> {
        let Some(board) = self.board.as_ref() else {
            return Err(Vec::new());
        };
        let mut errors: Vec<(Span, String)> = Vec::new();
        let path = board.path(node).to_owned();
        let regions = match board.regs(node) {
            Ok(Some(regions)) => regions,
            Ok(None) => {
                errors.push((
                    span.clone(),
                    format!("device {path} has no `reg`: there is nothing to pass through"),
                ));
                Vec::new()
            }
            Err(e) => {
                errors.push((span.clone(), format!("device {path}: {e}")));
                Vec::new()
            }
        };
        // The GIC and the console belong to the hypervisor; saying so is
        // enough, without the collisions with emulated frames that follow.
        if let Some(gic) = board.gic()
            && board.is_within(node, gic)
        {
            return Err(vec![(
                span,
                format!(
                    "device {path} is part of the interrupt controller, which the hypervisor owns"
                ),
            )]);
        }
        if self.console == Some(node) {
            return Err(vec![(
                span,
                format!("device {path} is the hypervisor console and cannot be passed through"),
            )]);
        }
        if let Some(mediated) = self.mediated_at(node) {
            return Err(vec![(
                span,
                format!(
                    "device {path} is {mediated}, which the hypervisor mediates: it cannot also be passed through"
                ),
            )]);
        }
        let ram = board.ram();
        for r in &regions {
            if r.size == 0 {
                errors.push((
                    span.clone(),
                    format!("device {path} has an empty `reg` entry at {:#x}", r.base),
                ));
                continue;
            }
            let pages = page_span(*r);
            if pages
                .base
                .checked_add(pages.size)
                .is_none_or(|end| end > GUEST_PA_LIMIT)
            {
                errors.push((
                    span.clone(),
                    format!(
                        "device {path} (host {}) lies above the 39-bit guest-physical address space, where it cannot be mapped guest == host",
                        range(r.base, r.size)
                    ),
                ));
                continue;
            }
            if let Some(bank) = ram.iter().find(|bank| overlaps(pages, **bank)) {
                errors.push((
                    span.clone(),
                    format!(
                        "device {path} (host {}) overlaps board RAM ({})",
                        range(r.base, r.size),
                        range(bank.base, bank.size)
                    ),
                ));
            }
            for (what, frame) in emulated_frames(vcpus) {
                if overlaps(pages, frame) {
                    errors.push((
                        span.clone(),
                        format!(
                            "device {path} (guest {}, mapped guest == host) collides with the {what} (guest {})",
                            range(pages.base, pages.size),
                            range(frame.base, frame.size)
                        ),
                    ));
                }
            }
            // The hypervisor drives a storage device or display itself: a
            // partition that could reach its registers could bypass the
            // mediation.
            for (mediated, device) in self.mediated() {
                for shared in device
                    .regions
                    .iter()
                    .filter_map(|r| page_overlap(pages, page_span(*r)))
                {
                    errors.push((
                        span.clone(),
                        format!(
                            "device {path} (host {}) shares a 4 KiB page ({}) with {mediated} ({}), which the hypervisor mediates",
                            range(r.base, r.size),
                            range(shared.base, shared.size),
                            device.path
                        ),
                    ));
                }
            }
        }

        let interrupts = match overrides {
            Some(list) => self.interrupt_overrides(list, &path, &mut errors),
            None => match board.interrupts(node) {
                Ok(irqs) => {
                    let mut intids = Vec::new();
                    for irq in irqs {
                        match irq {
                            DtInterrupt::Spi(intid) => intids.push((intid, span.clone())),
                            DtInterrupt::Ppi(n) => errors.push((
                                span.clone(),
                                format!("device {path} raises PPI {n}: PPIs are per-core and cannot be passed through"),
                            )),
                            DtInterrupt::Other { kind, number } => errors.push((
                                span.clone(),
                                format!("device {path} raises interrupt type {kind} number {number}, which is not a GICv3 SPI"),
                            )),
                        }
                    }
                    intids
                }
                Err(e) => {
                    errors.push((span.clone(), format!("device {path}: {e}")));
                    Vec::new()
                }
            },
        };
        for (intid, at) in &interrupts {
            if layout::is_reserved_intid(*intid) {
                errors.push((
                    at.clone(),
                    format!(
                        "interrupt {intid} of device {path} is {}, reserved in every partition",
                        reserved_interrupt_owner(*intid)
                    ),
                ));
            }
            for (mediated, device) in self.mediated() {
                if device.interrupts.contains(intid) {
                    errors.push((
                        at.clone(),
                        format!(
                            "interrupt {intid} of device {path} is the interrupt of {mediated} ({}), which the hypervisor mediates",
                            device.path
                        ),
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Device {
            path,
            node,
            regions,
            interrupts,
            span,
        })
    }

    /// `interrupts = [...]` in a device table: INTIDs replacing the ones
    /// the device tree gives.
    fn interrupt_overrides(
        &self,
        list: &Spanned<Vec<Spanned<Int>>>,
        path: &str,
        errors: &mut Vec<(Span, String)>,
    ) -> Vec<(u32, Span)> {
        let mut intids: Vec<(u32, Span)> = Vec::new();
        for value in list.get_ref() {
            let Int(v) = *value.get_ref();
            let intid = match u32::try_from(v) {
                Ok(i) if (32..=MAX_SPI_INTID).contains(&i) => i,
                _ => {
                    errors.push((
                        value.span(),
                        format!("interrupt {v} of device {path} is not an SPI INTID (32..=1019)"),
                    ));
                    continue;
                }
            };
            if intids.iter().any(|(i, _)| *i == intid) {
                errors.push((
                    value.span(),
                    format!("interrupt {intid} is listed twice for device {path}"),
                ));
                continue;
            }
            intids.push((intid, value.span()));
        }
        intids
    }

    /// A device, its MMIO pages and its interrupts each belong to one
    /// partition.
    pub(super) fn device_sharing(&mut self, parts: &[Part<'_>]) {
        // Partitions are told apart by index: a duplicated name has been
        // reported already and must not merge two partitions here.
        let all: Vec<(usize, &str, &Device)> = parts
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.devices.iter().map(move |d| (i, p.name.as_str(), d)))
            .collect();
        let mut interrupt_owner: BTreeMap<u32, (usize, &str, &Device)> = BTreeMap::new();
        for (j, &(owner, name, device)) in all.iter().enumerate() {
            for &(other_owner, other_name, other) in &all[..j] {
                if other_owner == owner {
                    continue;
                }
                if other.node == device.node {
                    self.diags.error(
                        device.span.clone(),
                        format!("device {} owned twice: by partition \"{other_name}\" and partition \"{name}\"", device.path),
                    );
                    continue;
                }
                if let Some(shared) = shared_page(device, other) {
                    self.diags.error(
                        device.span.clone(),
                        format!(
                            "device {} of partition \"{name}\" shares a 4 KiB page ({}) with device {} of partition \"{other_name}\"",
                            device.path,
                            range(shared.base, shared.size),
                            other.path
                        ),
                    );
                }
            }
            for (intid, span) in &device.interrupts {
                match interrupt_owner.get(intid) {
                    Some(&(other_owner, other_name, other))
                        if other_owner != owner && other.node != device.node =>
                    {
                        self.diags.error(
                            span.clone(),
                            format!(
                                "interrupt {intid} owned twice: by device {} of partition \"{other_name}\" and device {} of partition \"{name}\"",
                                other.path, device.path
                            ),
                        );
                    }
                    Some(_) => {}
                    None => {
                        interrupt_owner.insert(*intid, (owner, name, device));
                    }
                }
            }
        }
    }
}

/// The emulated devices' frames in a partition with `vcpus` vCPUs.
fn emulated_frames(vcpus: usize) -> [(&'static str, Region); 5] {
    let gicr = Region {
        base: layout::GICR_BASE,
        size: layout::GICR_STRIDE * vcpus.max(1) as u64,
    };
    [
        ("emulated GIC distributor", EMULATED_GICD),
        ("emulated GIC redistributors", gicr),
        ("emulated PL011 console", EMULATED_UART),
        ("emulated SP805 watchdog", EMULATED_WATCHDOG),
        ("virtio-mmio window", VIRTIO_WINDOW),
    ]
}

/// Which emulated device raises `intid`, one for which
/// `layout::is_reserved_intid` holds.
fn reserved_interrupt_owner(intid: u32) -> String {
    match intid {
        layout::UART_INTID => "the emulated console's interrupt".to_owned(),
        layout::WATCHDOG_INTID => "the emulated watchdog's interrupt".to_owned(),
        i if i >= layout::VIRTIO_FIRST_INTID => format!(
            "the interrupt of virtio-mmio slot {}",
            i - layout::VIRTIO_FIRST_INTID
        ),
        _ => "an emulated device's interrupt".to_owned(),
    }
}

/// The first page range two devices both touch, if any.
fn shared_page(a: &Device, b: &Device) -> Option<Region> {
    a.regions.iter().map(|r| page_span(*r)).find_map(|x| {
        b.regions
            .iter()
            .find_map(|r| page_overlap(x, page_span(*r)))
    })
}

/// What two page ranges have in common, if anything.
pub(super) fn page_overlap(x: Region, y: Region) -> Option<Region> {
    overlaps(x, y).then(|| {
        let base = x.base.max(y.base);
        let end = (x.base + x.size).min(y.base + y.size);
        Region {
            base,
            size: end - base,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reserved_interrupt_has_an_owner() {
        let reserved = (0..=MAX_SPI_INTID).filter(|&i| layout::is_reserved_intid(i));
        for intid in reserved {
            assert_ne!(
                reserved_interrupt_owner(intid),
                "an emulated device's interrupt",
                "INTID {intid} has no name of its own"
            );
        }
        assert_eq!(
            reserved_interrupt_owner(97),
            "the interrupt of virtio-mmio slot 1"
        );
    }

    #[test]
    fn emulated_frames_include_the_watchdog() {
        let frames = emulated_frames(2);
        let watchdog = frames
            .iter()
            .find(|(what, _)| what.contains("watchdog"))
            .expect("the watchdog frame")
            .1;
        assert_eq!(
            watchdog,
            Region {
                base: 0x0910_0000,
                size: 0x1000
            }
        );
        // Every frame lies in the device window or the virtio window, which
        // guest memory avoids.
        let within = |frame: Region, window: Region| {
            frame.base >= window.base && frame.base + frame.size <= window.base + window.size
        };
        let device_window = Region {
            base: layout::DEVICE_WINDOW_BASE,
            size: layout::DEVICE_WINDOW_SIZE,
        };
        for (what, frame) in frames {
            assert!(
                within(frame, device_window) || within(frame, VIRTIO_WINDOW),
                "{what}"
            );
        }
        assert!(frames.iter().any(|(_, f)| *f == VIRTIO_WINDOW));
    }
}
