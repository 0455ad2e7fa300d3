//! The display mediator (`[[display]]` and partitions' `views` in the
//! config): each partition with views sees one virtio-gpu device (the
//! model in `shared_devices::virtio::gpu`, in a virtio-mmio slot after its
//! disks) whose scanouts are its views; each physical display is composed
//! from the views on it by the compositor (`shared_devices::display`) on
//! the display's home core, at its refresh rate.
//!
//! Where the work runs:
//! - a partition's commands (resource creation, transfers of its pixels
//!   into its resources) are processed on its own cores, when it notifies
//!   or when the home core hands back a paced flush: the cost of its
//!   drawing is its own;
//! - composition and the physical frame run on the display's home core,
//!   never on a safety partition's core (the config checks it). The home
//!   core reads a partition's resources one band of one layer at a time
//!   under that partition's device lock, so a partition drawing meanwhile
//!   waits at most that long, and the home core waits at most one bounded
//!   command step of a partition (the model splits long transfers).
//!
//! Priority first. The top layers (the views of the partition with the
//! highest priority among those with views: the safety partition's) are
//! latched as soon as their partition
//! flushes: its core wakes the home core, which takes their damage and
//! sends a frame of theirs alone as soon as the frame on its way (if any)
//! is shown. Everyone else's damage is taken at each refresh, and each
//! frame carries at most a budget of pixels of it
//! (`shared_devices::display::frames`), the rest following in the next
//! frames, sent back to back. The budget is a quarter of a refresh's worth
//! of the compositor's measured cost per pixel, so whatever the others
//! draw, the safety partition's frame waits for at most that much before
//! its own composition.
//!
//! Pacing: a RESOURCE_FLUSH is answered once every view of the partition
//! is *clean* (nothing of it pending: everything it drew before the next
//! damage take after the flush is in a frame) on every display that
//! shows one, and those frames are shown (`need` and `done` below). So a
//! guest's fenced flush completes when its content is on the screen, and
//! a partition that floods flushes delays only itself.

use crate::arch::cpu;
use crate::arch::guest_mem::PartitionMemory;
use crate::drivers::virtio_gpu::PhysicalDisplay;
use crate::partition::{self, Access, Actions, EmulatedDevice, Mediator, Partition, hv, report};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use log::{info, warn};
use shared_devices::display::compositor::{
    self, Layer, LayerSource, Protection, Signature, Source,
};
use shared_devices::display::{Rect, Rects, frames};
use shared_devices::mmio::RegisterFile;
use shared_devices::virtio::gpu::VirtioGpu;
use shared_devices::virtio::mmio::{Effects, MmioTransport};
use spin::{Mutex, RwLock};

/// Physical displays at most.
pub const MAX_SCREENS: usize = 8;
/// Rows of the compositor's work buffer per band at full width.
const BAND_ROWS: usize = 16;
/// Rounds of command processing per notification or refill; more work
/// is left for the next pass on the partition's core.
const NOTIFY_ROUNDS: usize = 4;
/// What a view shows while its partition draws nothing (opaque black).
const BLANK: u32 = 0xff00_0000;
/// The lower layers' share of a frame: the budget is the pixels the
/// compositor makes in this fraction of a refresh.
const BUDGET_SHARE: u64 = 8;
/// Frames of at least this many pixels update the cost estimate (smaller
/// ones are mostly the device's fixed cost per frame).
const COST_SAMPLE_PIXELS: u64 = 1 << 16;

/// A partition's virtio-gpu device model, its pixels in its own arena.
pub type Gpu = VirtioGpu<&'static mut [u8]>;

/// A partition's virtio-gpu device.
pub struct VirtGpu {
    /// The partition's index.
    pub partition: usize,
    /// Its virtio-mmio slot.
    pub slot: usize,
    /// Its transport and model. A lock that readers share: register reads
    /// and the compositor's reads of its pixels never wait for each other,
    /// only for a command being processed.
    pub transport: RwLock<MmioTransport<Gpu>>,
    /// The screens that show one of its views (bit per screen index).
    screens: u32,
    /// Per screen: the damage take of its class (in [`Screen::taken`]
    /// numbering) up to which its views must be on the screen to answer
    /// the held flush; 0 when none is needed there.
    need: [AtomicU64; MAX_SCREENS],
    /// The home core answered a flush while commands wait in the ring: the
    /// partition's own core goes on with them (see [`VirtGpu::refill`]).
    refill: AtomicBool,
}

