//! virtio-input end to end: a test driver that sets the device up and
//! stocks its eventq the way Linux's `virtio_input` does (one 8-byte
//! buffer per event), the real virtio-mmio transport, and the touch
//! mediator's side (`push_frame` through `with_device`).

use super::protocol::*;
use super::*;
use crate::mmio::{RegisterFile, Width};
use crate::virtio::memory::{Fence, MemoryError, SliceMemory};
use crate::virtio::mmio::{Effects, MmioTransport, reg, status};
use crate::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use crate::virtio::test_driver::{BASE, Driver, RAM, read32, write32};

/// What Linux negotiates.
const LINUX: u64 = feature::VERSION_1 | feature::INDIRECT_DESC | feature::EVENT_IDX;
/// The event buffer of descriptor `i` is at `EVT_BUFS + 16 * i`.
const EVT_BUFS: u64 = BASE + 0x10000;
/// Status and hostile buffers are taken from here up.
const MISC_BUFS: u64 = BASE + 0x18000;
/// Fill of event buffers before the device writes them.
const UNSET: u8 = 0xee;

fn identity() -> Identity {
    Identity {
        name: "shared touchscreen 0",
        serial: heapless::String::try_from("view-1").unwrap(),
        bustype: BUS_VIRTUAL,
        vendor: 0x1234,
        product: 0x5678,
        version: 0x0102,
    }
}

/// One partition: its RAM, its touchscreen and the driver's two queues.
struct Rig<'m> {
    mem: SliceMemory<'m>,
    t: MmioTransport<VirtioInput>,
    evt: Driver,
    sts: Driver,
    next_misc: u64,
    /// Interrupt line level as the effects reported it.
    level: bool,
    /// Device calls the last `settle` made.
    calls: u32,
}

impl<'m> Rig<'m> {
    /// A 1280 x 720 screen with 10 slots, set up as Linux does.
    fn new(ram: &'m mut [u8]) -> Self {
        let mut r = Self::idle(ram, VirtioInput::touchscreen(identity(), 1280, 720, 10));
        assert!(r.bring_up(LINUX).driver_ok);
        r
    }

    /// Not set up yet.
    fn idle(ram: &'m mut [u8], dev: VirtioInput) -> Self {
        Rig {
            mem: SliceMemory::new(BASE, ram),
            t: MmioTransport::new(dev),
            evt: Driver::new(QUEUE_SIZE),
            sts: Driver::at(QUEUE_SIZE, BASE + 0x5000, BASE + 0x6000, BASE + 0x7000),
            next_misc: MISC_BUFS,
            level: false,
            calls: 0,
        }
    }

