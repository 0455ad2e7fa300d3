//! The validated system configuration, as compiled into the hypervisor.
//!
//! Every value here has been checked on the host against the config rules
//! and the board's device tree. The hypervisor checks it once more against
//! the device tree it is actually booted with.

/// A whole system: the hypervisor's own reservation, its partitions, and
/// the block devices, displays and touch panels it mediates for them.
#[derive(Debug, Clone, Copy)]
pub struct System {
    /// Board folder name under `board/`, e.g. `qemu-virt`.
    pub board: &'static str,
    pub hypervisor: Hypervisor,
    pub partitions: &'static [Partition],
    /// Physical block devices the hypervisor drives itself and serves to
    /// partitions as virtual disks ([`Partition::disks`]), in config order.
    pub storage: &'static [Storage],
    /// Physical displays the hypervisor drives itself and composes the
    /// partitions' [`View`]s onto, in config order.
    pub displays: &'static [Display],
    /// Physical touch panels the hypervisor drives itself, each lying on
    /// one of the `displays`, in config order. It routes their contacts to
    /// the partitions' input devices ([`Partition::inputs`]).
    pub touch: &'static [Touch],
    /// Physical audio outputs the hypervisor drives itself and mixes the
    /// partitions' streams into ([`Partition::audio`]), in config order.
    pub audio: &'static [Audio],
}

#[derive(Debug, Clone, Copy)]
pub struct Hypervisor {
    /// Host-physical memory reserved for the hypervisor image, its heap,
    /// stacks and page tables. No partition memory may overlap it.
    pub memory: Region,
    /// Device-tree path of the physical console UART (aliases resolved).
    pub console: &'static str,
}

/// The physical console UART designs the hypervisor drives. The console
/// node's `compatible` picks one (`check-config` refuses a console it has
/// no driver for; the hypervisor picks again from the DT it boots with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PrimeCell PL011.
    Pl011,
    /// NXP i.MX UART (i.MX 6, 7, 8).
    Imx,
}

impl UartKind {
    /// The DT `compatible` strings each design answers to (an SoC's own
    /// name, such as `fsl,imx8mp-uart`, comes with one of these).
    pub const COMPATIBLE: &[(&str, UartKind)] = &[
        ("arm,pl011", UartKind::Pl011),
        ("fsl,imx6q-uart", UartKind::Imx),
        ("fsl,imx21-uart", UartKind::Imx),
    ];

    /// The design a node with these `compatible` strings is, if any.
    pub fn for_compatible<'a>(compatible: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        compatible.into_iter().find_map(|c| {
            Self::COMPATIBLE
                .iter()
                .find(|(name, _)| *name == c)
                .map(|&(_, kind)| kind)
        })
    }
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
    /// KiB of lower-priority partitions' requests the device may hold at
    /// once while the top partition is idle: what a request of the top
    /// partition may find ahead of it (see the storage scheduler).
    pub lower_in_flight_kib: u32,
    /// GPT partition name on this device where the hypervisor keeps its
    /// crash records (see docs/config.md); no partition's disk may use it.
    /// At most one storage device has one.
    pub records: Option<&'static str>,
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

/// A physical display behind a virtio-gpu device on a virtio-mmio
/// transport, owned by the hypervisor: its compositor draws the partitions'
/// [`View`]s on it, highest [`Partition::priority`] on top, and keeps each
/// [`Protected`] region showing what its safety partition drew. No
/// partition maps its registers or receives its interrupts.
#[derive(Debug, Clone, Copy)]
pub struct Display {
    /// `[a-z][a-z0-9-]{0,15}`, unique among displays.
    pub name: &'static str,
    /// Device-tree path of the virtio-mmio node (`compatible =
    /// "virtio,mmio"`) in the board DTB, aliases resolved. Not the console,
    /// not a [`Storage`] device or another display, not passed through to
    /// any partition (nor is anything sharing one of its 4 KiB pages or
    /// interrupts). That a GPU sits behind the transport is checked when
    /// the hypervisor probes it.
    pub device: &'static str,
    /// MMIO ranges, exactly as the board DT's `reg` gives them.
    pub regions: &'static [Region],
    /// GIC INTIDs (SPIs) the device raises, from the board DT.
    pub interrupts: &'static [u32],
    /// Width of the screen in pixels, 1..=4096.
    pub width: u32,
    /// Height of the screen in pixels, 1..=4096.
    pub height: u32,
    /// Refresh rate in Hz, 1..=240 (60 unless configured): how often the
    /// compositor presents a frame.
    pub refresh_hz: u32,
    /// The core (MPIDR affinity, as [`Partition::cpus`]) the compositor
    /// runs on: a core of the board that belongs to no partition of
    /// criticality other than [`Criticality::Qm`]. `None`: the hypervisor's
    /// choice (its service core).
    pub home_cpu: Option<u64>,
}