/// One physical display and the views on it.
pub struct Screen {
    pub name: &'static str,
    /// The core that composes and sends its frames.
    pub home_cpu: usize,
    /// The physical device's interrupt (a used buffer).
    pub intid: Option<u32>,
    phys: Mutex<PhysicalDisplay>,
    size: Rect,
    /// Its layers, lowest priority first.
    layers: Vec<ScreenLayer>,
    /// Each layer's priority, then the screen's own entry (what no view
    /// covers, composed whole at the first refresh) at the top priority
    /// (see [`Class`]).
    priorities: Vec<u8>,
    protected: Vec<Protection>,
    /// Counter ticks per refresh.
    period: u64,
    /// Damage takes so far, of the lower layers and of the top ones (see
    /// [`Class`]): every refresh takes both, a top layer's flush its own.
    taken: [AtomicU64; 2],
    /// A top layer's partition flushed: take the top layers' damage now.
    top_flushed: AtomicBool,
    /// The home core's own state.
    state: Mutex<ScreenState>,
}

/// A view on a screen.
struct ScreenLayer {
    gpu: &'static VirtGpu,
    scanout: u32,
    layer: Layer,
    /// The view's deadline in counter ticks (0: none), and its fallback
    /// colour (`0xffRRGGBB`).
    deadline: u64,
    fallback: u32,
    /// Whether it is a top layer of the screen.
    class: Class,
    /// The last damage take of its class whose damage of this view is all
    /// on the screen.
    done: AtomicU64,
    /// Its partition's device was reset: compose all of it anew (blank
    /// until it draws again).
    reset: AtomicBool,
}

/// A layer's class on its screen: its damage is taken at each refresh,
/// or as soon as its partition flushes (the top layers).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Lower = 0,
    Top = 1,
}

/// Where a view with a deadline stands (home core only).
#[derive(Clone, Copy, Default)]
struct Freshness {
    /// Counter value of its last new frame.
    last: u64,
    /// It missed its deadline and shows its fallback.
    missed: bool,
}

struct ScreenState {
    /// Counter value of the next refresh.
    next: u64,
    /// Per layer (same order as `Screen::layers`).
    freshness: Vec<Freshness>,
    /// A physical frame is on its way: when its composition began and how
    /// many pixels it carries.
    in_flight: bool,
    began: u64,
    pixels: u64,
    /// Damage not on the screen yet, per entry of `Screen::priorities`.
    pending: Vec<Rects>,
    /// A refresh came: take the views' damage when no frame is on its way.
    take_due: bool,
    /// The compositor's cost: counter ticks per megapixel from composing
    /// to shown (0 until measured).
    cost: u64,
    /// The compositor's work buffer, and its owners' views for the
    /// signature check (a band each).
    band: Vec<u32>,
    scratch: Vec<u32>,
    /// Frames sent, and refreshes whose damage take came after the next
    /// refresh (the frame on its way took more than a refresh).
    frames: u64,
    late: u64,
}

/// The display mediator: every screen and every partition's device.
pub struct Display {
    screens: Vec<&'static Screen>,
    gpus: Vec<&'static VirtGpu>,
}

/// Opens a `[[display]]`: the physical device, cleared to black.
pub fn open_screen(
    desc: &config::model::Display,
    home_cpu: usize,
) -> Result<(PhysicalDisplay, Option<u32>), String> {
    let region = desc
        .regions
        .first()
        .ok_or("display device has no registers")?;
    let phys = PhysicalDisplay::open(region.base, region.size, desc.width, desc.height)?;
    info!(
        "display {}: virtio-gpu at {:#x}, {}x{} at {} Hz, composed on cpu {home_cpu}",
        desc.name, region.base, desc.width, desc.height, desc.refresh_hz
    );
    Ok((phys, desc.interrupts.first().copied()))
}

