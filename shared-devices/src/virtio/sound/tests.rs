//! virtio-snd end to end: a test driver that sets the device up and talks
//! to it the way Linux's `virtio_snd` does (control requests with the
//! response header and payload in separate buffers, one I/O message per
//! period through an indirect table, the eventq full of 8-byte buffers),
//! the real virtio-mmio transport, and the mixer's side (`pull` through
//! `with_device`).

use std::collections::HashMap;

use super::protocol::*;
use super::*;
use crate::mmio::{RegisterFile, Width};
use crate::virtio::memory::{Fence, MemoryError, SliceMemory};
use crate::virtio::mmio::{Effects, MmioTransport, reg, status as dev_status};
use crate::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use crate::virtio::test_driver::{BASE, Driver, read32, write32};

/// What Linux negotiates.
const LINUX: u64 = feature::VERSION_1 | feature::INDIRECT_DESC | feature::EVENT_IDX;
/// Guest RAM of these tests: 1 MiB at [`BASE`]. The four rings live in
/// the first 32 KiB, buffers above.
const RAM: usize = 0x10_0000;
const END: u64 = BASE + RAM as u64;
const BUFS: u64 = BASE + 0x8000;
/// Fill of device-writable bytes before the device writes them.
const UNSET: u8 = 0xee;
/// Linux's shortest period for a stereo stream: 240 frames, 5 ms.
const PERIOD: u32 = 960;
const XRUNS: u32 = 1 << pcm_feature::EVT_XRUNS;

fn ring(q: u16) -> Driver {
    let base = BASE + 0x1000 + 0x1000 * u64::from(q);
    Driver::at(QUEUE_SIZE, base, base + 0x800, base + 0xc00)
}

/// A control response.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    status: u32,
    payload: Vec<u8>,
    /// What the used entry says was written.
    written: u32,
}

/// One partition: its RAM, its sound device and the driver's four queues.
struct Rig<'m> {
    mem: SliceMemory<'m>,
    t: MmioTransport<VirtioSound>,
    q: [Driver; 4],
    /// Next free descriptor of each queue (taken round robin).
    next_desc: [u16; 4],
    next_buf: u64,
    /// Where each eventq and txq head's device-writable bytes are.
    event_at: HashMap<u16, u64>,
    status_at: HashMap<u16, u64>,
    /// Interrupt line level as the effects reported it.
    level: bool,
    /// Device calls the last `settle` made.
    calls: u32,
}

impl<'m> Rig<'m> {
    /// Set up as Linux does, with the default limits.
    fn new(ram: &'m mut [u8]) -> Self {
        let mut r = Self::idle(ram, VirtioSound::new(SoundLimits::default()));
        assert!(r.bring_up(LINUX).driver_ok);
        r
    }

    /// Not set up yet.
    fn idle(ram: &'m mut [u8], dev: VirtioSound) -> Self {
        Rig {
            mem: SliceMemory::new(BASE, ram),
            t: MmioTransport::new(dev),
            q: [ring(0), ring(1), ring(2), ring(3)],
            next_desc: [0; 4],
            next_buf: BUFS,
            event_at: HashMap::new(),
            status_at: HashMap::new(),
            level: false,
            calls: 0,
        }
    }

    /// The Linux virtio-mmio probe and virtio_snd init, all four queues,
    /// up to DRIVER_OK.
    fn bring_up(&mut self, features: u64) -> Effects {
        let t = &mut self.t;
        let w = |t: &mut MmioTransport<VirtioSound>, o, v| {
            let _ = write32(t, o, v);
        };
        assert_eq!(read32(t, reg::DEVICE_ID), 25);
        w(t, reg::STATUS, 0);
        w(t, reg::STATUS, dev_status::ACKNOWLEDGE);
        w(t, reg::STATUS, dev_status::ACKNOWLEDGE | dev_status::DRIVER);
        w(t, reg::DRIVER_FEATURES_SEL, 0);
        w(t, reg::DRIVER_FEATURES, features as u32);
        w(t, reg::DRIVER_FEATURES_SEL, 1);
        w(t, reg::DRIVER_FEATURES, (features >> 32) as u32);
        let s = dev_status::ACKNOWLEDGE | dev_status::DRIVER | dev_status::FEATURES_OK;
        w(t, reg::STATUS, s);
        assert_eq!(read32(t, reg::STATUS), u64::from(s), "features refused");
        for (q, d) in self.q.iter().enumerate() {
            w(t, reg::QUEUE_SEL, q as u32);
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
        let fx = write32(t, reg::STATUS, s | dev_status::DRIVER_OK);
        self.settle(fx)
    }

    /// Starts over after a reset: fresh rings, as a driver that binds
    /// again lays them out.
    fn rebind(&mut self) {
        self.q = [ring(0), ring(1), ring(2), ring(3)];
        self.next_desc = [0; 4];
        self.mem.write(BASE + 0x1000, &[0; 0x4000]).unwrap();
        assert!(self.bring_up(LINUX).driver_ok);
    }

    fn dev(&self) -> &VirtioSound {
        self.t.device()
    }

    fn needs_reset(&mut self) -> bool {
        read32(&mut self.t, reg::STATUS) & u64::from(dev_status::DEVICE_NEEDS_RESET) != 0
    }

    fn alloc(&mut self, len: usize) -> u64 {
        let at = self.next_buf;
        self.next_buf = (at + len as u64 + 15) & !15;
        if self.next_buf > END {
            self.next_buf = BUFS;
            return self.alloc(len);
        }
        at
    }

    /// `bytes` in fresh memory.
    fn put(&mut self, bytes: &[u8]) -> u64 {
        let at = self.alloc(bytes.len());
        self.mem.write(at, bytes).unwrap();
        at
    }

    /// Adds a chain of `(gpa, len, device-writable)` buffers to queue `q`
    /// (directly or through an indirect table), not yet published; its
    /// head.
    fn add(&mut self, q: u16, bufs: &[(u64, u32, bool)], indirect: bool) -> u16 {
        let qi = usize::from(q);
        let flags = |i: usize| {
            let mut f = if bufs[i].2 { DESC_F_WRITE } else { 0 };
            if i + 1 < bufs.len() {
                f |= DESC_F_NEXT;
            }
            f
        };
        let head = self.next_desc[qi];
        if indirect {
            let table = self.alloc(16 * bufs.len());
            for (i, &(gpa, len, _)) in bufs.iter().enumerate() {
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&gpa.to_le_bytes());
                d[8..12].copy_from_slice(&len.to_le_bytes());
                d[12..14].copy_from_slice(&flags(i).to_le_bytes());
                d[14..].copy_from_slice(&(i as u16 + 1).to_le_bytes());
                self.mem.write(table + 16 * i as u64, &d).unwrap();
            }
            let len = 16 * bufs.len() as u32;
            self.q[qi].desc(&self.mem, head, table, len, DESC_F_INDIRECT, 0);
            self.next_desc[qi] = (head + 1) % QUEUE_SIZE;
        } else {
            for (i, &(gpa, len, _)) in bufs.iter().enumerate() {
                let me = self.next_desc[qi];
                let next = (me + 1) % QUEUE_SIZE;
                self.q[qi].desc(&self.mem, me, gpa, len, flags(i), next);
                self.next_desc[qi] = next;
            }
        }
        self.q[qi].push_head(&self.mem, head);
        head
    }

    /// Publishes and notifies queue `q`, then does what the effects ask
    /// for until there is nothing left (as the hypervisor does).
    fn kick(&mut self, q: u16) -> Effects {
        self.q[usize::from(q)].publish(&self.mem);
        self.notify(q)
    }

    /// Notifies queue `q` without publishing anything.
    fn notify(&mut self, q: u16) -> Effects {
        self.level = self.t.irq_level();
        let fx = write32(&mut self.t, reg::QUEUE_NOTIFY, u32::from(q));
        self.settle(fx)
    }

    /// Does what the effects ask for until there is nothing left,
    /// checking that they report every change of the line (`level` is
    /// what it was before the call) and the device's invariants.
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

    /// The used entries of queue `q` since the last call.
    fn used(&mut self, q: u16) -> Vec<(u32, u32)> {
        self.q[usize::from(q)].used(&self.mem)
    }

    fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem.read(gpa, &mut v).unwrap();
        v
    }

    /// Sends a control request as Linux does: the request, then a
    /// writable 4-byte header and (if any) a separate payload buffer.
    fn ctl(&mut self, req: &[u8], payload: usize) -> Reply {
        let r = self.put(req);
        let h = self.put(&[UNSET; 4]);
        let p = self.put(&vec![UNSET; payload]);
        let mut bufs = vec![(r, req.len() as u32, false), (h, 4, true)];
        if payload > 0 {
            bufs.push((p, payload as u32, true));
        }
        let head = self.add(CONTROL_QUEUE, &bufs, true);
        let _ = self.kick(CONTROL_QUEUE);
        let used = self.used(CONTROL_QUEUE);
        assert_eq!(used.len(), 1, "one response");
        assert_eq!(used[0].0, u32::from(head));
        Reply {
            status: self.mem.read_u32(h).unwrap(),
            payload: self.read(p, payload),
            written: used[0].1,
        }
    }

    /// A PCM request without a body; its status.
    fn pcm(&mut self, code: u32) -> u32 {
        self.pcm_for(code, STREAM_ID)
    }

    fn pcm_for(&mut self, code: u32, stream: u32) -> u32 {
        let r = self.ctl(&pcm_hdr(code, stream), 0);
        assert_eq!(r.written, 4);
        r.status
    }

    fn set_params(&mut self, p: SetParams) -> u32 {
        let r = self.ctl(&p.to_bytes(), 0);
        assert_eq!(r.written, 4);
        r.status
    }

    /// What Linux sends for `aplay` on a stream of `channels`: its
    /// parameters, then PREPARE.
    fn linux_setup(&mut self, channels: u8, period: u32, periods: u32) {
        assert_eq!(
            self.set_params(params(channels, period, periods)),
            status::OK
        );
        assert_eq!(self.pcm(code::PCM_PREPARE), status::OK);
    }

    /// `n` event buffers, 8 bytes each, posted and notified, as Linux
    /// fills the eventq.
    fn post_events(&mut self, n: usize) {
        for _ in 0..n {
            let at = self.put(&[UNSET; 8]);
            let head = self.add(EVENT_QUEUE, &[(at, 8, true)], false);
            self.event_at.insert(head, at);
        }
        let _ = self.kick(EVENT_QUEUE);
    }

    /// The events returned since the last call.
    fn events(&mut self) -> Vec<Event> {
        self.used(EVENT_QUEUE)
            .into_iter()
            .map(|(id, len)| {
                assert_eq!(len, 8, "event buffer {id} returned with {len} bytes");
                let at = self.event_at[&(id as u16)];
                Event::from_bytes(&self.read(at, 8).try_into().unwrap())
            })
            .collect()
    }

    /// An I/O message as Linux sends it (header, PCM bytes, status,
    /// through an indirect table), added to the txq but not published;
    /// its head.
    fn add_tx(&mut self, stream: u32, pcm: &[u8]) -> u16 {
        let hdr = self.put(&stream.to_le_bytes());
        let data = self.put(pcm);
        let st = self.put(&[UNSET; 8]);
        let mut bufs = vec![(hdr, 4, false)];
        if !pcm.is_empty() {
            bufs.push((data, pcm.len() as u32, false));
        }
        bufs.push((st, 8, true));
        let head = self.add(TX_QUEUE, &bufs, true);
        self.status_at.insert(head, st);
        head
    }

    /// I/O messages sent and notified.
    fn tx(&mut self, messages: &[Vec<u8>]) -> Vec<u16> {
        let heads = messages.iter().map(|m| self.add_tx(STREAM_ID, m)).collect();
        let _ = self.kick(TX_QUEUE);
        heads
    }

    /// The txq's used entries since the last call, with their status.
    fn tx_done(&mut self) -> Vec<(u16, u32, PcmStatus)> {
        self.used(TX_QUEUE)
            .into_iter()
            .map(|(id, len)| {
                let at = self.status_at[&(id as u16)];
                let s = PcmStatus::from_bytes(&self.read(at, 8).try_into().unwrap());
                (id as u16, len, s)
            })
            .collect()
    }

    /// One mixer period of `frames`: what the mixer got, and how many
    /// frames came from the guest.
    fn pull(&mut self, frames: usize) -> (Vec<i16>, usize) {
        let mut out = vec![0x5555i16; 2 * frames];
        self.level = self.t.irq_level();
        let (n, fx) = self
            .t
            .with_device(&self.mem, |dev, ctx| dev.pull(&mut out, ctx));
        let _ = self.settle(fx);
        (out, n)
    }

    /// Config space bytes as the driver reads them.
    fn cfg(&mut self, offset: u64, width: Width) -> u64 {
        self.t
            .read(reg::CONFIG + offset, width, &mut Effects::default())
    }
}

fn pcm_hdr(code: u32, stream: u32) -> Vec<u8> {
    [code.to_le_bytes(), stream.to_le_bytes()].concat()
}

fn query(code: u32, start_id: u32, count: u32, size: u32) -> Vec<u8> {
    QueryInfo {
        code,
        start_id,
        count,
        size,
    }
    .to_bytes()
    .to_vec()
}

/// What Linux sets: S16 at 48 kHz, underrun events (offered), `periods`
/// periods of `period` bytes.
fn params(channels: u8, period: u32, periods: u32) -> SetParams {
    SetParams {
        stream_id: STREAM_ID,
        buffer_bytes: period * periods,
        period_bytes: period,
        features: XRUNS,
        channels,
        format: PCM_FMT_S16,
        rate: PCM_RATE_48000,
    }
}

/// Frame `k` of the test signal: a ramp on the left, its complement on
/// the right, so that every frame and channel is told apart.
fn frame(k: usize) -> [i16; 2] {
    let l = k as i16;
    [l, !l]
}

/// Frames `from..to` of the signal, interleaved stereo.
fn signal(from: usize, to: usize) -> Vec<i16> {
    (from..to).flat_map(frame).collect()
}

/// Samples as the guest stores them.
fn le(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Frames `from..to` of the signal as stereo PCM bytes.
fn stereo(from: usize, to: usize) -> Vec<u8> {
    le(&signal(from, to))
}

const ALL_STATES: [StreamState; 6] = [
    StreamState::Unset,
    StreamState::ParamsSet,
    StreamState::Prepared,
    StreamState::Running,
    StreamState::Stopped,
    StreamState::Released,
];

const COMMANDS: [(Command, u32); 5] = [
    (Command::SetParams, code::PCM_SET_PARAMS),
    (Command::Prepare, code::PCM_PREPARE),
    (Command::Release, code::PCM_RELEASE),
    (Command::Start, code::PCM_START),
    (Command::Stop, code::PCM_STOP),
];

impl Rig<'_> {
    /// Brings a fresh stream to `state` by allowed commands.
    fn goto(&mut self, state: StreamState) {
        use StreamState as S;
        let path: &[u32] = match state {
            S::Unset => &[],
            S::ParamsSet => &[code::PCM_SET_PARAMS],
            S::Prepared => &[code::PCM_SET_PARAMS, code::PCM_PREPARE],
            S::Running => &[code::PCM_SET_PARAMS, code::PCM_PREPARE, code::PCM_START],
            S::Stopped => &[
                code::PCM_SET_PARAMS,
                code::PCM_PREPARE,
                code::PCM_START,
                code::PCM_STOP,
            ],
            S::Released => &[code::PCM_SET_PARAMS, code::PCM_PREPARE, code::PCM_RELEASE],
        };
        for &c in path {
            let s = match c {
                code::PCM_SET_PARAMS => self.set_params(params(2, PERIOD, 4)),
                c => self.pcm(c),
            };
            assert_eq!(s, status::OK, "{c:#x} on the way to {state:?}");
        }
        assert_eq!(self.dev().state(), state);
    }

    /// Sends `command` with valid parameters; its status.
    fn send(&mut self, command: u32) -> u32 {
        match command {
            code::PCM_SET_PARAMS => self.set_params(params(1, 1920, 2)),
            c => self.pcm(c),
        }
    }
}

