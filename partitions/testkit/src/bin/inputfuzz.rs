//! `inputfuzz`: a hostile virtio-input driver. It finds its touchscreen,
//! then abuses configuration space, the transport's registers, the status
//! queue and the event queue, one case at a time, and reports what the
//! device answered to each. Every case that needs a working device starts
//! from a device reset and a bring-up of its own, so a device left
//! needing a reset by one case does not change the next.
//!
//! It has its own raw driver (rings, descriptors and register accesses of
//! every width), since the runtime's driver only knows how to behave.
//! Addresses "outside RAM" are guest-physical addresses that are not the
//! partition's RAM (0x0, 0x1_0000_0000, and 0x4800_0000, which is where
//! another partition's RAM lies in host memory: a guest cannot name host
//! memory, only its own guest-physical space).
//!
//! The event queue's cases need input. Each prints a line saying it waits
//! and the scenario sends touches then. Most wait for exactly one frame (a
//! finger going down, or up) with one good buffer posted first, so that
//! the frame waits in the device holding that buffer (seen through
//! EVENT_IDX: the device writes `avail_event` 1 once it took the buffer
//! and waits for more); the hostile buffer is then posted and notified,
//! and the device meets it while the driver's notification is handled.
//! The last two post the hostile ring before the frame comes, so the
//! device meets it while the frame is delivered (on the panel's core).
//!
//! ```text
//! inputfuzz: device at 0x<base>
//! inputfuzz: <case> -> <answer>
//! inputfuzz: <case>: waiting for a frame | for tap <n> | for a tap
//! inputfuzz: re-init -> error <e>            (a bring-up that failed)
//! inputfuzz: done
//! inputfuzz: flooding: <n> rounds          (every 1000 rounds)
//! ```
//!
//! After `done` it floods the device: both rings refilled with junk as
//! fast as the device returns it, both queues notified, round after
//! round (the status queue's chains come back at once; the event queue's
//! chains of 64 device-readable buffers are only walked, and returned
//! empty, while a frame of its waits).
//!
//! Queue answers: `used, 0 bytes` (or `<n> used, 0 bytes each`), `used,
//! <n> bytes`, `needs-reset` (DEVICE_NEEDS_RESET), `not used`; event queue
//! cases that were answered with an empty buffer go on to show that the
//! waiting frame then arrives whole in good buffers.

#![no_std]
#![no_main]

use core::arch::asm;
use core::fmt::{self, Write};
use core::ptr::{read_volatile, write_volatile};
use testkit::println;
use testkit::rt::cache::{barrier, dcache_clean_invalidate};
use testkit::rt::{park, platform, timer, virtio_input};
use testkit::virtio::{MAGIC, VERSION_2, reg, status};

testkit::entry!("inputfuzz", main);

/// Entries of each of our rings (the device's QueueNumMax).
const QN: usize = 64;
const Q: u32 = QN as u32;
const EVENTQ: u32 = 0;
const STATUSQ: u32 = 1;
const PAGE: usize = 4096;
/// Ring parts inside a ring's page.
const DESC_AT: usize = 0;
const AVAIL_AT: usize = 1024;
const USED_AT: usize = 2048;
/// Pages of the DMA area: the two rings, the event buffers, junk.
const EVENT_BUFFERS_PAGE: usize = 2;
const JUNK_PAGE: usize = 3;
const DMA_BYTES: usize = 4 * PAGE;

/// Feature bits.
const VERSION_1: u64 = 1 << 32;
const EVENT_IDX: u64 = 1 << 29;
const INDIRECT_DESC: u64 = 1 << 28;

/// Descriptor flags.
const NEXT: u16 = 1;
const WRITE: u16 = 2;
const INDIRECT: u16 = 4;

/// Guest-physical addresses that are not this partition's RAM.
const OUTSIDE_RAM: u64 = 0x1_0000_0000;
/// Where the other partition's RAM is in host memory; not ours.
const CLUSTER_HOST_RAM: u64 = 0x4800_0000;

/// The descriptor the hostile buffers use; good ones use 0..HOSTILE.
const HOSTILE: u16 = 63;

/// Configuration space bytes (select, subsel, size, reserved, union).
const CFG_BYTES: usize = 136;
const CFG_SIZE: usize = reg::CONFIG + 2;

/// Event codes.
const EV_SYN: u16 = 0;
const EV_KEY: u16 = 1;
const EV_ABS: u16 = 3;
const EV_MSC: u16 = 4;
/// `EV_MSC` code of each frame's time (the hypervisor stamps every frame).
const MSC_TIMESTAMP: u16 = 5;
const EV_LED: u16 = 0x11;
const BTN_TOUCH: u16 = 0x14a;
const ABS_X: u16 = 0x00;
const ABS_Y: u16 = 0x01;
const ABS_MT_SLOT: u16 = 0x2f;
const ABS_MT_POSITION_X: u16 = 0x35;
const ABS_MT_POSITION_Y: u16 = 0x36;
const ABS_MT_TRACKING_ID: u16 = 0x39;

/// How long a case waits for the scenario's touches.
const INPUT_WAIT_MS: u64 = 20_000;
/// Taps asked for while no buffers are posted: more than the device's
/// pending store holds (21 taps of 12 events).
const NO_BUFFER_TAPS: u32 = 25;

#[repr(C, align(4096))]
struct Dma([u8; DMA_BYTES]);

static mut DMA: Dma = Dma([0; DMA_BYTES]);

/// Access widths of the register window.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Width {
    Byte,
    Half,
    Word,
    Double,
}

impl Width {
    const ALL: [Width; 4] = [Width::Byte, Width::Half, Width::Word, Width::Double];

    fn bytes(self) -> usize {
        match self {
            Width::Byte => 1,
            Width::Half => 2,
            Width::Word => 4,
            Width::Double => 8,
        }
    }

