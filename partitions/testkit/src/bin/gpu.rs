//! `gpu`: draws on every scanout of its virtio-gpu device, with a frame
//! counter that a screenshot can read.
//!
//! Each scanout gets a B8G8R8A8 resource of its size in the RAM above the
//! image, filled with `gpu.fill=<AARRGGBB>` (hex, default `ff00c000`:
//! opaque green), with a fully transparent rectangle where
//! `gpu.hole=<x>,<y>,<w>,<h>` says (scanout coordinates, optional). The
//! frame counter is 16 blocks of 4x4 pixels along the top left corner of
//! each scanout, bit 0 first: white for 1, black for 0. Every frame
//! (`gpu.fps=<n>`, default 30) it advances the counter, transfers the
//! counter's blocks and flushes them (fenced: the answer comes when the
//! hypervisor's compositor has them on the screen). With `gpu.full` it
//! transfers and flushes the whole scanout every frame instead. After
//! `gpu.frames=<n>` frames (default: never) it stops drawing. With
//! `gpu.stall=<frame>,<ms>` it stops drawing after that frame for that
//! long, then goes on.
//!
//! Measurements (for `cargo xtask bench`), from the frame after the first
//! `gpu.skip=<k>` frames (default 1: the first frame, whole scanouts
//! waiting for the display's first composition, is never measured):
//!
//! - `gpu.lat=<n>` (at most 1000): times each fenced RESOURCE_FLUSH on the
//!   virtual counter, from just before it is sent until its answer has
//!   been seen (under the hypervisor: until the frame is on the physical
//!   display), and after `n` of them (one per scanout per frame) prints
//!   their p50, p99 (nearest rank), worst, and how many took longer than
//!   one refresh period (`gpu.lat.hz=<hz>`, default 60);
//! - `gpu.rate=<n>`: prints how long the next `n` frames took, and their
//!   frame rate, in counter time.
//!
//! It goes on drawing afterwards.
//!
//! ```text
//! gpu: device at 0x<base>, <n> scanout(s)
//! gpu: scanout <i> <w>x<h> at 0x<addr>
//! gpu: frame <n>                         (every gpu.report=<n> frames, default 30)
//! gpu: stopped drawing after <n> frames
//! gpu: stalling after frame <n> for <ms> ms
//! gpu: resumed after frame <n>
//! gpu: <what> -> error <error>
//! gpu: measuring from frame <n> at counter <ticks>          (gpu.lat, gpu.rate)
//! gpu: measured until frame <n> at counter <ticks>          (gpu.lat)
//! gpu: flush latency n=<n> p50_us=<us> p99_us=<us> max_us=<us> missed=<m>
//! gpu: flush latency min_us=<us> mean_us=<us> period_us=<us>
//! gpu: rate frames=<n> us=<us> fps=<fps>.<2 digits>
//! ```

#![no_std]
#![no_main]

use testkit::rt::virtio_gpu::{self, FORMAT_B8G8R8A8, Mode, VirtioGpu};
use testkit::rt::{park, platform, timer};
use testkit::{args, println};

testkit::entry!("gpu", main);

/// Blocks of the frame counter, and their size in pixels.
const BITS: u32 = 16;
const BLOCK: u32 = 4;
const WHITE: u32 = 0xffff_ffff;
const BLACK: u32 = 0xff00_0000;
/// Most flushes `gpu.lat` can time (the samples live on the stack).
const MAX_LAT: usize = 1000;

struct Scanout {
    index: u32,
    width: u32,
    height: u32,
    pixels: &'static mut [u32],
}

