//! `cluster`: the instrument cluster partition (see README.md).
//!
//! Finds its virtio-gpu device, draws the simulated drive on scanout 0
//! (the instrument display) and the seat belt warning on scanout 1 (a
//! strip of the center display) if there is one, redrawing and sending
//! only what changed each frame, paced by the fenced flush and by
//! `cluster.fps`. Keeps the odometer on its virtio-blk disk if it has one.
//! With a touch device (its view of the shared touch panel: the strip), a
//! finger on the strip acknowledges the warning: the strip shows
//! "ACKNOWLEDGED" in green for three seconds. With a virtio-snd device it
//! plays the warning chimes (`src/speaker.rs`), looked after while the
//! loop waits for the next frame.
//!
//! ```text
//! cluster: display <w>x<h> [+ strip <w>x<h>]
//! cluster: no disk, odometer not persisted      (without a disk)
//! cluster: odometer <km> km (boot <n>)
//! cluster: alive frame=<n> speed=<kmh> rpm=<n> gear=<g> odo=<km>   (every second)
//! cluster: touch: <device line>                (with a touch device)
//! cluster: touch: acknowledged at <x>,<y>       (a finger on its strip)
//! cluster: touch: acknowledgement shown at frame <n>
//! cluster: stalling at frame <n> for <ms> ms    (cluster.stall)
//! cluster: resumed at frame <n>
//! cluster: <what> -> error <e>
//! cluster: audio: ... / cluster: chime ...      (see speaker.rs)
//! ```

#![no_std]
#![no_main]

mod speaker;

use cluster::canvas::Canvas;
use cluster::config::Config;
use cluster::damage::{Damage, Rect};
use cluster::drive;
use cluster::layout::Layout;
use cluster::record::{Record, SavePolicy};
use cluster::scene::{Renderer, Visual};
use speaker::Speaker;
use testkit::println;
use testkit::rt::virtio_blk::{self, Found, VirtioBlk};
use testkit::rt::virtio_gpu::{self, FORMAT_B8G8R8A8, GpuError, Mode, Request, VirtioGpu, cmd};
use testkit::rt::virtio_input::{self, VirtioInput};
use testkit::rt::{device_tree, device_tree_address, platform, timer};
use testkit::virtio::{BlkError, SECTOR};

testkit::entry!("cluster", main);

/// Rectangles of damage kept per scanout.
const DAMAGE_RECTS: usize = 12;

/// RAM handed out from the free space above the image.
struct Ram {
    next: usize,
    end: usize,
}

impl Ram {
    /// The free RAM above the image, minus the device tree if it lies
    /// there (under the hypervisor it sits in the region's last 2 MiB).
    fn new() -> Ram {
        let (start, len) = virtio_gpu::free_ram();
        let end = start + len;
        let dtb = device_tree_address();
        let dtb_end = dtb + device_tree().total_size();
        if dtb_end <= start || dtb >= end {
            return Ram { next: start, end };
        }
        let below = (start, dtb & !0xfff);
        let above = (dtb_end.next_multiple_of(4096).min(end), end);
        let (next, end) = if below.1.saturating_sub(below.0) >= above.1 - above.0 {
            below
        } else {
            above
        };
        Ram { next, end }
    }

    /// `bytes` (page aligned), if there is room.
    fn take(&mut self, bytes: usize) -> Option<usize> {
        let bytes = bytes.next_multiple_of(4096);
        (self.end.saturating_sub(self.next) >= bytes).then(|| {
            let at = self.next;
            self.next += bytes;
            at
        })
    }
}

/// Where a scanout's pixels are: its rectangle in one resource.
#[derive(Clone, Copy, Debug)]
struct Surface {
    scanout: u32,
    resource: u32,
    /// Left edge in the resource.
    x: u32,
    width: u32,
    height: u32,
}