    fn mask(self) -> u64 {
        match self {
            Width::Double => u64::MAX,
            w => (1u64 << (8 * w.bytes())) - 1,
        }
    }
}

/// One queue's layout as the driver gives it to the device.
#[derive(Clone, Copy)]
struct Layout {
    num: u32,
    desc: u64,
    avail: u64,
    used: u64,
}

/// One event as it travels in a buffer.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Event {
    kind: u16,
    code: u16,
    value: u32,
}

/// What the device did with what a case queued.
enum Answer {
    /// `n` chains came back used, the largest with `bytes` written.
    Used {
        n: u32,
        bytes: u32,
    },
    NeedsReset,
    NotUsed,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Answer::Used { n: 1, bytes } => write!(f, "used, {} bytes", bytes),
            Answer::Used { n, bytes: 0 } => write!(f, "{} used, 0 bytes each", n),
            Answer::Used { n, bytes } => write!(f, "{} used, up to {} bytes", n, bytes),
            Answer::NeedsReset => f.write_str("needs-reset"),
            Answer::NotUsed => f.write_str("not used"),
        }
    }
}

/// A short line assembled piece by piece.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; 256],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn answer(case: &str, what: impl fmt::Display) {
    println!("inputfuzz: {} -> {}", case, what);
}

/// Guest RAM accessors (the MMU is off: every access is its own).
fn put16(addr: usize, v: u16) {
    // SAFETY: an aligned address in the DMA area.
    unsafe { write_volatile(addr as *mut u16, v) }
}

fn put32(addr: usize, v: u32) {
    // SAFETY: as for `put16`.
    unsafe { write_volatile(addr as *mut u32, v) }
}

fn put64(addr: usize, v: u64) {
    // SAFETY: as for `put16`.
    unsafe { write_volatile(addr as *mut u64, v) }
}

fn get16(addr: usize) -> u16 {
    // SAFETY: as for `put16`.
    unsafe { read_volatile(addr as *const u16) }
}

fn get32(addr: usize) -> u32 {
    // SAFETY: as for `put16`.
    unsafe { read_volatile(addr as *const u32) }
}

/// Polls `done` for up to `ms` milliseconds.
fn wait(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = timer::counter() + timer::ms_to_ticks(ms);
    loop {
        if done() {
            return true;
        }
        if timer::counter() > deadline {
            return false;
        }
        timer::sleep_ms(1);
    }
}

/// The raw driver: the register window and the DMA area.
struct Dev {
    base: usize,
    dma: usize,
    rings: [Layout; 2],
    /// Next available index to publish, per queue.
    avail: [u16; 2],
    /// Next used index to read, per queue.
    used: [u16; 2],
}