/// A partition's virtio-gpu device: one scanout per view, resources in an
/// arena of `display_memory` bytes taken from the heap now.
pub fn open_gpu(
    p: &config::model::Partition,
    index: usize,
    slot: usize,
) -> Result<VirtGpu, String> {
    let sizes: Vec<(u32, u32)> = p
        .views
        .iter()
        .map(|v| (v.rect.width, v.rect.height))
        .collect();
    let bytes = usize::try_from(p.display_memory).map_err(|_| "display_memory too large")?;
    let mut arena = Vec::new();
    arena
        .try_reserve_exact(bytes)
        .map_err(|_| format!("no memory for its {} MiB of display resources", bytes >> 20))?;
    arena.resize(bytes, 0u8);
    let arena: &'static mut [u8] = arena.leak();
    let gpu = VirtioGpu::new(&sizes, p.display_resources, arena);
    let screens = p.views.iter().fold(0u32, |m, v| m | 1 << v.display);
    info!(
        "partition {}: virtio-gpu in slot {slot}, {} view(s), {} MiB for resources",
        p.name,
        p.views.len(),
        bytes >> 20
    );
    Ok(VirtGpu {
        partition: index,
        slot,
        transport: RwLock::new(MmioTransport::new(gpu)),
        screens,
        need: Default::default(),
        refill: AtomicBool::new(false),
    })
}

/// The screen of `[[display]]` number `index` of `system`, with the views
/// and protected regions of every partition on it.
pub fn screen(
    system: &config::model::System,
    index: usize,
    opened: (PhysicalDisplay, Option<u32>),
    home_cpu: usize,
    gpus: &[&'static VirtGpu],
) -> Screen {
    let desc = &system.displays[index];
    let (phys, intid) = opened;
    let mut layers = Vec::new();
    let mut protected = Vec::new();
    for gpu in gpus {
        let p = &system.partitions[gpu.partition];
        for (scanout, view) in p.views.iter().enumerate() {
            if view.display == index {
                let rect = view.rect;
                layers.push(ScreenLayer {
                    gpu,
                    scanout: scanout as u32,
                    layer: Layer {
                        screen: Rect::new(rect.x, rect.y, rect.width, rect.height),
                        priority: p.priority,
                        blank: BLANK,
                        fallback: None,
                    },
                    deadline: u64::from(view.deadline_ms) * cpu::counter_frequency() / 1000,
                    fallback: 0xff00_0000 | view.fallback,
                    class: Class::Lower,
                    done: AtomicU64::new(0),
                    reset: AtomicBool::new(false),
                });
            }
        }
        for region in p.protected.iter().filter(|r| r.display == index) {
            let r = region.rect;
            protected.push(Protection {
                rect: Rect::new(r.x, r.y, r.width, r.height),
                priority: p.priority,
            });
        }
    }
    layers.sort_by_key(|l| l.layer.priority);
    // The top layers are those of the highest priority among all
    // partitions with views, not just this screen's: a screen where the
    // IVI is alone still has its frames budgeted, so that its home core,
    // which may compose the safety partition's screen too, is never busy
    // with a whole IVI frame when the safety partition flushes.
    let top = system
        .partitions
        .iter()
        .filter(|p| !p.views.is_empty())
        .map(|p| p.priority)
        .max()
        .unwrap_or(0);
    let mut priorities: Vec<u8> = layers.iter().map(|l| l.layer.priority).collect();
    priorities.push(top);
    for l in layers.iter_mut().filter(|l| l.layer.priority == top) {
        l.class = Class::Top;
    }
    let size = phys.screen();
    let hz = u64::from(desc.refresh_hz.max(1));
    let layers_len = layers.len();
    let mut pending = vec![Rects::default(); layers_len + 1];
    pending[layers_len].push(size);
    // A scratch band per protection owner for the signature check.
    let mut owner_priorities: Vec<u8> = protected.iter().map(|p| p.priority).collect();
    owner_priorities.sort_unstable();
    owner_priorities.dedup();
    let owners = owner_priorities.len().min(compositor::MAX_CHECKED_OWNERS);
    Screen {
        name: desc.name,
        home_cpu,
        intid,
        phys: Mutex::new(phys),
        size,
        layers,
        priorities,
        protected,
        period: cpu::counter_frequency() / hz,
        taken: Default::default(),
        top_flushed: AtomicBool::new(false),
        state: Mutex::new(ScreenState {
            next: 0,
            freshness: vec![Freshness::default(); layers_len],
            in_flight: false,
            began: 0,
            pixels: 0,
            pending,
            take_due: false,
            cost: 0,
            band: vec![0; size.width as usize * BAND_ROWS],
            scratch: vec![0; size.width as usize * BAND_ROWS * owners],
            frames: 0,
            late: 0,
        }),
    }
}

impl Display {
    pub fn new(screens: Vec<&'static Screen>, gpus: Vec<&'static VirtGpu>) -> Self {
        Self { screens, gpus }
    }

    /// The cores that compose its screens.
    pub fn home_cpus(&self) -> impl Iterator<Item = usize> + '_ {
        self.screens.iter().map(|s| s.home_cpu)
    }

    /// The physical interrupts it owns, with the cores they go to.
    pub fn interrupts(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.screens
            .iter()
            .filter_map(|s| s.intid.map(|i| (i, s.home_cpu)))
    }

    /// Answers the held flush of every device on `screen` whose frames are
    /// all shown.
    fn present(&self, screen_index: usize) {
        for gpu in self
            .gpus
            .iter()
            .filter(|g| g.screens & 1 << screen_index != 0)
        {
            gpu.present_if_shown(&self.screens);
        }
    }
}

