//! Mediated storage: the `[[storage]]` devices against the board device
//! tree, each partition's `disks` on their own, then which disks of all
//! partitions may share sectors. Also what every device the hypervisor
//! mediates (storage devices, displays: see `display`, and touch panels:
//! see `touch`) must be.

use toml::Spanned;

use super::{Disk, MediatedDevice, Part, Storage, Validator, first_use};
use crate::dtb::{DtInterrupt, NodeId};
use crate::layout;
use crate::model::Criticality;
use crate::owned::OwnedDiskExtent;
use crate::raw::{Int, RawConfig, RawDisk, RawPartition, RawStorage, Str};

/// `lower_in_flight_kib`: its range and default (1 MiB: a 1 MiB transfer
/// streams while the top partition is idle).
pub const LOWER_IN_FLIGHT_KIB: (i64, i64, u32) = (4, 65536, 1024);

/// What a storage device's node must be compatible with.
const VIRTIO_MMIO: &str = "virtio,mmio";

impl Validator<'_, '_> {
    /// The `[[storage]]` tables, in file order, each with what passed.
    pub(super) fn storage_devices(&mut self, raw: &RawConfig) -> Vec<Storage> {
        let Some(list) = &raw.storage else {
            return Vec::new();
        };
        let mut storage: Vec<Storage> = Vec::new();
        for (i, entry) in list.get_ref().iter().enumerate() {
            let s = self.storage_device(entry.get_ref(), &list.get_ref()[..i], &storage);
            storage.push(s);
        }
        storage
    }

    fn storage_device(
        &mut self,
        raw: &RawStorage,
        earlier_raw: &[Spanned<RawStorage>],
        earlier: &[Storage],
    ) -> Storage {
        let name = raw.name.get_ref().0.clone();
        let first = first_use(earlier_raw.iter().map(|e| &e.get_ref().name), &raw.name);
        let name_ok = self.check_name(&raw.name, "storage", first);
        let taken: Vec<(String, NodeId)> = earlier
            .iter()
            .filter_map(|s| Some((format!("storage \"{}\"", s.name), s.device.as_ref()?.node)))
            .collect();
        let what = format!("storage \"{name}\"");
        let device = self.mediated_node(&raw.device, &what, &taken);
        let (home_cpu, home_ok) = match &raw.home_cpu {
            None => (None, true),
            Some(value) => match self.home_cpu(value, &what) {
                Some(cpu) => (Some(cpu), true),
                None => (None, false),
            },
        };
        let budget = self.in_range(
            raw.lower_in_flight_kib.as_ref(),
            &what,
            "lower_in_flight_kib",
            "KiB",
            LOWER_IN_FLIGHT_KIB,
        );
        let (records, records_ok) = match &raw.records {
            None => (None, true),
            Some(value) => match self.records(value, earlier_raw, &what) {
                Some(gpt) => (Some((gpt, value.span())), true),
                None => (None, false),
            },
        };
        Storage {
            ok: name_ok && device.is_some() && home_ok && budget.is_some() && records_ok,
            name,
            device,
            home_cpu,
            home_cpu_span: raw.home_cpu.as_ref().map(|v| v.span()),
            lower_in_flight_kib: budget.unwrap_or(LOWER_IN_FLIGHT_KIB.2.into()) as u32,
            records,
        }
    }

    /// `records` of a storage device (`what`): a GPT partition name, as a
    /// disk's `gpt`, on one storage device only (the hypervisor keeps one
    /// crash-records area). `earlier_raw`: the `[[storage]]` tables before
    /// this one, whose `records` count whether or not they passed.
    fn records(
        &mut self,
        value: &Spanned<Str>,
        earlier_raw: &[Spanned<RawStorage>],
        what: &str,
    ) -> Option<String> {
        let gpt = self.gpt_name(value, &format!("records of {what}"));
        let first = earlier_raw.iter().find_map(|e| {
            let e = e.get_ref();
            Some((&e.name.get_ref().0, e.records.as_ref()?.span().start))
        });
        if let Some((other, at)) = first {
            let (line, _) = self.diags.position(at);
            self.diags.error(
                value.span(),
                format!(
                    "{what} has records, as has storage \"{other}\" (line {line}): the hypervisor keeps one crash-records area, on one storage device"
                ),
            );
            return None;
        }
        gpt
    }