/// A resource and its backing in guest RAM.
#[derive(Clone, Copy, Debug)]
struct Resource {
    id: u32,
    width: u32,
    height: u32,
    addr: usize,
}

impl Resource {
    fn bytes(&self) -> usize {
        self.width as usize * self.height as usize * 4
    }
}

/// The display: the device, its one or two resources and the scanouts.
///
/// With a strip, both scanouts normally share one resource, side by side
/// (the strip's source rectangle starts at x = the main width): then one
/// RESOURCE_FLUSH per frame covers both, and the hypervisor holds every
/// flush until it is on screen, so two flushes would halve the frame
/// rate. If the device cannot create the wide resource, each scanout
/// gets its own.
struct Display {
    gpu: VirtioGpu,
    main: Surface,
    strip: Option<Surface>,
    resources: [Option<Resource>; 2],
    /// The RAM the pixels live in (enough for the shared resource).
    ram: usize,
    shared: bool,
}

impl Display {
    fn canvas(&self, s: &Surface) -> Canvas<'static> {
        let r = self.resources[(s.resource - 1) as usize].expect("surface's resource");
        let at = r.addr as *mut u32;
        // SAFETY: the surface lies inside its resource's backing, RAM
        // above the image nobody else uses; canvases are made one at a
        // time and dropped before the next is made.
        unsafe { Canvas::from_raw(at.add(s.x as usize), r.width as usize, s.width, s.height) }
    }

    /// Lays the resources out (shared or not) over `self.ram`.
    fn plan(&mut self, shared: bool) {
        self.shared = shared;
        let (m, s) = (self.main, self.strip);
        match s {
            Some(s) if shared => {
                let r = Resource {
                    id: 1,
                    width: m.width + s.width,
                    height: m.height.max(s.height),
                    addr: self.ram,
                };
                self.resources = [Some(r), None];
                self.main = Surface {
                    resource: 1,
                    x: 0,
                    ..m
                };
                self.strip = Some(Surface {
                    resource: 1,
                    x: m.width,
                    ..s
                });
            }
            _ => {
                let r0 = Resource {
                    id: 1,
                    width: m.width,
                    height: m.height,
                    addr: self.ram,
                };
                self.resources[0] = Some(r0);
                self.main = Surface {
                    resource: 1,
                    x: 0,
                    ..m
                };
                self.resources[1] = s.map(|s| Resource {
                    id: 2,
                    width: s.width,
                    height: s.height,
                    addr: (self.ram + r0.bytes()).next_multiple_of(4096),
                });
                self.strip = s.map(|s| Surface {
                    resource: 2,
                    x: 0,
                    ..s
                });
            }
        }
    }

    /// Creates the resources and shows them (after `init`).
    fn setup(&mut self) -> Result<(), (&'static str, GpuError)> {
        for r in self.resources.iter().flatten() {
            self.gpu
                .create_2d(r.id, FORMAT_B8G8R8A8, r.width, r.height)
                .map_err(|e| ("resource create", e))?;
            self.gpu
                .attach(r.id, r.addr as u64, r.bytes() as u32)
                .map_err(|e| ("attach backing", e))?;
        }
        for s in core::iter::once(self.main).chain(self.strip) {
            let mut req = Request::new(cmd::SET_SCANOUT, 0, 0);
            req.rect(s.x, 0, s.width, s.height)
                .u32(s.scanout)
                .u32(s.resource);
            self.gpu
                .expect(&req, cmd::OK_NODATA)
                .map_err(|e| ("set scanout", e))?;
        }
        Ok(())
    }

    /// Resets the device and sets everything up again.
    fn reinit(&mut self) -> Result<(), (&'static str, GpuError)> {
        self.gpu.init().map_err(|e| ("gpu init", e))?;
        self.setup()
    }

    /// Transfers every damaged rectangle and flushes, per resource, the
    /// union (fenced: returns when the frame is on screen).
    fn present(
        &mut self,
        main: &Damage<DAMAGE_RECTS>,
        strip: &Damage<DAMAGE_RECTS>,
    ) -> Result<(), (&'static str, GpuError)> {
        for res in self.resources.into_iter().flatten() {
            let mut union = Rect::EMPTY;
            let parts = [(Some(self.main), main), (self.strip, strip)];
            for (surface, dmg) in parts {
                let Some(s) = surface.filter(|s| s.resource == res.id) else {
                    continue;
                };
                for r in dmg.rects() {
                    let r = r.translate(s.x as i32, 0);
                    self.sync(&res, &r);
                    self.gpu
                        .transfer(res.id, res.width, r.xywh())
                        .map_err(|e| ("transfer", e))?;
                    union = union.union(&r);
                }
            }
            if !union.is_empty() {
                self.gpu
                    .flush(res.id, union.xywh())
                    .map_err(|e| ("flush", e))?;
            }
        }
        Ok(())
    }

    /// Cleans the rows of `r` to memory before the device reads them.
    fn sync(&self, res: &Resource, r: &Rect) {
        for y in r.y0..r.y1 {
            let at = res.addr + (y as usize * res.width as usize + r.x0 as usize) * 4;
            self.gpu.sync(at, r.width() as usize * 4);
        }
    }
}

