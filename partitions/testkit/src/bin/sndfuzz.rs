//! `sndfuzz`: a hostile virtio-snd driver. It brings its device up with
//! the runtime's driver, then sends malformed and abusive requests, one
//! step at a time, and reports what the device did with each: control
//! requests with bad parameters, in the wrong state, of the wrong size or
//! with unknown codes; tx chains with buffers outside its RAM, of zero or
//! giant length, for the wrong stream, without a status buffer, and a
//! flood of them; junk on the event and rx queues. A device that asks for
//! a reset (or loses a request) is reset and brought up again before the
//! next step. At the end it plays one short tone the sane way, which must
//! work, and says `done`. Every wait is bounded, so it never hangs: a
//! step the device does not answer says so.
//!
//! `sndfuzz.skip=<step>,<prefix>*,...` skips steps (by name, or every step
//! whose name starts with a prefix), for devices that a step wedges or
//! crashes: QEMU 10.0 aborts on `query-info-size-count-overflow`.
//!
//! ```text
//! sndfuzz: device at 0x<base> streams <n> queues <control>/<event>/<tx>/<rx>
//! sndfuzz: <step>: ok
//! sndfuzz: <step>: status 0x<code> (<BAD_MSG|NOT_SUPP|IO_ERR|OK|?>), used len <n>[ (more than the buffer)]
//! sndfuzz: <step>: answer of <n> bytes (buffer <n>)   (no room for a whole status)
//! sndfuzz: <step>: device needs reset (status 0x<s>)
//! sndfuzz: <step>: then device needs reset (status 0x<s>)   (after an answer)
//! sndfuzz: <step>: timeout after <ms> ms    (not answered)
//! sndfuzz: <step>: returned, used len <n>, status 0x<code> (<name>) latency <n>
//! sndfuzz: <step>: returned, used len <n>, status not written
//! sndfuzz: <step>: returned, used len <n>, status 0x<code> (<name>) written at the start of the data buffer
//! sndfuzz: <step>: not returned within <ms> ms
//! sndfuzz: <step>: then release -> <ok|error status|...>; chain returned | chain still held
//! sndfuzz: <step>: refused by the driver: <error>
//! sndfuzz: <step>: skipped
//! sndfuzz: re-init -> ok | -> error <e>
//! sndfuzz: re-init: <n> buffers from before the reset came back (status 0x<s>), resetting again
//! sndfuzz: tx-flood: <n> submitted, <n> returned in <ms> ms
//! sndfuzz: stale completions <n>            (used entries naming no chain in flight)
//! sndfuzz: sane play: ok, <n> periods, first returned <us> us after START
//! sndfuzz: sane play: error <what>: <e>
//! sndfuzz: done
//! ```

#![no_std]
#![no_main]

use testkit::rt::virtio_snd::{self, Error, Params, Segment, Sound, code, format, queue, rate};
use testkit::rt::{park, platform, timer, virtio_gpu};
use testkit::{args, println};

testkit::entry!("sndfuzz", main);

/// Guest-physical address that is no partition's RAM.
const OUTSIDE_RAM: u64 = 0x1_0000_0000;
/// Time limit of a control request.
const CONTROL_MS: u64 = 500;
/// How long a hostile chain may take to come back.
const CHAIN_MS: u64 = 300;
/// How long the flood lasts.
const FLOOD_MS: u64 = 500;
/// Most bytes of the giant in-RAM tx buffer.
const GIANT_IN_RAM: u64 = 64 << 20;

/// Scratch area layout: xfer header, status, data.
const HDR: usize = 0;
const STATUS: usize = 64;
const DATA: usize = 128;
const DATA_LEN: u32 = 1920;
const UNWRITTEN: [u8; 8] = [0xff; 8];

/// The stream parameters of a sane play.
const SANE: Params = Params {
    stream: 0,
    buffer_bytes: 4 * 1920,
    period_bytes: 1920,
    features: 0,
    channels: 2,
    format: format::S16,
    rate: rate::R48000,
};