    /// The Linux virtio-mmio probe and virtio_input init, both queues, up
    /// to DRIVER_OK.
    fn bring_up(&mut self, features: u64) -> Effects {
        let t = &mut self.t;
        let w = |t: &mut MmioTransport<VirtioInput>, o, v| {
            let _ = write32(t, o, v);
        };
        assert_eq!(read32(t, reg::MAGIC_VALUE), 0x7472_6976);
        assert_eq!(read32(t, reg::DEVICE_ID), 18);
        w(t, reg::STATUS, 0);
        w(t, reg::STATUS, status::ACKNOWLEDGE);
        w(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        w(t, reg::DRIVER_FEATURES_SEL, 0);
        w(t, reg::DRIVER_FEATURES, features as u32);
        w(t, reg::DRIVER_FEATURES_SEL, 1);
        w(t, reg::DRIVER_FEATURES, (features >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        w(t, reg::STATUS, s);
        assert_eq!(read32(t, reg::STATUS), u64::from(s), "features refused");
        for (q, d) in [(0, &self.evt), (1, &self.sts)] {
            w(t, reg::QUEUE_SEL, q);
            assert_eq!(read32(t, reg::QUEUE_NUM_MAX), u64::from(QUEUE_SIZE));
            let l = d.layout();
            w(t, reg::QUEUE_NUM, l.num);
            w(t, reg::QUEUE_DESC_LOW, l.desc as u32);
            w(t, reg::QUEUE_DESC_HIGH, (l.desc >> 32) as u32);
            w(t, reg::QUEUE_DRIVER_LOW, l.avail as u32);
            w(t, reg::QUEUE_DRIVER_HIGH, (l.avail >> 32) as u32);
            w(t, reg::QUEUE_DEVICE_LOW, l.used as u32);
            w(t, reg::QUEUE_DEVICE_HIGH, (l.used >> 32) as u32);
            w(t, reg::QUEUE_READY, 1);
            assert_eq!(read32(t, reg::QUEUE_READY), 1);
        }
        self.level = t.irq_level();
        let fx = write32(t, reg::STATUS, s | status::DRIVER_OK);
        self.settle(fx)
    }

    /// Starts over after a reset: fresh rings, as a driver that binds
    /// again lays them out.
    fn rebind(&mut self) {
        self.evt = Driver::new(QUEUE_SIZE);
        self.sts = Driver::at(QUEUE_SIZE, BASE + 0x5000, BASE + 0x6000, BASE + 0x7000);
        self.mem.write(BASE + 0x1000, &[0; 0x7000]).unwrap();
        assert!(self.bring_up(LINUX).driver_ok);
    }

    fn dev(&self) -> &VirtioInput {
        self.t.device()
    }

    fn needs_reset(&mut self) -> bool {
        read32(&mut self.t, reg::STATUS) & u64::from(status::DEVICE_NEEDS_RESET) != 0
    }

    fn buf(head: u16) -> u64 {
        EVT_BUFS + 16 * u64::from(head)
    }

    /// `n` event buffers, one 8-byte device-writable descriptor each,
    /// added to the eventq (not yet published); their heads.
    fn add_events(&mut self, n: usize) -> Vec<u16> {
        (0..n)
            .map(|_| {
                let head = self.evt.add(&self.mem, &[(0, 8, true)]);
                let at = Self::buf(head);
                self.evt.desc(&self.mem, head, at, 8, DESC_F_WRITE, 0);
                self.mem.write(at, &[UNSET; 8]).unwrap();
                head
            })
            .collect()
    }

    /// `n` event buffers posted and notified, as Linux refills.
    fn post(&mut self, n: usize) -> Effects {
        let _ = self.add_events(n);
        self.kick(EVENT_QUEUE)
    }

    fn misc(&mut self, len: u64) -> u64 {
        let at = self.next_misc;
        self.next_misc = (at + len + 15) & !15;
        assert!(self.next_misc <= BASE + RAM as u64);
        at
    }

    /// Publishes and notifies queue `q`, then does what the effects ask
    /// for until there is nothing left (as the hypervisor does).
    fn kick(&mut self, q: u16) -> Effects {
        match q {
            EVENT_QUEUE => self.evt.publish(&self.mem),
            _ => self.sts.publish(&self.mem),
        }
        self.notify(q)
    }

    /// Notifies queue `q` without publishing anything.
    fn notify(&mut self, q: u16) -> Effects {
        self.level = self.t.irq_level();
        let fx = write32(&mut self.t, reg::QUEUE_NOTIFY, u32::from(q));
        self.settle(fx)
    }

    /// The touch mediator delivers a frame.
    fn push(&mut self, events: &[InputEvent]) -> Effects {
        self.level = self.t.irq_level();
        let ((), fx) = self
            .t
            .with_device(&self.mem, |dev, ctx| dev.push_frame(events, ctx));
        self.settle(fx)
    }

    /// Does what the effects ask for until there is nothing left (as the
    /// hypervisor does), checking that they report every change of the
    /// line (`level` is what it was before the call).
    fn settle(&mut self, mut fx: Effects) -> Effects {
        self.calls = 0;
        let mut all = fx;
        loop {
            if let Some(level) = fx.irq {
                self.level = level;
            }
            assert_eq!(self.level, self.t.irq_level(), "line level");
            self.dev().check_invariants().unwrap();
            let Some(q) = fx.notify else {
                break;
            };
            self.calls += 1;
            assert!(self.calls < 1000, "the device never settles");
            fx = self.t.notify_queue(q, &self.mem);
            all = all.and(fx);
        }
        Effects {
            notify: None,
            ..all
        }
    }

    /// The eventq's used entries since the last call.
    fn used(&mut self) -> Vec<(u32, u32)> {
        self.evt.used(&self.mem)
    }

    /// What the driver gets: the events of the used entries since the
    /// last call, each of which must be a whole 8-byte event.
    fn events(&mut self) -> Vec<InputEvent> {
        self.used()
            .into_iter()
            .map(|(id, len)| {
                assert_eq!(len, 8, "buffer {id} returned with {len} bytes");
                self.event(id as u16)
            })
            .collect()
    }

    fn event(&self, head: u16) -> InputEvent {
        let mut b = [0u8; 8];
        self.mem.read(Self::buf(head), &mut b).unwrap();
        InputEvent::from_bytes(b)
    }

    /// [`Rig::events`] split into frames, each ending with its
    /// SYN_REPORT (which is left out).
    fn frames(&mut self) -> Vec<Vec<InputEvent>> {
        let events = self.events();
        split(&events)
    }

    /// Config space byte `offset` (from its start) as the driver reads
    /// it.
    fn cfg8(&mut self, offset: u64) -> u8 {
        self.t
            .read(reg::CONFIG + offset, Width::Byte, &mut Effects::default()) as u8
    }

    /// Selects `select`/`subsel` with byte writes (as Linux does) and
    /// reads `size` and `u` byte by byte; the bytes beyond `size` must
    /// read 0.
    fn select(&mut self, select: u8, subsel: u8) -> Vec<u8> {
        let mut fx = Effects::default();
        self.t
            .write(reg::CONFIG, Width::Byte, u64::from(select), &mut fx);
        self.t
            .write(reg::CONFIG + 1, Width::Byte, u64::from(subsel), &mut fx);
        assert_eq!(fx, Effects::default());
        assert_eq!((self.cfg8(0), self.cfg8(1)), (select, subsel));
        let size = usize::from(self.cfg8(2));
        assert!(size <= 128);
        let u: Vec<u8> = (0..128).map(|i| self.cfg8(8 + i)).collect();
        assert!(
            u[size..].iter().all(|b| *b == 0),
            "{select:#x}/{subsel:#x}: bytes beyond size"
        );
        for i in 3..8 {
            assert_eq!(self.cfg8(i), 0, "reserved byte {i}");
        }
        u[..size].to_vec()
    }
}

/// Events split into frames at each SYN_REPORT; the last must end one.
fn split(events: &[InputEvent]) -> Vec<Vec<InputEvent>> {
    let mut frames = vec![];
    let mut cur = vec![];
    for e in events {
        if e.is_syn_report() {
            assert_eq!(*e, InputEvent::SYN_REPORT);
            frames.push(std::mem::take(&mut cur));
        } else {
            cur.push(*e);
        }
    }
    assert!(cur.is_empty(), "a partial frame at the end: {cur:?}");
    frames
}

/// An axis event; `value` as evdev's (signed).
fn abs(code: u16, value: i32) -> InputEvent {
    InputEvent::new(EV_ABS, code, value as u32)
}

/// A finger lands in `slot` (or moves there, `id` None).
fn contact(slot: i32, id: Option<i32>, x: i32, y: i32) -> Vec<InputEvent> {
    let mut v = vec![abs(ABS_MT_SLOT, slot)];
    if let Some(id) = id {
        v.push(abs(ABS_MT_TRACKING_ID, id));
    }
    v.extend([abs(ABS_MT_POSITION_X, x), abs(ABS_MT_POSITION_Y, y)]);
    v
}

/// A frame of `n` events, each naming the frame (`tag`) and its place.
fn tagged(tag: i32, n: usize) -> Vec<InputEvent> {
    (0..n)
        .map(|i| abs(ABS_MT_POSITION_X, tag * 1000 + i as i32))
        .collect()
}

fn bitmap_bits(bytes: &[u8]) -> Vec<u16> {
    let mut bits = vec![];
    for (i, b) in bytes.iter().enumerate() {
        for bit in 0..8 {
            if b & (1 << bit) != 0 {
                bits.push((i * 8 + bit) as u16);
            }
        }
    }
    bits
}

fn le32s(b: &[u8]) -> Vec<i32> {
    b.chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn identifies_itself() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::idle(&mut ram, VirtioInput::touchscreen(identity(), 800, 480, 5));
    let t = &mut r.t;
    assert_eq!(read32(t, reg::DEVICE_ID), 18);
    let _ = write32(t, reg::DEVICE_FEATURES_SEL, 0);
    assert_eq!(read32(t, reg::DEVICE_FEATURES), (1 << 28) | (1 << 29));
    let _ = write32(t, reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(read32(t, reg::DEVICE_FEATURES), 1, "VERSION_1");
    for (q, max) in [(0, 64), (1, 64), (2, 0)] {
        let _ = write32(t, reg::QUEUE_SEL, q);
        assert_eq!(read32(t, reg::QUEUE_NUM_MAX), max);
    }
    assert!(!r.dev().is_active());
    assert!(r.bring_up(LINUX).driver_ok);
    assert!(r.dev().is_active());
    assert_eq!(r.dev().identity(), &identity());
    // Without the ring features too.
    assert!(r.bring_up(feature::VERSION_1).driver_ok);
}

#[test]
fn config_space_describes_a_multitouch_screen() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    // Nothing selected yet.
    assert_eq!(r.select(select::UNSET, 0), b"");
    assert_eq!(r.select(select::ID_NAME, 0), b"shared touchscreen 0");
    assert_eq!(r.select(select::ID_SERIAL, 0), b"view-1");
    assert_eq!(
        r.select(select::ID_DEVIDS, 0),
        [0x06, 0, 0x34, 0x12, 0x78, 0x56, 0x02, 0x01]
    );
    assert_eq!(r.select(select::PROP_BITS, 0), [1 << INPUT_PROP_DIRECT]);
    for subsel in [1, 2, 0x80, 0xff] {
        for sel in [
            select::ID_NAME,
            select::ID_SERIAL,
            select::ID_DEVIDS,
            select::PROP_BITS,
        ] {
            assert_eq!(r.select(sel, subsel), b"", "{sel:#x} with subsel {subsel}");
        }
    }

    // Event types: keys (BTN_TOUCH), the frames' timestamps and absolute
    // axes, nothing else (not EV_SYN, EV_REL, EV_REP, ...).
    for t in 0..=255u8 {
        let bits = bitmap_bits(&r.select(select::EV_BITS, t));
        match u16::from(t) {
            EV_KEY => assert_eq!(bits, [BTN_TOUCH]),
            EV_MSC => assert_eq!(bits, [MSC_TIMESTAMP]),
            EV_ABS => assert_eq!(
                bits,
                [
                    ABS_X,
                    ABS_Y,
                    ABS_MT_SLOT,
                    ABS_MT_POSITION_X,
                    ABS_MT_POSITION_Y,
                    ABS_MT_TRACKING_ID
                ]
            ),
            _ => assert_eq!(bits, [0u16; 0], "event type {t}"),
        }
    }
    // The key bitmap covers BTN_TOUCH's byte exactly (Linux reads `size`
    // bytes).
    assert_eq!(r.select(select::EV_BITS, EV_KEY as u8).len(), 42);
    assert_eq!(r.select(select::EV_BITS, EV_ABS as u8).len(), 8);

    // Axes: the view's size, the slots, 16-bit tracking ids.
    for axis in 0..=255u8 {
        let info = le32s(&r.select(select::ABS_INFO, axis));
        let want: &[i32] = match u16::from(axis) {
            ABS_X | ABS_MT_POSITION_X => &[0, 1279, 0, 0, 0],
            ABS_Y | ABS_MT_POSITION_Y => &[0, 719, 0, 0, 0],
            ABS_MT_SLOT => &[0, 9, 0, 0, 0],
            ABS_MT_TRACKING_ID => &[0, 65535, 0, 0, 0],
            _ => &[],
        };
        assert_eq!(info, want, "axis {axis:#x}");
    }
    assert_eq!(r.dev().abs_info(ABS_Y), Some(AbsInfo::range(0, 719)));
    assert_eq!(r.dev().abs_info(0x10), None);

    // Unknown selections show nothing.
    for sel in (0..=255u8).filter(|s| ![1, 2, 3, 0x10, 0x11, 0x12].contains(s)) {
        assert_eq!(r.select(sel, 0), b"", "select {sel:#x}");
        assert_eq!(r.select(sel, 1), b"", "select {sel:#x}");
    }
}

#[test]
fn config_space_takes_writes_only_to_select_and_subsel() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let name = r.select(select::ID_NAME, 0);
    let mut fx = Effects::default();
    // size, reserved and u: ignored, at any width.
    for offset in 2..0x100 {
        for width in Width::ALL {
            r.t.write(reg::CONFIG + offset, width, u64::MAX, &mut fx);
        }
    }
    assert_eq!(fx, Effects::default());
    assert_eq!((r.cfg8(0), r.cfg8(1)), (select::ID_NAME, 0));
    assert_eq!(r.select(select::ID_NAME, 0), name);
    // A wider write sets both, and nothing else.
    let word = u64::from_le_bytes([select::ABS_INFO, ABS_MT_SLOT as u8, 0xff, 0xff, 0, 0, 0, 0]);
    r.t.write(reg::CONFIG, Width::Word, word, &mut fx);
    assert_eq!(
        r.t.read(reg::CONFIG, Width::Word, &mut fx),
        u64::from_le_bytes([select::ABS_INFO, ABS_MT_SLOT as u8, 20, 0, 0, 0, 0, 0])
    );
    assert_eq!(r.t.read(reg::CONFIG + 8, Width::Double, &mut fx), 9 << 32);
    // A half-word write at offset 1 changes subsel only.
    r.t.write(reg::CONFIG + 1, Width::Half, 0xff00 | 0x35, &mut fx);
    assert_eq!((r.cfg8(0), r.cfg8(1), r.cfg8(2)), (0x12, 0x35, 20));
    assert_eq!(r.t.read(reg::CONFIG + 12, Width::Word, &mut fx), 1279);
    // Past the structure: 0.
    assert_eq!(r.t.read(reg::CONFIG + 136, Width::Double, &mut fx), 0);
    assert_eq!(r.t.read(reg::CONFIG + 132, Width::Double, &mut fx), 0);
}

#[test]
fn sizes_and_slots_are_clamped() {
    for (w, h, slots, want) in [
        (0, 1, 0, [0, 0, 0]),
        (1, 2, 1, [0, 1, 0]),
        (
            u32::MAX,
            1 << 31,
            1000,
            [i32::MAX, i32::MAX, MAX_SLOTS as i32 - 1],
        ),
        (64, 48, MAX_SLOTS, [63, 47, MAX_SLOTS as i32 - 1]),
    ] {
        let dev = VirtioInput::touchscreen(identity(), w, h, slots);
        let max = |axis| dev.abs_info(axis).unwrap().max;
        assert_eq!([max(ABS_MT_POSITION_X), max(ABS_Y), max(ABS_MT_SLOT)], want);
        assert_eq!(max(ABS_X), max(ABS_MT_POSITION_X));
        assert_eq!(max(ABS_MT_POSITION_Y), max(ABS_Y));
    }
    // Every contact (4 events), BTN_TOUCH, ABS_X, ABS_Y, MSC_TIMESTAMP
    // and the SYN_REPORT fit one ring.
    assert_eq!(MAX_SLOTS, 14);
    assert!(MAX_SLOTS as usize * 4 + 5 <= MAX_FRAME_EVENTS);
}

#[test]
fn linux_gets_whole_frames_in_order() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    assert_eq!(r.post(64).irq, None, "no events yet");
    assert_eq!(r.used(), []);

    // A finger lands, moves, a second one lands, both lift.
    let down = [
        contact(0, Some(7), 100, 200),
        vec![
            InputEvent::new(EV_KEY, BTN_TOUCH, 1),
            abs(ABS_X, 100),
            abs(ABS_Y, 200),
        ],
    ]
    .concat();
    let moved = [
        contact(0, None, 110, 210),
        vec![abs(ABS_X, 110), abs(ABS_Y, 210)],
    ]
    .concat();
    let second = contact(1, Some(8), 900, 700);
    let up = vec![
        abs(ABS_MT_SLOT, 0),
        abs(ABS_MT_TRACKING_ID, -1),
        abs(ABS_MT_SLOT, 1),
        abs(ABS_MT_TRACKING_ID, -1),
        InputEvent::new(EV_KEY, BTN_TOUCH, 0),
    ];
    let fx = r.push(&down);
    assert_eq!(fx.irq, Some(true), "used-buffer interrupt");
    assert_eq!(r.frames(), [down]);
    let _ = write32(&mut r.t, reg::INTERRUPT_ACK, 1);
    for f in [&moved, &second, &up] {
        let _ = r.push(f);
    }
    assert_eq!(r.frames(), [moved, second, up]);
    let st = r.dev().stats();
    assert_eq!((st.frames_pushed, st.frames_delivered), (4, 4));
    // 7 + 5 + 4 + 5 events, and 4 SYN_REPORTs.
    assert_eq!(st.events_delivered, 25);
    assert_eq!((r.dev().pending_events(), r.dev().dropped_frames()), (0, 0));
    assert_eq!(r.dev().held_buffers(), 0, "buffers taken only as needed");

    // Linux gives each buffer back once it has read its event: this goes
    // on forever without loss.
    let _ = r.post(st.events_delivered as usize);
    for tag in 0..100 {
        let n = tag as usize % 20;
        let _ = r.push(&tagged(tag, n));
        let got = r.events();
        assert_eq!(split(&got), [tagged(tag, n)]);
        let _ = r.post(got.len());
    }
    assert_eq!(r.dev().delivered_frames(), 104);
    assert_eq!(r.dev().dropped_frames(), 0);
}

#[test]
fn a_frame_waits_until_the_ring_has_room_for_all_of_it() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let a = tagged(1, 4);
    let b = tagged(2, 2);
    let _ = r.post(2);
    let fx = r.push(&a);
    assert_eq!(fx.irq, None, "nothing delivered");
    assert_eq!(r.used(), []);
    assert_eq!((r.dev().pending_events(), r.dev().held_buffers()), (5, 2));
    assert_eq!(r.evt.avail_event(&r.mem), 2, "notification re-armed");
    // B must not overtake A, though it would fit.
    let _ = r.push(&b);
    assert_eq!(r.used(), []);
    assert_eq!(r.dev().pending_frames(), 2);
    let _ = r.post(2);
    assert_eq!(r.used(), [], "4 buffers for a frame of 5");
    let fx = r.post(1);
    assert_eq!(fx.irq, Some(true));
    assert_eq!(r.frames(), [a], "B needs 3 more buffers");
    assert_eq!((r.dev().pending_events(), r.dev().held_buffers()), (3, 0));
    let _ = r.post(3);
    assert_eq!(r.frames(), [b]);
    assert_eq!(r.dev().pending_events(), 0);
    assert_eq!(r.dev().delivered_frames(), 2);
    assert_eq!(r.dev().dropped_frames(), 0);
}

