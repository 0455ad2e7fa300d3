//! Every [`RegisterFile`] implementation held to the contract in
//! `shared_devices::mmio`: any offset (also far past the window), any
//! width and any alignment; reads fit in the width; writes of anything
//! never panic; a reset brings back what construction gave.
//!
//! The checks are one generic function, run over each model; the
//! `catches_*` tests run it over deliberately broken models, so that the
//! checks themselves are known to fail when they should.

use shared_devices::mmio::{RegisterFile, Width};
use shared_devices::pl011::Pl011;
use shared_devices::sp805::{Expiry, Sp805};
use shared_devices::virtio::blk::{DiskConfig, VirtioBlk};
use shared_devices::virtio::device::feature;
use shared_devices::virtio::gpu::VirtioGpu;
use shared_devices::virtio::input::protocol::{ABS_MT_SLOT, BUS_VIRTUAL, EV_ABS};
use shared_devices::virtio::input::{Identity, InputEvent, VirtioInput};
use shared_devices::virtio::memory::SliceMemory;
use shared_devices::virtio::mmio::{MmioTransport, reg, status};

/// Offsets far from any window, where address arithmetic overflows.
const FAR: [u64; 10] = [
    0x1_0000,
    (1 << 32) - 4,
    1 << 32,
    1 << 40,
    1 << 63,
    u64::MAX - 8,
    u64::MAX - 7,
    u64::MAX - 3,
    u64::MAX - 1,
    u64::MAX,
];

/// Every offset of the 4 KiB window and a little beyond it, byte by byte,
/// then the far ones.
fn offsets() -> impl Iterator<Item = u64> {
    (0..0x1010).chain(FAR)
}

/// xorshift64: random values without a dependency, the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A model and what the generic checks need to know about it.
struct Subject<R> {
    name: &'static str,
    make: fn() -> R,
    /// Gets it out of its reset state through its own (non-register)
    /// interface: input waiting, a counter running, a device live.
    stir: fn(&mut R),
    /// Called every few hundred writes (the passage of time, say).
    tick: fn(&mut R),
    reset: fn(&mut R),
    /// Values worth writing besides 0, all-ones and random ones (keys).
    special: &'static [u64],
}

fn read<R: RegisterFile>(m: &mut R, offset: u64, width: Width) -> u64 {
    m.read(offset, width, &mut R::Effects::default())
}

fn check_read<R: RegisterFile>(name: &str, m: &mut R, offset: u64, width: Width) -> u64 {
    let v = read(m, offset, width);
    assert!(
        v & !width.mask() == 0,
        "{name}: a {width:?} read at {offset:#x} returned {v:#x}, which does not fit"
    );
    v
}

/// Every read, in a fixed order: what the model shows a guest.
fn snapshot<R: RegisterFile>(name: &str, m: &mut R) -> Vec<(Width, u64, u64)> {
    let mut out = Vec::new();
    for width in Width::ALL {
        for offset in offsets() {
            out.push((width, offset, check_read(name, m, offset, width)));
        }
    }
    out
}

fn conformance<R: RegisterFile>(s: &Subject<R>) {
    let name = s.name;
    // Reads of a fresh model fit (and do not panic): the reset state.
    let fresh = snapshot(name, &mut (s.make)());

    // Writes of everything everywhere, each followed by a read there.
    let mut m = (s.make)();
    (s.stir)(&mut m);
    let _ = snapshot(name, &mut m);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut writes = 0u32;
    for width in Width::ALL {
        for offset in offsets() {
            let values = [0, u64::MAX, width.mask(), rng.next(), rng.next()];
            for &value in values.iter().chain(s.special) {
                let mut fx = R::Effects::default();
                m.write(offset, width, value, &mut fx);
                check_read(name, &mut m, offset, width);
                writes += 1;
                if writes.is_multiple_of(300) {
                    (s.tick)(&mut m);
                }
            }
        }
    }
    // Whatever state that left, reads still fit.
    let _ = snapshot(name, &mut m);

    // A reset brings back the reset state, register by register.
    (s.reset)(&mut m);
    let after = snapshot(name, &mut m);
    for (want, got) in fresh.iter().zip(&after) {
        assert_eq!(
            want, got,
            "{name}: after reset, (width, offset, value) differs from after construction"
        );
    }
}

#[test]
fn pl011() {
    conformance(&Subject {
        name: "pl011",
        make: Pl011::new,
        stir: |u| {
            for &b in b"typed\n" {
                u.receive(b);
            }
            u.set_tx_full(true);
        },
        tick: |u| {
            u.receive(b'x');
            u.set_tx_full(false);
        },
        reset: Pl011::reset,
        special: &[b'\n' as u64],
    });
}