impl Dev {
    fn read(&self, offset: usize, width: Width) -> u64 {
        let a = self.base + offset;
        let v: u64;
        // SAFETY: one plain load from the device's register window (a
        // valid syndrome for the hypervisor); naturally aligned.
        unsafe {
            match width {
                Width::Byte => {
                    asm!("ldrb {v:w}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack, preserves_flags))
                }
                Width::Half => {
                    asm!("ldrh {v:w}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack, preserves_flags))
                }
                Width::Word => {
                    asm!("ldr {v:w}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack, preserves_flags))
                }
                Width::Double => {
                    asm!("ldr {v}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack, preserves_flags))
                }
            }
        }
        v
    }

    fn write(&self, offset: usize, width: Width, v: u64) {
        let a = self.base + offset;
        // SAFETY: one plain store to the device's register window.
        unsafe {
            match width {
                Width::Byte => {
                    asm!("strb {v:w}, [{a}]", a = in(reg) a, v = in(reg) v, options(nostack, preserves_flags))
                }
                Width::Half => {
                    asm!("strh {v:w}, [{a}]", a = in(reg) a, v = in(reg) v, options(nostack, preserves_flags))
                }
                Width::Word => {
                    asm!("str {v:w}, [{a}]", a = in(reg) a, v = in(reg) v, options(nostack, preserves_flags))
                }
                Width::Double => {
                    asm!("str {v}, [{a}]", a = in(reg) a, v = in(reg) v, options(nostack, preserves_flags))
                }
            }
        }
    }

    fn r32(&self, offset: usize) -> u32 {
        self.read(offset, Width::Word) as u32
    }

    fn w32(&self, offset: usize, v: u32) {
        self.write(offset, Width::Word, u64::from(v));
    }

    fn status(&self) -> u32 {
        self.r32(reg::STATUS)
    }

    fn needs_reset(&self) -> bool {
        self.status() & status::DEVICE_NEEDS_RESET != 0
    }

    /// Acknowledges whatever interrupt is pending (we poll).
    fn ack(&self) {
        let pending = self.r32(reg::INTERRUPT_STATUS);
        if pending != 0 {
            self.w32(reg::INTERRUPT_ACK, pending);
        }
    }

    fn reset(&self) -> Result<(), &'static str> {
        self.w32(reg::STATUS, 0);
        if wait(100, || self.status() == 0) {
            Ok(())
        } else {
            Err("status does not clear")
        }
    }

    /// Our own rings: queue `q` in DMA page `q`.
    fn ring(&self, q: u32) -> Layout {
        let r = (self.dma + q as usize * PAGE) as u64;
        Layout {
            num: Q,
            desc: r + DESC_AT as u64,
            avail: r + AVAIL_AT as u64,
            used: r + USED_AT as u64,
        }
    }

    fn default_rings(&self) -> [Layout; 2] {
        [self.ring(EVENTQ), self.ring(STATUSQ)]
    }

    fn in_dma(&self, addr: u64) -> bool {
        addr >= self.dma as u64 && addr < (self.dma + DMA_BYTES) as u64
    }

    fn sync(&self) {
        dcache_clean_invalidate(self.dma, DMA_BYTES);
    }

    /// Reset, then ACKNOWLEDGE | DRIVER and `features`.
    fn negotiate(&self, features: u64) -> Result<(), &'static str> {
        self.reset()?;
        self.w32(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        self.w32(reg::DRIVER_FEATURES_SEL, 0);
        self.w32(reg::DRIVER_FEATURES, features as u32);
        self.w32(reg::DRIVER_FEATURES_SEL, 1);
        self.w32(reg::DRIVER_FEATURES, (features >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.w32(reg::STATUS, s);
        if self.status() & status::FEATURES_OK == 0 {
            return Err("features refused");
        }
        Ok(())
    }

    /// Writes queue `q`'s layout and sets QueueReady; whether it took.
    fn setup_queue(&self, q: u32, l: Layout) -> bool {
        self.w32(reg::QUEUE_SEL, q);
        self.w32(reg::QUEUE_NUM, l.num);
        for (low, value) in [
            (reg::QUEUE_DESC_LOW, l.desc),
            (reg::QUEUE_DRIVER_LOW, l.avail),
            (reg::QUEUE_DEVICE_LOW, l.used),
        ] {
            self.w32(low, value as u32);
            self.w32(low + 4, (value >> 32) as u32);
        }
        self.w32(reg::QUEUE_READY, 1);
        self.r32(reg::QUEUE_READY) == 1
    }

    /// A whole bring-up with both queues as `rings` lays them out.
    fn up(&mut self, features: u64, rings: [Layout; 2]) -> Result<(), &'static str> {
        self.negotiate(features)?;
        // SAFETY: the driver's own rings and event buffers (not the junk
        // page); the device is reset.
        unsafe { core::ptr::write_bytes(self.dma as *mut u8, 0, JUNK_PAGE * PAGE) };
        self.sync();
        for (q, l) in rings.iter().enumerate() {
            if !self.setup_queue(q as u32, *l) {
                return Err("queue not ready");
            }
        }
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.w32(reg::STATUS, s | status::DRIVER_OK);
        if self.status() != s | status::DRIVER_OK {
            return Err("DRIVER_OK refused");
        }
        self.rings = rings;
        self.avail = [0; 2];
        self.used = [0; 2];
        Ok(())
    }

    /// `up`, reporting a failure.
    fn fresh(&mut self, features: u64, rings: [Layout; 2]) -> bool {
        match self.up(features, rings) {
            Ok(()) => true,
            Err(e) => {
                println!("inputfuzz: re-init -> error {}", e);
                false
            }
        }
    }

    fn event_buffer(&self, i: u16) -> u64 {
        (self.dma + EVENT_BUFFERS_PAGE * PAGE + 8 * usize::from(i)) as u64
    }

    fn junk(&self) -> u64 {
        (self.dma + JUNK_PAGE * PAGE) as u64
    }

    /// Descriptor `i` of queue `q` (whose table is ours).
    fn desc(&self, q: u32, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = self.rings[q as usize].desc as usize + 16 * usize::from(i % Q as u16);
        put64(d, addr);
        put32(d + 8, len);
        put16(d + 12, flags);
        put16(d + 14, next);
    }

    /// Good event buffer `i` (descriptor `i`, 8 device-writable bytes).
    fn good(&self, i: u16) {
        self.desc(EVENTQ, i, self.event_buffer(i), 8, WRITE, 0);
    }

    fn notify(&self, q: u32) {
        self.sync();
        self.w32(reg::QUEUE_NOTIFY, q);
    }

    /// Makes `heads` available on queue `q` and notifies.
    fn offer(&mut self, q: u32, heads: &[u16]) {
        let avail = self.rings[q as usize].avail as usize;
        for &h in heads {
            let slot = usize::from(self.avail[q as usize]) % QN;
            put16(avail + 4 + 2 * slot, h);
            self.avail[q as usize] = self.avail[q as usize].wrapping_add(1);
        }
        barrier();
        put16(avail + 2, self.avail[q as usize]);
        self.notify(q);
    }

    /// Writes the available index `idx` as it is, and notifies.
    fn publish_index(&mut self, q: u32, idx: u16) {
        put16(self.rings[q as usize].avail as usize + 2, idx);
        self.notify(q);
    }

    fn used_readable(&self, q: u32) -> bool {
        self.in_dma(self.rings[q as usize].used)
    }

    /// The device's used index (0 if our used ring is not in our RAM).
    fn used_idx(&self, q: u32) -> u16 {
        if !self.used_readable(q) {
            return 0;
        }
        self.sync();
        get16(self.rings[q as usize].used as usize + 2)
    }

    /// Writes `avail_event` of queue `q` (ours to read; the device writes
    /// it when it waits for buffers).
    fn set_avail_event(&self, q: u32, v: u16) {
        self.sync();
        put16(self.rings[q as usize].used as usize + 4 + 8 * QN, v);
        self.sync();
    }

    /// What the device last wrote as `avail_event` (EVENT_IDX).
    fn avail_event(&self, q: u32) -> u16 {
        if !self.used_readable(q) {
            return 0;
        }
        self.sync();
        get16(self.rings[q as usize].used as usize + 4 + 8 * QN)
    }

    /// The next used element (id, len), if any.
    fn next_used(&mut self, q: u32) -> Option<(u32, u32)> {
        if self.used_idx(q) == self.used[q as usize] {
            return None;
        }
        let slot = usize::from(self.used[q as usize]) % QN;
        let e = self.rings[q as usize].used as usize + 4 + 8 * slot;
        self.used[q as usize] = self.used[q as usize].wrapping_add(1);
        Some((get32(e), get32(e + 4)))
    }

    fn event(&self, i: u32) -> Event {
        let b = self.event_buffer((i % Q) as u16) as usize;
        Event {
            kind: get16(b),
            code: get16(b + 2),
            value: get32(b + 4),
        }
    }

    /// Waits up to `ms` for the device to answer on queue `q`: needs reset,
    /// or at least `n` chains used.
    fn outcome(&mut self, q: u32, n: u32, ms: u64) -> Answer {
        let start = self.used[q as usize];
        wait(ms, || {
            self.needs_reset() || u32::from(self.used_idx(q).wrapping_sub(start)) >= n
        });
        self.ack();
        if self.needs_reset() {
            return Answer::NeedsReset;
        }
        let mut used = 0;
        let mut bytes = 0;
        while let Some((_, len)) = self.next_used(q) {
            used += 1;
            bytes = bytes.max(len);
        }
        if used == 0 {
            Answer::NotUsed
        } else {
            Answer::Used { n: used, bytes }
        }
    }

    /// Selects `select`/`subsel` (one 16-bit write) and reads `size`.
    fn select(&self, select: u8, subsel: u8) -> u8 {
        self.write(
            reg::CONFIG,
            Width::Half,
            u64::from(select) | u64::from(subsel) << 8,
        );
        self.read(CFG_SIZE, Width::Byte) as u8
    }

    /// The configuration structure as 32-bit reads show it.
    fn config_image(&self) -> [u8; CFG_BYTES] {
        let mut c = [0u8; CFG_BYTES];
        for (i, chunk) in c.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&self.r32(reg::CONFIG + 4 * i).to_le_bytes());
        }
        c
    }
}

fn main() -> ! {
    let Some(node) = virtio_input::find() else {
        println!("inputfuzz: no virtio-input device");
        park()
    };
    // Only the address is taken; the area is used through it alone.
    let dma = (&raw mut DMA).cast::<u8>() as usize;
    let mut dev = Dev {
        base: node.base,
        dma,
        rings: [Layout {
            num: 0,
            desc: 0,
            avail: 0,
            used: 0,
        }; 2],
        avail: [0; 2],
        used: [0; 2],
    };
    dev.rings = dev.default_rings();
    println!("inputfuzz: device at 0x{:x}", node.base);

    config_cases(&dev);
    register_cases(&mut dev);
    status_queue_cases(&mut dev);
    no_buffers(&mut dev);
    event_queue_cases(&mut dev);
    after_reset(&mut dev);
    println!("inputfuzz: done");
    flood(&mut dev)
}

/// Configuration space: every selection, the union past `size`, and
/// writes where the driver may not write.
fn config_cases(dev: &Dev) {
    let _ = dev.reset();
    // Every select with every subsel: only `size` is read.
    let mut sized = 0u32;
    let mut oversized = 0u32;
    for select in 0..=255u8 {
        for subsel in 0..=255u8 {
            let size = dev.select(select, subsel);
            if size > 0 {
                sized += 1;
            }
            if usize::from(size) > CFG_BYTES - 8 {
                oversized += 1;
            }
        }
    }
    answer(
        "config-sweep",
        format_args!(
            "65536 selections, {} with size > 0, {} above 128",
            sized, oversized
        ),
    );

    // Every select with a few subsels: the whole structure, each one.
    const SUBSELS: [u8; 10] = [0, 1, 2, 3, 0x2f, 0x35, 0x36, 0x39, 0x4a, 0xff];
    let mut list = Line::new();
    let mut bad = 0u32;
    let mut checked = 0u32;
    for select in 0..=255u8 {
        for subsel in SUBSELS {
            let size = dev.select(select, subsel);
            let c = dev.config_image();
            checked += 1;
            let tail_clear = c[8 + usize::from(size).min(128)..].iter().all(|&b| b == 0);
            if c[0] != select || c[1] != subsel || c[2] != size || c[3..8] != [0; 5] || !tail_clear
            {
                bad += 1;
            }
            if size > 0 {
                let _ = write!(list, " {:02x}/{:02x}:{}", select, subsel, size);
            }
        }
    }
    answer(
        "config-selections",
        format_args!("{} checked, {} bad; sized:{}", checked, bad, list.as_str()),
    );

    let size = dev.select(1, 0);
    let c = dev.config_image();
    let name = core::str::from_utf8(&c[8..8 + usize::from(size).min(128)]).unwrap_or("?");
    answer("config-name", format_args!("\"{}\"", name));

    // Writes to `size`, the reserved bytes and the union, of every width,
    // some of them also (re)writing select and subsel with their values.
    let size = dev.select(0x12, 0x35);
    let before = dev.config_image();
    let generation = dev.r32(reg::CONFIG_GENERATION);
    dev.write(CFG_SIZE, Width::Byte, 0x55);
    dev.write(CFG_SIZE, Width::Half, 0xaaaa);
    dev.write(reg::CONFIG + 4, Width::Word, 0xffff_ffff);
    dev.write(reg::CONFIG, Width::Word, 0xffff_3512);
    dev.write(reg::CONFIG, Width::Double, 0xdead_beef_ff7f_3512);
    for w in Width::ALL {
        for off in (8..CFG_BYTES + 64).step_by(w.bytes()) {
            dev.write(reg::CONFIG + off, w, 0xa5a5_5a5a_dead_beef & w.mask());
        }
    }
    let after = dev.config_image();
    let changed = before.iter().zip(after.iter()).position(|(a, b)| a != b);
    match (changed, dev.r32(reg::CONFIG_GENERATION) == generation) {
        (None, true) => answer(
            "config-writes",
            format_args!("ignored (size {} and union read back unchanged)", size),
        ),
        (Some(at), _) => answer("config-writes", format_args!("CHANGED byte {}", at)),
        (None, false) => answer("config-writes", "generation CHANGED"),
    }
}

/// The transport's registers: selectors out of range, bad queue layouts,
/// and every offset of the window read and written at every width.
fn register_cases(dev: &mut Dev) {
    let _ = dev.reset();
    // Feature selectors beyond the two words.
    let mut nonzero = 0;
    for sel in [2u32, 3, 0x8000_0000, u32::MAX] {
        dev.w32(reg::DEVICE_FEATURES_SEL, sel);
        nonzero += u32::from(dev.r32(reg::DEVICE_FEATURES) != 0);
    }
    dev.w32(reg::DEVICE_FEATURES_SEL, 0);
    answer(
        "features-sel-out-of-range",
        if nonzero == 0 {
            "features read 0"
        } else {
            "features NOT 0"
        },
    );

    for (case, features) in [
        ("features-not-offered", u64::MAX),
        ("features-without-version-1", EVENT_IDX),
    ] {
        match dev.negotiate(features) {
            Ok(()) => answer(case, "FEATURES_OK accepted"),
            Err(_) => answer(
                case,
                format_args!("FEATURES_OK refused (status 0x{:x})", dev.status()),
            ),
        }
    }

    // QueueReady before FEATURES_OK.
    let _ = dev.reset();
    dev.w32(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    let ready = dev.setup_queue(EVENTQ, dev.ring(EVENTQ));
    answer("queue-ready-before-features-ok", ready_answer(ready));

    let _ = dev.negotiate(VERSION_1);
    // Queues the device does not have.
    let mut seen = 0u32;
    for sel in [2u32, 16, 0xffff, u32::MAX] {
        dev.w32(reg::QUEUE_SEL, sel);
        seen |= dev.r32(reg::QUEUE_NUM_MAX);
        seen |= u32::from(dev.setup_queue(sel, dev.ring(EVENTQ)));
        seen |= dev.r32(reg::QUEUE_READY);
    }
    dev.w32(reg::QUEUE_SEL, 0);
    let max = dev.r32(reg::QUEUE_NUM_MAX);
    let ready0 = dev.r32(reg::QUEUE_READY);
    answer(
        "queue-sel-out-of-range",
        format_args!(
            "{}; queue 0 max {} ready {}",
            if seen == 0 {
                "QueueNumMax 0, QueueReady stays 0"
            } else {
                "SOMETHING READ NON-ZERO"
            },
            max,
            ready0
        ),
    );

    let good = dev.ring(EVENTQ);
    for (case, layout) in [
        ("queue-num-0", Layout { num: 0, ..good }),
        ("queue-num-above-max", Layout { num: 128, ..good }),
        ("queue-num-not-power-of-2", Layout { num: 48, ..good }),
        (
            "queue-misaligned-desc",
            Layout {
                desc: good.desc + 8,
                ..good
            },
        ),
        (
            "queue-wrapping-desc",
            Layout {
                desc: u64::MAX - 0xf,
                ..good
            },
        ),
    ] {
        let _ = dev.negotiate(VERSION_1);
        answer(case, ready_answer(dev.setup_queue(EVENTQ, layout)));
    }

    // Notifications of queues that do not exist, on a live device.
    if dev.fresh(VERSION_1, dev.default_rings()) {
        let before = dev.status();
        for q in [2u32, 64, 0xffff, u32::MAX] {
            dev.w32(reg::QUEUE_NOTIFY, q);
        }
        answer(
            "notify-bad-queue",
            format_args!("ignored (status 0x{:x} -> 0x{:x})", before, dev.status()),
        );
        // A driver clearing status bits, setting undefined ones, or the
        // device's own DEVICE_NEEDS_RESET.
        for v in [
            status::ACKNOWLEDGE,
            0x100,
            0x4f,
            status::FAILED | 0x0f | 0x20,
        ] {
            dev.w32(reg::STATUS, v);
        }
        answer(
            "status-abuse",
            format_args!("status 0x{:x} -> 0x{:x}", before, dev.status()),
        );
    }

    // Every offset of the window at every width, read.
    let cfg = {
        let mut c = [0u8; 0x100];
        for (i, chunk) in c.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&dev.r32(reg::CONFIG + 4 * i).to_le_bytes());
        }
        c
    };
    let (mut reads, mut narrow, mut mismatches) = (0u32, 0u32, 0u32);
    for w in Width::ALL {
        for off in (0..0x200).step_by(w.bytes()) {
            let v = dev.read(off, w);
            reads += 1;
            if off < reg::CONFIG {
                narrow += u32::from(w != Width::Word && v != 0);
            } else {
                let at = off - reg::CONFIG;
                let mut b = [0u8; 8];
                b[..w.bytes()].copy_from_slice(&cfg[at..at + w.bytes()]);
                mismatches += u32::from(u64::from_le_bytes(b) != v);
            }
        }
    }
    let beyond = cfg[CFG_BYTES..].iter().filter(|&&b| b != 0).count();
    answer(
        "read-sweep",
        format_args!(
            "{} reads, {} non-zero narrow/64-bit register reads, {} config mismatches, {} non-zero bytes past the config",
            reads, narrow, mismatches, beyond
        ),
    );

    // Every offset of the window at every width, written on a live
    // device: all ones, then zeros.
    let _ = dev.fresh(VERSION_1, dev.default_rings());
    let mut writes = 0u32;
    for value in [u64::MAX, 0] {
        for w in [Width::Byte, Width::Half, Width::Double, Width::Word] {
            for off in (0..0x200).step_by(w.bytes()) {
                dev.write(off, w, value & w.mask());
                writes += 1;
            }
        }
    }
    let ids = (
        dev.r32(reg::MAGIC) == MAGIC && dev.r32(reg::VERSION) == VERSION_2,
        dev.r32(reg::DEVICE_ID),
    );
    let st = dev.status();
    let again = dev.up(VERSION_1, dev.default_rings());
    answer(
        "write-sweep",
        format_args!(
            "{} writes; magic and version {}, device id {}, status 0x{:x}; re-init {}",
            writes,
            if ids.0 { "ok" } else { "WRONG" },
            ids.1,
            st,
            if again.is_ok() { "ok" } else { "FAILED" }
        ),
    );
}

fn ready_answer(ready: bool) -> &'static str {
    if ready {
        "QueueReady 1 (ACCEPTED)"
    } else {
        "QueueReady stays 0"
    }
}