#[test]
fn identifies_itself() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::idle(&mut ram, VirtioSound::new(SoundLimits::default()));
    let t = &mut r.t;
    assert_eq!(read32(t, reg::DEVICE_ID), 25);
    let _ = write32(t, reg::DEVICE_FEATURES_SEL, 0);
    assert_eq!(read32(t, reg::DEVICE_FEATURES), (1 << 28) | (1 << 29));
    let _ = write32(t, reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(read32(t, reg::DEVICE_FEATURES), 1, "VERSION_1");
    for (q, max) in [(0, 64), (1, 64), (2, 64), (3, 64), (4, 0)] {
        let _ = write32(t, reg::QUEUE_SEL, q);
        assert_eq!(read32(t, reg::QUEUE_NUM_MAX), max);
    }
    assert_eq!(r.dev().stream(), StreamView::default());
    assert!(r.bring_up(LINUX).driver_ok);
    assert_eq!(r.dev().state(), StreamState::Unset);
    assert_eq!(r.dev().limits(), SoundLimits::default());
    // Without the ring features, and without VIRTIO_SND_F_CTLS (bit 0),
    // which is not offered.
    assert!(r.bring_up(feature::VERSION_1).driver_ok);
    let t = &mut r.t;
    let driver = dev_status::ACKNOWLEDGE | dev_status::DRIVER;
    let _ = write32(t, reg::STATUS, 0);
    let _ = write32(t, reg::STATUS, driver);
    let _ = write32(t, reg::DRIVER_FEATURES_SEL, 0);
    let _ = write32(t, reg::DRIVER_FEATURES, 1);
    let _ = write32(t, reg::DRIVER_FEATURES_SEL, 1);
    let _ = write32(t, reg::DRIVER_FEATURES, 1);
    let _ = write32(t, reg::STATUS, driver | dev_status::FEATURES_OK);
    assert_eq!(read32(t, reg::STATUS), u64::from(driver), "CTLS refused");
}

#[test]
fn config_space_counts_one_of_each() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    for (offset, v) in [(0, 1), (4, 1), (8, 1), (12, 0), (16, 0), (0xf00, 0)] {
        assert_eq!(r.cfg(offset, Width::Word), v, "at {offset}");
    }
    assert_eq!(r.cfg(0, Width::Double), 1 | 1 << 32);
    assert_eq!(r.cfg(8, Width::Double), 1, "chmaps, then no controls");
    assert_eq!(r.cfg(4, Width::Byte), 1);
    assert_eq!(r.cfg(5, Width::Half), 0);
    assert_eq!(r.cfg(10, Width::Double), 0);
    // Read-only.
    let mut fx = Effects::default();
    for offset in 0..16 {
        for width in Width::ALL {
            r.t.write(reg::CONFIG + offset, width, u64::MAX, &mut fx);
        }
    }
    assert_eq!(fx, Effects::default());
    assert_eq!(r.cfg(0, Width::Double), 1 | 1 << 32);
    assert_eq!(r.cfg(8, Width::Word), 1);
}

#[test]
fn query_info_describes_a_speaker_a_stereo_output_and_its_channel_map() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    // What Linux asks at probe: each kind, all items, its own sizes.
    let jack = r.ctl(&query(code::JACK_INFO, 0, 1, 24), 24);
    assert_eq!((jack.status, jack.written), (status::OK, 28));
    let info = JackInfo::from_bytes(&jack.payload[..].try_into().unwrap());
    assert_eq!(info.features, 0, "no remapping");
    assert!(info.connected);
    assert_eq!((info.hda_reg_defconf >> 20) & 0xf, 1, "a speaker");
    assert_eq!(info.hda_reg_defconf >> 30, 2, "fixed function");
    assert_eq!(info.hda_reg_caps & (1 << 4), 1 << 4, "output capable");
    assert_eq!(&jack.payload[17..], &[0; 7], "padding");

    let pcm = r.ctl(&query(code::PCM_INFO, 0, 1, 32), 32);
    assert_eq!((pcm.status, pcm.written), (status::OK, 36));
    let info = PcmInfo::from_bytes(&pcm.payload[..].try_into().unwrap());
    assert_eq!(
        info,
        PcmInfo {
            hda_fn_nid: 0,
            features: XRUNS,
            formats: 1 << 5,
            rates: 1 << 7,
            direction: D_OUTPUT,
            channels_min: 1,
            channels_max: 2,
        }
    );
    assert_eq!(&pcm.payload[27..], &[0; 5], "padding");

    let map = r.ctl(&query(code::CHMAP_INFO, 0, 1, 24), 24);
    assert_eq!((map.status, map.written), (status::OK, 28));
    let info = ChmapInfo::from_bytes(&map.payload[..].try_into().unwrap());
    assert_eq!((info.direction, info.channels), (D_OUTPUT, 2));
    assert_eq!(&info.positions[..3], &[chmap::FL, chmap::FR, chmap::NONE]);
    assert_eq!(info.hda_fn_nid, 0, "linked to the stream");

    // A longer structure (a newer driver): zeros after ours.
    let long = r.ctl(&query(code::PCM_INFO, 0, 1, 40), 40);
    assert_eq!((long.status, long.written), (status::OK, 44));
    assert_eq!(&long.payload[..32], &pcm.payload[..]);
    assert_eq!(&long.payload[32..], &[0; 8]);
    let longest = r.ctl(&query(code::JACK_INFO, 0, 1, MAX_INFO_SIZE), 1024);
    assert_eq!(longest.status, status::OK);
    assert_eq!(&longest.payload[..24], &jack.payload[..]);
    assert!(longest.payload[24..].iter().all(|b| *b == 0));
    // Nothing asked, nothing written (but a fine request).
    let none = r.ctl(&query(code::CHMAP_INFO, 1, 0, 24), 8);
    assert_eq!((none.status, none.written), (status::OK, 4));
    assert_eq!(none.payload, [UNSET; 8]);
    // Bytes after the request are ignored.
    let mut padded = query(code::PCM_INFO, 0, 1, 32);
    padded.extend([0xff; 12]);
    assert_eq!(r.ctl(&padded, 32).payload, pcm.payload);
    // The header and items in one buffer, as another driver may lay it
    // out.
    let q = r.put(&query(code::JACK_INFO, 0, 1, 24));
    let resp = r.put(&[UNSET; 28]);
    r.add(CONTROL_QUEUE, &[(q, 16, false), (resp, 28, true)], false);
    let _ = r.kick(CONTROL_QUEUE);
    assert_eq!(r.used(CONTROL_QUEUE)[0].1, 28);
    assert_eq!(r.mem.read_u32(resp).unwrap(), status::OK);
    assert_eq!(r.read(resp + 4, 24), jack.payload);

    // Wrong ranges and sizes: BAD_MSG, and nothing but the header.
    for (code, start, count, size, room) in [
        (code::JACK_INFO, 1, 1, 24, 24),
        (code::PCM_INFO, 0, 2, 32, 64),
        (code::CHMAP_INFO, 2, 0, 24, 24),
        (code::PCM_INFO, u32::MAX, 2, 32, 64),
        (code::PCM_INFO, 1, u32::MAX, 32, 64),
        (code::PCM_INFO, 0, 1, 31, 32),
        (code::JACK_INFO, 0, 1, 0, 24),
        (code::CHMAP_INFO, 0, 1, MAX_INFO_SIZE + 1, 1100),
        (code::PCM_INFO, 0, 1, u32::MAX, 64),
        // The response has no room for the items.
        (code::PCM_INFO, 0, 1, 32, 31),
        (code::JACK_INFO, 0, 1, 24, 0),
    ] {
        let rep = r.ctl(&query(code, start, count, size), room);
        assert_eq!(
            (rep.status, rep.written),
            (status::BAD_MSG, 4),
            "{code:#x} {start} {count} {size} in {room}"
        );
        assert!(rep.payload.iter().all(|b| *b == UNSET));
    }
    // A short request.
    let rep = r.ctl(&query(code::PCM_INFO, 0, 1, 32)[..12], 32);
    assert_eq!(rep.status, status::BAD_MSG);
    // Items outside RAM.
    let q = r.put(&query(code::PCM_INFO, 0, 1, 32));
    let h = r.put(&[UNSET; 4]);
    r.add(
        CONTROL_QUEUE,
        &[(q, 16, false), (h, 4, true), (END - 16, 32, true)],
        false,
    );
    let _ = r.kick(CONTROL_QUEUE);
    assert_eq!(r.used(CONTROL_QUEUE)[0].1, 4);
    assert_eq!(r.mem.read_u32(h).unwrap(), status::BAD_MSG);

    // Not supported: jack remapping, control elements, unknown codes.
    let remap = [
        code::JACK_REMAP.to_le_bytes(),
        [0; 4],
        [1, 0, 0, 0],
        [2, 0, 0, 0],
    ]
    .concat();
    for req in [
        remap,
        pcm_hdr(code::CTL_INFO, 0),
        query(code::CTL_INFO, 0, 1, 64),
        pcm_hdr(0x0306, 0),
        pcm_hdr(0, 0),
        pcm_hdr(0x0106, 0),
        pcm_hdr(0x1000, 0),
        pcm_hdr(u32::MAX, 0),
    ] {
        assert_eq!(r.ctl(&req, 0).status, status::NOT_SUPP, "{req:x?}");
    }
    assert!(!r.needs_reset());
    assert_eq!(r.dev().state(), StreamState::Unset);
    let st = r.dev().stats();
    assert_eq!(st.control_requests, 29);
    assert_eq!(st.control_errors, 21);
}

