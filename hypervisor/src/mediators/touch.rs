//! The touch mediator (`[[touch]]` panels and partitions' `touch` in the
//! config): the hypervisor reads each physical multi-touch panel itself
//! (`drivers::virtio_input`) on its home core, and gives each contact to
//! the partition whose view (or protected region) is on top where it
//! starts (`shared_devices::touch`). Each partition with `touch` sees one
//! virtio-input multi-touch device per panel it has a view under
//! (`shared_devices::virtio::input`), in its view's coordinates, with its
//! own slots and tracking ids.
//!
//! Where the work runs: the panel's events are decoded and routed on its
//! home core, which puts each partition's frame into that partition's
//! device (whole frames only; a partition that does not read loses its
//! own oldest frames); the partition's core takes them into its event
//! queue when it posts buffers.

use crate::arch::cpu;
use crate::arch::guest_mem::PartitionMemory;
use crate::drivers::virtio_input::PhysicalPanel;
use crate::partition::{self, Access, Actions, EmulatedDevice, Mediator, Partition, hv, report};
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use log::{info, warn};
use shared_devices::display::Rect;
use shared_devices::mmio::RegisterFile;
use shared_devices::touch::{
    Area, Event, FRAME_EVENTS, GUEST_SLOTS, PanelDecoder, Router, Target, code,
};
use shared_devices::virtio::input::{Identity, VirtioInput};
use shared_devices::virtio::mmio::{Effects, MmioTransport};
use spin::Mutex;

/// Partition devices on one panel at most.
pub const MAX_TARGETS: usize = 8;
/// Rounds of queue processing per notification.
const NOTIFY_ROUNDS: usize = 4;
/// virtio device status: DEVICE_NEEDS_RESET.
const NEEDS_RESET: u32 = 0x40;

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
    pub intid: Option<u32>,
    phys: Mutex<PhysicalPanel>,
    /// The counter when the panel's interrupt was taken, until its
    /// events are routed (0: none since): their frames' `MSC_TIMESTAMP`.
    sensed: AtomicU64,
    state: Mutex<PanelState>,
    /// Its devices, by target index.
    targets: Vec<&'static VirtInput>,
}

struct PanelState {
    decoder: PanelDecoder,
    router: Router<MAX_TARGETS>,
}

/// The touch mediator: every panel and every partition's device.
pub struct Touch {
    panels: Vec<&'static Panel>,
    inputs: Vec<&'static VirtInput>,
}

/// Opens a `[[touch]]` panel's device.
pub fn open_panel(desc: &config::model::Touch, home_cpu: usize) -> Result<PhysicalPanel, String> {
    let region = desc.regions.first().ok_or("touch panel has no registers")?;
    let panel = PhysicalPanel::open(region.base, region.size)?;
    info!(
        "touch {}: virtio-input at {:#x}, axes x {}..{} y {}..{}, routed on cpu {home_cpu}",
        desc.name, region.base, panel.x.min, panel.x.max, panel.y.min, panel.y.max
    );
    Ok(panel)
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

/// Panel number `panel` of `system`, with its partitions' devices
/// (`inputs`, all panels') as targets and every view and protected region
/// on its display as the areas contacts start in.
pub fn panel(
    system: &config::model::System,
    panel: usize,
    phys: PhysicalPanel,
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
    let decoder = PanelDecoder::new(phys.x, phys.y, screen);
    Panel {
        name: desc.name,
        home_cpu,
        intid,
        phys: Mutex::new(phys),
        sensed: AtomicU64::new(0),
        state: Mutex::new(PanelState {
            decoder,
            router: Router::new(&areas, &views),
        }),
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

    /// The physical interrupts it owns, with the cores they go to.
    pub fn interrupts(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.panels
            .iter()
            .filter_map(|p| p.intid.map(|i| (i, p.home_cpu)))
    }
}

impl Panel {
    /// On the home core: routes whatever the panel reported.
    fn service(&self) {
        let mut phys = self.phys.lock();
        let mut st = self.state.lock();
        let PanelState { decoder, router } = &mut *st;
        let before = router.counts();
        let sensed = match self.sensed.swap(0, Ordering::AcqRel) {
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
        let broken_before = transport.status() & NEEDS_RESET != 0;
        let (_, mut fx) = transport.with_device(&mem, |dev, ctx| dev.push_frame(frame, ctx));
        let dropped = transport.device().stats().frames_overflowed;
        // The device stopped at its budget with frames and buffers left:
        // go on (a driver using EVENT_IDX may not notify again).
        for _ in 0..NOTIFY_ROUNDS {
            let Some(queue) = fx.notify.take() else { break };
            fx = fx.and(transport.notify_queue(queue, &mem));
        }
        // A ring it broke shows only now, when a frame comes to it.
        let broken = !broken_before && transport.status() & NEEDS_RESET != 0;
        drop(transport);
        if broken {
            report::warn(
                p,
                report::Kind::Device,
                format_args!("touch: malformed virtqueue request; device needs reset"),
            );
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
        let mut transport = self.transport.lock();
        let mut fx = Effects::default();
        let broken_before = transport.status() & NEEDS_RESET != 0;
        transport.write(a.offset, a.width, value, &mut fx);
        for _ in 0..NOTIFY_ROUNDS {
            let Some(queue) = fx.notify.take() else { break };
            fx = fx.and(transport.notify_queue(queue, &mem));
        }
        let broken = !broken_before && transport.status() & NEEDS_RESET != 0;
        drop(transport);
        if broken {
            report::warn(
                a.partition,
                report::Kind::Device,
                format_args!("touch: malformed virtqueue request; device needs reset"),
            );
        }
        actions.raise_line = fx.irq == Some(true);
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

    /// A panel's used-buffer interrupt: lowers its line; its events are
    /// routed by [`Mediator::service`], which runs next on this core.
    fn interrupt(&self, intid: u32) {
        if let Some(panel) = self.panels.iter().find(|p| p.intid == Some(intid)) {
            // The first interrupt since its events were last routed says
            // when they were sensed (later ones are the same batch).
            let _ = panel.sensed.compare_exchange(
                0,
                cpu::counter().max(1),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            panel.phys.lock().ack_interrupt();
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
            let mut st = panel.state.lock();
            let lost = st.router.counts().lost;
            st.router.forget(input.target);
            let now_lost = st.router.counts().lost - lost;
            drop(st);
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