/// The status queue takes any chain and returns it used with 0 bytes,
/// without reading it; a broken ring needs a reset.
fn status_queue_cases(dev: &mut Dev) {
    let features = VERSION_1 | EVENT_IDX | INDIRECT_DESC;
    let rings = dev.default_rings();
    let junk = dev.junk();
    let one = |dev: &mut Dev, case: &str, addr: u64, len: u32, flags: u16, next: u16| {
        if dev.fresh(features, rings) {
            dev.desc(STATUSQ, 0, addr, len, flags, next);
            dev.offer(STATUSQ, &[0]);
            answer(case, dev.outcome(STATUSQ, 1, 200));
        }
    };
    // A well-formed LED event first (the junk page survives bring-ups).
    put16(junk as usize, EV_LED);
    put16(junk as usize + 2, 0);
    put32(junk as usize + 4, 1);
    one(dev, "status-led-event", junk, 8, 0, 0);
    one(dev, "status-device-writable", junk, 8, WRITE, 0);
    one(dev, "status-huge-length", junk, u32::MAX, 0, 0);
    one(dev, "status-outside-ram", OUTSIDE_RAM, 8, 0, 0);
    one(dev, "status-address-0", 0, 4096, WRITE, 0);
    one(
        dev,
        "status-cluster-host-address",
        CLUSTER_HOST_RAM,
        8,
        WRITE,
        0,
    );
    one(dev, "status-wrapping-address", u64::MAX - 3, 100, WRITE, 0);
    one(dev, "status-loop", junk, 8, NEXT | WRITE, 0);
    one(dev, "status-bad-indirect", junk, 3, INDIRECT | NEXT, 0);

    if dev.fresh(features, rings) {
        dev.desc(STATUSQ, 0, junk, 8, WRITE | NEXT, 1);
        dev.desc(STATUSQ, 1, junk, 8, 0, 0);
        dev.offer(STATUSQ, &[0]);
        answer(
            "status-readable-after-writable",
            dev.outcome(STATUSQ, 1, 200),
        );
    }

    // A full ring of junk, every direction and size.
    if dev.fresh(features, rings) {
        let mut heads = [0u16; QN];
        for (i, h) in heads.iter_mut().enumerate() {
            let i = i as u16;
            dev.desc(
                STATUSQ,
                i,
                OUTSIDE_RAM.wrapping_mul(u64::from(i)),
                u32::MAX >> (i % 32),
                i % 8,
                (i + 1) % Q as u16,
            );
            *h = i;
        }
        dev.offer(STATUSQ, &heads);
        answer("status-full-ring", dev.outcome(STATUSQ, Q, 500));
    }

    // Its descriptor table outside RAM: never read.
    let desc_outside = [
        rings[0],
        Layout {
            desc: OUTSIDE_RAM,
            ..rings[1]
        },
    ];
    if dev.fresh(features, desc_outside) {
        dev.offer(STATUSQ, &[5]);
        answer(
            "status-desc-table-outside-ram",
            dev.outcome(STATUSQ, 1, 200),
        );
    }

    // Broken rings.
    if dev.fresh(features, rings) {
        dev.offer(STATUSQ, &[Q as u16]);
        answer("status-head-out-of-range", dev.outcome(STATUSQ, 1, 200));
    }
    if dev.fresh(features, rings) {
        dev.desc(STATUSQ, 0, junk, 8, 0, 0);
        dev.publish_index(STATUSQ, 1000);
        answer("status-avail-jump-1000", dev.outcome(STATUSQ, 1, 200));
    }
    let avail_outside = [
        rings[0],
        Layout {
            avail: OUTSIDE_RAM,
            ..rings[1]
        },
    ];
    if dev.fresh(features, avail_outside) {
        dev.notify(STATUSQ);
        answer(
            "status-avail-ring-outside-ram",
            dev.outcome(STATUSQ, 1, 200),
        );
    }
    let used_outside = [
        rings[0],
        Layout {
            used: OUTSIDE_RAM,
            ..rings[1]
        },
    ];
    if dev.fresh(features, used_outside) {
        dev.desc(STATUSQ, 0, junk, 8, 0, 0);
        dev.offer(STATUSQ, &[0]);
        answer("status-used-ring-outside-ram", dev.outcome(STATUSQ, 1, 200));
    }
}