impl VirtGpu {
    /// The device's virtual SPI.
    pub fn intid(&self) -> u32 {
        config::layout::virtio_slot_intid(self.slot)
    }

    fn memory(&self) -> PartitionMemory {
        PartitionMemory {
            map: hv().partitions[self.partition].config.memory,
        }
    }

    /// Processes what the effects `fx` ask for (at most `NOTIFY_ROUNDS`
    /// rounds), on the partition's own core with its transport locked;
    /// then, if a flush is now held, records which takes answer it. Returns
    /// the effects, and the home cores to wake now because the flush is a
    /// top layer's (bit per core).
    fn process(
        &self,
        transport: &mut MmioTransport<Gpu>,
        mut fx: Effects,
        screens: &[&Screen],
    ) -> (Effects, u64) {
        let mem = self.memory();
        for _ in 0..NOTIFY_ROUNDS {
            let Some(queue) = fx.notify.take() else { break };
            fx = fx.and(transport.notify_queue(queue, &mem));
        }
        let mut wake = 0;
        if transport.device().flush_waiting() {
            for (i, screen) in screens.iter().enumerate() {
                let Some(class) = screen.class_of(self) else {
                    continue;
                };
                // The next damage take of its class: it holds the flush's
                // damage (the home core takes it under this transport's
                // lock, after counting the take).
                let take = screen.taken[class as usize].load(Ordering::Acquire) + 1;
                let fresh = self.need[i]
                    .compare_exchange(0, take, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if fresh && class == Class::Top {
                    screen.top_flushed.store(true, Ordering::Release);
                    wake |= 1 << screen.home_cpu;
                }
            }
        }
        (fx, wake)
    }

    /// Wakes the home cores in `cores` (bits): the current core's own
    /// mediator pass runs before it returns to its guest.
    fn wake_homes(cores: u64, actions: &mut Actions) {
        let me = cpu::current();
        for core in (0..64).filter(|c| cores & 1 << c != 0) {
            if core == me {
                actions.wake = Some(me);
            } else {
                partition::kick(core, 0);
            }
        }
    }

    /// What follows an access or a refill, the transport unlocked: a
    /// rising line is raised; work left over is done on this core's next
    /// service pass.
    fn after(&self, fx: Effects, actions: &mut Actions) {
        actions.raise_line = fx.irq == Some(true);
        if fx.notify.is_some() {
            self.refill.store(true, Ordering::Release);
            actions.wake = Some(cpu::current());
        }
    }

    /// Answers the held flush if every screen that shows this device has
    /// all of its views on it up to the damage take it needs. On a home
    /// core.
    fn present_if_shown(&self, screens: &[&Screen]) {
        let mut any = false;
        for (i, screen) in screens.iter().enumerate() {
            let need = self.need[i].load(Ordering::Acquire);
            if need == 0 {
                continue;
            }
            let behind = screen
                .layers
                .iter()
                .filter(|l| core::ptr::eq(l.gpu, self))
                .any(|l| l.done.load(Ordering::Acquire) < need);
            if behind {
                return;
            }
            any = true;
        }
        if !any {
            return;
        }
        for n in &self.need {
            n.store(0, Ordering::Release);
        }
        let p = &hv().partitions[self.partition];
        let mem = self.memory();
        let (_, fx) = self
            .transport
            .write()
            .with_device(&mem, |gpu, ctx| gpu.presented(ctx));
        if fx.irq == Some(true) {
            partition::raise_virtual_spi(p, self.intid());
        }
        if fx.notify.is_some() && !self.refill.swap(true, Ordering::AcqRel) {
            // The partition's own core goes on with its ring.
            if let Some(&core) = p.vcpu_cpus.first()
                && core != cpu::current()
            {
                partition::kick(core, 0);
            }
        }
    }

    /// On the partition's own core: goes on with the ring (see `refill`).
    fn refill(&self, p: &Partition, screens: &[&Screen]) {
        if !self.refill.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut transport = self.transport.write();
        let fx = Effects {
            notify: Some(0),
            ..Effects::default()
        };
        let (fx, homes) = self.process(&mut transport, fx, screens);
        drop(transport);
        let mut actions = Actions::default();
        self.after(fx, &mut actions);
        // This pass serves this core's own screens after the refill.
        Self::wake_homes(homes & !(1 << cpu::current()), &mut actions);
        if actions.raise_line {
            partition::raise_virtual_spi(p, self.intid());
        }
    }
}

/// The mediator's screens, for the device windows (set once at boot).
static SCREENS: spin::Once<Vec<&'static Screen>> = spin::Once::new();

fn screens() -> &'static [&'static Screen] {
    SCREENS.get().map_or(&[], |s| s.as_slice())
}