/// A `[[touch]]` panel: a physical multi-touch panel behind a virtio-input
/// device on a virtio-mmio transport, lying on a [`Display`] and owned by
/// the hypervisor. It reports each contact to the partition whose view is
/// under it, through that partition's virtio-input device for the panel
/// ([`Partition::inputs`]). No partition maps its registers or receives
/// its interrupts.
#[derive(Debug, Clone, Copy)]
pub struct Touch {
    /// `[a-z][a-z0-9-]{0,15}`, unique among touch panels.
    pub name: &'static str,
    /// Device-tree path of the virtio-mmio node (`compatible =
    /// "virtio,mmio"`) in the board DTB, aliases resolved. The same rules
    /// as [`Display::device`]: not the console, not a [`Storage`] device, a
    /// display or another panel, not passed through to any partition (nor
    /// is anything sharing one of its 4 KiB pages or interrupts). That a
    /// touch device sits behind the transport is checked when the
    /// hypervisor probes it.
    pub device: &'static str,
    /// MMIO ranges, exactly as the board DT's `reg` gives them.
    pub regions: &'static [Region],
    /// GIC INTIDs (SPIs) the device raises, from the board DT.
    pub interrupts: &'static [u32],
    /// Index into [`System::displays`] of the display it lies on. No other
    /// panel lies on that display.
    pub display: usize,
    /// An absolute pointer on the same display (QEMU's mouse over the
    /// display's window, as a tablet), if the config gives one: while its
    /// button is down it is one more contact on the panel, routed as a
    /// finger is.
    pub pointer: Option<TouchPointer>,
    /// The core (MPIDR affinity, as [`Partition::cpus`]) that drives the
    /// panel (and its pointer) and routes its contacts: as
    /// [`Display::home_cpu`], a core of the board that belongs to no
    /// partition of criticality other than [`Criticality::Qm`]. `None`:
    /// the hypervisor's choice (its service core).
    pub home_cpu: Option<u64>,
}

/// A physical audio output (`[[audio]]`): a virtio-snd device with an
/// output stream that plays 48 kHz S16 stereo, which the hypervisor feeds
/// with the mix of the partitions' streams, one period at a time.
#[derive(Debug, Clone, Copy)]
pub struct Audio {
    /// `[a-z][a-z0-9-]{0,15}`, unique among audio outputs.
    pub name: &'static str,
    /// Device-tree path of the virtio-mmio node in the board DTB, aliases
    /// resolved. The same rules as [`Display::device`]: the hypervisor's
    /// alone.
    pub device: &'static str,
    /// MMIO ranges, exactly as the board DT's `reg` gives them.
    pub regions: &'static [Region],
    /// GIC INTIDs (SPIs) the device raises, from the board DT.
    pub interrupts: &'static [u32],
    /// Milliseconds of one mixer period, 5..=50 (10 unless configured): a
    /// stream that starts is in the next period mixed.
    pub period_ms: u32,
    /// Periods the device holds ahead, 2..=8 (3 unless configured): its
    /// buffer, what it plays while the next period is mixed.
    pub periods: u32,
    /// The core that mixes: as [`Display::home_cpu`], never a safety
    /// partition's core. `None`: the service core.
    pub home_cpu: Option<u64>,
}