#[test]
fn every_transition_of_the_lifecycle_and_only_those() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    for from in ALL_STATES {
        for (command, code) in COMMANDS {
            let _ = write32(&mut r.t, reg::STATUS, 0);
            r.rebind();
            r.goto(from);
            let before = r.dev().params();
            let want = from.after(command);
            let got = r.send(code);
            match want {
                Some(to) => {
                    assert_eq!(got, status::OK, "{from:?} {command:?}");
                    assert_eq!(r.dev().state(), to);
                }
                None => {
                    assert_eq!(got, status::BAD_MSG, "{from:?} {command:?}");
                    assert_eq!(r.dev().state(), from, "no change");
                    assert_eq!(r.dev().params(), before);
                }
            }
            assert_eq!(
                r.dev().stream().running,
                r.dev().state() == StreamState::Running
            );
        }
    }
    // The parameters a SET_PARAMS installs.
    let _ = write32(&mut r.t, reg::STATUS, 0);
    r.rebind();
    r.goto(StreamState::Released);
    assert_eq!(r.set_params(params(1, 1920, 3)), status::OK);
    assert_eq!(
        r.dev().params(),
        Some(PcmParams {
            buffer_bytes: 5760,
            period_bytes: 1920,
            features: XRUNS,
            channels: 1,
        })
    );
    assert_eq!(
        r.dev().stream(),
        StreamView {
            running: false,
            channels: 1
        }
    );
    // Another stream id, or a request too short for its kind: BAD_MSG,
    // whatever the state allows.
    assert_eq!(r.pcm_for(code::PCM_PREPARE, 1), status::BAD_MSG);
    assert_eq!(r.pcm_for(code::PCM_PREPARE, u32::MAX), status::BAD_MSG);
    let mut other = params(2, PERIOD, 2);
    other.stream_id = 1;
    assert_eq!(r.set_params(other), status::BAD_MSG);
    let short = r.ctl(&params(2, PERIOD, 2).to_bytes()[..23], 0);
    assert_eq!(short.status, status::BAD_MSG);
    let short = r.ctl(&pcm_hdr(code::PCM_PREPARE, 0)[..7], 0);
    assert_eq!(short.status, status::BAD_MSG);
    assert_eq!(r.dev().state(), StreamState::ParamsSet);
    assert_eq!(r.dev().params().unwrap().channels, 1);
    // The PCM header in pieces is fine (§2.7.4).
    let a = r.put(&pcm_hdr(code::PCM_PREPARE, 0));
    let h = r.put(&[UNSET; 4]);
    r.add(
        CONTROL_QUEUE,
        &[
            (a, 3, false),
            (a + 3, 5, false),
            (h, 1, true),
            (h + 1, 3, true),
        ],
        true,
    );
    let _ = r.kick(CONTROL_QUEUE);
    assert_eq!(r.used(CONTROL_QUEUE)[0].1, 4);
    assert_eq!(r.mem.read_u32(h).unwrap(), status::OK);
    assert_eq!(r.dev().state(), StreamState::Prepared);
}

#[test]
fn set_params_refuses_what_the_stream_does_not_support() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.goto(StreamState::Prepared);
    let good = params(2, PERIOD, 4);
    let before = r.dev().params();
    let not_supp = [
        SetParams { format: 4, ..good },
        SetParams { format: 6, ..good },
        SetParams {
            format: 255,
            ..good
        },
        SetParams { rate: 6, ..good },
        SetParams { rate: 8, ..good },
        SetParams {
            channels: 0,
            ..good
        },
        SetParams {
            channels: 3,
            ..good
        },
        SetParams {
            features: 1 << pcm_feature::MSG_POLLING,
            ..good
        },
        SetParams {
            features: 1 << pcm_feature::SHMEM_HOST,
            ..good
        },
        SetParams {
            features: XRUNS | 1 << 31,
            ..good
        },
        // Beyond the limits.
        params(2, 188, 4),
        params(2, 32772, 2),
        params(2, 16384, 5),
    ];
    for p in not_supp {
        assert_eq!(r.set_params(p), status::NOT_SUPP, "{p:?}");
    }
    let bad = [
        params(2, 0, 4),
        params(2, 962, 4),
        SetParams {
            buffer_bytes: 1000,
            ..good
        },
        SetParams {
            buffer_bytes: 0,
            ..good
        },
    ];
    for p in bad {
        assert_eq!(r.set_params(p), status::BAD_MSG, "{p:?}");
    }
    assert_eq!(r.dev().params(), before, "nothing changed");
    assert_eq!(r.dev().state(), StreamState::Prepared);
    // Custom limits.
    let mut ram2 = vec![0u8; RAM];
    let limits = SoundLimits {
        period_bytes_min: 1920,
        period_bytes_max: 3840,
        buffer_bytes_max: 7680,
    };
    let mut r2 = Rig::idle(&mut ram2, VirtioSound::new(limits));
    assert!(r2.bring_up(LINUX).driver_ok);
    assert_eq!(r2.set_params(params(2, PERIOD, 4)), status::NOT_SUPP);
    assert_eq!(r2.set_params(params(2, 3840, 3)), status::NOT_SUPP);
    assert_eq!(r2.set_params(params(2, 3840, 2)), status::OK);
    assert_eq!(r2.set_params(params(1, 1920, 4)), status::OK);
    assert_eq!(r2.dev().limits(), limits);
}

#[test]
fn linux_plays_a_stream_whatever_the_mixer_period() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.post_events(64);
    // aplay: 4 periods of 240 frames, pre-buffered, then started.
    r.linux_setup(2, PERIOD, 4);
    let heads = r.tx(&(0..4)
        .map(|m| stereo(240 * m, 240 * (m + 1)))
        .collect::<Vec<_>>());
    assert_eq!(r.dev().queued_buffers(), 4);
    assert_eq!(r.dev().queued_bytes(), 3840);
    // Prepared: nothing plays yet.
    assert_eq!(r.pull(100), (vec![0; 200], 0));
    assert_eq!(r.tx_done(), []);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(
        r.dev().stream(),
        StreamView {
            running: true,
            channels: 2
        }
    );
    // Periods of 100 frames: the messages complete as their last frame
    // is taken, in order, each with what is still queued behind it.
    let mut got = vec![];
    let mut done = vec![];
    for _ in 0..9 {
        let (out, n) = r.pull(100);
        assert_eq!(n, 100);
        got.extend(out);
        done.extend(r.tx_done());
    }
    assert_eq!(got, signal(0, 900));
    let ok = |latency_bytes| PcmStatus {
        status: status::OK,
        latency_bytes,
    };
    assert_eq!(
        done,
        [
            (heads[0], 8, ok(2880)),
            (heads[1], 8, ok(1920)),
            (heads[2], 8, ok(960)),
        ]
    );
    // The driver refills as each completes (the new ALSA `ack` path).
    let more = r.tx(&[stereo(960, 1200), stereo(1200, 1440)]);
    let (out, n) = r.pull(340);
    assert_eq!((out, n), (signal(900, 1240), 340));
    assert_eq!(
        r.tx_done(),
        [(heads[3], 8, ok(1920)), (more[0], 8, ok(960))]
    );
    // One mixer period covering several messages and running short.
    let (out, n) = r.pull(500);
    assert_eq!(n, 200);
    assert_eq!(&out[..400], &signal(1240, 1440)[..]);
    assert_eq!(&out[400..], &[0; 600][..]);
    assert_eq!(r.tx_done(), [(more[1], 8, ok(0))]);
    let st = r.dev().stats();
    assert_eq!((st.tx_requests, st.tx_completed), (6, 6));
    assert_eq!(st.frames_played, 1440);
    assert_eq!(st.underruns, 1);
    // 1440 frames are 6 periods of 240; the underrun's XRUN after them.
    let events = r.events();
    let elapsed = Event {
        code: event::PCM_PERIOD_ELAPSED,
        data: 0,
    };
    let xrun = Event {
        code: event::PCM_XRUN,
        data: 0,
    };
    assert_eq!(events, [vec![elapsed; 6], vec![xrun]].concat());
    assert_eq!(r.dev().queued_bytes(), 0);
}