/// Publishes the screens to the devices' trap paths.
pub fn install_screens(screens: &[&'static Screen]) {
    SCREENS.call_once(|| screens.to_vec());
}

/// The registers of a partition's virtio-gpu slot.
impl EmulatedDevice for VirtGpu {
    fn read(&'static self, a: &Access, actions: &mut Actions) -> u64 {
        let value = self.transport.read().read_register(a.offset, a.width);
        let _ = actions;
        value
    }

    /// Processes what the driver queued, on the partition's own core.
    fn write(&'static self, a: &Access, value: u64, actions: &mut Actions) {
        let mut transport = self.transport.write();
        let mut fx = Effects::default();
        let broken_before = transport.status() & NEEDS_RESET != 0;
        transport.write(a.offset, a.width, value, &mut fx);
        let (fx, homes) = self.process(&mut transport, fx, screens());
        let broken = !broken_before && transport.status() & NEEDS_RESET != 0;
        drop(transport);
        if broken {
            report::warn(
                a.partition,
                report::Kind::Device,
                format_args!("display: malformed virtqueue request; device needs reset"),
            );
        }
        if fx.reset {
            self.forget(screens());
        }
        self.after(fx, actions);
        Self::wake_homes(homes, actions);
    }

    fn line_high(&self, _p: &Partition) -> bool {
        self.transport.read().irq_level()
    }

    fn reset(&self, _p: &Partition) {
        let _ = self.transport.write().reset();
        self.forget(screens());
    }
}

impl VirtGpu {
    /// The device was reset: nothing is held, and its views are composed
    /// anew (blank until it draws again).
    fn forget(&self, screens: &[&Screen]) {
        for n in &self.need {
            n.store(0, Ordering::Release);
        }
        for screen in screens {
            for l in screen.layers.iter().filter(|l| core::ptr::eq(l.gpu, self)) {
                l.reset.store(true, Ordering::Release);
            }
        }
    }
}

/// virtio device status: DEVICE_NEEDS_RESET.
const NEEDS_RESET: u32 = 0x40;

/// The layers of a screen, read for the compositor one at a time.
struct Sources<'a> {
    layers: &'a [ScreenLayer],
}

