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
//! Pacing: a RESOURCE_FLUSH is answered once a physical frame started
//! after it is on every display that shows one of the partition's views
//! (`need` and `shown` below), so a guest's fenced flush completes when
//! its content is on the screen, and a partition that floods flushes
//! delays only itself.

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
use shared_devices::display::{Rect, Rects};
use shared_devices::mmio::RegisterFile;
use shared_devices::virtio::gpu::VirtioGpu;
use shared_devices::virtio::mmio::{Effects, MmioTransport};
use spin::Mutex;

/// Physical displays at most.
pub const MAX_SCREENS: usize = 8;
/// Rows of the compositor's work buffer per band at full width.
const BAND_ROWS: usize = 16;
/// Rounds of command processing per notification or refill; more work
/// is left for the next pass on the partition's core.
const NOTIFY_ROUNDS: usize = 4;
/// What a view shows while its partition draws nothing (opaque black).
const BLANK: u32 = 0xff00_0000;

/// A partition's virtio-gpu device model, its pixels in its own arena.
pub type Gpu = VirtioGpu<&'static mut [u8]>;

/// A partition's virtio-gpu device.
pub struct VirtGpu {
    /// The partition's index.
    pub partition: usize,
    /// Its virtio-mmio slot.
    pub slot: usize,
    pub transport: Mutex<MmioTransport<Gpu>>,
    /// The screens that show one of its views (bit per screen index).
    screens: u32,
    /// Per screen: the frame (in [`Screen::started`] numbering) whose
    /// completion answers the held flush; 0 when none is needed there.
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
    protected: Vec<Protection>,
    /// Counter ticks per refresh.
    period: u64,
    /// Frames started and frames on the screen (same numbering).
    started: AtomicU64,
    shown: AtomicU64,
    /// Compose the whole screen next (a partition stopped or restarted).
    redraw: AtomicBool,
    /// The home core's own state.
    state: Mutex<ScreenState>,
}