#[test]
fn a_mono_stream_plays_on_both_channels() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.linux_setup(1, 480, 4);
    let mono: Vec<i16> = (0..480).map(|k| (k * 37 - 9000) as i16).collect();
    let heads = r.tx(&[le(&mono[..240]), le(&mono[240..])]);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.dev().stream().channels, 1);
    let (out, n) = r.pull(300);
    assert_eq!(n, 300);
    let want: Vec<i16> = mono[..300].iter().flat_map(|s| [*s, *s]).collect();
    assert_eq!(out, want);
    let (out, n) = r.pull(300);
    assert_eq!(n, 180);
    let want: Vec<i16> = mono[300..].iter().flat_map(|s| [*s, *s]).collect();
    assert_eq!(&out[..360], &want[..]);
    assert!(out[360..].iter().all(|s| *s == 0));
    let done: Vec<_> = r
        .tx_done()
        .iter()
        .map(|d| (d.0, d.2.latency_bytes))
        .collect();
    assert_eq!(done, [(heads[0], 480), (heads[1], 0)]);
    // Mono frames are 2 bytes: a 2-byte message is whole, a 3-byte one
    // is not.
    let h = r.tx(&[vec![1, 2], vec![1, 2, 3]]);
    let done = r.tx_done();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, h[1]);
    assert_eq!(done[0].2.status, status::IO_ERR);
    assert_eq!(r.pull(2), (vec![0x0201, 0x0201, 0, 0], 1));
    // A dangling odd sample is zeroed, never filled.
    let _ = r.tx(&[le(&[7, 8])]);
    let mut out = vec![9i16; 3];
    let (n, _) = r.t.with_device(&r.mem, |dev, ctx| dev.pull(&mut out, ctx));
    assert_eq!((n, out), (1, vec![7, 7, 0]));
    r.dev().check_invariants().unwrap();
}

#[test]
fn one_xrun_event_per_underrun_episode() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.post_events(7);
    r.linux_setup(2, PERIOD, 4);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    let xrun = Event {
        code: event::PCM_XRUN,
        data: 0,
    };
    // Started with nothing queued: an underrun, reported once however
    // long it lasts.
    for _ in 0..5 {
        assert_eq!(r.pull(240), (vec![0; 480], 0));
    }
    assert_eq!(r.events(), [xrun]);
    assert_eq!(r.dev().stats().underruns, 1);
    // Data flows again (a full period): the episode is over. A partial
    // one starts the next.
    let _ = r.tx(&[stereo(0, 240), stereo(240, 300)]);
    assert_eq!(r.pull(240).1, 240);
    assert_eq!(r.events().len(), 1, "one period elapsed");
    assert_eq!(r.pull(240).1, 60);
    assert_eq!(r.pull(240).1, 0);
    assert_eq!(r.events(), [xrun]);
    assert_eq!(r.dev().stats().underruns, 2);
    // STOP and START again begin a new run: a new episode.
    assert_eq!(r.pcm(code::PCM_STOP), status::OK);
    assert_eq!(r.pull(240), (vec![0; 480], 0), "stopped: not an underrun");
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.pull(240).1, 0);
    assert_eq!(r.events(), [xrun]);
    // No eventq buffer left: counted as dropped.
    let _ = r.tx(&[stereo(0, 240)]);
    assert_eq!(r.pull(240).1, 240);
    assert_eq!(r.pull(240).1, 0);
    let _ = r.tx(&[stereo(0, 240)]);
    assert_eq!(r.pull(240).1, 240);
    assert_eq!(r.pull(240).1, 0);
    let st = r.dev().stats();
    assert_eq!(st.underruns, 5);
    assert_eq!(st.xrun_events, 4);
    assert_eq!(st.xrun_events_dropped, 1);
    // 1200 + 960 + 960 bytes played: 3 periods.
    assert_eq!((st.period_events, st.period_events_dropped), (3, 0));
    assert_eq!(r.events().len(), 3, "a period, an XRUN, a period");
    // A pull of nothing neither starts nor ends an episode.
    assert_eq!(r.pull(0), (vec![], 0));
    assert_eq!(r.dev().stats().underruns, 5);

    // A driver that did not select EVT_XRUNS gets no XRUN events, but
    // the underruns are still counted.
    let _ = write32(&mut r.t, reg::STATUS, 0);
    r.rebind();
    r.post_events(8);
    let mut quiet = params(2, PERIOD, 4);
    quiet.features = 0;
    assert_eq!(r.set_params(quiet), status::OK);
    assert_eq!(r.pcm(code::PCM_PREPARE), status::OK);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    let _ = r.tx(&[stereo(0, 240)]);
    assert_eq!(r.pull(480).1, 240);
    let st = r.dev().stats();
    assert_eq!(
        (st.underruns, st.xrun_events, st.xrun_events_dropped),
        (6, 4, 1)
    );
    let events = r.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].code, event::PCM_PERIOD_ELAPSED);
}

#[test]
fn period_elapsed_events_follow_the_bytes_played() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.post_events(16);
    // Periods of 480 frames; messages of two periods (a driver may send
    // any size) and the mixer pulling 100 frames at a time.
    r.linux_setup(2, 1920, 4);
    let _ = r.tx(&[stereo(0, 960), stereo(960, 1920)]);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    let mut seen = 0;
    for i in 1..=19 {
        assert_eq!(r.pull(100).1, 100);
        seen += r.events().len();
        assert_eq!(seen, i * 100 / 480, "after {} frames", i * 100);
    }
    // A pull over several periods sends them all.
    let _ = r.tx(&[stereo(0, 960), stereo(960, 1920)]);
    assert_eq!(r.pull(1500).1, 1500);
    assert_eq!(r.events().len(), (1900 + 1500) / 480 - seen);
    // PREPARE starts the count over.
    assert_eq!(r.pcm(code::PCM_STOP), status::OK);
    assert_eq!(r.pcm(code::PCM_RELEASE), status::OK);
    assert_eq!(r.pcm(code::PCM_PREPARE), status::OK);
    let _ = r.tx(&[stereo(0, 960)]);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.pull(479).1, 479);
    assert_eq!(r.events(), []);
    assert_eq!(r.pull(1).1, 1);
    assert_eq!(r.events().len(), 1);
    // Without eventq buffers, events are dropped and counted, never
    // kept for later.
    let _ = r.tx(&[stereo(0, 960), stereo(0, 960), stereo(0, 960)]);
    let before = r.dev().stats();
    assert_eq!(before.period_events, 8);
    let free = 16 - 8;
    assert_eq!(r.pull(2400).1, 2400);
    let st = r.dev().stats();
    assert_eq!(st.period_events - before.period_events, 5);
    assert_eq!(st.period_events_dropped, 0);
    let _ = r.events();
    let left = free - 5;
    let _ = r.tx(&vec![stereo(0, 960); 12]);
    for _ in 0..24 {
        assert_eq!(r.pull(480).1, 480);
    }
    let st = r.dev().stats();
    assert_eq!(st.period_events - before.period_events, 5 + left as u64);
    assert_eq!(st.period_events_dropped, 24 - left as u64);
    assert_eq!(r.events().len(), left);
    r.post_events(4);
    let _ = r.tx(&[stereo(0, 960)]);
    assert_eq!(r.pull(960).1, 960);
    assert_eq!(r.events().len(), 2, "only the new periods");
}

#[test]
fn messages_wait_while_prepared_or_stopped_and_release_returns_them() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.linux_setup(2, PERIOD, 4);
    let heads = r.tx(&(0..4)
        .map(|m| stereo(240 * m, 240 * (m + 1)))
        .collect::<Vec<_>>());
    assert_eq!(r.pull(240), (vec![0; 480], 0));
    // SET_PARAMS would change the framing of the queued messages.
    assert_eq!(r.set_params(params(1, PERIOD, 4)), status::BAD_MSG);
    assert_eq!(r.dev().params().unwrap().channels, 2);
    // PREPARE again keeps them.
    assert_eq!(r.pcm(code::PCM_PREPARE), status::OK);
    assert_eq!(r.dev().queued_buffers(), 4);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.pull(300), (signal(0, 300), 300));
    // Paused (ALSA's PAUSE_PUSH is a STOP): nothing moves.
    assert_eq!(r.pcm(code::PCM_STOP), status::OK);
    assert_eq!(r.pull(300), (vec![0; 600], 0));
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.pull(100), (signal(300, 400), 100));
    assert_eq!(r.tx_done().len(), 1);
    // Stop, release: the three left (one half played) come back OK with
    // no latency, before the RELEASE is answered; Linux waits for that.
    assert_eq!(r.pcm(code::PCM_STOP), status::OK);
    let rel = r.ctl(&pcm_hdr(code::PCM_RELEASE, 0), 0);
    assert_eq!(rel.status, status::OK);
    let ok0 = PcmStatus {
        status: status::OK,
        latency_bytes: 0,
    };
    assert_eq!(
        r.tx_done(),
        [(heads[1], 8, ok0), (heads[2], 8, ok0), (heads[3], 8, ok0)]
    );
    assert_eq!((r.dev().queued_buffers(), r.dev().queued_bytes()), (0, 0));
    let st = r.dev().stats();
    assert_eq!((st.tx_completed, st.tx_released), (1, 3));
    // Released: messages are refused until PREPARE.
    let late = r.tx(&[stereo(0, 240)]);
    let done = r.tx_done();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].0, done[0].2.status), (late[0], status::IO_ERR));
    assert_eq!(r.pcm(code::PCM_PREPARE), status::OK);
    let _ = r.tx(&[stereo(0, 240)]);
    assert_eq!(r.dev().queued_buffers(), 1);
    // RELEASE straight from PREPARE, too.
    assert_eq!(r.pcm(code::PCM_RELEASE), status::OK);
    assert_eq!(r.tx_done().len(), 1);
    assert_eq!(r.dev().stats().tx_released, 4);
}