impl LayerSource for Sources<'_> {
    fn with_source(&self, index: usize, f: &mut dyn FnMut(Option<Source<'_>>)) {
        let Some(&ScreenLayer { gpu, scanout, .. }) = self.layers.get(index) else {
            return f(None);
        };
        if !hv().partitions[gpu.partition].is_running() {
            return f(None);
        }
        let transport = gpu.transport.read();
        let image = transport.device().scanout(scanout as usize);
        f(image.map(|img| Source {
            pixels: img.pixels,
            stride: img.width as usize * 4,
            format: img.format,
            area: img.source,
        }));
    }
}

impl Screen {
    /// The class of `gpu`'s views on this screen, if it has any here (all
    /// of a partition's views on a screen have its priority).
    fn class_of(&self, gpu: &VirtGpu) -> Option<Class> {
        self.layers
            .iter()
            .find(|l| core::ptr::eq(l.gpu, gpu))
            .map(|l| l.class)
    }

    /// Takes what changed on each view of the classes `classes` since the
    /// last take, at counter value `now`, into `pending`; views that
    /// missed their deadline go into fallback, and come out of it when
    /// they have a new frame.
    fn take_damage(
        &self,
        classes: &[Class],
        now: u64,
        freshness: &mut [Freshness],
        pending: &mut [Rects],
    ) {
        for &class in classes {
            self.taken[class as usize].fetch_add(1, Ordering::AcqRel);
        }
        let layers = self.layers.iter().zip(freshness).zip(pending);
        for ((l, fresh), pending) in layers.filter(|((l, _), _)| classes.contains(&l.class)) {
            let screen = l.layer.screen;
            if l.reset.swap(false, Ordering::AcqRel) {
                pending.push(screen);
            }
            let taken = l
                .gpu
                .transport
                .write()
                .device_mut()
                .take_damage_rects(l.scanout as usize);
            if !taken.is_empty() {
                fresh.last = now;
                for r in taken.as_slice() {
                    if let Some(r) = r
                        .offset(screen.x, screen.y)
                        .and_then(|r| r.intersection(&screen))
                    {
                        pending.push(r);
                    }
                }
                if fresh.missed {
                    fresh.missed = false;
                    pending.push(self.fallback_area(l));
                    self.deadline_note(
                        l,
                        log::Level::Info,
                        format_args!("drew again: fallback removed"),
                    );
                }
            } else if l.deadline > 0 && !fresh.missed && now.saturating_sub(fresh.last) > l.deadline
            {
                fresh.missed = true;
                pending.push(self.fallback_area(l));
                let ms = l.deadline * 1000 / cpu::counter_frequency().max(1);
                self.deadline_note(
                    l,
                    log::Level::Warn,
                    format_args!("missed its {ms} ms deadline: fallback shown"),
                );
            }
        }
    }

    /// The signature unit: each protected region the frame changed must
    /// show exactly what its owner's layer (and those above it) make of it
    /// over black; the framebuffer is read back and compared. A mismatch
    /// (a lower layer's pixel got in, the frame was corrupted) is logged
    /// and puts the owner's views on this screen into fallback from the
    /// next frame.
    fn check_signatures(
        &self,
        expected: &[Option<Signature>],
        damage: Rect,
        state: &mut ScreenState,
    ) {
        for (i, (protection, expected)) in self.protected.iter().zip(expected).enumerate() {
            let (Some(expected), Some(rect)) = (expected, protection.rect.intersection(&damage))
            else {
                continue;
            };
            let shown = self.phys.lock().signature(rect);
            if *expected == shown {
                continue;
            }
            let mut first = true;
            let owners = self
                .layers
                .iter()
                .zip(state.freshness.iter_mut())
                .zip(state.pending.iter_mut())
                .filter(|((l, _), _)| l.layer.priority == protection.priority);
            for ((l, fresh), pending) in owners {
                if first {
                    self.deadline_note(
                        l,
                        log::Level::Error,
                        format_args!(
                            "protected region {i} shows signature {:#018x}, its content has {:#018x}: fallback shown",
                            shown.value(),
                            expected.value()
                        ),
                    );
                    first = false;
                }
                fresh.missed = true;
                // The fallback goes on in the next frame.
                pending.push(self.fallback_area(l));
            }
        }
    }