#[test]
fn oldest_frames_are_dropped_whole_when_the_guest_stops_reading() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    // The guest never posts a buffer. 6 events a frame: 42 fit.
    for tag in 0..100 {
        let _ = r.push(&tagged(tag, 5));
        assert!(r.dev().pending_events() <= PENDING_EVENTS);
    }
    assert_eq!(r.dev().pending_frames(), 42);
    assert_eq!(r.dev().pending_events(), 252);
    assert_eq!(r.dev().dropped_frames(), 58);
    assert_eq!(r.dev().stats().frames_overflowed, 58);
    // A long frame makes room for itself: 64 events need 10 frames to go
    // (4 places were free).
    let long = tagged(100, 63);
    let _ = r.push(&long);
    assert_eq!(r.dev().dropped_frames(), 58 + 10);
    assert_eq!(r.dev().pending_events(), 256);
    assert_eq!(r.used(), []);

    // The guest comes back, and reposts each buffer once read: it gets
    // the newest frames, whole, in order.
    let _ = r.post(64);
    let mut got = vec![];
    for _ in 0..10 {
        let events = r.events();
        let n = events.len();
        got.extend(events);
        let _ = r.post(n);
    }
    let got = split(&got);
    let mut want: Vec<_> = (68..100).map(|tag| tagged(tag, 5)).collect();
    want.push(long);
    assert_eq!(got, want);
    assert_eq!(r.dev().pending_events(), 0);
    assert_eq!(r.dev().delivered_frames(), 33);
}