#[test]
fn messages_queued_before_a_command_are_taken_first() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.linux_setup(2, PERIOD, 4);
    // The old Linux trigger path: queue every period, then START; the
    // hypervisor happens to serve the controlq notification first.
    for m in 0..4 {
        r.add_tx(STREAM_ID, &stereo(240 * m, 240 * (m + 1)));
    }
    r.q[usize::from(TX_QUEUE)].publish(&r.mem);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.dev().queued_buffers(), 4);
    assert_eq!(r.pull(960), (signal(0, 960), 960));
    assert_eq!(r.dev().stats().underruns, 0);
    // And a pull takes what the driver published without notifying.
    r.add_tx(STREAM_ID, &stereo(960, 1200));
    r.q[usize::from(TX_QUEUE)].publish(&r.mem);
    assert_eq!(r.pull(240), (signal(960, 1200), 240));
    assert_eq!(r.tx_done().len(), 5);
}

/// Guest memory that refuses reads of one range (though `check` accepts
/// it), as memory taken away under the device would.
struct Refusing<'a> {
    mem: &'a SliceMemory<'a>,
    from: u64,
    to: u64,
}

impl GuestMemory for Refusing<'_> {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        if gpa < self.to && gpa + buf.len() as u64 > self.from {
            return Err(MemoryError {
                gpa,
                len: buf.len() as u64,
            });
        }
        self.mem.read(gpa, buf)
    }
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
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
fn samples_are_read_when_played() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.linux_setup(2, PERIOD, 4);
    let pcm = stereo(0, 240);
    let hdr = r.put(&0u32.to_le_bytes());
    let data = r.put(&pcm);
    let st = r.put(&[UNSET; 8]);
    // The PCM bytes in odd-sized pieces, samples split between them.
    let head = r.add(
        TX_QUEUE,
        &[
            (hdr, 4, false),
            (data, 3, false),
            (data + 3, 510, false),
            (data + 513, 447, false),
            (st, 1, true),
            (st + 1, 7, true),
        ],
        false,
    );
    r.status_at.insert(head, st);
    let _ = r.kick(TX_QUEUE);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.pull(10), (signal(0, 10), 10));
    // The guest rewrites frames not yet played: the mixer hears the new
    // ones.
    r.mem.write(data + 40 * 4, &stereo(1000, 1010)).unwrap();
    let (out, _) = r.pull(50);
    assert_eq!(&out[..60], &signal(10, 40)[..]);
    assert_eq!(&out[60..80], &signal(1000, 1010)[..]);
    // Memory that fails under the device: silence, and IO_ERR.
    let refusing = Refusing {
        mem: &r.mem,
        from: data + 100 * 4,
        to: data + 101 * 4,
    };
    let mut out = vec![7i16; 400];
    let (n, _) =
        r.t.with_device(&refusing, |dev, ctx| dev.pull(&mut out, ctx));
    // Frames 60..188 are one chunk, which failed; 188..240 play.
    assert_eq!(n, 180);
    assert!(out[..256].iter().all(|s| *s == 0), "the failed chunk");
    assert_eq!(&out[256..360], &signal(188, 240)[..]);
    assert!(out[360..].iter().all(|s| *s == 0));
    let done = r.tx_done();
    assert_eq!(
        done,
        [(
            head,
            8,
            PcmStatus {
                status: status::IO_ERR,
                latency_bytes: 0
            }
        )]
    );
    r.dev().check_invariants().unwrap();
}

#[test]
fn malformed_io_messages_are_answered_at_once() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    // Before PREPARE: refused.
    let h = r.tx(&[stereo(0, 10)]);
    assert_eq!(
        r.tx_done()[0],
        (
            h[0],
            8,
            PcmStatus {
                status: status::IO_ERR,
                latency_bytes: 0
            }
        )
    );
    r.linux_setup(2, PERIOD, 4);
    let _ = r.tx(&[stereo(0, 240)]);
    let io_err = |r: &mut Rig, head: u16| {
        let _ = r.kick(TX_QUEUE);
        let done = r.tx_done();
        assert_eq!(done.len(), 1, "message {head}");
        assert_eq!((done[0].0, done[0].1), (head, 8));
        assert_eq!(done[0].2.status, status::IO_ERR);
        assert_eq!(done[0].2.latency_bytes, 960, "what is queued");
    };
    // Another stream.
    let head = r.add_tx(1, &stereo(0, 10));
    io_err(&mut r, head);
    // Partial frames; more than the buffer.
    let head = r.add_tx(STREAM_ID, &[0; 6]);
    io_err(&mut r, head);
    let head = r.add_tx(STREAM_ID, &vec![0; 3844]);
    io_err(&mut r, head);
    // A header of 2 bytes.
    let st = r.put(&[UNSET; 8]);
    let hdr = r.put(&[0; 4]);
    let head = r.add(TX_QUEUE, &[(hdr, 2, false), (st, 8, true)], true);
    r.status_at.insert(head, st);
    io_err(&mut r, head);
    // PCM bytes outside RAM, or wrapping.
    for (gpa, len) in [(END - 8, 16), (BASE - 4, 8), (0, 4), (u64::MAX - 3, 4)] {
        let st = r.put(&[UNSET; 8]);
        let head = r.add(
            TX_QUEUE,
            &[(hdr, 4, false), (gpa, len, false), (st, 8, true)],
            true,
        );
        r.status_at.insert(head, st);
        if gpa > u64::MAX - 16 {
            // The ring refuses a buffer whose end wraps: a broken ring.
            r.q[usize::from(TX_QUEUE)].publish(&r.mem);
            let _ = r.notify(TX_QUEUE);
            assert!(r.needs_reset());
            continue;
        }
        io_err(&mut r, head);
    }
    let _ = write32(&mut r.t, reg::STATUS, 0);
    r.rebind();
    r.linux_setup(2, PERIOD, 4);
    // No status to write: returned with nothing written.
    let hdr = r.put(&[0; 4]);
    let pcm = r.put(&stereo(0, 4));
    let st = r.put(&[UNSET; 8]);
    for bufs in [
        vec![(hdr, 4, false), (pcm, 16, false)],
        vec![(hdr, 4, false), (pcm, 16, false), (st, 7, true)],
        vec![(hdr, 4, false), (END - 4, 8, true)],
        vec![(hdr, 4, false), (st, 4, true), (END - 3, 4, true)],
        vec![(hdr, 0, false)],
        vec![],
    ] {
        let head = if bufs.is_empty() {
            // A zero-length descriptor alone.
            let h = r.next_desc[2];
            r.q[2].desc(&r.mem, h, st, 0, 0, 0);
            r.q[2].push_head(&r.mem, h);
            r.next_desc[2] = (h + 1) % QUEUE_SIZE;
            h
        } else {
            r.add(TX_QUEUE, &bufs, true)
        };
        let _ = r.kick(TX_QUEUE);
        assert_eq!(r.used(TX_QUEUE), [(u32::from(head), 0)], "{bufs:x?}");
    }
    assert_eq!(r.mem.read_u64(st).unwrap(), u64::from_le_bytes([UNSET; 8]));
    // The status is the last 8 writable bytes, whatever comes before.
    let wide = r.put(&[UNSET; 24]);
    let head = r.add(
        TX_QUEUE,
        &[(hdr, 4, false), (pcm, 16, false), (wide, 24, true)],
        false,
    );
    r.status_at.insert(head, wide + 16);
    let _ = r.kick(TX_QUEUE);
    assert_eq!(r.dev().queued_buffers(), 1);
    // An empty message is fine: completed when its turn comes.
    let empty = r.tx(&[vec![]]);
    assert_eq!(r.dev().queued_buffers(), 2);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.pull(8), ([signal(0, 4), vec![0; 8]].concat(), 4));
    let done = r.tx_done();
    assert_eq!(done.len(), 2);
    assert_eq!((done[0].0, done[0].2.status), (head, status::OK));
    assert_eq!((done[1].0, done[1].2.status), (empty[0], status::OK));
    assert_eq!(r.read(wide, 16), [UNSET; 16]);
    let st = r.dev().stats();
    assert_eq!(st.tx_bad, 1 + 4 + 3 + 6);
    assert!(!r.needs_reset());
}