const SP805_UNLOCK: u64 = 0x1acc_e551;

#[test]
fn sp805() {
    conformance(&Subject {
        name: "sp805",
        make: Sp805::new,
        stir: |w| {
            w.set_now(1000);
            let mut fx = Default::default();
            w.write(0xc00, Width::Word, SP805_UNLOCK, &mut fx);
            w.write(0x000, Width::Word, 100, &mut fx);
            w.write(0x008, Width::Word, 1, &mut fx);
            assert_eq!(w.poll(1101), Expiry::Interrupt);
        },
        tick: |w| {
            let now = w.next_deadline().unwrap_or(0);
            w.set_now(now);
            while w.poll(now) != Expiry::Nothing {}
        },
        reset: Sp805::reset,
        special: &[SP805_UNLOCK, 1, 3],
    });
}

const BASE: u64 = 0x4000_0000;

fn blk() -> MmioTransport<VirtioBlk> {
    let mut cfg = DiskConfig::new(16, 64);
    cfg.discard = true;
    cfg.write_zeroes = true;
    cfg.max_discard_sectors = 8;
    cfg.max_write_zeroes_sectors = 8;
    MmioTransport::new(VirtioBlk::new(cfg, 256).unwrap())
}

#[test]
fn virtio_blk() {
    conformance(&Subject {
        name: "virtio-mmio blk",
        make: blk,
        stir: |t| {
            let mut fx = Default::default();
            let mut w = |offset, v: u64| t.write(offset, Width::Word, v, &mut fx);
            let s = u64::from(status::ACKNOWLEDGE | status::DRIVER);
            w(reg::STATUS, s);
            w(reg::DRIVER_FEATURES_SEL, 1);
            w(reg::DRIVER_FEATURES, feature::VERSION_1 >> 32);
            w(reg::STATUS, s | u64::from(status::FEATURES_OK));
            w(reg::QUEUE_SEL, 0);
            w(reg::QUEUE_NUM, 16);
            w(reg::QUEUE_DESC_LOW, BASE + 0x1000);
            w(reg::QUEUE_DRIVER_LOW, BASE + 0x2000);
            w(reg::QUEUE_DEVICE_LOW, BASE + 0x3000);
            w(reg::QUEUE_READY, 1);
            w(
                reg::STATUS,
                s | u64::from(status::FEATURES_OK | status::DRIVER_OK),
            );
            assert_eq!(
                read(t, reg::STATUS, Width::Word),
                s | u64::from(status::FEATURES_OK | status::DRIVER_OK)
            );
            assert_eq!(read(t, reg::QUEUE_READY, Width::Word), 1);
        },
        tick: |_| {},
        reset: |t| {
            let _ = t.reset();
        },
        special: &[1, 4, 0xf],
    });
}

fn gpu() -> MmioTransport<VirtioGpu<Vec<u8>>> {
    MmioTransport::new(VirtioGpu::new(
        &[(640, 480), (320, 240)],
        8,
        vec![0u8; 1 << 16],
    ))
}

#[test]
fn virtio_gpu() {
    conformance(&Subject {
        name: "virtio-mmio gpu",
        make: gpu,
        stir: |t| {
            let mut fx = Default::default();
            let mut w = |offset, v: u64| t.write(offset, Width::Word, v, &mut fx);
            let s = u64::from(status::ACKNOWLEDGE | status::DRIVER);
            w(reg::STATUS, s);
            w(reg::DRIVER_FEATURES_SEL, 0);
            w(reg::DRIVER_FEATURES, 1 << 1);
            w(reg::DRIVER_FEATURES_SEL, 1);
            w(reg::DRIVER_FEATURES, feature::VERSION_1 >> 32);
            w(reg::STATUS, s | u64::from(status::FEATURES_OK));
            for q in 0..2 {
                let base = BASE + 0x4000 * q;
                w(reg::QUEUE_SEL, q);
                w(reg::QUEUE_NUM, 16);
                w(reg::QUEUE_DESC_LOW, base + 0x1000);
                w(reg::QUEUE_DRIVER_LOW, base + 0x2000);
                w(reg::QUEUE_DEVICE_LOW, base + 0x3000);
                w(reg::QUEUE_READY, 1);
            }
            w(
                reg::STATUS,
                s | u64::from(status::FEATURES_OK | status::DRIVER_OK),
            );
            assert_eq!(
                read(t, reg::STATUS, Width::Word),
                s | u64::from(status::FEATURES_OK | status::DRIVER_OK)
            );
            assert_eq!(read(t, reg::QUEUE_READY, Width::Word), 1);
        },
        tick: |_| {},
        reset: |t| {
            let _ = t.reset();
        },
        special: &[1, 2, 4, 0xf],
    });
}