/// A partition's stream on an [`Audio`] output (`audio` in its config):
/// how the mixer treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAudio {
    /// Index into [`System::audio`].
    pub output: usize,
    /// Its audio priority (the partition's priority unless configured):
    /// while a stream of strictly higher priority plays, this one is
    /// ducked.
    pub priority: u8,
    /// Its gain in dB, -60..=12, and as a linear Q16 factor (65536 = 0 dB).
    pub gain_db: i32,
    pub gain_q16: u32,
    /// How much it is lowered while ducked, in dB, -96..=0 (-96 mutes),
    /// and as a linear Q16 factor (0 when muted).
    pub duck_db: i32,
    pub duck_q16: u32,
}

/// A [`Touch`] panel's `pointer`: an absolute pointer (a virtio-input
/// tablet: `ABS_X`/`ABS_Y` and a button) behind a virtio-mmio transport,
/// owned by the hypervisor as the panel is.
#[derive(Debug, Clone, Copy)]
pub struct TouchPointer {
    /// Device-tree path of the virtio-mmio node in the board DTB, aliases
    /// resolved. The same rules as [`Touch::device`], and not the
    /// device or pointer of any panel (its own included). The transport may
    /// be empty (no tablet attached): the hypervisor then goes on without
    /// it.
    pub device: &'static str,
    /// MMIO ranges, exactly as the board DT's `reg` gives them.
    pub regions: &'static [Region],
    /// GIC INTIDs (SPIs) the device raises, from the board DT.
    pub interrupts: &'static [u32],
}

/// A rectangle on a physical display, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenRect {
    /// Left edge, from the display's left edge.
    pub x: u32,
    /// Top edge, from the display's top edge.
    pub y: u32,
    /// At least 1.
    pub width: u32,
    /// At least 1.
    pub height: u32,
}

impl ScreenRect {
    /// Whether the two rectangles have a pixel in common (touching edges
    /// do not count).
    pub const fn overlaps(&self, other: &ScreenRect) -> bool {
        let (a, b) = (self.edges(), other.edges());
        a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
    }

    /// Whether every pixel of `inner` is one of this rectangle's.
    pub const fn contains(&self, inner: &ScreenRect) -> bool {
        let (a, b) = (self.edges(), inner.edges());
        a.0 <= b.0 && a.1 <= b.1 && b.2 <= a.2 && b.3 <= a.3
    }

    /// Left, top, right and bottom (exclusive) edges, in 64 bits so that
    /// nothing overflows.
    const fn edges(&self) -> (u64, u64, u64, u64) {
        (
            self.x as u64,
            self.y as u64,
            self.x as u64 + self.width as u64,
            self.y as u64 + self.height as u64,
        )
    }
}

/// A partition's window onto a [`Display`]: one scanout of its virtio-gpu
/// device (scanout n is the partition's view n), shown at `rect`. Where
/// views of several partitions overlap, the partition with the higher
/// [`Partition::priority`] is on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Index into [`System::displays`].
    pub display: usize,
    /// Where on the display, in the display's pixels: lies inside the
    /// display, and overlaps neither another view of the same partition on
    /// that display nor a view of another partition of the same priority.
    pub rect: ScreenRect,
    /// The longest the partition may leave the view without a new frame,
    /// in milliseconds (1..=10000); 0: no deadline. Past it the view shows
    /// its fallback until the partition draws again.
    pub deadline_ms: u32,
    /// The fallback's colour, `0xRRGGBB`: diagonal stripes of it and black
    /// over the partition's protected regions in the view (over the whole
    /// view if it has none there).
    pub fallback: u32,
}

/// The fallback colour when a view with a deadline names none: amber.
pub const DEFAULT_FALLBACK: u32 = 0xffb000;