    /// `device` of a storage device, display or touch panel, or a panel's
    /// `pointer` (`what`, as messages name it): a virtio-mmio transport of
    /// the board that nothing else has: not the console, not one of the
    /// devices the hypervisor already took (`taken`, each with what
    /// messages call it).
    pub(super) fn mediated_node(
        &mut self,
        value: &Spanned<Str>,
        what: &str,
        taken: &[(String, NodeId)],
    ) -> Option<MediatedDevice> {
        let board = self.board.as_ref()?;
        let span = value.span();
        let node = match board.resolve(&value.get_ref().0) {
            Ok(node) => node,
            Err(e) => {
                self.diags.error(span, format!("{what}: {e}"));
                return None;
            }
        };
        let path = board.path(node).to_owned();
        let mut errors: Vec<String> = Vec::new();
        if self.console == Some(node) {
            errors.push(format!("{what} device {path} is the hypervisor console"));
        } else if let Some((other, _)) = taken.iter().find(|(_, n)| *n == node) {
            errors.push(format!("{what} device {path} is already {other}"));
        } else {
            let compatible = board.compatible(node);
            if !compatible.contains(&VIRTIO_MMIO) {
                let found = if compatible.is_empty() {
                    "it has no compatible".to_owned()
                } else {
                    let quoted: Vec<String> = compatible.iter().map(|c| format!("{c:?}")).collect();
                    format!("its compatible is {}", quoted.join(", "))
                };
                errors.push(format!(
                    "{what} device {path} is not a virtio-mmio transport: {found}, not \"{VIRTIO_MMIO}\""
                ));
            }
        }
        let regions = match board.regs(node) {
            Ok(Some(regions)) if regions.iter().any(|r| r.size > 0) => regions,
            Ok(_) => {
                errors.push(format!("{what} device {path} has no `reg`"));
                Vec::new()
            }
            Err(e) => {
                errors.push(format!("{what} device {path}: {e}"));
                Vec::new()
            }
        };
        let mut interrupts = Vec::new();
        match board.interrupts(node) {
            Ok(irqs) => {
                for irq in irqs {
                    match irq {
                        DtInterrupt::Spi(intid) => interrupts.push(intid),
                        DtInterrupt::Ppi(n) => errors.push(format!(
                            "{what} device {path} raises PPI {n}: a virtio-mmio transport raises an SPI"
                        )),
                        DtInterrupt::Other { kind, number } => errors.push(format!(
                            "{what} device {path} raises interrupt type {kind} number {number}, which is not a GICv3 SPI"
                        )),
                    }
                }
            }
            Err(e) => errors.push(format!("{what} device {path}: {e}")),
        }
        let ok = errors.is_empty();
        for message in errors {
            self.diags.error(span.clone(), message);
        }
        ok.then_some(MediatedDevice {
            node,
            path,
            regions,
            interrupts,
        })
    }

    /// `home_cpu` of a storage device, display or touch panel (`what`): a
    /// core of the board.
    pub(super) fn home_cpu(&mut self, value: &Spanned<Int>, what: &str) -> Option<u64> {
        let cpu = self.uint(value, &format!("home_cpu of {what}"))?;
        let present = self.board.as_ref()?.cpus();
        if !present.contains(&cpu) {
            let list: Vec<String> = present.iter().map(u64::to_string).collect();
            self.diags.error(
                value.span(),
                format!(
                    "home_cpu {cpu} of {what} does not exist on the board (its cpus are {})",
                    list.join(", ")
                ),
            );
            return None;
        }
        Some(cpu)
    }

    /// A partition's `disks`, each on its own. Those that fail are left
    /// out.
    pub(super) fn disks(&mut self, raw: &RawPartition, name: &str) -> Vec<Disk> {
        let Some(list) = &raw.disks else {
            return Vec::new();
        };
        let mut disks = Vec::new();
        for (slot, entry) in list.get_ref().iter().enumerate() {
            if slot == layout::VIRTIO_SLOTS {
                self.diags.error(
                    entry.span(),
                    format!(
                        "partition \"{name}\" has more than {} disks: each takes one of its {} virtio-mmio slots",
                        layout::VIRTIO_SLOTS,
                        layout::VIRTIO_SLOTS
                    ),
                );
            }
            if let Some(disk) = self.disk(entry, name, slot) {
                disks.push(disk);
            }
        }
        disks
    }