#[test]
fn frames_that_cannot_be_delivered_whole_are_refused() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let _ = r.post(64);
    let longest = tagged(1, MAX_FRAME_EVENTS - 1);
    let _ = r.push(&longest);
    assert_eq!(r.frames(), [longest]);
    let _ = r.post(64);
    let _ = r.push(&tagged(2, MAX_FRAME_EVENTS));
    let mut own_syn = tagged(3, 3);
    own_syn[1] = InputEvent::new(EV_SYN, SYN_REPORT, 1);
    let _ = r.push(&own_syn);
    assert_eq!(r.used(), []);
    assert_eq!(r.dev().stats().frames_refused, 2);
    // Other EV_SYN codes and an empty frame are fine.
    let mt = vec![InputEvent::new(EV_SYN, SYN_MT_REPORT, 0)];
    let _ = r.push(&mt);
    let _ = r.push(&[]);
    assert_eq!(r.frames(), [mt, vec![]]);
    assert_eq!(r.dev().dropped_frames(), 2);
}

#[test]
fn frames_without_a_driver_are_not_kept() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::idle(&mut ram, VirtioInput::touchscreen(identity(), 64, 48, 2));
    let _ = r.push(&tagged(1, 3));
    assert_eq!(r.dev().pending_events(), 0);
    assert!(r.bring_up(LINUX).driver_ok);
    let _ = r.post(64);
    assert_eq!(r.used(), [], "nothing from before DRIVER_OK");
    let _ = r.push(&tagged(2, 3));
    assert_eq!(r.frames(), [tagged(2, 3)]);
    let st = r.dev().stats();
    assert_eq!((st.frames_unready, st.frames_delivered), (1, 1));
}