/// A region of a [`Display`] that a safety partition protects: whatever
/// the views above it, the compositor shows the partition's own pixels
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protected {
    /// Index into [`System::displays`].
    pub display: usize,
    /// Lies entirely inside one of the same partition's [`View`]s on that
    /// display, and overlaps no other partition's protected region.
    pub rect: ScreenRect,
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
    /// The partition's windows onto the displays, at most
    /// `layout::GPU_MAX_SCANOUTS`; view n is scanout n of
    /// its virtio-gpu device (see [`Partition::gpu_slot`]). Empty: no
    /// virtio-gpu device.
    pub views: &'static [View],
    /// Screen regions the partition protects. Only a partition whose
    /// criticality is not [`Criticality::Qm`] has any.
    pub protected: &'static [Protected],
    /// Bytes of host memory the hypervisor gives the partition's display
    /// buffers (virtio-gpu resources): a whole number of MiB, 1 to 512 MiB;
    /// by default twice its views' pixels at 4 bytes each. 0 without
    /// views.
    pub display_memory: u64,
    /// How many virtio-gpu resources the partition may have at once,
    /// 1..=1024 (64 unless configured). 0 without views.
    pub display_resources: u32,
    /// Give the partition a virtio-input device for every [`Touch`] panel
    /// on whose display it has a view (see [`Partition::inputs`]). The
    /// validator has checked that there is at least one.
    pub touch: bool,
    /// Give the partition a virtio-snd device whose output stream is mixed
    /// into an [`Audio`] output (see [`Partition::sound_slot`]).
    pub audio: Option<PartitionAudio>,
}

impl Partition {
    /// The virtio-mmio slot of the partition's virtio-gpu device (after its
    /// disks), if it has views. The validator has checked that it is below
    /// `layout::VIRTIO_SLOTS`.
    pub const fn gpu_slot(&self) -> Option<usize> {
        if self.views.is_empty() {
            None
        } else {
            Some(self.disks.len())
        }
    }

