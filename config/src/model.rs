//! The validated system configuration, as compiled into the hypervisor.
//!
//! Every value here has been checked on the host against the config rules
//! and the board's device tree. The hypervisor checks it once more against
//! the device tree it is actually booted with.

/// A whole system: the hypervisor's own reservation, its partitions, and
/// the block devices it mediates for them.
#[derive(Debug, Clone, Copy)]
pub struct System {
    /// Board folder name under `board/`, e.g. `qemu-virt`.
    pub board: &'static str,
    pub hypervisor: Hypervisor,
    pub partitions: &'static [Partition],
    /// Physical block devices the hypervisor drives itself and serves to
    /// partitions as virtual disks ([`Partition::disks`]), in config order.
    pub storage: &'static [Storage],
}

#[derive(Debug, Clone, Copy)]
pub struct Hypervisor {
    /// Host-physical memory reserved for the hypervisor image, its heap,
    /// stacks and page tables. No partition memory may overlap it.
    pub memory: Region,
    /// Device-tree path of the physical console UART (aliases resolved).
    pub console: &'static str,
}

/// A host-physical range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

/// One guest-physical to host-physical memory mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryMap {
    /// Guest-physical (intermediate physical) address.
    pub guest: u64,
    /// Host-physical address.
    pub host: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criticality {
    Qm,
    AsilA,
    AsilB,
    AsilC,
    AsilD,
}

impl Criticality {
    pub const fn as_str(self) -> &'static str {
        match self {
            Criticality::Qm => "qm",
            Criticality::AsilA => "asil-a",
            Criticality::AsilB => "asil-b",
            Criticality::AsilC => "asil-c",
            Criticality::AsilD => "asil-d",
        }
    }
}

/// What the hypervisor does when a partition faults (stage-2 abort outside
/// its map, undefined trap, fatal error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFault {
    /// Stop the partition; its cores park. Other partitions continue.
    Stop,
    /// Stop the partition, scrub and reload its memory, and boot it again.
    Restart,
    /// Inject a synchronous external abort (or undefined instruction) into
    /// the faulting vCPU and let the guest handle it.
    Inject,
}

impl OnFault {
    pub const fn as_str(self) -> &'static str {
        match self {
            OnFault::Stop => "stop",
            OnFault::Restart => "restart",
            OnFault::Inject => "inject",
        }
    }
}

/// A passthrough device: mapped 1:1 into the partition, its interrupts
/// routed to the partition's cores.
#[derive(Debug, Clone, Copy)]
pub struct Device {
    /// Device-tree path in the board DTB, aliases resolved.
    pub path: &'static str,
    /// MMIO ranges (host-physical == guest-physical), exactly as the
    /// board DT's `reg` gives them: not rounded to pages, so the guest's
    /// device tree can carry them unchanged. Stage 2 maps whole 4 KiB pages;
    /// the validator has checked that those pages belong to no other
    /// partition and miss the emulated devices.
    pub regions: &'static [Region],
    /// GIC INTIDs (SPIs, i.e. 32..1019) the device raises.
    pub interrupts: &'static [u32],
}

/// A physical virtio-blk device behind a virtio-mmio transport, owned by
/// the hypervisor and shared out to partitions as [`Disk`]s. No partition
/// maps its registers or receives its interrupts.
#[derive(Debug, Clone, Copy)]
pub struct Storage {
    /// `[a-z][a-z0-9-]{0,15}`, unique among storage devices.
    pub name: &'static str,
    /// Device-tree path of the virtio-mmio node (`compatible =
    /// "virtio,mmio"`) in the board DTB, aliases resolved. The DT cannot
    /// say what sits behind the transport: that it is a block device is
    /// checked when the hypervisor probes it.
    pub device: &'static str,
    /// MMIO ranges, exactly as the board DT's `reg` gives them.
    pub regions: &'static [Region],
    /// GIC INTIDs (SPIs) the device raises, from the board DT.
    pub interrupts: &'static [u32],
    /// The core (MPIDR affinity, as [`Partition::cpus`]) that does this
    /// device's physical I/O; `None`: the hypervisor's choice (its service
    /// core).
    pub home_cpu: Option<u64>,
}

/// A virtual virtio-blk disk of a partition: a slice of a [`Storage`]
/// device. The partition's disks take virtio-mmio slots 0, 1, ... in order
/// (see `layout::virtio_slot_base`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    /// Index into [`System::storage`].
    pub storage: usize,
    pub extent: DiskExtent,
    /// The guest may only read. Two disks may share sectors only if both
    /// are read-only.
    pub read_only: bool,
}

/// Which sectors of the physical device a [`Disk`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskExtent {
    /// The GPT partition with this name (1 to 36 UTF-16 code units),
    /// looked up in the device's partition table by the hypervisor at boot.
    Gpt(&'static str),
    /// `sectors` 512-byte sectors from LBA `start`; `sectors > 0`, and the
    /// end, in bytes, fits a `u64`.
    Lba { start: u64, sectors: u64 },
}

#[derive(Debug, Clone, Copy)]
pub struct Partition {
    /// `[a-z][a-z0-9-]{0,15}`; tags console output and log lines.
    pub name: &'static str,
    pub criticality: Criticality,
    /// 0..=255, higher is served first by mediators.
    pub priority: u8,
    /// Physical cores, as the `reg` (MPIDR affinity) of the board DT's
    /// `/cpus/cpu@N` nodes. The first one boots the partition; the guest
    /// sees them as vCPUs 0..n in this order.
    pub cpus: &'static [u64],
    pub memory: &'static [MemoryMap],
    pub devices: &'static [Device],
    /// Virtual virtio-blk disks, at most `layout::VIRTIO_SLOTS`; disk n is
    /// virtio-mmio slot n.
    pub disks: &'static [Disk],
    /// The partition's kernel: an arm64 `Image` (Linux boot protocol header).
    pub image: &'static [u8],
    /// Initial RAM disk (empty if none). Loaded at the first 2 MiB
    /// boundary after the image and announced in `/chosen` as
    /// `linux,initrd-start` / `linux,initrd-end`.
    pub initrd: &'static [u8],
    /// Kernel command line placed in the generated DT's `/chosen/bootargs`.
    pub bootargs: &'static str,
    /// What happens on a fault, and on watchdog expiry.
    pub on_fault: OnFault,
    /// Give the partition a virtual SP805 watchdog (see `layout`). When the
    /// guest stops feeding it, the partition is handled per `on_fault`.
    pub watchdog: bool,
}