/// Guest memory that refuses writes to one address (though `check`
/// accepts it), as memory that changed under the device would.
struct Refusing<'a> {
    mem: &'a SliceMemory<'a>,
    at: u64,
}

impl GuestMemory for Refusing<'_> {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.mem.read(gpa, buf)
    }
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        if gpa == self.at {
            return Err(MemoryError {
                gpa,
                len: data.len() as u64,
            });
        }
        self.mem.write(gpa, data)
    }
    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        self.mem.check(gpa, len)
    }
    fn fence(&self, kind: Fence) {
        self.mem.fence(kind)
    }
}

#[test]
fn bad_event_buffers_are_returned_empty_and_never_split_a_frame() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let end = BASE + RAM as u64;
    let (a, b, c, d) = (r.misc(16), r.misc(16), r.misc(16), r.misc(16));
    r.mem.write(a, &[UNSET; 16]).unwrap();
    let bad = [
        r.evt.add(&r.mem, &[(a, 8, false)]),
        r.evt.add(&r.mem, &[(a, 7, true)]),
        r.evt.add(&r.mem, &[(end - 4, 8, true)]),
        r.evt.add(&r.mem, &[(a, 0, true)]),
        r.evt.add(&r.mem, &[(a, 4, true), (end - 2, 8, true)]),
    ];
    // Good ones: after a readable part, split 3 + 5, and (below) through
    // an indirect table in pieces of 1 and 15.
    let good = [
        r.evt.add(&r.mem, &[(d, 4, false), (b, 8, true)]),
        r.evt.add(&r.mem, &[(c, 3, true), (c + 8, 5, true)]),
    ];
    let table = r.misc(32);
    let (e, f) = (r.misc(16), r.misc(16));
    for (i, (gpa, len, flags)) in [(e, 1u32, DESC_F_WRITE | DESC_F_NEXT), (f, 15, DESC_F_WRITE)]
        .into_iter()
        .enumerate()
    {
        let mut desc = [0u8; 16];
        desc[..8].copy_from_slice(&gpa.to_le_bytes());
        desc[8..12].copy_from_slice(&len.to_le_bytes());
        desc[12..14].copy_from_slice(&flags.to_le_bytes());
        desc[14..].copy_from_slice(&1u16.to_le_bytes());
        r.mem.write(table + 16 * i as u64, &desc).unwrap();
    }
    r.evt.desc(&r.mem, 63, table, 32, DESC_F_INDIRECT, 0);
    r.evt.push_head(&r.mem, 63);
    let _ = r.kick(EVENT_QUEUE);
    assert_eq!(r.used(), [], "nothing taken without a frame to deliver");

    let frame = vec![abs(ABS_MT_SLOT, 3), abs(ABS_MT_TRACKING_ID, -1)];
    let _ = r.push(&frame);
    let used = r.used();
    let bad_used: Vec<_> = bad.iter().map(|h| (u32::from(*h), 0)).collect();
    let good_used = [(u32::from(good[0]), 8), (u32::from(good[1]), 8), (63, 8)];
    assert_eq!(used, [bad_used, good_used.to_vec()].concat());
    assert_eq!(r.dev().stats().bad_buffers, 5);
    assert_eq!(r.mem.read_u64(a).unwrap(), u64::from_le_bytes([UNSET; 8]));
    let read = |r: &Rig, pieces: &[(u64, usize)]| {
        let mut v = vec![];
        for &(gpa, n) in pieces {
            let mut p = vec![0u8; n];
            r.mem.read(gpa, &mut p).unwrap();
            v.extend(p);
        }
        InputEvent::from_bytes(v.try_into().unwrap())
    };
    assert_eq!(read(&r, &[(b, 8)]), frame[0]);
    assert_eq!(read(&r, &[(c, 3), (c + 8, 5)]), frame[1]);
    assert_eq!(read(&r, &[(e, 1), (f, 7)]), InputEvent::SYN_REPORT);

    // A buffer whose write fails after all (memory that changed under
    // the device): returned empty ahead of the frame, which goes to the
    // next buffers.
    let heads = r.add_events(4);
    r.evt.publish(&r.mem);
    let refusing = Refusing {
        mem: &r.mem,
        at: Rig::buf(heads[0]),
    };
    let frame = tagged(7, 2);
    let ((), fx) =
        r.t.with_device(&refusing, |dev, ctx| dev.push_frame(&frame, ctx));
    assert_eq!(fx.notify, None);
    let used = r.used();
    let h: Vec<u32> = heads.iter().map(|h| u32::from(*h)).collect();
    assert_eq!(used, [(h[0], 0), (h[1], 8), (h[2], 8), (h[3], 8)]);
    assert_eq!(
        [r.event(heads[1]), r.event(heads[2]), r.event(heads[3])],
        [frame[0], frame[1], InputEvent::SYN_REPORT]
    );
    assert_eq!(r.dev().stats().bad_buffers, 6);
    r.dev().check_invariants().unwrap();
}