/// Reads the events of the buffers the device used, up to `max_frames`
/// whole frames or until nothing comes for `quiet_ms` (`first_ms` for the
/// first); calls `frame` with each frame's events (at most 64 kept).
fn read_frames(
    dev: &mut Dev,
    max_frames: u32,
    first_ms: u64,
    quiet_ms: u64,
    mut frame: impl FnMut(&[Event]),
) -> (u32, u32, u32) {
    let mut events = [Event::default(); QN];
    let mut n = 0usize;
    let (mut frames, mut total, mut empty) = (0u32, 0u32, 0u32);
    let mut limit = first_ms;
    while frames < max_frames {
        let mut got = None;
        wait(limit, || {
            got = dev.next_used(EVENTQ);
            got.is_some()
        });
        let Some((id, len)) = got else { break };
        limit = quiet_ms;
        dev.ack();
        if len < 8 {
            empty += 1;
            continue;
        }
        let e = dev.event(id);
        total += 1;
        if n < QN {
            events[n] = e;
            n += 1;
        }
        if e.kind == EV_SYN && e.code == 0 {
            frame(&events[..n]);
            n = 0;
            frames += 1;
        }
    }
    if n > 0 {
        // A partial frame: shown as one with no SYN_REPORT.
        frame(&events[..n]);
    }
    (frames, total, empty)
}

