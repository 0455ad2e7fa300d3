//! The touch mediator (`[[touch]]` panels and partitions' `touch` in the
//! config): the hypervisor reads each physical multi-touch panel itself
//! (`drivers::virtio_input`) on its home core, and gives each contact to
//! the partition whose view (or protected region) is on top where it
//! starts (`shared_devices::touch`). Each partition with `touch` sees one
//! virtio-input multi-touch device per panel it has a view under
//! (`shared_devices::virtio::input`), in its view's coordinates, with its
//! own slots and tracking ids.
//!
//! A panel may have a second physical source, its `pointer`: an absolute
//! pointer on the same display (QEMU's mouse over the display's window, as
//! a tablet), with its own decoder and interrupt on the same home core.
//! While its button is down it is one more contact on the panel, in a
//! physical slot of its own; the router does not tell it from a finger.
//!
//! Where the work runs: the panel's events are decoded and routed on its
//! home core, which puts each partition's frame into that partition's
//! device (whole frames only; a partition that does not read loses its
//! own oldest frames); the partition's core takes them into its event
//! queue when it posts buffers.

use super::virtio_window;
use crate::arch::cpu;
use crate::arch::guest_mem::PartitionMemory;
use crate::drivers::virtio_input::{self, Kind, PhysicalInput};
use crate::partition::{self, Access, Actions, EmulatedDevice, Mediator, Partition, hv, report};
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use log::{info, warn};
use shared_devices::display::Rect;
use shared_devices::touch::{
    Area, Change, Event, FRAME_EVENTS, GUEST_SLOTS, PanelDecoder, PointerDecoder, Router, Target,
    code,
};
use shared_devices::virtio::input::{Identity, VirtioInput};
use shared_devices::virtio::mmio::MmioTransport;
use spin::Mutex;

/// Partition devices on one panel at most.
pub const MAX_TARGETS: usize = 8;

/// A partition's virtio-input device on one panel.
pub struct VirtInput {
    pub partition: usize,
    /// Its virtio-mmio slot.
    pub slot: usize,
    /// Its panel (index in the mediator's panels) and its target there.
    panel: usize,
    target: usize,
    pub transport: Mutex<MmioTransport<VirtioInput>>,
}

/// A physical panel and the partitions' devices on it.
pub struct Panel {
    pub name: &'static str,
    pub home_cpu: usize,
    /// Where its contacts come from: the panel, then its pointer if it
    /// has one.
    sources: Vec<Source>,
    /// Routes the contacts of all its sources.
    router: Mutex<Router<MAX_TARGETS>>,
    /// Its devices, by target index.
    targets: Vec<&'static VirtInput>,
}

/// One physical device whose events become contacts on a panel.
struct Source {
    intid: Option<u32>,
    /// The device and what turns its events into contact changes.
    input: Mutex<SourceInput>,
    /// The counter when its interrupt was taken, until its events are
    /// routed (0: none since): their frames' `MSC_TIMESTAMP`.
    sensed: AtomicU64,
}

struct SourceInput {
    phys: PhysicalInput,
    decoder: Decoder,
}

/// A source's decoder: the panel's fingers, or the pointer's one contact.
enum Decoder {
    Panel(PanelDecoder),
    Pointer(PointerDecoder),
}

impl Decoder {
    fn event(&mut self, e: Event, frame: &mut dyn FnMut(&[Change])) {
        match self {
            Decoder::Panel(d) => d.event(e, frame),
            Decoder::Pointer(d) => d.event(e, frame),
        }
    }
}

/// The touch mediator: every panel and every partition's device.
pub struct Touch {
    panels: Vec<&'static Panel>,
    inputs: Vec<&'static VirtInput>,
}

/// Opens a `[[touch]]` panel's device.
pub fn open_panel(desc: &config::model::Touch, home_cpu: usize) -> Result<PhysicalInput, String> {
    let region = desc.regions.first().ok_or("touch panel has no registers")?;
    let panel = PhysicalInput::open(region.base, region.size, Kind::Panel)?;
    info!(
        "touch {}: virtio-input at {:#x}, axes x {}..{} y {}..{}, routed on cpu {home_cpu}",
        desc.name, region.base, panel.x.min, panel.x.max, panel.y.min, panel.y.max
    );
    Ok(panel)
}