    /// Where layer `l`'s fallback shows: its partition's protected regions
    /// in it, or all of it if there are none (as the compositor paints it).
    fn fallback_area(&self, l: &ScreenLayer) -> Rect {
        self.protected
            .iter()
            .filter(|p| p.priority == l.layer.priority)
            .filter_map(|p| p.rect.intersection(&l.layer.screen))
            .reduce(|a, b| a.union(&b))
            .unwrap_or(l.layer.screen)
    }

    /// Logs a deadline event of layer `l`'s partition.
    fn deadline_note(&self, l: &ScreenLayer, level: log::Level, what: core::fmt::Arguments) {
        let p = &hv().partitions[l.gpu.partition];
        report::note(
            p,
            report::Kind::Device,
            level,
            format_args!("display {}: view {}: {what}", self.name, l.scanout),
        );
    }

    /// Pixels of the lower layers a frame may carry: what the compositor
    /// makes in `1 / BUDGET_SHARE` of a refresh, at least a band's rows.
    fn budget(&self, st: &ScreenState) -> u64 {
        let floor = u64::from(self.size.width) * BAND_ROWS as u64;
        match st.cost {
            // Not measured yet: four bands.
            0 => 4 * floor,
            cost => (self.period / BUDGET_SHARE)
                .saturating_mul(1_000_000)
                .checked_div(cost)
                .unwrap_or(0)
                .max(floor),
        }
    }

    /// One pass on the home core: finishes the frame on its way; takes the
    /// views' damage at each refresh; sends the next frame while any is
    /// pending, the top layers' first (see [`frames::next_frame`]).
    /// Returns the next refresh.
    fn service(&self, index: usize, display: &Display) -> u64 {
        let mut st = self.state.lock();
        if st.in_flight {
            let done = self.phys.lock().poll();
            match done {
                Ok(false) => {}
                Ok(true) | Err(_) => {
                    if let Err(e) = done {
                        warn!("display {}: {e}", self.name);
                    }
                    st.in_flight = false;
                    if st.pixels >= COST_SAMPLE_PIXELS {
                        let ticks = cpu::counter().saturating_sub(st.began);
                        let sample = (ticks.saturating_mul(1_000_000) / st.pixels).max(1);
                        st.cost = match st.cost {
                            0 => sample,
                            cost => (3 * cost + sample) / 4,
                        };
                    }
                }
            }
        }
        let now = cpu::counter();
        if now >= st.next {
            if st.next == 0 {
                // The display's first refresh: deadlines count from here.
                for fresh in st.freshness.iter_mut() {
                    fresh.last = now;
                }
            }
            st.next = if st.next == 0 || now - st.next > self.period {
                now + self.period
            } else {
                st.next + self.period
            };
            // Taken now, or as soon as the frame on its way is shown.
            if st.take_due {
                st.late += 1;
            }
            st.take_due = true;
        }
        if st.in_flight {
            return st.next;
        }
        let top_flushed = self.top_flushed.swap(false, Ordering::AcqRel);
        if st.take_due {
            st.take_due = false;
            let state = &mut *st;
            let all = [Class::Lower, Class::Top];
            self.take_damage(&all, now, &mut state.freshness, &mut state.pending);
        } else if top_flushed {
            let state = &mut *st;
            self.take_damage(&[Class::Top], now, &mut state.freshness, &mut state.pending);
        }
        // The top layers' damage goes alone; the others' in frames of
        // their own, a budget at a time.
        let top_pending = self
            .layers
            .iter()
            .zip(&st.pending)
            .any(|(l, p)| l.class == Class::Top && !p.is_empty());
        let budget = if top_pending { 0 } else { self.budget(&st) };
        // Views with nothing pending are on the screen up to the last take
        // of their class.
        let mut answered = false;
        for (l, pending) in self.layers.iter().zip(&st.pending) {
            let taken = self.taken[l.class as usize].load(Ordering::Acquire);
            if pending.is_empty() && l.done.load(Ordering::Relaxed) < taken {
                l.done.store(taken, Ordering::Release);
                answered = true;
            }
        }
        if answered {
            display.present(index);
        }
        let state = &mut *st;
        let frame = frames::next_frame(&mut state.pending, &self.priorities, budget);
        if !frame.is_empty() {
            self.send(&frame, now, &mut st);
        }
        st.next
    }

