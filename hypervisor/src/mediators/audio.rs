//! The audio mediator (`[[audio]]` outputs and partitions' `audio` in the
//! config): the hypervisor plays each physical output itself
//! (`drivers::virtio_snd`) on its home core, one mixed period at a time,
//! and each partition with `audio` sees one virtio-snd device
//! (`shared_devices::virtio::sound`) whose output stream is a source of
//! the mix (`shared_devices::audio::Mixer`): summed with saturation at its
//! gain, ducked while a stream of higher audio priority plays.
//!
//! Where the work runs: a partition's control requests and tx buffers are
//! taken on its own core when it notifies (the buffers stay in its memory,
//! queued); the home core, each time the device has played a period,
//! pulls one period from every running stream, mixes it and queues the
//! result. The device holds a few periods ahead (its buffer); a stream
//! that starts is in the next period mixed, which plays once those ahead
//! of it have.
//!
//! A partition that stops or restarts is dropped from the mix at the next
//! period (its last samples fade out, so the others hear no click); its
//! device is reset and its stream released.

use super::virtio_window;
use crate::arch::cpu;
use crate::arch::guest_mem::PartitionMemory;
use crate::drivers::virtio_snd::{CHANNELS, PhysicalSpeaker};
use crate::partition::{self, Access, Actions, EmulatedDevice, Mediator, Partition, hv};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use log::{info, warn};
use shared_devices::audio::{Input, Mixer, Source};
use shared_devices::virtio::mmio::MmioTransport;
use shared_devices::virtio::sound::{SoundLimits, VirtioSound};
use spin::Mutex;

/// Sources of one output at most.
pub const MAX_SOURCES: usize = 8;
/// Periods between two lines on what mixing costs (5 s of 10 ms periods).
const COST_REPORT_PERIODS: u64 = 500;
/// Frames of a duck or restore ramp: 5 ms, within one period of the
/// change (the shortest period is 5 ms) and long enough not to click.
const RAMP_FRAMES: u32 = 240;

/// A partition's virtio-snd device on one output.
pub struct VirtSound {
    pub partition: usize,
    /// Its virtio-mmio slot.
    pub slot: usize,
    /// Its output (index in the mediator's outputs) and its source there.
    output: usize,
    source: usize,
    pub transport: Mutex<MmioTransport<VirtioSound>>,
}

/// A physical output and the partitions' streams mixed into it.
pub struct Output {
    pub name: &'static str,
    pub home_cpu: usize,
    pub intid: Option<u32>,
    phys: Mutex<PhysicalSpeaker>,
    state: Mutex<OutputState>,
    /// Its sources, by source index.
    sources: Vec<&'static VirtSound>,
}

struct OutputState {
    mixer: Mixer<MAX_SOURCES>,
    /// Each source's period, and the mix.
    pulled: Vec<Vec<i16>>,
    mixed: Vec<i16>,
    /// Each source's stream was running at the last period.
    running: [bool; MAX_SOURCES],
    /// Periods mixed so far.
    periods: u64,
    started: bool,
    /// The device has returned a period.
    played: bool,
    clipped: u64,
    /// Counter ticks spent mixing since the last report: total, worst,
    /// and the most streams running in one period.
    cost_ticks: u64,
    cost_max: u64,
    cost_streams: usize,
}

/// A stream that started (its first period was just mixed) or stopped.
struct StreamChange {
    /// Its source index.
    source: usize,
    started: bool,
    /// The counter when the mixer saw it.
    at: u64,
}

/// The audio mediator: every output and every partition's device.
pub struct Audio {
    outputs: Vec<&'static Output>,
    sounds: Vec<&'static VirtSound>,
}

/// Opens an `[[audio]]` output's device.
pub fn open_output(
    desc: &config::model::Audio,
    home_cpu: usize,
) -> Result<PhysicalSpeaker, String> {
    let region = desc
        .regions
        .first()
        .ok_or("audio output has no registers")?;
    let period_frames = desc.period_ms * shared_devices::audio::RATE / 1000;
    let speaker =
        PhysicalSpeaker::open(region.base, region.size, period_frames, desc.periods as u16)?;
    info!(
        "audio {}: virtio-sound at {:#x}, 48000 Hz S16 stereo, {} periods of {} ms, mixed on cpu {home_cpu}",
        desc.name,
        region.base,
        speaker.slots(),
        desc.period_ms
    );
    Ok(speaker)
}