/// A view on a screen.
#[derive(Clone, Copy)]
struct ScreenLayer {
    gpu: &'static VirtGpu,
    scanout: u32,
    layer: Layer,
    /// The view's deadline in counter ticks (0: none), and its fallback
    /// colour (`0xffRRGGBB`).
    deadline: u64,
    fallback: u32,
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
    /// A physical frame is on its way.
    in_flight: bool,
    /// The compositor's work buffer, and its owners' views for the
    /// signature check (a band each).
    band: Vec<u32>,
    scratch: Vec<u32>,
    /// Frames sent, and refreshes that came while one was still on its way.
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
        transport: Mutex::new(MmioTransport::new(gpu)),
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
    let size = phys.screen();
    let hz = u64::from(desc.refresh_hz.max(1));
    let layers_len = layers.len();
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
        protected,
        period: cpu::counter_frequency() / hz,
        started: AtomicU64::new(0),
        shown: AtomicU64::new(0),
        redraw: AtomicBool::new(true),
        state: Mutex::new(ScreenState {
            next: 0,
            freshness: vec![Freshness::default(); layers_len],
            in_flight: false,
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
    /// then, if a flush is now held, records which frames answer it.
    fn process(
        &self,
        transport: &mut MmioTransport<Gpu>,
        mut fx: Effects,
        screens: &[&Screen],
    ) -> Effects {
        let mem = self.memory();
        for _ in 0..NOTIFY_ROUNDS {
            let Some(queue) = fx.notify.take() else { break };
            fx = fx.and(transport.notify_queue(queue, &mem));
        }
        if transport.device().flush_waiting() {
            for (i, screen) in screens.iter().enumerate() {
                if self.screens & 1 << i != 0 {
                    // A frame started after now: its damage includes the
                    // flush's (never one already on its way).
                    let frame = screen.started.load(Ordering::Acquire) + 1;
                    let _ = self.need[i].compare_exchange(
                        0,
                        frame,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
            }
        }
        fx
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
    /// shown the frame it needs. On a home core.
    fn present_if_shown(&self, screens: &[&Screen]) {
        let mut any = false;
        for (i, screen) in screens.iter().enumerate() {
            let need = self.need[i].load(Ordering::Acquire);
            if need == 0 {
                continue;
            }
            if screen.shown.load(Ordering::Acquire) < need {
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
            .lock()
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
        let mut transport = self.transport.lock();
        let fx = Effects {
            notify: Some(0),
            ..Effects::default()
        };
        let fx = self.process(&mut transport, fx, screens);
        drop(transport);
        let mut actions = Actions::default();
        self.after(fx, &mut actions);
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
        let value = self
            .transport
            .lock()
            .read(a.offset, a.width, &mut Effects::default());
        let _ = actions;
        value
    }

    /// Processes what the driver queued, on the partition's own core.
    fn write(&'static self, a: &Access, value: u64, actions: &mut Actions) {
        let mut transport = self.transport.lock();
        let mut fx = Effects::default();
        let broken_before = transport.status() & NEEDS_RESET != 0;
        transport.write(a.offset, a.width, value, &mut fx);
        let fx = self.process(&mut transport, fx, screens());
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
    }

    fn line_high(&self, _p: &Partition) -> bool {
        self.transport.lock().irq_level()
    }

    fn reset(&self, _p: &Partition) {
        let _ = self.transport.lock().reset();
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
        for (i, screen) in screens.iter().enumerate() {
            if self.screens & 1 << i != 0 {
                screen.redraw.store(true, Ordering::Release);
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
        let transport = gpu.transport.lock();
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
    /// The union of what changed on the screen since the last frame, at
    /// counter value `now`; views that missed their deadline go into
    /// fallback, and come out of it when they have a new frame.
    fn take_damage(&self, now: u64, freshness: &mut [Freshness]) -> Rects {
        let mut damage = Rects::default();
        if self.redraw.swap(false, Ordering::AcqRel) {
            damage.push(self.size);
        }
        let mut add = |r: Rect| damage.push(r);
        for (l, fresh) in self.layers.iter().zip(freshness.iter_mut()) {
            let taken = l
                .gpu
                .transport
                .lock()
                .device_mut()
                .take_damage_rects(l.scanout as usize);
            let screen = l.layer.screen;
            if !taken.is_empty() {
                fresh.last = now;
                for r in taken.as_slice() {
                    if let Some(r) = r
                        .offset(screen.x, screen.y)
                        .and_then(|r| r.intersection(&screen))
                    {
                        add(r);
                    }
                }
                if fresh.missed {
                    fresh.missed = false;
                    add(self.fallback_area(l));
                    self.deadline_note(
                        l,
                        log::Level::Info,
                        format_args!("drew again: fallback removed"),
                    );
                }
            } else if l.deadline > 0 && !fresh.missed && now.saturating_sub(fresh.last) > l.deadline
            {
                fresh.missed = true;
                add(self.fallback_area(l));
                let ms = l.deadline * 1000 / cpu::counter_frequency().max(1);
                self.deadline_note(
                    l,
                    log::Level::Warn,
                    format_args!("missed its {ms} ms deadline: fallback shown"),
                );
            }
        }
        damage
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
            for (l, fresh) in self.layers.iter().zip(state.freshness.iter_mut()) {
                if l.layer.priority != protection.priority {
                    continue;
                }
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
            }
            // The fallback goes on at the next refresh.
            self.redraw.store(true, Ordering::Release);
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

    /// One pass on the home core: finishes the frame on its way, and at
    /// each refresh composes what changed and sends it. Returns the next
    /// refresh.
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
                    self.shown
                        .store(self.started.load(Ordering::Acquire), Ordering::Release);
                    drop(st);
                    display.present(index);
                    st = self.state.lock();
                }
            }
        }
        let now = cpu::counter();
        if now < st.next {
            return st.next;
        }
        if st.in_flight {
            st.late += 1;
            st.next = now + self.period;
            return st.next;
        }
        let frame = self.started.fetch_add(1, Ordering::AcqRel) + 1;
        if st.next == 0 {
            // The display's first refresh: deadlines count from here.
            for fresh in st.freshness.iter_mut() {
                fresh.last = now;
            }
        }
        let state = &mut *st;
        let damage = self.take_damage(now, &mut state.freshness);
        // Nothing changed: the frame is what is shown already.
        if !damage.is_empty() {
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
            let state = &mut *st;
            let mut composed = Ok(0);
            for &rect in damage.as_slice() {
                let phys = self.phys.lock();
                let mut expected = vec![None; self.protected.len()];
                composed = compositor::compose_checked(
                    self.size,
                    &layers,
                    &self.protected,
                    &sources,
                    rect,
                    &mut state.band,
                    &mut state.scratch,
                    &mut |area, pixels| phys.write(area, pixels),
                    &mut expected,
                );
                drop(phys);
                if composed.is_err() {
                    break;
                }
                self.check_signatures(&expected, rect, state);
            }
            match composed.map(|_| self.phys.lock().start_frame(damage.as_slice())) {
                Ok(Ok(())) => {
                    st.in_flight = true;
                    st.frames += 1;
                    if st.frames == 1 {
                        let ms = (cpu::counter() - now) * 1000 / cpu::counter_frequency().max(1);
                        let b = damage.bounds().unwrap_or_default();
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
        st.next = if st.next == 0 || now - st.next > self.period {
            now + self.period
        } else {
            st.next + self.period
        };
        let next = st.next;
        if !st.in_flight {
            self.shown.store(frame, Ordering::Release);
            drop(st);
            display.present(index);
        }
        next
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
            let _ = gpu.transport.lock().reset();
            gpu.forget(&self.screens);
        }
    }
}