/// Opens a `[[touch]]` panel's pointer, if it has one and a device sits
/// behind its transport (QEMU leaves the transport empty when no tablet
/// is attached: the panel then goes on without it).
///
/// Open it after the panel: QEMU hands a button event to the first input
/// handler bound to the display that takes buttons, and both the panel
/// and the tablet do; a device's handler moves to the front when its
/// driver sets DRIVER_OK. Opened last, the tablet gets the mouse's
/// buttons (its motion only it takes), the panel keeps the touches.
pub fn open_pointer(desc: &config::model::Touch) -> Result<Option<PhysicalInput>, String> {
    let Some(pointer) = &desc.pointer else {
        return Ok(None);
    };
    let region = pointer
        .regions
        .first()
        .ok_or("its pointer has no registers")?;
    if virtio_input::transport_is_empty(region.base, region.size) {
        info!(
            "touch {}: no pointer at {:#x}; mouse input off",
            desc.name, region.base
        );
        return Ok(None);
    }
    let input = PhysicalInput::open(region.base, region.size, Kind::Pointer)?;
    info!(
        "touch {}: pointer (virtio-input) at {:#x}, axes x {}..{} y {}..{}: the mouse is one more contact",
        desc.name, region.base, input.x.min, input.x.max, input.y.min, input.y.max
    );
    Ok(Some(input))
}

/// Partition `p`'s device on panel `panel` (index in `[[touch]]`), as
/// target `target` of it: a touchscreen of its view's size.
pub fn open_input(
    system: &config::model::System,
    p: &config::model::Partition,
    index: usize,
    panel: usize,
    target: usize,
    slot: usize,
) -> Option<VirtInput> {
    let desc = &system.touch[panel];
    let view = p.views.iter().find(|v| v.display == desc.display)?;
    let mut serial: heapless::String<32> = heapless::String::new();
    let _ = serial.push_str(desc.name);
    let identity = Identity {
        name: "Shared touch panel",
        serial,
        // BUS_VIRTUAL; the virtio vendor id.
        bustype: 0x06,
        vendor: 0x1af4,
        product: 0x0001,
        version: 0x0001,
    };
    let device = VirtioInput::touchscreen(
        identity,
        view.rect.width,
        view.rect.height,
        GUEST_SLOTS as u32,
    );
    info!(
        "partition {}: virtio-input in slot {slot}: touch {} as its {}x{} view",
        p.name, desc.name, view.rect.width, view.rect.height
    );
    Some(VirtInput {
        partition: index,
        slot,
        panel,
        target,
        transport: Mutex::new(MmioTransport::new(device)),
    })
}