/// Whether `events` is one whole frame of the router's: it starts with
/// ABS_MT_SLOT and ends with its only SYN_REPORT.
fn whole(events: &[Event]) -> bool {
    let syn = |e: &Event| e.kind == EV_SYN && e.code == 0;
    events
        .first()
        .is_some_and(|e| e.kind == EV_ABS && e.code == ABS_MT_SLOT)
        && events.last().is_some_and(syn)
        && events.iter().filter(|e| syn(e)).count() == 1
}

/// The event queue with no buffers at all while taps come: the device
/// keeps whole frames, drops the oldest, and afterwards delivers whole
/// frames into the buffers that come.
///
/// The taps are asked for one at a time (the scenario could inject them
/// faster than the hypervisor drains the physical panel): with EVENT_IDX
/// the device writes `avail_event` (here 0, nothing was ever posted) each
/// time a frame comes and finds no buffer, so the driver sets it to
/// 0xffff, asks for the next tap and waits until it is 0 again.
fn no_buffers(dev: &mut Dev) {
    if !dev.fresh(VERSION_1 | EVENT_IDX, dev.default_rings()) {
        return;
    }
    let mut came = 0;
    for tap in 1..=NO_BUFFER_TAPS {
        dev.set_avail_event(EVENTQ, 0xffff);
        println!("inputfuzz: no-buffers: waiting for tap {}", tap);
        if wait(INPUT_WAIT_MS, || dev.avail_event(EVENTQ) == 0) {
            came += 1;
        }
        // Its lift, right behind.
        timer::sleep_ms(100);
    }
    timer::sleep_ms(200);
    let st = dev.status();
    for i in 0..Q as u16 {
        dev.good(i);
    }
    let heads: [u16; QN] = core::array::from_fn(|i| i as u16);
    dev.offer(EVENTQ, &heads);
    let mut broken = 0u32;
    let (frames, events, empty) = read_frames(dev, u32::MAX, 2000, 300, |f| {
        broken += u32::from(!whole(f));
    });
    answer(
        "no-buffers",
        format_args!(
            "{} taps came, status 0x{:x}; then 64 buffers took {} frames, {} events, {} not whole, {} empty",
            came, st, frames, events, broken, empty
        ),
    );
}