fn main() -> ! {
    let bootargs = platform().bootargs;
    let fill = args::value(bootargs, "gpu.fill")
        .and_then(args::parse_hex)
        .map_or(0xff00_c000, |v| v as u32);
    let hole = args::value(bootargs, "gpu.hole").and_then(|v| {
        let mut it = v.split(',').filter_map(|n| n.parse::<u32>().ok());
        Some((it.next()?, it.next()?, it.next()?, it.next()?))
    });
    let fps: u64 = args::value(bootargs, "gpu.fps")
        .and_then(|v| v.parse().ok())
        .filter(|&f| f > 0)
        .unwrap_or(30);
    let frames: Option<u64> = args::value(bootargs, "gpu.frames").and_then(|v| v.parse().ok());
    let report: u64 = args::value(bootargs, "gpu.report")
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(30);
    let full = args::flag(bootargs, "gpu.full");
    let stall = args::value(bootargs, "gpu.stall").and_then(|v| {
        let (frame, ms) = v.split_once(',')?;
        Some((frame.parse::<u64>().ok()?, ms.parse::<u64>().ok()?))
    });
    let lat: Option<usize> = args::value(bootargs, "gpu.lat")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map(|n| n.min(MAX_LAT));
    let lat_hz: u64 = args::value(bootargs, "gpu.lat.hz")
        .and_then(|v| v.parse().ok())
        .filter(|&h| h > 0)
        .unwrap_or(60);
    let rate: Option<u64> = args::value(bootargs, "gpu.rate")
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0);
    let skip: u64 = args::value(bootargs, "gpu.skip")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);

    let Some(node) = virtio_gpu::find() else {
        println!("gpu: no virtio-gpu device");
        park()
    };
    let mut gpu = match VirtioGpu::open(node) {
        Ok(gpu) => gpu,
        Err(e) => {
            println!("gpu: open -> error {}", e);
            park()
        }
    };
    let modes = match gpu.display_info() {
        Ok(modes) => modes,
        Err(e) => {
            println!("gpu: display info -> error {}", e);
            park()
        }
    };
    let enabled: heapless::Vec<(u32, Mode), 16> = modes
        .iter()
        .enumerate()
        .filter(|(_, m)| m.enabled && m.width > 0 && m.height > 0)
        .map(|(i, m)| (i as u32, *m))
        .collect();
    println!(
        "gpu: device at 0x{:x}, {} scanout(s)",
        node.base,
        enabled.len()
    );

    let (mut free, mut left) = virtio_gpu::free_ram();
    let mut scanouts: heapless::Vec<Scanout, 16> = heapless::Vec::new();
    for &(index, mode) in &enabled {
        let bytes = (mode.width as usize * mode.height as usize * 4).next_multiple_of(4096);
        if bytes > left {
            println!(
                "gpu: scanout {} -> error no memory for {} bytes",
                index, bytes
            );
            continue;
        }
        // SAFETY: RAM above the image that nothing else uses (free_ram),
        // handed out once per scanout.
        let pixels = unsafe { core::slice::from_raw_parts_mut(free as *mut u32, bytes / 4) };
        let resource = index + 1;
        let setup = gpu
            .create_2d(resource, FORMAT_B8G8R8A8, mode.width, mode.height)
            .and_then(|()| gpu.attach(resource, free as u64, bytes as u32))
            .and_then(|()| gpu.set_scanout(index, resource, mode.width, mode.height));
        if let Err(e) = setup {
            println!("gpu: scanout {} setup -> error {}", index, e);
            continue;
        }
        println!(
            "gpu: scanout {} {}x{} at 0x{:x}",
            index, mode.width, mode.height, free
        );
        for y in 0..mode.height {
            for x in 0..mode.width {
                let inside = hole.is_some_and(|(hx, hy, hw, hh)| {
                    x >= hx && x < hx.saturating_add(hw) && y >= hy && y < hy.saturating_add(hh)
                });
                pixels[(y * mode.width + x) as usize] = if inside { 0 } else { fill };
            }
        }
        let _ = scanouts.push(Scanout {
            index,
            width: mode.width,
            height: mode.height,
            pixels,
        });
        free += bytes;
        left -= bytes;
    }

    let period = timer::frequency() / fps;
    let mut deadline = timer::counter();
    let mut n: u64 = 0;
    let mut first = true;
    // gpu.lat's flush times (counter ticks) and gpu.rate's start.
    let mut samples = [0u64; MAX_LAT];
    let mut timed = 0;
    let mut lat_done = lat.is_none();
    let mut rate_from: Option<u64> = None;
    loop {
        if frames.is_some_and(|f| n >= f) {
            println!("gpu: stopped drawing after {} frames", n);
            park()
        }
        n += 1;
        let measuring = n > skip && (lat.is_some() || rate.is_some());
        if measuring && n == skip + 1 {
            let now = timer::counter();
            println!("gpu: measuring from frame {} at counter {}", n, now);
            // (After the line: its console time is not the frame's.)
            rate_from = Some(timer::counter());
        }
        for s in scanouts.iter_mut() {
            draw_counter(s, n);
            let rect = if full || first {
                (0, 0, s.width, s.height)
            } else {
                (0, 0, (BITS * BLOCK).min(s.width), BLOCK.min(s.height))
            };
            let resource = s.index + 1;
            gpu.sync(s.pixels.as_ptr() as usize, s.pixels.len() * 4);
            let timing = measuring && lat.is_some_and(|want| timed < want);
            if let Err(e) = gpu.transfer(resource, s.width, rect).and_then(|()| {
                let sent = timer::counter();
                gpu.flush(resource, rect)?;
                if timing {
                    samples[timed] = timer::counter() - sent;
                    timed += 1;
                }
                Ok(())
            }) {
                println!("gpu: frame {} scanout {} -> error {}", n, s.index, e);
                if e == virtio_gpu::GpuError::NeedsReset {
                    park()
                }
            }
        }
        first = false;
        let end = timer::counter();
        if let Some(r) = rate
            && let Some(from) = rate_from
            && n == skip + r
        {
            let us = timer::ticks_to_us(end - from).max(1);
            let centi_fps = r * 100_000_000 / us;
            println!(
                "gpu: rate frames={} us={} fps={}.{:02}",
                r,
                us,
                centi_fps / 100,
                centi_fps % 100
            );
        }
        if !lat_done && lat.is_some_and(|want| timed >= want) {
            println!("gpu: measured until frame {} at counter {}", n, end);
            report_latency(&mut samples[..timed], lat_hz);
            lat_done = true;
        }
        if n.is_multiple_of(report) {
            println!("gpu: frame {}", n);
        }
        if let Some((after, ms)) = stall
            && n == after
        {
            println!("gpu: stalling after frame {} for {} ms", n, ms);
            timer::sleep_ms(ms);
            println!("gpu: resumed after frame {}", n);
            deadline = timer::counter();
        }
        deadline += period;
        let now = timer::counter();
        if deadline > now {
            timer::sleep_until(deadline);
        } else {
            deadline = now;
        }
    }
}