/// Panel number `panel` of `system` (its device `phys` raising `intid`,
/// and its opened `pointer`, if any), with its partitions' devices
/// (`inputs`, all panels') as targets and every view and protected region
/// on its display as the areas contacts start in.
pub fn panel(
    system: &config::model::System,
    panel: usize,
    phys: PhysicalInput,
    pointer: Option<PhysicalInput>,
    home_cpu: usize,
    intid: Option<u32>,
    inputs: &[&'static VirtInput],
) -> Panel {
    let desc = &system.touch[panel];
    let display = &system.displays[desc.display];
    let mut targets: Vec<&'static VirtInput> = inputs
        .iter()
        .copied()
        .filter(|i| i.panel == panel)
        .collect();
    targets.sort_by_key(|i| i.target);
    let target_of = |partition: usize| targets.iter().position(|t| t.partition == partition);
    let mut areas = Vec::new();
    let mut views = Vec::new();
    for (i, p) in system.partitions.iter().enumerate() {
        let target = target_of(i);
        for v in p.views.iter().filter(|v| v.display == desc.display) {
            let rect = Rect::new(v.rect.x, v.rect.y, v.rect.width, v.rect.height);
            areas.push(Area {
                rect,
                priority: p.priority,
                protected: false,
                target,
            });
        }
        for r in p.protected.iter().filter(|r| r.display == desc.display) {
            let rect = Rect::new(r.rect.x, r.rect.y, r.rect.width, r.rect.height);
            areas.push(Area {
                rect,
                priority: p.priority,
                protected: true,
                target,
            });
        }
        if target.is_some()
            && let Some(v) = p.views.iter().find(|v| v.display == desc.display)
        {
            views.push(Target {
                view: Rect::new(v.rect.x, v.rect.y, v.rect.width, v.rect.height),
            });
        }
    }
    let screen = Rect::new(0, 0, display.width, display.height);
    let source = |phys: PhysicalInput, intid: Option<u32>| {
        let decoder = match phys.kind {
            Kind::Panel => Decoder::Panel(PanelDecoder::new(phys.x, phys.y, screen)),
            Kind::Pointer => Decoder::Pointer(PointerDecoder::new(phys.x, phys.y, screen)),
        };
        Source {
            intid,
            input: Mutex::new(SourceInput { phys, decoder }),
            sensed: AtomicU64::new(0),
        }
    };
    let pointer_intid = desc
        .pointer
        .as_ref()
        .and_then(|p| p.interrupts.first().copied());
    let mut sources = Vec::new();
    sources.push(source(phys, intid));
    sources.extend(pointer.map(|p| source(p, pointer_intid)));
    Panel {
        name: desc.name,
        home_cpu,
        sources,
        router: Mutex::new(Router::new(&areas, &views)),
        targets,
    }
}

impl Touch {
    pub fn new(panels: Vec<&'static Panel>, inputs: Vec<&'static VirtInput>) -> Self {
        Self { panels, inputs }
    }

    /// The cores that route its panels.
    pub fn home_cpus(&self) -> impl Iterator<Item = usize> + '_ {
        self.panels.iter().map(|p| p.home_cpu)
    }

    /// The physical interrupts it owns (its panels' and their pointers'),
    /// with the cores they go to.
    pub fn interrupts(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.panels.iter().flat_map(|p| {
            p.sources
                .iter()
                .filter_map(|s| s.intid.map(|i| (i, p.home_cpu)))
        })
    }
}

impl Panel {
    /// On the home core: routes whatever the panel and its pointer
    /// reported.
    fn service(&self) {
        let mut router = self.router.lock();
        let before = router.counts();
        for source in &self.sources {
            let mut input = source.input.lock();
            let SourceInput { phys, decoder } = &mut *input;
            let sensed = match source.sensed.swap(0, Ordering::AcqRel) {
                0 => cpu::counter(),
                at => at,
            };
            let stamp = timestamp_us(sensed, cpu::counter_frequency());
            let polled = phys.poll(&mut |e| {
                decoder.event(e, &mut |changes| {
                    router.frame(changes, &mut |target, frame| {
                        self.deliver(target, frame, stamp)
                    });
                });
            });
            if let Err(e) = polled {
                warn!("touch {}: {e}", self.name);
            }
        }
        let after = router.counts();
        if after.nowhere > before.nowhere {
            info!(
                "touch {}: a contact began where no partition with touch is on top; it goes nowhere ({} so far)",
                self.name, after.nowhere
            );
        }
        if after.no_slot > before.no_slot {
            info!(
                "touch {}: a partition had all its slots taken; a contact goes nowhere ({} so far)",
                self.name, after.no_slot
            );
        }
    }