/// Partition `p`'s device on its output, as source `source` of it.
pub fn open_sound(
    p: &config::model::Partition,
    index: usize,
    source: usize,
    slot: usize,
) -> Option<VirtSound> {
    let audio = p.audio.as_ref()?;
    if source >= MAX_SOURCES {
        return None;
    }
    info!(
        "partition {}: virtio-snd in slot {slot}: audio priority {}, gain {} dB, {} while ducked",
        p.name,
        audio.priority,
        audio.gain_db,
        if audio.duck_q16 == 0 {
            String::from("muted")
        } else {
            alloc::format!("{} dB", audio.duck_db)
        }
    );
    Some(VirtSound {
        partition: index,
        slot,
        output: audio.output,
        source,
        transport: Mutex::new(MmioTransport::new(VirtioSound::new(SoundLimits::default()))),
    })
}

/// Output number `output` of `system`, with its partitions' devices
/// (`sounds`, all outputs') as sources.
pub fn output(
    system: &config::model::System,
    output: usize,
    phys: PhysicalSpeaker,
    home_cpu: usize,
    intid: Option<u32>,
    sounds: &[&'static VirtSound],
) -> Output {
    let desc = &system.audio[output];
    let mut sources: Vec<&'static VirtSound> = sounds
        .iter()
        .copied()
        .filter(|s| s.output == output)
        .collect();
    sources.sort_by_key(|s| s.source);
    let mix: Vec<Source> = sources
        .iter()
        .filter_map(|s| system.partitions[s.partition].audio.as_ref())
        .map(|a| Source {
            priority: a.priority,
            gain_q16: a.gain_q16,
            duck_q16: a.duck_q16,
        })
        .collect();
    let period = (phys.period_frames() * CHANNELS) as usize;
    Output {
        name: desc.name,
        home_cpu,
        intid,
        phys: Mutex::new(phys),
        state: Mutex::new(OutputState {
            mixer: Mixer::new(&mix, RAMP_FRAMES),
            pulled: vec![vec![0; period]; sources.len()],
            mixed: vec![0; period],
            running: [false; MAX_SOURCES],
            periods: 0,
            started: false,
            played: false,
            clipped: 0,
            cost_ticks: 0,
            cost_max: 0,
            cost_streams: 0,
        }),
        sources,
    }
}

impl Audio {
    pub fn new(outputs: Vec<&'static Output>, sounds: Vec<&'static VirtSound>) -> Self {
        Self { outputs, sounds }
    }

    /// The cores that mix its outputs.
    pub fn home_cpus(&self) -> impl Iterator<Item = usize> + '_ {
        self.outputs.iter().map(|o| o.home_cpu)
    }

    /// The physical interrupts it owns, with the cores they go to.
    pub fn interrupts(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.outputs
            .iter()
            .filter_map(|o| o.intid.map(|i| (i, o.home_cpu)))
    }
}

impl Output {
    /// On the home core: takes back the periods played and mixes one for
    /// each; the first time, fills the device's buffer and starts it.
    fn service(&self) {
        let mut phys = self.phys.lock();
        let played = phys.reap().unwrap_or_else(|e| {
            warn!("audio {}: {e}", self.name);
            0
        });
        let mut st = self.state.lock();
        if played > 0 && !st.played {
            // The device's own latency: from its START to its first
            // period taken (QEMU: its audio timer's first tick).
            st.played = true;
            info!(
                "audio {}: first period played at counter {}",
                self.name,
                cpu::counter()
            );
        }
        while phys.free_slots() > 0 {
            let before = cpu::counter();
            let changes = self.mix_period(&mut st);
            self.account(&mut st, cpu::counter() - before);
            // Said after the accounting: a line costs more than a mix.
            let period = st.periods - 1;
            for change in changes {
                let name = hv().partitions[self.sources[change.source].partition]
                    .config
                    .name;
                if change.started {
                    info!(
                        "audio {}: partition {name}'s stream started: in period {period}, mixed at counter {}",
                        self.name, change.at
                    );
                } else {
                    info!(
                        "audio {}: partition {name}'s stream stopped before period {period}",
                        self.name
                    );
                }
            }
            if let Err(e) = phys.submit(&st.mixed) {
                warn!("audio {}: {e}", self.name);
                break;
            }
        }
        if !st.started {
            st.started = true;
            match phys.start() {
                Ok(()) => info!(
                    "audio {}: started at counter {} with {} periods queued",
                    self.name,
                    cpu::counter(),
                    phys.slots()
                ),
                Err(e) => warn!("audio {}: {e}; it stays silent", self.name),
            }
        }
    }