#[test]
fn the_device_holds_at_most_a_ring_of_messages_and_regions() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.linux_setup(2, PERIOD, 4);
    // 64 messages of 4 pieces each: the region store (256) holds 51.
    let hdr = r.put(&[0; 4]);
    let pcm = r.put(&stereo(0, 4));
    let mut heads = vec![];
    for _ in 0..64 {
        let st = r.put(&[UNSET; 8]);
        let bufs: Vec<_> = (0..4)
            .map(|i| (pcm + 4 * i, 4, false))
            .chain([(st, 8, true)])
            .collect();
        let head = r.add(TX_QUEUE, &[vec![(hdr, 4, false)], bufs].concat(), true);
        r.status_at.insert(head, st);
        heads.push(head);
    }
    let _ = r.kick(TX_QUEUE);
    assert_eq!(r.dev().queued_buffers(), 51);
    let done = r.tx_done();
    assert_eq!(done.len(), 13);
    assert!(done.iter().all(|d| d.2.status == status::IO_ERR));
    assert!(r.calls <= 2, "a ring's worth in one call");
    // Played, they make room.
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.pull(51 * 4).1, 51 * 4);
    assert_eq!(r.tx_done().len(), 51);
    // One-piece messages: the ring is the limit.
    let _ = r.tx(&vec![stereo(0, 1); 64]);
    assert_eq!(r.dev().queued_buffers(), 64);
    assert_eq!(r.tx_done(), []);
}

#[test]
fn malformed_control_requests_change_nothing() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let req = r.put(&params(2, PERIOD, 4).to_bytes());
    let h = r.put(&[UNSET; 4]);
    // Nowhere to answer: returned with nothing written, and not carried
    // out.
    for bufs in [
        vec![(req, 24, false)],
        vec![(req, 24, false), (h, 3, true)],
        vec![(req, 24, false), (END - 2, 4, true)],
        vec![(req, 24, false), (h, 2, true), (END - 1, 2, true)],
    ] {
        let head = r.add(CONTROL_QUEUE, &bufs, true);
        let _ = r.kick(CONTROL_QUEUE);
        assert_eq!(r.used(CONTROL_QUEUE), [(u32::from(head), 0)]);
    }
    assert_eq!(r.dev().state(), StreamState::Unset);
    assert_eq!(r.read(h, 4), [UNSET; 4]);
    // A request that cannot be read: BAD_MSG.
    for bufs in [
        vec![(h, 4, true)],
        vec![(END - 8, 24, false), (h, 4, true)],
        vec![(req, 2, false), (h, 4, true)],
        vec![(req, 0, false), (h, 4, true)],
    ] {
        r.mem.write(h, &[UNSET; 4]).unwrap();
        let head = r.add(CONTROL_QUEUE, &bufs, false);
        let _ = r.kick(CONTROL_QUEUE);
        assert_eq!(r.used(CONTROL_QUEUE), [(u32::from(head), 4)]);
        assert_eq!(r.mem.read_u32(h).unwrap(), status::BAD_MSG);
    }
    assert_eq!(r.dev().state(), StreamState::Unset);
    let st = r.dev().stats();
    assert_eq!((st.control_requests, st.control_errors), (8, 8));
    assert!(!r.needs_reset());
    // A full ring of requests, over and over: a bounded number of calls.
    for _ in 0..3 {
        for _ in 0..64 {
            let q = r.put(&query(code::PCM_INFO, 0, 1, 32));
            let resp = r.put(&[UNSET; 36]);
            r.add(CONTROL_QUEUE, &[(q, 16, false), (resp, 36, true)], false);
        }
        let _ = r.kick(CONTROL_QUEUE);
        assert!(r.calls <= 2);
        assert_eq!(r.used(CONTROL_QUEUE).len(), 64);
    }
}

#[test]
fn bad_event_buffers_are_returned_empty() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let a = r.put(&[UNSET; 16]);
    let bad = [
        r.add(EVENT_QUEUE, &[(a, 8, false)], false),
        r.add(EVENT_QUEUE, &[(a, 7, true)], false),
        r.add(EVENT_QUEUE, &[(END - 4, 8, true)], false),
        r.add(EVENT_QUEUE, &[(a, 4, true), (END - 2, 4, true)], false),
        r.add(EVENT_QUEUE, &[(a, 0, true)], false),
    ];
    // Good: split 3 + 5 through an indirect table, after a readable part
    // (ignored).
    let b = r.put(&[UNSET; 16]);
    let good = r.add(
        EVENT_QUEUE,
        &[(a, 4, false), (b, 3, true), (b + 8, 5, true)],
        true,
    );
    let _ = r.kick(EVENT_QUEUE);
    assert_eq!(r.used(EVENT_QUEUE), [], "nothing taken without an event");
    r.linux_setup(2, PERIOD, 4);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    let _ = r.pull(10);
    let used = r.used(EVENT_QUEUE);
    let want: Vec<_> = bad
        .iter()
        .map(|h| (u32::from(*h), 0))
        .chain([(u32::from(good), 8)])
        .collect();
    assert_eq!(used, want);
    let mut e = r.read(b, 3);
    e.extend(r.read(b + 8, 5));
    assert_eq!(
        Event::from_bytes(&e.try_into().unwrap()),
        Event {
            code: event::PCM_XRUN,
            data: 0
        }
    );
    assert_eq!(r.read(a, 16), [UNSET; 16]);
    let st = r.dev().stats();
    assert_eq!((st.bad_event_buffers, st.xrun_events), (5, 1));
    // The eventq notification itself does nothing.
    r.post_events(2);
    assert_eq!(r.used(EVENT_QUEUE), []);
}

#[test]
fn the_rxq_has_no_stream_behind_it() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.linux_setup(2, PERIOD, 4);
    let hdr = r.put(&0u32.to_le_bytes());
    let data = r.put(&[UNSET; 960]);
    let st = r.put(&[UNSET; 8]);
    // As Linux would capture: header, empty buffer, status.
    let head = r.add(
        RX_QUEUE,
        &[(hdr, 4, false), (data, 960, true), (st, 8, true)],
        true,
    );
    let _ = r.kick(RX_QUEUE);
    assert_eq!(r.used(RX_QUEUE), [(u32::from(head), 8)]);
    assert_eq!(
        PcmStatus::from_bytes(&r.read(st, 8).try_into().unwrap()).status,
        status::IO_ERR
    );
    assert_eq!(r.read(data, 960), [UNSET; 960]);
    // Junk: returned with nothing written.
    let junk = [
        r.add(RX_QUEUE, &[(hdr, 4, false)], false),
        r.add(RX_QUEUE, &[(hdr, 4, false), (END - 4, 8, true)], false),
        r.add(RX_QUEUE, &[(st, 7, true)], false),
    ];
    let _ = r.kick(RX_QUEUE);
    let want: Vec<_> = junk.iter().map(|h| (u32::from(*h), 0)).collect();
    assert_eq!(r.used(RX_QUEUE), want);
    assert_eq!(r.dev().stats().rx_requests, 4);
    assert!(!r.needs_reset());
}