/// Finds and sets up the display; None (having said why) without one.
fn open_display(ram: &mut Ram) -> Option<Display> {
    let Some(node) = virtio_gpu::find() else {
        println!("cluster: no virtio-gpu device, not drawing");
        return None;
    };
    let mut gpu = match VirtioGpu::open(node) {
        Ok(gpu) => gpu,
        Err(e) => {
            println!("cluster: gpu open -> error {}", e);
            return None;
        }
    };
    let modes = match gpu.display_info() {
        Ok(modes) => modes,
        Err(e) => {
            println!("cluster: display info -> error {}", e);
            return None;
        }
    };
    let usable = |m: &Mode| m.enabled && m.width > 0 && m.height > 0;
    if !usable(&modes[0]) {
        println!("cluster: display info -> error scanout 0 not enabled");
        return None;
    }
    let surface = |i: u32, m: &Mode| Surface {
        scanout: i,
        resource: 1,
        x: 0,
        width: m.width,
        height: m.height,
    };
    let main = surface(0, &modes[0]);
    let strip = usable(&modes[1]).then(|| surface(1, &modes[1]));
    match strip {
        Some(s) => println!(
            "cluster: display {}x{} + strip {}x{}",
            main.width, main.height, s.width, s.height
        ),
        None => println!("cluster: display {}x{}", main.width, main.height),
    }
    // Enough for the shared resource, which is never smaller than two.
    let bytes = match strip {
        Some(s) => (main.width + s.width) as usize * main.height.max(s.height) as usize * 4,
        None => main.width as usize * main.height as usize * 4,
    };
    let Some(ram) = ram.take(bytes + 4096) else {
        println!(
            "cluster: framebuffer -> error no memory for {} bytes",
            bytes
        );
        return None;
    };
    let mut d = Display {
        gpu,
        main,
        strip,
        resources: [None, None],
        ram,
        shared: false,
    };
    d.plan(strip.is_some());
    if let Err((what, e)) = d.setup() {
        if !d.shared {
            println!("cluster: {} -> error {}", what, e);
            return None;
        }
        // No room for the wide resource: one per scanout.
        d.plan(false);
        if let Err((what, e)) = d.reinit() {
            println!("cluster: {} -> error {}", what, e);
            return None;
        }
    }
    Some(d)
}

/// The odometer: its record, and the disk it lives on (if any).
struct Odometer {
    blk: Option<VirtioBlk>,
    record: Record,
    policy: SavePolicy,
}