#[test]
fn the_statusq_takes_anything() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let led = r.misc(8);
    let out = r.misc(64);
    r.mem
        .write(led, &InputEvent::new(EV_LED, 0, 1).to_bytes())
        .unwrap();
    r.mem.write(out, &[UNSET; 64]).unwrap();
    let heads = [
        r.sts.add(&r.mem, &[(led, 8, false)]),
        r.sts.add(&r.mem, &[(led, 1, false)]),
        r.sts.add(&r.mem, &[(led, 0, false)]),
        r.sts.add(&r.mem, &[(out, 64, true)]),
        r.sts.add(&r.mem, &[(led, 8, false), (out, 8, true)]),
        r.sts.add(&r.mem, &[(BASE + RAM as u64, 4096, false)]),
    ];
    // Descriptors the device would call broken, were it to read them.
    r.sts.desc(&r.mem, 40, led, 8, DESC_F_NEXT, 200);
    r.sts.push_head(&r.mem, 40);
    r.sts
        .desc(&r.mem, 41, led, 8, DESC_F_INDIRECT | DESC_F_NEXT, 0);
    r.sts.push_head(&r.mem, 41);
    let fx = r.kick(STATUS_QUEUE);
    assert_eq!(fx.irq, Some(true));
    let want: Vec<_> = heads
        .iter()
        .map(|h| u32::from(*h))
        .chain([40, 41])
        .map(|h| (h, 0))
        .collect();
    assert_eq!(r.sts.used(&r.mem), want);
    assert_eq!(r.mem.read_u64(out).unwrap(), u64::from_le_bytes([UNSET; 8]));
    assert_eq!(r.dev().stats().status_buffers, 8);
    assert!(!r.needs_reset());
    // The eventq is not disturbed.
    let _ = r.post(8);
    let _ = r.push(&tagged(1, 2));
    assert_eq!(r.frames(), [tagged(1, 2)]);

    // A full ring at a time, over and over.
    for _ in 0..3 {
        for _ in 0..64 {
            let _ = r.sts.add(&r.mem, &[(led, 8, false)]);
        }
        let _ = r.kick(STATUS_QUEUE);
        assert!(r.calls <= 2);
        assert_eq!(r.sts.used(&r.mem).len(), 64);
    }
    // A broken statusq ring needs a reset like any other.
    r.sts.set_avail_idx(&r.mem, 1000);
    let _ = r.notify(STATUS_QUEUE);
    assert!(r.needs_reset());
    assert_eq!(r.dev().stats().broken_rings, 1);
}