    /// Puts `frame` into target `target`'s device, stamped with when the
    /// panel reported it (`MSC_TIMESTAMP`, µs).
    fn deliver(&self, target: usize, frame: &[Event], stamp: u32) {
        let Some(input) = self.targets.get(target) else {
            return;
        };
        let mut stamped: heapless::Vec<Event, { FRAME_EVENTS + 1 }> = heapless::Vec::new();
        let _ = stamped.extend_from_slice(frame);
        let _ = stamped.push(Event::new(code::EV_MSC, code::MSC_TIMESTAMP, stamp));
        let frame = &stamped[..];
        let p = &hv().partitions[input.partition];
        if !p.is_running() {
            return;
        }
        let mem = input.memory();
        let mut transport = input.transport.lock();
        let before = transport.device().stats().frames_overflowed;
        let broken_before = virtio_window::broken(&transport);
        let (_, fx) = transport.with_device(&mem, |dev, ctx| dev.push_frame(frame, ctx));
        let dropped = transport.device().stats().frames_overflowed;
        // The device stopped at its budget with frames and buffers left:
        // go on (a driver using EVENT_IDX may not notify again).
        let fx = virtio_window::settle(&mut transport, fx, &mem);
        // A ring it broke shows only now, when a frame comes to it.
        let broke = !broken_before && virtio_window::broken(&transport);
        drop(transport);
        if broke {
            virtio_window::report_broken(p, "touch");
        }
        if fx.irq == Some(true) {
            partition::raise_virtual_spi(p, input.intid());
        }
        // Its own oldest frames went because it does not read them (not
        // because it has no driver): said at the first and every 100th.
        if dropped > before && (before == 0 || dropped / 100 > before / 100) {
            report::warn(
                p,
                report::Kind::Device,
                format_args!(
                    "touch {}: it does not read its events: {dropped} frame(s) dropped so far",
                    self.name
                ),
            );
        }
    }
}

/// Counter value `at` in microseconds of a `hz` counter, wrapping at 2^32
/// as `MSC_TIMESTAMP` does (a guest reading the same counter computes the
/// same).
fn timestamp_us(at: u64, hz: u64) -> u32 {
    let hz = hz.max(1);
    (at / hz * 1_000_000 + at % hz * 1_000_000 / hz) as u32
}

impl VirtInput {
    /// The device's virtual SPI.
    pub fn intid(&self) -> u32 {
        config::layout::virtio_slot_intid(self.slot)
    }

    fn memory(&self) -> PartitionMemory {
        PartitionMemory {
            map: hv().partitions[self.partition].config.memory,
        }
    }
}

/// The registers of a partition's virtio-input slot.
impl EmulatedDevice for VirtInput {
    fn read(&'static self, a: &Access, _actions: &mut Actions) -> u64 {
        self.transport.lock().read_register(a.offset, a.width)
    }

    /// Processes what the driver queued, on the partition's own core.
    fn write(&'static self, a: &Access, value: u64, actions: &mut Actions) {
        let mem = self.memory();
        actions.raise_line = virtio_window::write(&self.transport, &mem, a, value, "touch");
    }

    fn line_high(&self, _p: &Partition) -> bool {
        self.transport.lock().irq_level()
    }

    fn reset(&self, _p: &Partition) {
        let _ = self.transport.lock().reset();
    }
}

impl Mediator for Touch {
    fn name(&self) -> &'static str {
        "touch"
    }

    /// On a home core: routes what its panels reported. Never waits.
    fn service(&self) -> Option<u64> {
        let me = cpu::current();
        for panel in self.panels.iter().filter(|p| p.home_cpu == me) {
            panel.service();
        }
        None
    }

    /// A panel's (or its pointer's) used-buffer interrupt: lowers its
    /// line; its events are routed by [`Mediator::service`], which runs
    /// next on this core.
    fn interrupt(&self, intid: u32) {
        let source = self
            .panels
            .iter()
            .flat_map(|p| p.sources.iter())
            .find(|s| s.intid == Some(intid));
        if let Some(source) = source {
            // The first interrupt since its events were last routed says
            // when they were sensed (later ones are the same batch).
            let _ = source.sensed.compare_exchange(
                0,
                cpu::counter().max(1),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            source.input.lock().phys.ack_interrupt();
        }
    }

    /// The partition's devices are reset (their pending frames dropped)
    /// and its open contacts lost until they lift.
    fn quiesce(&self, p: &Partition) {
        for input in self.inputs.iter().filter(|i| i.partition == p.index) {
            let _ = input.transport.lock().reset();
            let Some(panel) = self.panels.get(input.panel) else {
                continue;
            };
            let mut router = panel.router.lock();
            let lost = router.counts().lost;
            router.forget(input.target);
            let now_lost = router.counts().lost - lost;
            drop(router);
            if now_lost > 0 {
                report::note(
                    p,
                    report::Kind::Device,
                    log::Level::Info,
                    format_args!(
                        "touch {}: {now_lost} contact(s) down lost until lifted",
                        panel.name
                    ),
                );
            }
        }
    }
}