    /// Counts one period's mixing time (`ticks`, pulls included), and
    /// says every [`COST_REPORT_PERIODS`] periods what mixing costs.
    fn account(&self, st: &mut OutputState, ticks: u64) {
        st.cost_ticks += ticks;
        st.cost_max = st.cost_max.max(ticks);
        let running = st.running.iter().filter(|&&r| r).count();
        st.cost_streams = st.cost_streams.max(running);
        if st.periods.is_multiple_of(COST_REPORT_PERIODS) {
            let us = |t: u64| t * 1_000_000 / cpu::counter_frequency().max(1);
            info!(
                "audio {}: mixing periods {}..{}: mean {} us, max {} us a period, up to {} stream(s)",
                self.name,
                st.periods - COST_REPORT_PERIODS,
                st.periods,
                us(st.cost_ticks / COST_REPORT_PERIODS),
                us(st.cost_max),
                st.cost_streams
            );
            st.cost_ticks = 0;
            st.cost_max = 0;
            st.cost_streams = 0;
        }
    }

    /// Mixes the next period into `st.mixed`; returns the streams that
    /// started or stopped with it.
    fn mix_period(&self, st: &mut OutputState) -> heapless::Vec<StreamChange, MAX_SOURCES> {
        let OutputState {
            mixer,
            pulled,
            mixed,
            running,
            periods,
            clipped,
            ..
        } = st;
        let mut changes = heapless::Vec::new();
        let mut frames = [None::<usize>; MAX_SOURCES];
        for (i, sound) in self.sources.iter().enumerate() {
            let p = &hv().partitions[sound.partition];
            let was = running[i];
            running[i] = false;
            if !p.is_running() {
                continue;
            }
            let mem = sound.memory();
            let mut transport = sound.transport.lock();
            if !transport.device().stream().running {
                drop(transport);
                if was {
                    let _ = changes.push(StreamChange {
                        source: i,
                        started: false,
                        at: cpu::counter(),
                    });
                }
                continue;
            }
            let buffer = &mut pulled[i];
            let (n, fx) = transport.with_device(&mem, |dev, ctx| dev.pull(buffer, ctx));
            drop(transport);
            if fx.irq == Some(true) {
                partition::raise_virtual_spi(p, sound.intid());
            }
            running[i] = true;
            frames[i] = Some(n);
            if !was {
                let _ = changes.push(StreamChange {
                    source: i,
                    started: true,
                    at: cpu::counter(),
                });
            }
        }
        let inputs: heapless::Vec<Input<'_>, MAX_SOURCES> = pulled
            .iter()
            .zip(frames)
            .map(|(buffer, n)| match n {
                Some(n) => Input::Playing(&buffer[..(n * CHANNELS as usize).min(buffer.len())]),
                None => Input::Idle,
            })
            .collect();
        let report = mixer.mix(&inputs, mixed);
        *periods += 1;
        if report.clipped > 0 && *clipped == 0 {
            info!(
                "audio {}: the mix clipped in period {periods} (saturated)",
                self.name
            );
        }
        *clipped += u64::from(report.clipped);
        changes
    }
}

impl VirtSound {
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

/// The registers of a partition's virtio-snd slot.
impl EmulatedDevice for VirtSound {
    fn read(&'static self, a: &Access, _actions: &mut Actions) -> u64 {
        self.transport.lock().read_register(a.offset, a.width)
    }

    /// Processes what the driver queued, on the partition's own core.
    fn write(&'static self, a: &Access, value: u64, actions: &mut Actions) {
        let mem = self.memory();
        actions.raise_line = virtio_window::write(&self.transport, &mem, a, value, "audio");
    }

    fn line_high(&self, _p: &Partition) -> bool {
        self.transport.lock().irq_level()
    }

    fn reset(&self, _p: &Partition) {
        let _ = self.transport.lock().reset();
    }
}

impl Mediator for Audio {
    fn name(&self) -> &'static str {
        "audio"
    }

    /// On a home core: refills its outputs. Never waits.
    fn service(&self) -> Option<u64> {
        let me = cpu::current();
        for output in self.outputs.iter().filter(|o| o.home_cpu == me) {
            output.service();
        }
        None
    }

    /// An output's used-buffer interrupt: lowers its line; the periods it
    /// played are refilled by [`Mediator::service`], which runs next on
    /// this core.
    fn interrupt(&self, intid: u32) {
        if let Some(output) = self.outputs.iter().find(|o| o.intid == Some(intid)) {
            output.phys.lock().ack_interrupt();
        }
    }

    /// The partition's streams leave the mix at the next period, fading
    /// out; its devices are reset (their stream released, their buffers
    /// forgotten: nothing reads its memory after this returns, since
    /// pulls happen under the device's lock).
    fn quiesce(&self, p: &Partition) {
        for sound in self.sounds.iter().filter(|s| s.partition == p.index) {
            let _ = sound.transport.lock().reset();
            if let Some(output) = self.outputs.get(sound.output) {
                output.state.lock().mixer.drop_source(sound.source);
            }
        }
    }
}