#[test]
fn a_broken_eventq_needs_a_reset() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let _ = r.push(&tagged(1, 3));
    assert_eq!(r.dev().pending_frames(), 1);
    // A chain whose `next` leaves the table.
    r.evt
        .desc(&r.mem, 0, Rig::buf(0), 8, DESC_F_WRITE | DESC_F_NEXT, 200);
    r.evt.push_head(&r.mem, 0);
    let fx = r.kick(EVENT_QUEUE);
    assert_eq!(fx.irq, Some(true), "config change interrupt");
    assert!(r.needs_reset());
    assert_eq!(read32(&mut r.t, reg::INTERRUPT_STATUS), 2);
    let st = r.dev().stats();
    assert_eq!((st.broken_rings, st.frames_discarded), (1, 1));
    assert_eq!(r.dev().pending_events(), 0);
    assert!(!r.dev().is_active());
    // Frames meanwhile are not kept.
    let _ = r.push(&tagged(2, 3));
    assert_eq!(r.dev().stats().frames_unready, 1);
    assert_eq!(r.used(), []);
    // The driver resets and binds again.
    let _ = write32(&mut r.t, reg::STATUS, 0);
    r.rebind();
    let _ = r.post(8);
    let _ = r.push(&tagged(3, 3));
    assert_eq!(r.frames(), [tagged(3, 3)]);
    assert_eq!(r.dev().dropped_frames(), 2);
}