/// Prints `gpu.lat`'s result lines for `samples` (counter ticks; sorted
/// here): percentiles nearest-rank, microseconds rounded, `missed` the
/// flushes longer than one refresh period at `hz`.
fn report_latency(samples: &mut [u64], hz: u64) {
    samples.sort_unstable();
    let period = timer::frequency() / hz;
    let missed = samples.iter().filter(|&&t| t > period).count();
    let us = timer::ticks_to_us;
    println!(
        "gpu: flush latency n={} p50_us={} p99_us={} max_us={} missed={}",
        samples.len(),
        us(percentile(samples, 50)),
        us(percentile(samples, 99)),
        us(samples.last().copied().unwrap_or(0)),
        missed
    );
    let total: u64 = samples.iter().sum();
    println!(
        "gpu: flush latency min_us={} mean_us={} period_us={}",
        us(samples.first().copied().unwrap_or(0)),
        us(total / samples.len().max(1) as u64),
        us(period)
    );
}

/// The nearest-rank `p`-th percentile of `sorted` (0 when empty).
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Writes `n`'s low 16 bits into the counter blocks of `s`.
fn draw_counter(s: &mut Scanout, n: u64) {
    for bit in 0..BITS {
        let colour = if n >> bit & 1 == 1 { WHITE } else { BLACK };
        for dy in 0..BLOCK.min(s.height) {
            for dx in 0..BLOCK {
                let x = bit * BLOCK + dx;
                if x < s.width {
                    s.pixels[(dy * s.width + x) as usize] = colour;
                }
            }
        }
    }
}