/// What an event queue case does once its frame waits in the device.
enum Hostile {
    /// One descriptor (address, length, flags, next) as the chain.
    Chain(u64, u32, u16, u16),
    /// The available index jumps by 1000.
    AvailJump,
}

/// Event queue cases met while a notification is handled: a frame waits
/// in the device, which holds the one good buffer it had; then the hostile
/// chain is posted and notified.
fn waiting_frame_case(dev: &mut Dev, case: &str, hostile: Hostile) {
    let features = VERSION_1 | EVENT_IDX | INDIRECT_DESC;
    if !dev.fresh(features, dev.default_rings()) {
        return;
    }
    dev.good(0);
    dev.offer(EVENTQ, &[0]);
    println!("inputfuzz: {}: waiting for a frame", case);
    if !wait(INPUT_WAIT_MS, || dev.avail_event(EVENTQ) == 1) {
        answer(case, "no frame came");
        return;
    }
    match hostile {
        Hostile::Chain(addr, len, flags, next) => {
            dev.desc(EVENTQ, HOSTILE, addr, len, flags, next);
            dev.offer(EVENTQ, &[HOSTILE]);
        }
        Hostile::AvailJump => {
            // A good buffer in the next entry, and an index 1000 ahead.
            dev.good(1);
            let slot = usize::from(dev.avail[0]) % QN;
            put16(dev.rings[0].avail as usize + 4 + 2 * slot, 1);
            let idx = dev.avail[0].wrapping_add(1000);
            dev.publish_index(EVENTQ, idx);
        }
    }
    let start = dev.used[0];
    wait(200, || dev.needs_reset() || dev.used_idx(EVENTQ) != start);
    dev.ack();
    if dev.needs_reset() {
        answer(case, "needs-reset");
        return;
    }
    let Some((id, len)) = dev.next_used(EVENTQ) else {
        answer(case, "not used");
        return;
    };
    if id != u32::from(HOSTILE) || len != 0 {
        answer(case, format_args!("used head {} with {} bytes", id, len));
        return;
    }
    // The frame is still whole, in good buffers.
    for i in 1..=16u16 {
        dev.good(i);
    }
    let heads: [u16; 16] = core::array::from_fn(|i| i as u16 + 1);
    dev.offer(EVENTQ, &heads);
    let mut shape = (0usize, false);
    let (frames, _, empty) = read_frames(dev, 1, 2000, 100, |f| shape = (f.len(), whole(f)));
    if frames == 1 && shape.1 && empty == 0 && shape.0 > 1 {
        answer(
            case,
            format_args!("used, 0 bytes; then the frame whole ({} events)", shape.0),
        );
    } else {
        answer(
            case,
            format_args!(
                "used, 0 bytes; then {} frame(s), {} events, whole {}, {} empty",
                frames, shape.0, shape.1, empty
            ),
        );
    }
}

/// A hostile event ring posted before any frame: the device meets it when
/// a frame is delivered.
fn before_frame_case(dev: &mut Dev, case: &str, rings: [Layout; 2], chain: (u64, u32, u16, u16)) {
    if !dev.fresh(VERSION_1 | EVENT_IDX | INDIRECT_DESC, rings) {
        return;
    }
    let (addr, len, flags, next) = chain;
    dev.desc(EVENTQ, HOSTILE, addr, len, flags, next);
    dev.offer(EVENTQ, &[HOSTILE]);
    timer::sleep_ms(50);
    let quiet = !dev.needs_reset();
    println!("inputfuzz: {}: waiting for a frame", case);
    let broke = wait(INPUT_WAIT_MS, || dev.needs_reset());
    dev.ack();
    match (quiet, broke) {
        (true, true) => answer(case, "needs-reset once a frame came"),
        (false, _) => answer(case, "needs-reset before any frame"),
        (true, false) => answer(case, "no frame came, or no answer"),
    }
}