fn input() -> MmioTransport<VirtioInput> {
    let identity = Identity {
        name: "touchscreen",
        serial: heapless::String::new(),
        bustype: BUS_VIRTUAL,
        vendor: 1,
        product: 2,
        version: 3,
    };
    MmioTransport::new(VirtioInput::touchscreen(identity, 1280, 720, 10))
}

#[test]
fn virtio_input() {
    conformance(&Subject {
        name: "virtio-mmio input",
        make: input,
        stir: |t| {
            let mut fx = Default::default();
            let mut w = |offset, v: u64| t.write(offset, Width::Word, v, &mut fx);
            let s = u64::from(status::ACKNOWLEDGE | status::DRIVER);
            w(reg::STATUS, s);
            w(reg::DRIVER_FEATURES_SEL, 1);
            w(reg::DRIVER_FEATURES, feature::VERSION_1 >> 32);
            w(reg::STATUS, s | u64::from(status::FEATURES_OK));
            for q in 0..2 {
                let base = BASE + 0x4000 * q;
                w(reg::QUEUE_SEL, q);
                w(reg::QUEUE_NUM, 16);
                w(reg::QUEUE_DESC_LOW, base + 0x1000);
                w(reg::QUEUE_DRIVER_LOW, base + 0x2000);
                w(reg::QUEUE_DEVICE_LOW, base + 0x3000);
                w(reg::QUEUE_READY, 1);
            }
            w(
                reg::STATUS,
                s | u64::from(status::FEATURES_OK | status::DRIVER_OK),
            );
            // Something selected, and a frame waiting for buffers.
            w(reg::CONFIG, 0x12 | u64::from(ABS_MT_SLOT) << 8);
            assert_eq!(read(t, reg::CONFIG + 2, Width::Byte), 20);
            let mut ram = vec![0u8; 0x10000];
            let mem = SliceMemory::new(BASE, &mut ram);
            let frame = [InputEvent::new(EV_ABS, ABS_MT_SLOT, 1)];
            let ((), _) = t.with_device(&mem, |dev, ctx| dev.push_frame(&frame, ctx));
            assert_eq!(t.device().pending_events(), 2);
        },
        tick: |_| {},
        reset: |t| {
            let _ = t.reset();
        },
        special: &[1, 2, 3, 4, 0xf, 0x10, 0x11, 0x12, 0x2f],
    });
}

// The checks catch what they are meant to catch.

/// Returns a 32-bit register whole whatever the width.
struct TooWide;

impl RegisterFile for TooWide {
    type Effects = ();
    fn read(&mut self, offset: u64, _: Width, _: &mut ()) -> u64 {
        if offset == 0x10 { 0xdead_beef } else { 0 }
    }
    fn write(&mut self, _: u64, _: Width, _: u64, _: &mut ()) {}
}

#[test]
#[should_panic(expected = "does not fit")]
fn catches_reads_wider_than_the_access() {
    conformance(&Subject {
        name: "too wide",
        make: || TooWide,
        stir: |_| {},
        tick: |_| {},
        reset: |_| {},
        special: &[],
    });
}

/// A scratch register its reset forgets to clear.
#[derive(Default)]
struct Sticky {
    scratch: u32,
}

impl RegisterFile for Sticky {
    type Effects = ();
    fn read(&mut self, offset: u64, width: Width, _: &mut ()) -> u64 {
        match (offset, width) {
            (0x8, Width::Word) => u64::from(self.scratch),
            _ => 0,
        }
    }
    fn write(&mut self, offset: u64, width: Width, value: u64, _: &mut ()) {
        if (offset, width) == (0x8, Width::Word) {
            self.scratch = value as u32;
        }
    }
}

#[test]
#[should_panic(expected = "after reset")]
fn catches_state_a_reset_leaves_behind() {
    conformance(&Subject {
        name: "sticky",
        make: Sticky::default,
        stir: |_| {},
        tick: |_| {},
        reset: |_| {},
        special: &[],
    });
}

/// Indexes its registers by offset without a bounds check.
struct Unchecked {
    regs: [u32; 1024],
}

impl RegisterFile for Unchecked {
    type Effects = ();
    fn read(&mut self, offset: u64, _: Width, _: &mut ()) -> u64 {
        u64::from(self.regs[(offset / 4) as usize] & 0xff)
    }
    fn write(&mut self, _: u64, _: Width, _: u64, _: &mut ()) {}
}

#[test]
#[should_panic(expected = "out of bounds")]
fn catches_a_panic_past_the_window() {
    conformance(&Subject {
        name: "unchecked",
        make: || Unchecked { regs: [0; 1024] },
        stir: |_| {},
        tick: |_| {},
        reset: |_| {},
        special: &[],
    });
}