#[test]
fn a_broken_ring_needs_a_reset() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    r.linux_setup(2, PERIOD, 4);
    let _ = r.tx(&[stereo(0, 240), stereo(240, 480)]);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.pull(10).1, 10);
    // The txq's available index runs ahead.
    let _ = write32(&mut r.t, reg::INTERRUPT_ACK, 3);
    r.level = false;
    r.q[2].set_avail_idx(&r.mem, 1000);
    let fx = r.notify(TX_QUEUE);
    assert_eq!(fx.irq, Some(true), "config change interrupt");
    assert!(r.needs_reset());
    assert_eq!(read32(&mut r.t, reg::INTERRUPT_STATUS), 2);
    let st = r.dev().stats();
    assert_eq!((st.broken_rings, st.tx_discarded), (1, 2));
    assert!(!r.dev().stream().running);
    assert_eq!(r.pull(10), (vec![0; 20], 0));
    // The driver resets and binds again.
    let _ = write32(&mut r.t, reg::STATUS, 0);
    r.rebind();
    assert_eq!(r.dev().state(), StreamState::Unset);
    r.linux_setup(2, PERIOD, 4);
    let _ = r.tx(&[stereo(0, 240)]);
    assert_eq!(r.pcm(code::PCM_START), status::OK);
    assert_eq!(r.pull(240), (signal(0, 240), 240));
    // A broken eventq, found while sending an event.
    r.q[1].desc(&r.mem, 0, BASE + 0x9000, 8, DESC_F_WRITE | DESC_F_NEXT, 200);
    r.q[1].push_head(&r.mem, 0);
    r.q[1].publish(&r.mem);
    assert_eq!(r.pull(240).1, 0);
    assert!(r.needs_reset());
    assert_eq!(r.dev().stats().broken_rings, 2);
}

#[test]
fn reset_mid_stream_forgets_the_stream() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    for by_driver in [true, false] {
        r.post_events(4);
        r.linux_setup(2, PERIOD, 4);
        let _ = r.tx(&[stereo(0, 240), stereo(240, 480), stereo(480, 720)]);
        assert_eq!(r.pcm(code::PCM_START), status::OK);
        assert_eq!(r.pull(300).1, 300);
        let discarded = r.dev().stats().tx_discarded;
        let fx = if by_driver {
            write32(&mut r.t, reg::STATUS, 0)
        } else {
            r.t.reset()
        };
        assert!(fx.reset);
        assert_eq!(r.dev().state(), StreamState::Unset);
        assert_eq!(r.dev().params(), None);
        assert_eq!(r.dev().stream(), StreamView::default());
        assert_eq!((r.dev().queued_buffers(), r.dev().queued_bytes()), (0, 0));
        assert_eq!(r.dev().stats().tx_discarded, discarded + 2);
        r.dev().check_invariants().unwrap();
        // Nothing plays, and the old ring is not touched.
        assert_eq!(r.pull(300), (vec![0; 600], 0));
        r.rebind();
        assert_eq!(r.pcm(code::PCM_PREPARE), status::BAD_MSG, "no parameters");
        r.linux_setup(1, PERIOD, 2);
        let _ = r.tx(&[le(&[5, 6])]);
        assert_eq!(r.pcm(code::PCM_START), status::OK);
        assert_eq!(r.pull(2), (vec![5, 5, 6, 6], 2));
        let _ = write32(&mut r.t, reg::STATUS, 0);
        r.rebind();
    }
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

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Mostly one of `likely`, sometimes anything.
    fn pick(&mut self, likely: &[u32]) -> u32 {
        if self.below(8) == 0 {
            self.next() as u32
        } else {
            likely[self.below(likely.len() as u64) as usize]
        }
    }
}

#[test]
fn junk_on_every_queue_never_breaks_the_model() {
    let mut ram = vec![0u8; RAM];
    let mut r = Rig::new(&mut ram);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let codes = [
        code::JACK_INFO,
        code::PCM_INFO,
        code::CHMAP_INFO,
        code::JACK_REMAP,
        code::PCM_SET_PARAMS,
        code::PCM_PREPARE,
        code::PCM_RELEASE,
        code::PCM_START,
        code::PCM_STOP,
        code::PCM_START,
    ];
    let mut played = 0u64;
    for step in 0..6000 {
        let q = rng.below(4) as u16;
        match rng.below(20) {
            // A control request: mostly well formed, with fields near
            // the edges.
            0..=5 => {
                let code = rng.pick(&codes);
                let mut req = match code {
                    code::PCM_SET_PARAMS => SetParams {
                        stream_id: rng.pick(&[0, 0, 0, 1]),
                        buffer_bytes: rng.pick(&[960, 1920, 3840, 32768, 65536, 0, 1000]),
                        period_bytes: rng.pick(&[960, 480, 192, 16384, 0, 962]),
                        features: rng.pick(&[0, XRUNS]),
                        channels: rng.pick(&[1, 2, 2, 3]) as u8,
                        format: rng.pick(&[5, 5, 5, 4]) as u8,
                        rate: rng.pick(&[7, 7, 7, 6]) as u8,
                    }
                    .to_bytes()
                    .to_vec(),
                    code::JACK_INFO | code::PCM_INFO | code::CHMAP_INFO => query(
                        code,
                        rng.pick(&[0, 0, 1]),
                        rng.pick(&[0, 1, 1, 2]),
                        rng.pick(&[24, 32, 40, 8]),
                    ),
                    _ => pcm_hdr(code, rng.pick(&[0, 0, 0, 1])),
                };
                if rng.below(8) == 0 {
                    req.truncate(rng.below(req.len() as u64 + 8) as usize);
                }
                let _ = r.ctl_raw(&req, rng.below(48) as usize, rng.below(6) == 0);
            }
            // I/O messages: mostly whole frames.
            6..=11 => {
                for _ in 0..rng.below(6) {
                    let len = match rng.below(4) {
                        0 => rng.below(4000) as usize,
                        _ => 4 * rng.below(600) as usize,
                    };
                    let stream = rng.pick(&[0, 0, 0, 0, 1]);
                    let pcm: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    r.add_tx(stream, &pcm);
                }
                let _ = r.kick(TX_QUEUE);
            }
            // Raw chains of random buffers on a random queue.
            12 => {
                let n = rng.below(5) as usize;
                let bufs: Vec<_> = (0..n)
                    .map(|_| {
                        let gpa = match rng.below(6) {
                            0 => END - rng.below(32),
                            1 => rng.next(),
                            _ => BUFS + rng.below(0x1000),
                        };
                        let len = rng.below(64) as u32;
                        (gpa.min(u64::MAX - 0x1000), len, rng.below(2) == 0)
                    })
                    .collect();
                let mut sorted = bufs.clone();
                sorted.sort_by_key(|b| b.2);
                if !sorted.is_empty() {
                    r.add(q, &sorted, rng.below(2) == 0);
                    let _ = r.kick(q);
                }
            }
            13 => r.post_events(rng.below(8) as usize),
            // The mixer.
            14..=18 => {
                let frames = rng.below(700) as usize;
                let before = r.dev().stats().frames_played;
                let (out, n) = r.pull(frames);
                assert!(n <= frames);
                assert_eq!(out.len(), 2 * frames);
                assert_eq!(r.dev().stats().frames_played, before + n as u64);
                played += n as u64;
            }
            _ => match rng.below(8) {
                0 => {
                    let _ = r.t.reset();
                    r.rebind();
                }
                1 => {
                    let _ = write32(&mut r.t, reg::STATUS, 0);
                    r.rebind();
                }
                _ => {}
            },
        }
        // Consumed: keep the rings from overflowing (a driver that lets
        // them is a broken ring, tested elsewhere).
        for q in 0..4 {
            let _ = r.used(q);
        }
        if r.needs_reset() {
            let _ = write32(&mut r.t, reg::STATUS, 0);
            r.rebind();
        }
        r.dev()
            .check_invariants()
            .unwrap_or_else(|e| panic!("step {step}: {e}"));
        assert!(r.dev().queued_buffers() <= TX_BUFFERS);
    }
    let st = r.dev().stats();
    assert!(
        played > 0 && st.tx_completed > 0 && st.tx_released > 0,
        "{st:?}"
    );
    assert!(st.control_requests > 1000 && st.control_errors > 100);
    assert!(st.underruns > 0 && st.tx_bad > 0);
}

impl Rig<'_> {
    /// A control request with `payload` writable bytes after the header,
    /// maybe in one buffer with it; whatever comes back.
    fn ctl_raw(&mut self, req: &[u8], payload: usize, joined: bool) -> Vec<(u32, u32)> {
        let rq = self.put(req);
        let resp = self.put(&vec![UNSET; 4 + payload]);
        let mut bufs = vec![];
        if !req.is_empty() {
            bufs.push((rq, req.len() as u32, false));
        }
        if joined {
            bufs.push((resp, 4 + payload as u32, true));
        } else {
            bufs.push((resp, 4, true));
            if payload > 0 {
                bufs.push((resp + 4, payload as u32, true));
            }
        }
        self.add(CONTROL_QUEUE, &bufs, true);
        let _ = self.kick(CONTROL_QUEUE);
        self.used(CONTROL_QUEUE)
    }
}