impl Odometer {
    fn open() -> Odometer {
        let mut blk = match virtio_blk::find() {
            Found::Device(node) => match VirtioBlk::open(node) {
                Ok(blk) => Some(blk),
                Err(e) => {
                    println!("cluster: disk at 0x{:x} -> error {}", node.base, e);
                    None
                }
            },
            Found::LegacyOnly(_) | Found::Nothing(_) => None,
        };
        let mut record = Record {
            boots: u64::from(platform().restart_count),
            ..Record::default()
        };
        if let Some(b) = blk.as_mut() {
            let (mut s0, mut s1) = ([0u8; SECTOR], [0u8; SECTOR]);
            match b.read(0, &mut s0).and_then(|()| b.read(1, &mut s1)) {
                Ok(()) => record = Record::load(&s0, &s1).unwrap_or_default(),
                Err(e) => {
                    // Better not to persist than to overwrite what may be
                    // there with zero.
                    println!("cluster: odometer read -> error {}", e);
                    blk = None;
                }
            }
        }
        if blk.is_none() {
            println!("cluster: no disk, odometer not persisted");
        }
        record.boots += 1;
        let mut odo = Odometer {
            blk,
            record,
            policy: SavePolicy::new(record.metres),
        };
        // The boot counts from now on.
        odo.save(record.metres);
        println!(
            "cluster: odometer {} km (boot {})",
            odo.record.km(),
            odo.record.boots
        );
        odo
    }

    /// Writes `metres` to the next slot and flushes (without a disk, only
    /// remembers it).
    fn save(&mut self, metres: u64) {
        let next = self.record.next(metres);
        self.policy.saved(metres);
        self.record = next;
        let Some(blk) = self.blk.as_mut() else {
            return;
        };
        let mut sector = [0u8; SECTOR];
        next.encode(&mut sector);
        let result = blk
            .write(next.slot(), &sector)
            .map_err(|e| ("odometer write", e))
            .and_then(|()| blk.flush().map_err(|e| ("odometer flush", e)));
        if let Err((what, e)) = result {
            println!("cluster: {} -> error {}", what, e);
            if matches!(e, BlkError::Timeout(_) | BlkError::NeedsReset(_))
                && let Err(e) = blk.init()
            {
                println!("cluster: disk re-init -> error {}", e);
            }
        }
    }
}

/// Prints at most one error line a second.
struct Complaints {
    next: u64,
}

impl Complaints {
    fn say(&mut self, what: &str, e: GpuError) {
        let now = timer::counter();
        if now >= self.next {
            println!("cluster: {} -> error {}", what, e);
            self.next = now + timer::ms_to_ticks(1000);
        }
    }
}