    fn disk(&mut self, entry: &Spanned<RawDisk>, name: &str, slot: usize) -> Option<Disk> {
        let raw = entry.get_ref();
        let what = format!("disk {slot} of partition \"{name}\"");
        let wanted = &raw.storage.get_ref().0;
        let storage = self.storage.iter().position(|s| s.name == *wanted);
        if storage.is_none() {
            let known: Vec<String> = self
                .storage
                .iter()
                .map(|s| format!("\"{}\"", s.name))
                .collect();
            let known = if known.is_empty() {
                "there is no [[storage]] table".to_owned()
            } else {
                format!("the storage devices are {}", known.join(", "))
            };
            self.diags.error(
                raw.storage.span(),
                format!("{what}: unknown storage \"{wanted}\" ({known})"),
            );
        }
        let (extent, span) = match (&raw.gpt, &raw.lba, &raw.sectors) {
            (Some(_), Some(_), _) | (Some(_), None, Some(_)) => {
                // At whichever of the two comes first.
                let at = [&raw.lba, &raw.sectors]
                    .into_iter()
                    .flatten()
                    .map(Spanned::span)
                    .min_by_key(|s| s.start)
                    .expect("lba or sectors");
                self.diags.error(
                    at,
                    format!(
                        "{what} gives both gpt and an LBA range: a disk is either a GPT partition (gpt) or an LBA range (lba and sectors)"
                    ),
                );
                return None;
            }
            (Some(gpt), None, None) => (
                self.gpt_name(gpt, &what).map(OwnedDiskExtent::Gpt),
                gpt.span(),
            ),
            (None, Some(lba), Some(sectors)) => (self.lba_range(lba, sectors, &what), lba.span()),
            (None, Some(lba), None) => {
                self.diags.error(
                    lba.span(),
                    format!("{what} has lba but no sectors: an LBA range needs both"),
                );
                return None;
            }
            (None, None, Some(sectors)) => {
                self.diags.error(
                    sectors.span(),
                    format!("{what} has sectors but no lba: an LBA range needs both"),
                );
                return None;
            }
            (None, None, None) => {
                self.diags.error(
                    entry.span(),
                    format!(
                        "{what} says not which sectors it is: give gpt = \"<GPT partition name>\", or lba and sectors"
                    ),
                );
                return None;
            }
        };
        Some(Disk {
            slot,
            storage: storage?,
            extent: extent?,
            read_only: raw.read_only.as_ref().is_some_and(|v| *v.get_ref()),
            span,
        })
    }

    /// A disk's `gpt` or a storage device's `records` (`what`, as
    /// messages name it): a GPT partition name, which the partition entry
    /// holds as at most 36 UTF-16 code units.
    fn gpt_name(&mut self, value: &Spanned<Str>, what: &str) -> Option<String> {
        let gpt = &value.get_ref().0;
        let units = gpt.encode_utf16().count();
        let problem = if gpt.is_empty() {
            Some(format!("GPT partition name of {what} is empty"))
        } else if units > layout::GPT_NAME_MAX {
            Some(format!(
                "GPT partition name \"{gpt}\" of {what} is {units} UTF-16 code units long: a GPT name holds at most {}",
                layout::GPT_NAME_MAX
            ))
        } else if gpt.contains('\0') {
            Some(format!(
                "GPT partition name of {what} must not contain a NUL character"
            ))
        } else {
            None
        };
        match problem {
            Some(message) => {
                self.diags.error(value.span(), message);
                None
            }
            None => Some(gpt.clone()),
        }
    }

    /// `lba` and `sectors`: a non-empty range of 512-byte sectors whose
    /// end, in bytes, is a 64-bit number.
    fn lba_range(
        &mut self,
        lba: &Spanned<Int>,
        sectors: &Spanned<Int>,
        what: &str,
    ) -> Option<OwnedDiskExtent> {
        let start = self.uint(lba, &format!("lba of {what}"));
        let count = self.uint(sectors, &format!("sectors of {what}"));
        let (start, count) = (start?, count?);
        if count == 0 {
            self.diags
                .error(sectors.span(), format!("sectors of {what} must not be 0"));
            return None;
        }
        // Both came from non-negative i64s, so only the byte count can
        // overflow.
        let end = start + count;
        if end.checked_mul(layout::SECTOR_SIZE).is_none() {
            self.diags.error(
                sectors.span(),
                format!(
                    "{what} (sectors {start}..{end}) ends at or beyond byte 2^64: byte offsets on a disk are 64-bit"
                ),
            );
            return None;
        }
        Some(OwnedDiskExtent::Lba {
            start,
            sectors: count,
        })
    }