fn event_queue_cases(dev: &mut Dev) {
    let ram_end = platform().memory_base + platform().memory_bytes;
    let buffer = dev.event_buffer(HOSTILE);
    let cases = [
        ("event-device-readable", buffer, 8, 0, 0),
        ("event-4-bytes", buffer, 4, WRITE, 0),
        ("event-empty", buffer, 0, WRITE, 0),
        ("event-outside-ram", OUTSIDE_RAM, 8, WRITE, 0),
        ("event-address-0", 0, 8, WRITE, 0),
        ("event-cluster-host-address", CLUSTER_HOST_RAM, 8, WRITE, 0),
        ("event-straddling-ram-end", ram_end - 4, 8, WRITE, 0),
        ("event-loop", buffer, 8, WRITE | NEXT, HOSTILE),
    ];
    for (case, addr, len, flags, next) in cases {
        waiting_frame_case(dev, case, Hostile::Chain(addr, len, flags, next));
    }
    waiting_frame_case(dev, "event-avail-jump-1000", Hostile::AvailJump);
    waiting_frame_case(
        dev,
        "event-indirect-outside-ram",
        Hostile::Chain(OUTSIDE_RAM, 64, INDIRECT, 0),
    );

    let rings = dev.default_rings();
    before_frame_case(
        dev,
        "event-loop-before-frame",
        rings,
        (buffer, 8, WRITE | NEXT, HOSTILE),
    );
    let used_outside = [
        Layout {
            used: OUTSIDE_RAM,
            ..rings[0]
        },
        rings[1],
    ];
    before_frame_case(
        dev,
        "event-used-ring-outside-ram",
        used_outside,
        (dev.event_buffer(0), 8, WRITE, 0),
    );
}

/// A reset and a proper bring-up: a tap is read correctly.
fn after_reset(dev: &mut Dev) {
    if !dev.fresh(VERSION_1, dev.default_rings()) {
        return;
    }
    for i in 0..Q as u16 {
        dev.good(i);
    }
    let heads: [u16; QN] = core::array::from_fn(|i| i as u16);
    dev.offer(EVENTQ, &heads);
    println!("inputfuzz: after-reset: waiting for a tap");
    let mut line = Line::new();
    let mut n = 0;
    let (frames, _, _) = read_frames(dev, 2, INPUT_WAIT_MS, INPUT_WAIT_MS, |f| {
        n += 1;
        let _ = write!(line, "{}frame {}: ", if n > 1 { "; " } else { "" }, n);
        describe(&mut line, f);
    });
    if frames == 0 {
        answer("after-reset", "no frame came");
    } else {
        answer("after-reset", line.as_str());
    }
}

/// A frame of one contact, as the router makes it, in words; anything
/// else as raw events.
fn describe(line: &mut Line, f: &[Event]) {
    let abs = |code: u16, value: u32| Event {
        kind: EV_ABS,
        code,
        value,
    };
    let key = |v: u32| Event {
        kind: EV_KEY,
        code: BTN_TOUCH,
        value: v,
    };
    let syn = Event::default();
    // Each frame's time, whatever its value.
    let stamp = |e: Event| e.kind == EV_MSC && e.code == MSC_TIMESTAMP;
    match *f {
        [s, id, x, y, b, px, py, t, end]
            if s.code == ABS_MT_SLOT
                && id == abs(ABS_MT_TRACKING_ID, id.value)
                && x == abs(ABS_MT_POSITION_X, x.value)
                && y == abs(ABS_MT_POSITION_Y, y.value)
                && b == key(1)
                && px == abs(ABS_X, x.value)
                && py == abs(ABS_Y, y.value)
                && stamp(t)
                && end == syn =>
        {
            let _ = write!(
                line,
                "slot {} down id {} at {},{}",
                s.value, id.value, x.value, y.value
            );
        }
        [s, id, b, t, end]
            if s.code == ABS_MT_SLOT
                && id == abs(ABS_MT_TRACKING_ID, u32::MAX)
                && b == key(0)
                && stamp(t)
                && end == syn =>
        {
            let _ = write!(line, "slot {} up", s.value);
        }
        _ => {
            let _ = write!(line, "{} events:", f.len());
            for e in f {
                let _ = write!(line, " {:x}/{:x}/{:x}", e.kind, e.code, e.value);
            }
        }
    }
}

/// Both rings kept full of junk and both queues notified, as fast as it
/// goes, for ever: status queue chains of every flag and size outside
/// RAM, event queue chains of 64 buffers the device may not write.
fn flood(dev: &mut Dev) -> ! {
    let mut n: u64 = 0;
    loop {
        if !dev.fresh(VERSION_1 | EVENT_IDX, dev.default_rings()) {
            park();
        }
        // Every event queue head names the same chain of all 64
        // descriptors, device-readable: the longest walk a chain may take.
        for i in 0..Q as u16 {
            dev.desc(STATUSQ, i, OUTSIDE_RAM, u32::MAX >> (i % 32), i % 8, i);
            let (flags, next) = if i + 1 < Q as u16 {
                (NEXT, i + 1)
            } else {
                (0, 0)
            };
            dev.desc(EVENTQ, i, dev.event_buffer(i), 8, flags, next);
        }
        while !dev.needs_reset() {
            for q in [EVENTQ, STATUSQ] {
                let used = dev.used_idx(q);
                dev.used[q as usize] = used;
                let free = QN - usize::from(dev.avail[q as usize].wrapping_sub(used));
                let first = dev.avail[q as usize];
                let heads: [u16; QN] = core::array::from_fn(|i| match q {
                    EVENTQ => 0,
                    _ => first.wrapping_add(i as u16) % Q as u16,
                });
                dev.offer(q, &heads[..free]);
            }
            dev.ack();
            n += 1;
            if n.is_multiple_of(1000) {
                println!("inputfuzz: flooding: {} rounds", n);
            }
        }
        println!("inputfuzz: flooding: needs-reset after {} rounds", n);
    }
}