fn main() -> ! {
    let config = Config::parse(platform().bootargs);
    let mut ram = Ram::new();
    let mut display = open_display(&mut ram);
    let mut odo = Odometer::open();
    let mut speaker = Speaker::open(config.audio, config.chimes);

    let (w, h) = display
        .as_ref()
        .map_or((1920, 720), |d| (d.main.width, d.main.height));
    let layout = Layout::new(w, h, config.telltales, config.window);
    // The dial faces are cached when there is memory for them.
    let caches = Renderer::cache_pixels(&layout).map(|(cw, ch)| {
        let at = ram.take(cw as usize * ch as usize * 4)?;
        // SAFETY: fresh RAM from `take`, used only by this cache.
        Some(unsafe { Canvas::from_raw(at as *mut u32, cw as usize, cw, ch) })
    });
    let mut renderer = Renderer::new(layout, caches);
    let mut main_damage: Damage<DAMAGE_RECTS> = Damage::new(layout.bounds());
    let strip_bounds = display
        .as_ref()
        .and_then(|d| d.strip)
        .map_or(Rect::EMPTY, |s| Rect::new(0, 0, s.width, s.height));
    let mut strip_damage: Damage<DAMAGE_RECTS> = Damage::new(strip_bounds);

    let second = timer::ms_to_ticks(1000);
    let period = timer::frequency() / u64::from(config.fps);
    let start = timer::counter();
    if let Some(s) = speaker.as_mut() {
        s.begin(start);
    }
    let base_m = odo.record.metres;
    let mut deadline = start;
    let mut next_alive = start + second;
    let mut last_ms = 0;
    let mut frame: u64 = 0;
    let mut stall = config.stall;
    let mut complaints = Complaints { next: 0 };
    // When to try again after the display failed to come back.
    let mut retry_at: Option<u64> = None;
    let profile = testkit::args::flag(platform().bootargs, "cluster.profile");
    let mut touch = Touch::open();
    // Until when the strip shows the acknowledgement; whether that frame
    // has been shown yet.
    let mut ack_until = 0;
    let mut ack_shown = true;
    let mut prof = Profile::default();
    let mut shown_once = false;
    loop {
        let now = timer::counter();
        let t_ms = timer::ticks_to_ms(now - start);
        let car = drive::at(t_ms);
        let trip_m = car.metres as u64;
        let odo_m = base_m + trip_m;
        if odo.policy.due(t_ms - last_ms, car.speed_kmh > 0.0, odo_m) {
            odo.save(odo_m);
        }
        last_ms = t_ms;
        let mut v = Visual::new(&car, t_ms, odo_m, trip_m);
        if let Some(t) = touch.as_mut()
            && let Some((x, y)) = t.tapped()
        {
            println!("cluster: touch: acknowledged at {},{}", x, y);
            ack_until = now + timer::ms_to_ticks(ACK_MS);
            ack_shown = false;
        }
        v.acknowledged = now < ack_until;

        if let Some((after, ms)) = stall
            && frame >= after
        {
            stall = None;
            println!("cluster: stalling at frame {} for {} ms", frame, ms);
            let until = timer::counter() + timer::ms_to_ticks(ms);
            while timer::counter() < until {
                rest(until.min(next_alive), &mut speaker);
                if timer::counter() >= next_alive {
                    alive(frame, &v);
                    next_alive += second;
                }
            }
            println!("cluster: resumed at frame {}", frame + 1);
            // The first frame after a stall is a full one.
            renderer.invalidate();
            deadline = timer::counter();
            continue;
        }

        frame += 1;
        if let Some(d) = display.as_mut()
            && retry_at.is_none_or(|at| now >= at)
        {
            let mut ok = true;
            if retry_at.take().is_some() {
                ok = match d.reinit() {
                    Ok(()) => {
                        println!("cluster: gpu re-init -> ok");
                        renderer.invalidate();
                        true
                    }
                    Err((what, e)) => {
                        complaints.say(what, e);
                        retry_at = Some(now + second);
                        false
                    }
                };
            }
            if ok {
                let t0 = timer::counter();
                let mut c = d.canvas(&d.main);
                renderer.draw_main(&mut c, &v, frame, &mut main_damage);
                if let Some(s) = d.strip {
                    let mut c = d.canvas(&s);
                    renderer.draw_strip(&mut c, &v, frame, &mut strip_damage);
                }
                let t1 = timer::counter();
                let presented = d.present(&main_damage, &strip_damage);
                let t2 = timer::counter();
                prof.frames += 1;
                prof.draw += t1 - t0;
                prof.present += t2 - t1;
                prof.pixels += main_damage.cost() + strip_damage.cost();
                prof.rects += (main_damage.rects().len() + strip_damage.rects().len()) as u64;
                if presented.is_ok() && !ack_shown && v.acknowledged {
                    ack_shown = true;
                    println!("cluster: touch: acknowledgement shown at frame {}", frame);
                }
                if presented.is_ok() && !shown_once {
                    // Boot-time measurements start from here.
                    shown_once = true;
                    println!(
                        "cluster: first frame shown at counter {} ({} ms)",
                        t2,
                        timer::ticks_to_ms(t2)
                    );
                }
                if let Err((what, e)) = presented {
                    complaints.say(what, e);
                    // Whatever the device missed is sent again in full.
                    renderer.invalidate();
                    if matches!(e, GpuError::NeedsReset | GpuError::Timeout) {
                        match d.reinit() {
                            Ok(()) => println!("cluster: gpu re-init -> ok"),
                            Err((what, e)) => {
                                complaints.say(what, e);
                                retry_at = Some(now + second);
                            }
                        }
                    }
                }
            }
        }

        let now = timer::counter();
        if now >= next_alive {
            alive(frame, &v);
            if profile {
                prof.report();
            }
            next_alive += second;
            if next_alive <= now {
                next_alive = now + second;
            }
        }
        deadline += period;
        if deadline <= now {
            // Late (the flush waited, or drawing took long): no catching up.
            deadline = now;
        }
        rest(deadline, &mut speaker);
    }
}