    /// Disks on one storage device share sectors only if all of them are
    /// read-only. Only what the config says can be compared here: LBA
    /// ranges with LBA ranges, GPT names with GPT names. Where a GPT
    /// partition lies is known only once the disk's table is read, at boot.
    pub(super) fn disk_sharing(&mut self, parts: &[Part<'_>]) {
        let all: Vec<(&str, &Disk)> = parts
            .iter()
            .flat_map(|p| p.disks.iter().map(move |d| (p.name.as_str(), d)))
            .collect();
        for (j, &(name, disk)) in all.iter().enumerate() {
            for &(other_name, other) in &all[..j] {
                if other.storage != disk.storage
                    || (other.read_only && disk.read_only)
                    || !same_sectors(&disk.extent, &other.extent)
                {
                    continue;
                }
                let message = format!(
                    "disk {} of partition \"{name}\" ({}{}) overlaps disk {} of partition \"{other_name}\" ({}{}) on storage \"{}\": two disks may share sectors only if both are read_only",
                    disk.slot,
                    disk.extent.describe(),
                    if disk.read_only { ", read-only" } else { "" },
                    other.slot,
                    other.extent.describe(),
                    if other.read_only { ", read-only" } else { "" },
                    self.storage[disk.storage].name
                );
                self.diags.error(disk.span.clone(), message);
            }
        }
    }

    /// No partition's disk is a storage device's crash-records area: the
    /// hypervisor writes there. Only a disk given as a GPT name can be
    /// checked here; whether an LBA range overlaps the records partition
    /// is known only once the device's partition table is read, and the
    /// hypervisor checks that at boot.
    pub(super) fn records_unused(&mut self, parts: &[Part<'_>]) {
        for part in parts {
            for disk in &part.disks {
                let OwnedDiskExtent::Gpt(gpt) = &disk.extent else {
                    continue;
                };
                let storage = &self.storage[disk.storage];
                let Some((_, at)) = storage.records.as_ref().filter(|(r, _)| r == gpt) else {
                    continue;
                };
                let (line, _) = self.diags.position(at.start);
                let message = format!(
                    "disk {} of partition \"{}\": GPT partition \"{gpt}\" of storage \"{}\" is the hypervisor's crash-records area (records, line {line}): no partition's disk may use it",
                    disk.slot, part.name, storage.name
                );
                self.diags.error(disk.span.clone(), message);
            }
        }
    }

    /// A storage device's home core does the physical I/O of every
    /// partition with disks on it: it may be a partition's core only if no
    /// lower-priority partition uses the device, or that lower-priority
    /// partition would make it do its work.
    pub(super) fn home_cores(&mut self, parts: &[Part<'_>]) {
        for (index, storage) in self.storage.iter().enumerate() {
            let (Some(cpu), Some(span)) = (storage.home_cpu, &storage.home_cpu_span) else {
                continue;
            };
            let Some(owner) = parts.iter().find(|p| p.cpus.contains(&cpu)) else {
                continue;
            };
            let Some(priority) = owner.priority else {
                continue;
            };
            let lower = parts.iter().find(|p| {
                p.priority.is_some_and(|q| q < priority)
                    && p.disks.iter().any(|d| d.storage == index)
            });
            if let Some(lower) = lower {
                let message = format!(
                    "home_cpu {cpu} of storage \"{}\" is a core of partition \"{}\" (priority {priority}), which would do the I/O of lower-priority partition \"{}\": use a core of the lowest-priority partition on this storage, a free core, or leave home_cpu out (the service core)",
                    storage.name, owner.name, lower.name
                );
                self.diags.error(span.clone(), message);
            }
        }
    }

    /// A display's compositor, a touch panel's driver and an audio
    /// output's mixer never run on a safety partition's core: their
    /// `home_cpu` is refused there.
    pub(super) fn mediator_home_cores(&mut self, parts: &[Part<'_>]) {
        let displays = self.displays.iter().map(|d| {
            let what = format!("display \"{}\"", d.name);
            (what, "the compositor", d.home_cpu, d.home_cpu_span.clone())
        });
        let panels = self.touch.iter().map(|t| {
            let what = format!("touch panel \"{}\"", t.name);
            (
                what,
                "a touch panel's driver",
                t.home_cpu,
                t.home_cpu_span.clone(),
            )
        });
        let outputs = self.audio.iter().map(|a| {
            let what = format!("audio output \"{}\"", a.name);
            (
                what,
                "an audio output's mixer",
                a.home_cpu,
                a.home_cpu_span.clone(),
            )
        });
        let homes: Vec<_> = displays.chain(panels).chain(outputs).collect();
        for (what, role, cpu, span) in homes {
            let (Some(cpu), Some(span)) = (cpu, span) else {
                continue;
            };
            let Some(owner) = parts.iter().find(|p| p.cpus.contains(&cpu)) else {
                continue;
            };
            let Some(criticality) = owner.criticality.filter(|c| *c != Criticality::Qm) else {
                continue;
            };
            let message = format!(
                "home_cpu {cpu} of {what} is a core of partition \"{}\" ({}): {role} must never run on a safety partition's core; use a core of a qm partition, a free core, or leave home_cpu out (the service core)",
                owner.name,
                criticality.as_str()
            );
            self.diags.error(span, message);
        }
    }

    /// What the hypervisor calls the device at `node` (`storage "disk0"`,
    /// `display "center"`, `touch panel "panel"`, `the pointer of touch
    /// panel "panel"`), if it mediates it.
    pub(super) fn mediated_at(&self, node: NodeId) -> Option<String> {
        self.mediated()
            .find(|(_, d)| d.node == node)
            .map(|(what, _)| what)
    }

    /// The storage devices, displays, touch panels and their pointers and
    /// the audio outputs that passed their checks, each with what messages call it: the
    /// hypervisor's, so no passthrough device may touch their pages or
    /// their interrupts.
    pub(super) fn mediated(&self) -> impl Iterator<Item = (String, &MediatedDevice)> {
        let storage = self
            .storage
            .iter()
            .filter_map(|s| Some((format!("storage \"{}\"", s.name), s.device.as_ref()?)));
        let displays = self
            .displays
            .iter()
            .filter_map(|d| Some((format!("display \"{}\"", d.name), d.device.as_ref()?)));
        let touch = self
            .touch
            .iter()
            .filter_map(|t| Some((format!("touch panel \"{}\"", t.name), t.device.as_ref()?)));
        let pointers = self.touch.iter().filter_map(|t| {
            Some((
                format!("the pointer of touch panel \"{}\"", t.name),
                t.pointer.as_ref()?,
            ))
        });
        storage
            .chain(displays)
            .chain(touch)
            .chain(pointers)
            .chain(super::audio::mediated(&self.audio))
    }
}

/// Whether two extents are known, from the config alone, to share sectors.
fn same_sectors(a: &OwnedDiskExtent, b: &OwnedDiskExtent) -> bool {
    match (a, b) {
        (OwnedDiskExtent::Gpt(x), OwnedDiskExtent::Gpt(y)) => x == y,
        (
            OwnedDiskExtent::Lba {
                start: a,
                sectors: n,
            },
            OwnedDiskExtent::Lba {
                start: b,
                sectors: m,
            },
        ) => a < &(b + m) && b < &(a + n),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lba(start: u64, sectors: u64) -> OwnedDiskExtent {
        OwnedDiskExtent::Lba { start, sectors }
    }

    #[test]
    fn lba_ranges_share_sectors_when_they_overlap() {
        assert!(same_sectors(&lba(0, 10), &lba(9, 1)));
        assert!(same_sectors(&lba(9, 1), &lba(0, 10)));
        assert!(same_sectors(&lba(5, 1), &lba(0, 10)), "contained");
        assert!(!same_sectors(&lba(0, 10), &lba(10, 1)), "adjacent");
        assert!(!same_sectors(&lba(10, 1), &lba(0, 10)), "adjacent");
    }

    #[test]
    fn gpt_names_share_sectors_when_equal() {
        let gpt = |n: &str| OwnedDiskExtent::Gpt(n.to_owned());
        assert!(same_sectors(&gpt("a"), &gpt("a")));
        assert!(!same_sectors(&gpt("a"), &gpt("A")), "case matters");
        assert!(!same_sectors(&gpt("a"), &lba(0, 1)), "unknown until boot");
    }
}