#[test]
fn reset_forgets_pending_frames() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    for by_driver in [true, false] {
        let _ = r.post(3);
        let _ = r.push(&tagged(1, 2));
        assert_eq!(r.frames(), [tagged(1, 2)]);
        let _ = r.push(&tagged(2, 5));
        let _ = r.push(&tagged(3, 5));
        let _ = r.select(select::ID_NAME, 0);
        assert_eq!((r.dev().pending_frames(), r.dev().held_buffers()), (2, 0));
        let _ = r.post(2);
        assert_eq!(r.dev().held_buffers(), 2);
        let dropped = r.dev().dropped_frames();
        let fx = if by_driver {
            write32(&mut r.t, reg::STATUS, 0)
        } else {
            r.t.reset()
        };
        assert!(fx.reset);
        assert_eq!(r.dev().pending_events(), 0);
        assert_eq!(r.dev().held_buffers(), 0);
        assert_eq!(r.dev().dropped_frames(), dropped + 2, "counted, and kept");
        assert_eq!(r.dev().stats().frames_discarded, dropped + 2);
        assert_eq!(r.cfg8(0), 0, "selection cleared");
        assert_eq!(r.cfg8(2), 0);
        r.dev().check_invariants().unwrap();
        // Fresh rings: only new frames arrive, in the new buffers.
        r.rebind();
        let _ = r.post(8);
        assert_eq!(r.used(), []);
        let _ = r.push(&tagged(4, 1));
        assert_eq!(r.frames(), [tagged(4, 1)]);
        let _ = write32(&mut r.t, reg::STATUS, 0);
        r.rebind();
    }
}

#[test]
fn work_per_call_is_bounded() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let a = r.misc(8);
    // 40 unusable buffers, then 24 good ones: the whole ring.
    for _ in 0..40 {
        let _ = r.evt.add(&r.mem, &[(a, 8, false)]);
    }
    r.add_events(24);
    r.evt.publish(&r.mem);
    let frame = tagged(1, 30);
    let ((), fx) =
        r.t.with_device(&r.mem, |dev, ctx| dev.push_frame(&frame, ctx));
    assert_eq!(fx.notify, Some(EVENT_QUEUE), "budget spent: call again");
    assert_eq!(r.used().len(), 40);
    assert_eq!(r.dev().held_buffers(), 24);
    // The call again finds the ring empty and waits.
    let fx = r.t.notify_queue(EVENT_QUEUE, &r.mem);
    assert_eq!(fx.notify, None);
    assert_eq!(r.dev().held_buffers(), 24);
    // The driver reposts; 7 more complete the frame.
    let _ = r.post(7);
    assert_eq!(r.frames(), [frame]);
    assert_eq!(r.dev().held_buffers(), 0);
}