/// Sleeps until `deadline`, looking after the chimes meanwhile (at least
/// once, even if it has passed).
fn rest(deadline: u64, speaker: &mut Option<Speaker>) {
    loop {
        let wake = speaker.as_mut().map_or(deadline, |s| s.service(deadline));
        if wake >= deadline {
            timer::sleep_until(deadline);
            return;
        }
        timer::sleep_until(wake);
    }
}

/// How long the strip shows the acknowledgement of a touch.
const ACK_MS: u64 = 3000;

/// The cluster's touch device: where fingers come down on its strip.
struct Touch {
    dev: VirtioInput,
    slot: usize,
    /// Per slot: down, and where.
    down: [bool; 16],
    at: [(u32, u32); 16],
    /// A finger came down since the last frame of events.
    began: Option<usize>,
}

impl Touch {
    fn open() -> Option<Touch> {
        let node = virtio_input::find()?;
        let mut dev = VirtioInput::open(node)?;
        dev.post(64);
        println!("cluster: touch: device at {:#x}", node.base);
        Some(Touch {
            dev,
            slot: 0,
            down: [false; 16],
            at: [(0, 0); 16],
            began: None,
        })
    }

    /// Takes what the device reported; where the first finger that came
    /// down in a whole frame did, if one did.
    fn tapped(&mut self) -> Option<(u32, u32)> {
        let mut taken = 0;
        let mut tap = None;
        while let Some(e) = self.dev.next_event() {
            taken += 1;
            let slot = self.slot;
            match (e.kind, e.code) {
                (3, 0x2f) => self.slot = (e.value as usize).min(15),
                (3, 0x39) => {
                    let down = (e.value as i32) >= 0;
                    if down && !self.down[slot] {
                        self.began = Some(slot);
                    }
                    self.down[slot] = down;
                }
                (3, 0x35) => self.at[slot].0 = e.value,
                (3, 0x36) => self.at[slot].1 = e.value,
                (0, 0) => {
                    if let Some(s) = self.began.take() {
                        tap = tap.or(Some(self.at[s]));
                    }
                }
                _ => {}
            }
        }
        if taken > 0 {
            self.dev.post(taken);
        }
        tap
    }
}

/// What the frames of the last second cost (`cluster.profile`).
#[derive(Default)]
struct Profile {
    frames: u64,
    draw: u64,
    present: u64,
    pixels: u64,
    rects: u64,
}

impl Profile {
    fn report(&mut self) {
        let n = self.frames.max(1);
        println!(
            "cluster: profile frames={} draw_us={} present_us={} pixels={} rects={}",
            self.frames,
            timer::ticks_to_us(self.draw) / n,
            timer::ticks_to_us(self.present) / n,
            self.pixels / n,
            self.rects / n
        );
        *self = Profile::default();
    }
}

fn alive(frame: u64, v: &Visual) {
    println!(
        "cluster: alive frame={} speed={} rpm={} gear={} odo={}",
        frame,
        v.speed,
        v.rpm,
        v.gear.symbol(),
        v.odo_km
    );
}