    /// Composes `frame`'s rectangles and starts sending them.
    fn send(&self, frame: &[Rect], now: u64, st: &mut ScreenState) {
        let sources = Sources {
            layers: &self.layers,
        };
        let layers: Vec<Layer> = self
            .layers
            .iter()
            .zip(st.freshness.iter())
            .map(|(l, fresh)| Layer {
                fallback: fresh.missed.then_some(l.fallback),
                ..l.layer
            })
            .collect();
        let mut composed = Ok(0);
        for &rect in frame {
            let phys = self.phys.lock();
            let mut expected = vec![None; self.protected.len()];
            composed = compositor::compose_checked(
                self.size,
                &layers,
                &self.protected,
                &sources,
                rect,
                &mut st.band,
                &mut st.scratch,
                &mut |area, pixels| phys.write(area, pixels),
                &mut expected,
            );
            drop(phys);
            if composed.is_err() {
                break;
            }
            self.check_signatures(&expected, rect, st);
        }
        match composed.map(|_| self.phys.lock().start_frame(frame)) {
            Ok(Ok(())) => {
                st.in_flight = true;
                st.began = now;
                st.pixels = frames::pixels(frame);
                st.frames += 1;
                if st.frames == 1 {
                    let ms = (cpu::counter() - now) * 1000 / cpu::counter_frequency().max(1);
                    let b = frame.iter().copied().reduce(|a, b| a.union(&b));
                    let b = b.unwrap_or_default();
                    info!(
                        "display {}: first frame ({}x{}) composed in {ms} ms",
                        self.name, b.width, b.height
                    );
                }
            }
            Ok(Err(e)) => warn!("display {}: {e}", self.name),
            Err(e) => warn!("display {}: compositor: {e:?}", self.name),
        }
    }
}

impl Mediator for Display {
    fn name(&self) -> &'static str {
        "display"
    }

    /// On a partition's core: goes on with its ring. On a home core:
    /// composes and sends frames at each refresh, and answers flushes when
    /// their frames are shown. Never waits for a device.
    fn service(&self) -> Option<u64> {
        if let Some((p, _)) = partition::current_vcpu() {
            for gpu in self.gpus.iter().filter(|g| g.partition == p.index) {
                gpu.refill(p, &self.screens);
            }
        }
        let me = cpu::current();
        self.screens
            .iter()
            .enumerate()
            .filter(|(_, s)| s.home_cpu == me)
            .map(|(i, s)| s.service(i, self))
            .min()
    }

    /// A display's used-buffer interrupt: lowers its line; the frame is
    /// finished by [`Mediator::service`], which runs next on this core.
    fn interrupt(&self, intid: u32) {
        if let Some(screen) = self.screens.iter().find(|s| s.intid == Some(intid)) {
            screen.phys.lock().ack_interrupt();
        }
    }

    /// Resets the partition's device: its resources are freed and its
    /// views go blank. Nothing the mediator does touches the partition's
    /// memory afterwards (transfers copy on the partition's own core).
    fn quiesce(&self, p: &Partition) {
        for gpu in self.gpus.iter().filter(|g| g.partition == p.index) {
            let _ = gpu.transport.write().reset();
            gpu.forget(&self.screens);
        }
    }
}