    /// The index into [`Partition::views`] of the partition's first view
    /// on display `display` (an index into [`System::displays`]), if it has
    /// one there.
    pub const fn first_view_on(&self, display: usize) -> Option<usize> {
        let mut i = 0;
        while i < self.views.len() {
            if self.views[i].display == display {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// The view through which `panel` reports contacts to the partition:
    /// its first view on the panel's display, whose coordinates the
    /// contacts are given in. `None` if the partition has no `touch`, or
    /// no view there (then it has no input device for the panel).
    pub const fn touch_view(&self, panel: &Touch) -> Option<usize> {
        if self.touch {
            self.first_view_on(panel.display)
        } else {
            None
        }
    }

    /// The partition's virtio-input device for panel `panel` (an index
    /// into `system_touch`, which is [`System::touch`]), if it has one. Its
    /// input devices take the virtio-mmio slots right after its virtio-gpu
    /// device ([`Partition::gpu_slot`]), one per panel it has a
    /// [`Partition::touch_view`] for, in [`System::touch`] order. The
    /// validator has checked that all of them are below
    /// `layout::VIRTIO_SLOTS`.
    pub const fn input(&self, system_touch: &[Touch], panel: usize) -> Option<Input> {
        if panel >= system_touch.len() {
            return None;
        }
        let Some(view) = self.touch_view(&system_touch[panel]) else {
            return None;
        };
        // Disks, then the gpu (there is one: the partition has a view),
        // then the input devices of the panels before this one.
        let mut slot = self.disks.len() + 1;
        let mut i = 0;
        while i < panel {
            if self.touch_view(&system_touch[i]).is_some() {
                slot += 1;
            }
            i += 1;
        }
        Some(Input { panel, slot, view })
    }

    /// The virtio-mmio slot of the partition's virtio-snd device, if it has
    /// `audio`: after its disks, its virtio-gpu device and its input
    /// devices. The validator has checked that it is below
    /// `layout::VIRTIO_SLOTS`.
    pub const fn sound_slot(&self, system_touch: &[Touch]) -> Option<usize> {
        if self.audio.is_none() {
            return None;
        }
        let mut slot = self.disks.len();
        if !self.views.is_empty() {
            slot += 1;
        }
        let mut i = 0;
        while i < system_touch.len() {
            if self.touch_view(&system_touch[i]).is_some() {
                slot += 1;
            }
            i += 1;
        }
        Some(slot)
    }

    /// The partition's virtio-input devices, in slot order (which is
    /// [`System::touch`] order): each [`Partition::input`] there is. None
    /// without `touch`.
    pub const fn inputs<'a>(&'a self, system_touch: &'a [Touch]) -> Inputs<'a> {
        Inputs {
            partition: self,
            system_touch,
            next_panel: 0,
        }
    }
}

/// A partition's virtio-input device for one [`Touch`] panel: a
/// multi-touch device the size of [`Input::view`], which reports the
/// contacts the hypervisor routes to the partition from the panel, in that
/// view's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    /// Index into [`System::touch`] of the panel.
    pub panel: usize,
    /// Its virtio-mmio slot (see `layout::virtio_slot_base`), after the
    /// partition's disks, its virtio-gpu device and its input devices for
    /// the panels before this one.
    pub slot: usize,
    /// Index into [`Partition::views`]: the partition's first view on the
    /// panel's display ([`Partition::touch_view`]).
    pub view: usize,
}

/// The iterator [`Partition::inputs`] returns.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    partition: &'a Partition,
    system_touch: &'a [Touch],
    /// The first panel not yet looked at.
    next_panel: usize,
}

impl Iterator for Inputs<'_> {
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        while self.next_panel < self.system_touch.len() {
            let panel = self.next_panel;
            self.next_panel += 1;
            if let Some(input) = self.partition.input(self.system_touch, panel) {
                return Some(input);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn rect(x: u32, y: u32, width: u32, height: u32) -> ScreenRect {
        ScreenRect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn rectangles_overlap_when_they_share_a_pixel() {
        let a = rect(0, 0, 100, 50);
        assert!(a.overlaps(&a));
        assert!(a.overlaps(&rect(99, 49, 10, 10)), "corner pixel");
        assert!(rect(99, 49, 10, 10).overlaps(&a));
        assert!(a.overlaps(&rect(10, 10, 1, 1)), "inside");
        assert!(!a.overlaps(&rect(100, 0, 10, 50)), "touching on the right");
        assert!(!a.overlaps(&rect(0, 50, 100, 10)), "touching below");
        assert!(!rect(0, 50, 100, 10).overlaps(&a));
        // No overflow at the edge of u32.
        let far = rect(u32::MAX, u32::MAX, u32::MAX, u32::MAX);
        assert!(far.overlaps(&far));
        assert!(!far.overlaps(&a));
    }

    #[test]
    fn rectangles_contain_their_parts() {
        let view = rect(640, 160, 640, 400);
        assert!(view.contains(&view));
        assert!(view.contains(&rect(640, 160, 640, 40)), "top strip");
        assert!(view.contains(&rect(1279, 559, 1, 1)), "last pixel");
        assert!(!view.contains(&rect(1279, 559, 2, 1)), "one past");
        assert!(!view.contains(&rect(639, 160, 10, 10)), "one before");
        assert!(!rect(640, 160, 10, 10).contains(&view));
    }

    #[test]
    fn the_gpu_takes_the_slot_after_the_disks() {
        const DISK: Disk = Disk {
            storage: 0,
            extent: DiskExtent::Gpt("data"),
            read_only: false,
        };
        const VIEW: View = View {
            display: 0,
            rect: rect(0, 0, 1280, 800),
            deadline_ms: 0,
            fallback: DEFAULT_FALLBACK,
        };
        let partition = |disks: &'static [Disk], views: &'static [View]| Partition {
            name: "p",
            criticality: Criticality::Qm,
            priority: 1,
            cpus: &[1],
            memory: &[],
            devices: &[],
            disks,
            image: &[],
            initrd: &[],
            bootargs: "",
            on_fault: OnFault::Stop,
            watchdog: false,
            views,
            protected: &[],
            display_memory: if views.is_empty() { 0 } else { 8 << 20 },
            display_resources: if views.is_empty() { 0 } else { 64 },
            touch: false,
            audio: None,
        };
        assert_eq!(partition(&[], &[]).gpu_slot(), None);
        assert_eq!(partition(&[DISK, DISK], &[]).gpu_slot(), None);
        assert_eq!(partition(&[], &[VIEW]).gpu_slot(), Some(0));
        assert_eq!(partition(&[DISK, DISK], &[VIEW, VIEW]).gpu_slot(), Some(2));
    }

    const fn panel(display: usize) -> Touch {
        Touch {
            name: "panel",
            device: "/virtio_mmio@a003800",
            regions: &[],
            interrupts: &[],
            display,
            pointer: None,
            home_cpu: None,
        }
    }

    const fn view_on(display: usize) -> View {
        View {
            display,
            rect: rect(0, 0, 1, 1),
            deadline_ms: 0,
            fallback: DEFAULT_FALLBACK,
        }
    }

    /// Panels on displays 0, 1 and 2.
    const PANELS: [Touch; 3] = [panel(0), panel(1), panel(2)];

    const fn touch_partition(disks: &'static [Disk], views: &'static [View]) -> Partition {
        Partition {
            name: "p",
            criticality: Criticality::Qm,
            priority: 1,
            cpus: &[1],
            memory: &[],
            devices: &[],
            disks,
            image: &[],
            initrd: &[],
            bootargs: "",
            on_fault: OnFault::Stop,
            watchdog: false,
            views,
            protected: &[],
            display_memory: 8 << 20,
            display_resources: 64,
            touch: true,
            audio: None,
        }
    }

    #[test]
    fn input_devices_follow_the_gpu_in_panel_order() {
        const DISK: Disk = Disk {
            storage: 0,
            extent: DiskExtent::Gpt("data"),
            read_only: false,
        };
        // Views on displays 2, 0, 2 (again) and 3 (no panel): inputs for
        // panels 0 and 2, through views 1 and 0.
        const P: Partition = touch_partition(
            &[DISK, DISK],
            &[view_on(2), view_on(0), view_on(2), view_on(3)],
        );
        assert_eq!(P.gpu_slot(), Some(2));
        let inputs: Vec<Input> = P.inputs(&PANELS).collect();
        assert_eq!(
            inputs,
            [
                Input {
                    panel: 0,
                    slot: 3,
                    view: 1
                },
                Input {
                    panel: 2,
                    slot: 4,
                    view: 0
                }
            ]
        );
        // The same one at a time, and at compile time.
        const SECOND: Option<Input> = P.input(&PANELS, 2);
        assert_eq!(SECOND, Some(inputs[1]));
        assert_eq!(P.input(&PANELS, 0), Some(inputs[0]));
        assert_eq!(P.input(&PANELS, 1), None, "no view on display 1");
        assert_eq!(P.input(&PANELS, 3), None, "no such panel");
        assert_eq!(P.touch_view(&PANELS[2]), Some(0));
        assert_eq!(P.first_view_on(3), Some(3));
        assert_eq!(P.first_view_on(1), None);
        // Without touch, or without a view on a panel's display, none.
        let off = Partition { touch: false, ..P };
        assert_eq!(off.inputs(&PANELS).count(), 0);
        assert_eq!(off.touch_view(&PANELS[0]), None);
        assert_eq!(off.first_view_on(0), Some(1), "its views are still there");
        const ELSEWHERE: Partition = touch_partition(&[], &[view_on(3)]);
        assert_eq!(ELSEWHERE.inputs(&PANELS).count(), 0);
        assert_eq!(P.inputs(&[]).count(), 0, "no panels");
        // No disks: the gpu in slot 0, the inputs from slot 1.
        const FIRST: Partition = touch_partition(&[], &[view_on(1), view_on(0)]);
        let slots: Vec<(usize, usize, usize)> = FIRST
            .inputs(&PANELS)
            .map(|i| (i.panel, i.slot, i.view))
            .collect();
        assert_eq!(slots, [(0, 1, 1), (1, 2, 0)]);
    }
}