/// A tx case: its name and what builds its chain (from the fuzzer, the
/// free RAM's address and length): up to 4 segments, how many are used.
type TxCase = (
    &'static str,
    fn(&mut Fuzz, u64, u64) -> ([Segment; 4], usize),
);
/// A case of junk on a queue: name, queue, chain (up to 3 segments, how
/// many are used), the stream whose RELEASE should return it.
type QueueCase = (&'static str, u32, [Segment; 3], usize, Option<u32>);

struct Fuzz {
    sound: Sound,
    skip: &'static str,
    scratch: u64,
}

fn le(code: u32, words: &[u32]) -> ([u8; 64], usize) {
    let mut b = [0u8; 64];
    b[0..4].copy_from_slice(&code.to_le_bytes());
    for (i, w) in words.iter().enumerate().take(15) {
        b[4 + 4 * i..8 + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    (b, 4 + 4 * words.len().min(15))
}

fn params_bytes(p: Params) -> [u8; 24] {
    let mut r = [0u8; 24];
    r[0..4].copy_from_slice(&code::PCM_SET_PARAMS.to_le_bytes());
    r[4..8].copy_from_slice(&p.stream.to_le_bytes());
    r[8..12].copy_from_slice(&p.buffer_bytes.to_le_bytes());
    r[12..16].copy_from_slice(&p.period_bytes.to_le_bytes());
    r[16..20].copy_from_slice(&p.features.to_le_bytes());
    r[20] = p.channels;
    r[21] = p.format;
    r[22] = p.rate;
    r
}

impl Fuzz {
    fn skipped(&self, step: &str) -> bool {
        let hit = self.skip.split(',').any(|s| match s.strip_suffix('*') {
            Some(prefix) => step.starts_with(prefix),
            None => s == step,
        });
        if hit {
            println!("sndfuzz: {}: skipped", step);
        }
        hit
    }

    /// Brings the device up again, saying so. A device may keep the
    /// buffers a stream had queued across the reset and return them into
    /// the new rings later (QEMU's does, and then counts them twice): a
    /// RELEASE of each stream flushes them, and if any came back the
    /// device is reset once more.
    fn reinit(&mut self) {
        for attempt in 0..2 {
            if let Err(e) = self.sound.init() {
                println!("sndfuzz: re-init -> error {}", e);
                return;
            }
            if attempt == 1 {
                break;
            }
            for stream in 0..self.sound.config().streams.min(2) {
                let _ = self.sound.pcm(code::PCM_RELEASE, stream);
            }
            self.sound.raw_completions(queue::TX);
            self.sound.raw_completions(queue::RX);
            let stale = self.sound.stale_completions();
            if stale == 0 && !self.sound.needs_reset() {
                break;
            }
            println!(
                "sndfuzz: re-init: {} buffers from before the reset came back (status 0x{:x}), resetting again",
                stale,
                self.sound.device_status()
            );
        }
        println!("sndfuzz: re-init -> ok");
    }

    /// After a step: a device that wants a reset gets one.
    fn settle(&mut self, step: &str, said_so: bool) {
        if self.sound.needs_reset() {
            if !said_so {
                println!(
                    "sndfuzz: {}: then device needs reset (status 0x{:x})",
                    step,
                    self.sound.device_status()
                );
            }
            self.reinit();
        }
    }

    /// Reports an error of the driver's; resets after a lost request.
    fn failed(&mut self, step: &str, e: Error) {
        match e {
            Error::Status(_) | Error::Short(_) | Error::NeedsReset(_) | Error::Timeout(_) => {
                println!("sndfuzz: {}: {}", step, e)
            }
            e => println!("sndfuzz: {}: refused by the driver: {}", step, e),
        }
        match e {
            // After a timeout the device may still hold the request: start
            // afresh.
            Error::NeedsReset(_) | Error::Timeout(_) | Error::Busy => self.reinit(),
            _ => self.settle(step, false),
        }
    }

    /// A control request of `request` with a `response_len`-byte answer
    /// buffer, reported.
    fn control(&mut self, step: &str, request: &[u8], response_len: usize) {
        if self.skipped(step) {
            return;
        }
        let mut response = [0u8; virtio_snd::CONTROL_BYTES];
        let response = &mut response[..response_len.min(virtio_snd::CONTROL_BYTES)];
        match self.sound.request(request, response) {
            Ok(len) if (len as usize) >= 4 && response.len() >= 4 => {
                let s = u32::from_le_bytes([response[0], response[1], response[2], response[3]]);
                if s == code::S_OK && len as usize == response.len() {
                    println!("sndfuzz: {}: ok", step);
                } else {
                    println!(
                        "sndfuzz: {}: status 0x{:x} ({}), used len {}{}",
                        step,
                        s,
                        virtio_snd::status_name(s),
                        len,
                        if len as usize > response.len() {
                            " (more than the buffer)"
                        } else {
                            ""
                        }
                    );
                }
                self.settle(step, false);
            }
            Ok(len) => {
                println!(
                    "sndfuzz: {}: answer of {} bytes (buffer {})",
                    step,
                    len,
                    response.len()
                );
                self.settle(step, false);
            }
            Err(e) => self.failed(step, e),
        }
    }

    /// A request of `code` and `stream`, reported.
    fn pcm(&mut self, step: &str, code: u32, stream: u32) {
        let (r, n) = le(code, &[stream]);
        self.control(step, &r[..n], 4);
    }

    /// The same, not reported unless it fails.
    fn quiet_pcm(&mut self, step: &str, code: u32) {
        if let Err(e) = self.sound.pcm(code, 0) {
            // Some devices refuse a step of the preparation: say so.
            println!("sndfuzz: {}: (preparing: 0x{:x} -> {})", step, code, e);
            self.settle(step, false);
        }
    }

    fn params(&mut self, step: &str, p: Params) {
        self.control(step, &params_bytes(p), 4);
    }

    /// The stream released, set up sanely and prepared (and started).
    fn stream_ready(&mut self, step: &str, start: bool) {
        self.quiet_pcm(step, code::PCM_STOP);
        self.quiet_pcm(step, code::PCM_RELEASE);
        if let Err(e) = self.sound.set_params_with(SANE) {
            println!("sndfuzz: {}: (preparing: set params -> {})", step, e);
            self.settle(step, false);
        }
        self.quiet_pcm(step, code::PCM_PREPARE);
        if start {
            self.quiet_pcm(step, code::PCM_START);
        }
    }

    fn seg(&self, offset: usize, len: u32, device_writes: bool) -> Segment {
        Segment {
            addr: self.scratch + offset as u64,
            len,
            device_writes,
        }
    }

    /// The header, `data` and status segments of a tx chain for `stream`.
    fn tx_parts(&mut self, stream: u32) -> (Segment, Segment, Segment) {
        self.sound.raw_scratch_write(HDR, &stream.to_le_bytes());
        self.sound.raw_scratch_write(STATUS, &UNWRITTEN);
        (
            self.seg(HDR, 4, false),
            self.seg(DATA, DATA_LEN, false),
            self.seg(STATUS, 8, true),
        )
    }

    /// Offers `chain` on queue `q` and reports what comes back. A chain
    /// not returned is followed by a RELEASE of `release` (if given), which
    /// should flush it, then by a reset if it is still held.
    fn chain(&mut self, step: &str, q: u32, chain: &[Segment], release: Option<u32>) {
        if q == queue::RX {
            // To see where a device writes an rx status.
            self.sound.raw_scratch_write(DATA, &UNWRITTEN);
        }
        let head = match self.sound.raw_submit(q, chain) {
            Ok(head) => head,
            Err(e) => return self.failed(step, e),
        };
        match self.sound.raw_wait(q, head, CHAIN_MS) {
            Ok(len) => {
                let mut st = [0u8; 8];
                self.sound.raw_scratch_read(STATUS, &mut st);
                let status = u32::from_le_bytes([st[0], st[1], st[2], st[3]]);
                let latency = u32::from_le_bytes([st[4], st[5], st[6], st[7]]);
                let mut first = [0u8; 8];
                self.sound.raw_scratch_read(DATA, &mut first);
                let misplaced = u32::from_le_bytes([first[0], first[1], first[2], first[3]]);
                if st == UNWRITTEN && q == queue::RX && first != UNWRITTEN {
                    println!(
                        "sndfuzz: {}: returned, used len {}, status 0x{:x} ({}) written at the start of the data buffer",
                        step,
                        len,
                        misplaced,
                        virtio_snd::status_name(misplaced)
                    );
                } else if st == UNWRITTEN {
                    println!(
                        "sndfuzz: {}: returned, used len {}, status not written",
                        step, len
                    );
                } else {
                    println!(
                        "sndfuzz: {}: returned, used len {}, status 0x{:x} ({}) latency {}",
                        step,
                        len,
                        status,
                        virtio_snd::status_name(status),
                        latency
                    );
                }
                self.settle(step, false);
            }
            Err(Error::Timeout(ms)) => {
                println!("sndfuzz: {}: not returned within {} ms", step, ms);
                if self.sound.needs_reset() {
                    return self.settle(step, false);
                }
                let mut held = true;
                if let Some(stream) = release {
                    let (r, n) = le(code::PCM_RELEASE, &[stream]);
                    let answer = match self.sound.command(&r[..n], &mut [0u8; 4]) {
                        Ok(()) => "ok",
                        Err(Error::Status(_)) => "error status",
                        Err(Error::NeedsReset(_)) => "device needs reset",
                        Err(Error::Timeout(_)) => "timeout",
                        Err(_) => "error",
                    };
                    held = self.sound.raw_wait(q, head, CHAIN_MS).is_err();
                    println!(
                        "sndfuzz: {}: then release -> {}; chain {}",
                        step,
                        answer,
                        if held { "still held" } else { "returned" }
                    );
                }
                if held {
                    self.reinit();
                } else {
                    self.settle(step, false);
                }
            }
            Err(e) => self.failed(step, e),
        }
    }
}

fn main() -> ! {
    let bootargs = platform().bootargs;
    let skip = args::value(bootargs, "sndfuzz.skip").unwrap_or("");
    let Some(node) = virtio_snd::find() else {
        println!("sndfuzz: no virtio-snd device");
        park()
    };
    let mut sound = match Sound::open_at(node) {
        Ok(s) => s,
        Err(e) => {
            println!("sndfuzz: open -> error {}", e);
            park()
        }
    };
    sound.set_timeout_ms(CONTROL_MS);
    println!(
        "sndfuzz: device at 0x{:x} streams {} queues {}/{}/{}/{}",
        node.base,
        sound.config().streams,
        sound.queue_size(queue::CONTROL),
        sound.queue_size(queue::EVENT),
        sound.queue_size(queue::TX),
        sound.queue_size(queue::RX)
    );
    let scratch = sound.scratch().0;
    let mut f = Fuzz {
        sound,
        skip,
        scratch,
    };

    set_params_steps(&mut f);
    state_steps(&mut f);
    query_info_steps(&mut f);
    code_steps(&mut f);
    tx_steps(&mut f);
    junk_steps(&mut f);
    let stale = f.sound.stale_completions();
    if stale > 0 {
        println!("sndfuzz: stale completions {}", stale);
    }
    sane_play(&mut f);
    println!("sndfuzz: done");
    park()
}

fn set_params_steps(f: &mut Fuzz) {
    let with = |change: fn(&mut Params)| {
        let mut p = SANE;
        change(&mut p);
        p
    };
    f.params("set-params-sane", SANE);
    f.params(
        "set-params-rate-undefined",
        with(|p| p.rate = rate::LAST + 1),
    );
    f.params("set-params-rate-255", with(|p| p.rate = 255));
    f.params(
        "set-params-format-ima-adpcm",
        with(|p| p.format = format::IMA_ADPCM),
    );
    f.params(
        "set-params-format-float64",
        with(|p| p.format = format::FLOAT64),
    );
    f.params(
        "set-params-format-undefined",
        with(|p| p.format = format::LAST + 1),
    );
    f.params("set-params-format-255", with(|p| p.format = 255));
    f.params("set-params-channels-0", with(|p| p.channels = 0));
    f.params("set-params-channels-3", with(|p| p.channels = 3));
    f.params("set-params-channels-255", with(|p| p.channels = 255));
    f.params(
        "set-params-zero-sizes",
        with(|p| {
            p.buffer_bytes = 0;
            p.period_bytes = 0;
        }),
    );
    f.params(
        "set-params-giant-sizes",
        with(|p| {
            p.buffer_bytes = u32::MAX;
            p.period_bytes = u32::MAX;
        }),
    );
    f.params(
        "set-params-period-over-buffer",
        with(|p| {
            p.buffer_bytes = 1920;
            p.period_bytes = 4 * 1920;
        }),
    );
    f.params(
        "set-params-period-not-frames",
        with(|p| p.period_bytes = 1921),
    );
    f.params(
        "set-params-unknown-features",
        with(|p| p.features = u32::MAX),
    );
    f.params("set-params-stream-1", with(|p| p.stream = 1));
    f.params("set-params-stream-99", with(|p| p.stream = 99));
    let r = params_bytes(SANE);
    f.control("set-params-short", &r[..20], 4);
    let mut long = [0xa5u8; 40];
    long[..24].copy_from_slice(&r);
    f.control("set-params-long", &long, 4);
}

fn state_steps(f: &mut Fuzz) {
    // START straight after SET_PARAMS, without PREPARE.
    if !f.skipped("start-before-prepare") {
        f.quiet_pcm("start-before-prepare", code::PCM_STOP);
        f.quiet_pcm("start-before-prepare", code::PCM_RELEASE);
        let _ = f.sound.set_params_with(SANE);
        f.pcm("start-before-prepare", code::PCM_START, 0);
    }
    if !f.skipped("stop-when-not-started") {
        f.stream_ready("stop-when-not-started", false);
        f.pcm("stop-when-not-started", code::PCM_STOP, 0);
    }
    if !f.skipped("start-twice") {
        f.stream_ready("start-twice", true);
        f.pcm("start-twice", code::PCM_START, 0);
    }
    if !f.skipped("release-while-started") {
        f.stream_ready("release-while-started", true);
        f.pcm("release-while-started", code::PCM_RELEASE, 0);
    }
    if !f.skipped("release-twice") {
        f.stream_ready("release-twice", false);
        f.pcm("release-twice-first", code::PCM_RELEASE, 0);
        f.pcm("release-twice", code::PCM_RELEASE, 0);
    }
    if !f.skipped("prepare-twice") {
        f.stream_ready("prepare-twice", false);
        f.pcm("prepare-twice", code::PCM_PREPARE, 0);
    }
    if !f.skipped("set-params-while-started") {
        f.stream_ready("set-params-while-started", true);
        f.params("set-params-while-started", SANE);
    }
    f.pcm("start-stream-99", code::PCM_START, 99);
    f.pcm("stop-stream-99", code::PCM_STOP, 99);
    f.pcm("prepare-stream-99", code::PCM_PREPARE, 99);
    f.pcm("release-stream-99", code::PCM_RELEASE, 99);
    f.quiet_pcm("state", code::PCM_STOP);
    f.quiet_pcm("state", code::PCM_RELEASE);
}

fn query_info_steps(f: &mut Fuzz) {
    let info = |start: u32, count: u32, size: u32| le(code::PCM_INFO, &[start, count, size]);
    let (r, n) = info(0, 1, 32);
    f.control("query-info-sane", &r[..n], 36);
    let (r, n) = info(99, 1, 32);
    f.control("query-info-bad-start-id", &r[..n], 36);
    let (r, n) = info(u32::MAX, 2, 32);
    f.control("query-info-start-id-wraps", &r[..n], 4 + 2 * 32);
    let (r, n) = info(0, 0, 32);
    f.control("query-info-count-0", &r[..n], 4);
    let (r, n) = info(0, 3, 32);
    f.control("query-info-count-past-end", &r[..n], 4 + 3 * 32);
    let (r, n) = info(0, 1, 0);
    f.control("query-info-size-0", &r[..n], 4);
    let (r, n) = info(0, 1, 4);
    f.control("query-info-size-4", &r[..n], 8);
    let (r, n) = info(0, 1, 0x1000_0000);
    f.control("query-info-size-huge", &r[..n], 36);
    let (r, n) = info(0, 1, 32);
    f.control("query-info-response-short", &r[..n], 8);
    // 2 x 0x8000_0000 wraps to 0 in 32 bits.
    let (r, n) = info(0, 0x8000_0000, 2);
    f.control("query-info-size-count-overflow", &r[..n], 36);
    let (r, n) = info(0, 1, 32);
    f.control("query-info-short-request", &r[..n - 4], 36);
    let (r, n) = le(code::JACK_INFO, &[0, 1, 24]);
    f.control("jack-info", &r[..n], 28);
    let (r, n) = le(code::JACK_REMAP, &[0, 0, 0]);
    f.control("jack-remap", &r[..n], 4);
    let (r, n) = le(code::CHMAP_INFO, &[0, 1, 24]);
    f.control("chmap-info", &r[..n], 28);
}

fn code_steps(f: &mut Fuzz) {
    for (step, c) in [
        ("code-0", 0),
        ("code-0x106", code::PCM_STOP + 1),
        ("code-0x201", code::CHMAP_INFO + 1),
        ("code-event-xrun", code::EVT_PCM_XRUN),
        ("code-status-ok", code::S_OK),
        ("code-ffffffff", u32::MAX),
    ] {
        f.pcm(step, c, 0);
    }
    let (r, _) = le(code::PCM_PREPARE, &[0]);
    f.control("header-only-prepare", &r[..4], 4);
    f.control("header-2-bytes", &r[..2], 4);
    f.control("no-response-buffer", &r[..8], 0);
    f.control("response-2-bytes", &r[..8], 2);
    // The request marked device-writable, the response readable.
    if !f.skipped("control-wrong-directions") {
        f.sound.raw_scratch_write(HDR, &r[..8]);
        let chain = [f.seg(HDR, 8, true), f.seg(STATUS, 4, false)];
        f.chain("control-wrong-directions", queue::CONTROL, &chain, None);
    }
    if !f.skipped("control-outside-ram") {
        let chain = [
            Segment {
                addr: OUTSIDE_RAM,
                len: 8,
                device_writes: false,
            },
            f.seg(STATUS, 4, true),
        ];
        f.chain("control-outside-ram", queue::CONTROL, &chain, None);
    }
}

fn tx_steps(f: &mut Fuzz) {
    f.stream_ready("tx", true);
    let (ram, ram_len) = virtio_gpu::free_ram();
    let steps: [TxCase; 15] = [
        ("tx-sane", |f, _, _| {
            let (h, d, s) = f.tx_parts(0);
            ([h, d, s, s], 3)
        }),
        ("tx-outside-ram", |f, _, _| {
            let (h, mut d, s) = f.tx_parts(0);
            d.addr = OUTSIDE_RAM;
            ([h, d, s, s], 3)
        }),
        ("tx-wrapping-address", |f, _, _| {
            let (h, mut d, s) = f.tx_parts(0);
            d.addr = u64::MAX - 100;
            ([h, d, s, s], 3)
        }),
        ("tx-zero-length", |f, _, _| {
            let (h, mut d, s) = f.tx_parts(0);
            d.len = 0;
            ([h, d, s, s], 3)
        }),
        ("tx-no-data", |f, _, _| {
            let (h, _, s) = f.tx_parts(0);
            ([h, s, s, s], 2)
        }),
        ("tx-giant-in-ram", |f, ram, len| {
            let (h, mut d, s) = f.tx_parts(0);
            d.addr = ram;
            d.len = len.min(GIANT_IN_RAM) as u32 & !3;
            ([h, d, s, s], 3)
        }),
        ("tx-length-4g", |f, ram, _| {
            let (h, mut d, s) = f.tx_parts(0);
            d.addr = ram;
            d.len = u32::MAX;
            ([h, d, s, s], 3)
        }),
        ("tx-stream-1", |f, _, _| {
            let (h, d, s) = f.tx_parts(1);
            ([h, d, s, s], 3)
        }),
        ("tx-stream-99", |f, _, _| {
            let (h, d, s) = f.tx_parts(99);
            ([h, d, s, s], 3)
        }),
        ("tx-partial-frame", |f, _, _| {
            let (h, mut d, s) = f.tx_parts(0);
            d.len += 2;
            ([h, d, s, s], 3)
        }),
        ("tx-no-status", |f, _, _| {
            let (h, d, _) = f.tx_parts(0);
            ([h, d, d, d], 2)
        }),
        ("tx-status-4-bytes", |f, _, _| {
            let (h, d, mut s) = f.tx_parts(0);
            s.len = 4;
            ([h, d, s, s], 3)
        }),
        ("tx-short-header", |f, _, _| {
            let (mut h, _, s) = f.tx_parts(0);
            h.len = 2;
            ([h, s, s, s], 2)
        }),
        ("tx-header-split", |f, _, _| {
            let (mut h, d, s) = f.tx_parts(0);
            h.len = 2;
            let mut h2 = h;
            h2.addr += 2;
            ([h, h2, d, s], 4)
        }),
        ("tx-data-device-writable", |f, _, _| {
            let (h, mut d, s) = f.tx_parts(0);
            d.device_writes = true;
            ([h, d, s, s], 3)
        }),
    ];
    for (step, build) in steps {
        if f.skipped(step) {
            continue;
        }
        // Every case on a running stream with nothing else queued.
        if f.sound.needs_reset() {
            f.reinit();
        }
        f.stream_ready(step, true);
        let (chain, n) = build(f, ram as u64, ram_len as u64);
        f.chain(step, queue::TX, &chain[..n], Some(0));
    }

    if !f.skipped("tx-flood") {
        f.stream_ready("tx-flood", true);
        // Chains of 1 frame (4 bytes), as many as the ring takes, again
        // and again.
        f.sound.raw_scratch_write(HDR, &0u32.to_le_bytes());
        let chain = [
            f.seg(HDR, 4, false),
            f.seg(DATA, 4, false),
            f.seg(STATUS, 8, true),
        ];
        let before = f.sound.raw_completions(queue::TX);
        let start = timer::counter();
        let end = start + timer::ms_to_ticks(FLOOD_MS);
        let mut submitted = 0u32;
        let mut outcome = None;
        while timer::counter() < end {
            match f.sound.raw_submit(queue::TX, &chain) {
                Ok(_) => submitted += 1,
                Err(Error::Full) => {
                    if f.sound.needs_reset() {
                        outcome = Some(f.sound.device_status());
                        break;
                    }
                    f.sound.raw_completions(queue::TX);
                    timer::sleep_until(timer::counter() + timer::ms_to_ticks(1));
                }
                Err(e) => {
                    println!("sndfuzz: tx-flood: refused by the driver: {}", e);
                    break;
                }
            }
        }
        let returned = f.sound.raw_completions(queue::TX).wrapping_sub(before);
        println!(
            "sndfuzz: tx-flood: {} submitted, {} returned in {} ms",
            submitted,
            returned,
            timer::ticks_to_ms(timer::counter() - start)
        );
        if let Some(s) = outcome {
            println!("sndfuzz: tx-flood: device needs reset (status 0x{:x})", s);
        }
        // What is still queued goes back with the release.
        f.quiet_pcm("tx-flood", code::PCM_STOP);
        f.quiet_pcm("tx-flood", code::PCM_RELEASE);
        f.settle("tx-flood", outcome.is_some());
    }
    if !f.skipped("tx-avail-index-jump") {
        f.stream_ready("tx-avail-index-jump", true);
        let (h, d, s) = f.tx_parts(0);
        match f.sound.raw_submit(queue::TX, &[h, d, s]) {
            Ok(head) => {
                let size = f.sound.queue_size(queue::TX);
                let idx = f.sound.raw_avail_idx(queue::TX).wrapping_add(size);
                f.sound.raw_set_avail_idx(queue::TX, idx);
                match f.sound.raw_wait(queue::TX, head, CHAIN_MS) {
                    Ok(len) => println!("sndfuzz: tx-avail-index-jump: returned, used len {}", len),
                    Err(e) => println!("sndfuzz: tx-avail-index-jump: {}", e),
                }
                // The ring is inconsistent now whatever the device did.
                f.reinit();
            }
            Err(e) => f.failed("tx-avail-index-jump", e),
        }
    }

    f.quiet_pcm("tx", code::PCM_STOP);
    f.quiet_pcm("tx", code::PCM_RELEASE);
}

fn junk_steps(f: &mut Fuzz) {
    let junk = [0x5au8; 64];
    f.sound.raw_scratch_write(DATA, &junk);
    let readable = f.seg(DATA, 8, false);
    let steps: [QueueCase; 9] = [
        (
            "eventq-device-readable",
            queue::EVENT,
            [readable; 3],
            1,
            None,
        ),
        (
            "eventq-outside-ram",
            queue::EVENT,
            [Segment {
                addr: OUTSIDE_RAM,
                len: 8,
                device_writes: true,
            }; 3],
            1,
            None,
        ),
        (
            "eventq-zero-length",
            queue::EVENT,
            [f.seg(STATUS, 0, true); 3],
            1,
            None,
        ),
        ("rxq-junk", queue::RX, [readable; 3], 1, None),
        (
            "rxq-output-stream",
            queue::RX,
            [
                f.seg(HDR, 4, false),
                f.seg(DATA, DATA_LEN, true),
                f.seg(STATUS, 8, true),
            ],
            3,
            Some(0),
        ),
        (
            "rxq-stream-99",
            queue::RX,
            [
                f.seg(HDR + 32, 4, false),
                f.seg(DATA, DATA_LEN, true),
                f.seg(STATUS, 8, true),
            ],
            3,
            None,
        ),
        (
            "rxq-input-stream",
            queue::RX,
            [
                f.seg(HDR + 16, 4, false),
                f.seg(DATA, DATA_LEN, true),
                f.seg(STATUS, 8, true),
            ],
            3,
            Some(1),
        ),
        (
            "rxq-input-no-status",
            queue::RX,
            [f.seg(HDR + 16, 4, false); 3],
            1,
            Some(1),
        ),
        (
            "rxq-input-tiny-status",
            queue::RX,
            [f.seg(HDR + 16, 4, false), f.seg(STATUS, 4, true), readable],
            2,
            Some(1),
        ),
    ];
    for (step, q, chain, n, release) in steps {
        if f.skipped(step) {
            continue;
        }
        // Stream ids for the rx cases: 0 at HDR, 1 at HDR + 16, 99 at
        // HDR + 32.
        f.sound.raw_scratch_write(HDR, &0u32.to_le_bytes());
        f.sound.raw_scratch_write(HDR + 16, &1u32.to_le_bytes());
        f.sound.raw_scratch_write(HDR + 32, &99u32.to_le_bytes());
        f.sound.raw_scratch_write(STATUS, &UNWRITTEN);
        f.chain(step, q, &chain[..n], release);
    }
}

/// One short tone the sane way: 300 ms of 440 Hz, stereo, 10 ms periods.
fn sane_play(f: &mut Fuzz) {
    if f.sound.needs_reset() {
        f.reinit();
    }
    let s = &mut f.sound;
    s.set_timeout_ms(virtio_snd::TIMEOUT_MS);
    let _ = s.stop();
    let _ = s.release();
    let result = s
        .set_params(2, 1920, 4 * 1920)
        .map_err(|e| ("set params", e))
        .and_then(|()| s.prepare().map_err(|e| ("prepare", e)))
        .and_then(|()| play(s));
    match result {
        Ok((periods, first_us)) => println!(
            "sndfuzz: sane play: ok, {} periods, first returned {} us after START",
            periods, first_us
        ),
        Err((what, e)) => println!("sndfuzz: sane play: error {}: {}", what, e),
    }
}

/// Plays 30 periods of 440 Hz; (periods returned, microseconds from START
/// to the first return).
fn play(s: &mut Sound) -> Result<(usize, u64), (&'static str, Error)> {
    const PERIODS: usize = 30;
    let mut frames = [0i16; 960];
    // 440 Hz from a phase accumulator: the parabola y = 4t(1 - |t|), then
    // y + 0.225(y|y| - y), within 0.1% of a sine (all in Q31).
    let step = (((440u64 << 32) + 24_000) / 48_000) as u32;
    let mut phase = 0u32;
    let mut next = |frames: &mut [i16]| {
        for pair in frames.chunks_mut(2) {
            let t = i64::from(phase as i32);
            let y = (t * ((1i64 << 31) - t.abs())) >> 29;
            let y = y + (((((y * y.abs()) >> 31) - y) * 922) >> 12);
            pair.fill(((4000 * y) >> 31) as i16);
            phase = phase.wrapping_add(step);
        }
    };
    let mut queued = 0;
    while s.free_slots() > 0 && queued < PERIODS {
        next(&mut frames);
        s.write(&frames).map_err(|e| ("write", e))?;
        queued += 1;
    }
    let started = timer::counter();
    s.start().map_err(|e| ("start", e))?;
    let mut returned = 0;
    let mut first = None;
    let deadline = started + timer::ms_to_ticks(2000);
    while returned < queued {
        let done = s.reap();
        let now = timer::counter();
        if done.count > 0 && first.is_none() {
            first = Some(now - started);
        }
        if done.errors > 0 {
            return Err(("tx", Error::Status(done.status)));
        }
        returned += done.count;
        while s.free_slots() > 0 && queued < PERIODS {
            next(&mut frames);
            s.write(&frames).map_err(|e| ("write", e))?;
            queued += 1;
        }
        if now > deadline {
            return Err(("tx", Error::Timeout(2000)));
        }
        if s.needs_reset() {
            return Err(("tx", Error::NeedsReset(s.device_status())));
        }
        timer::sleep_until(now + timer::ms_to_ticks(1));
    }
    timer::sleep_ms(60);
    s.stop().map_err(|e| ("stop", e))?;
    s.release().map_err(|e| ("release", e))?;
    Ok((returned, timer::ticks_to_us(first.unwrap_or(0))))
}
