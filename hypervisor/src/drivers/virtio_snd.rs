//! The hypervisor's driver for a physical virtio-snd device (VIRTIO 1.2
//! §5.14): it finds an output stream that plays 48 kHz S16 stereo, sets
//! it up with the audio mediator's period, and takes one mixed period at
//! a time on the tx queue. The device returns a period's buffer when it
//! has played it (QEMU: when its audio backend took the samples), which is
//! what paces the mixer.
//!
//! Memory: one DMA region holds both rings, the control request and its
//! answer, and per period slot its indirect table, transfer header,
//! status and samples. A slot is busy from [`PhysicalSpeaker::submit`]
//! until the device returns it ([`PhysicalSpeaker::reap`]).

use super::virtio_mmio::Transport;
use crate::arch::cpu;
use crate::arch::dma::DmaRegion;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use shared_devices::virtio::device::{feature, id};
use shared_devices::virtio::driver::{Buf, DriverQueue};
use shared_devices::virtio::memory::GuestMemory;
use shared_devices::virtio::sound::protocol::{
    self as snd, PCM_INFO_BYTES, PCM_STATUS_BYTES, PcmInfo, PcmStatus, QueryInfo, SetParams, code,
    status,
};

const CONTROLQ: u32 = 0;
const TXQ: u32 = 2;
/// Control requests go one at a time.
const CONTROL_QUEUE_SIZE: u16 = 4;
/// Streams looked at at most for an output.
const MAX_STREAMS: u32 = 16;
/// Bytes of the control area: request, then the answer at
/// [`ANSWER_AT`], then the indirect table at [`CONTROL_TABLE_AT`].
const CONTROL_BYTES: u64 = 4096;
const ANSWER_AT: u64 = 64;
const CONTROL_TABLE_AT: u64 = 3072;
/// A slot's layout: indirect table (3 descriptors), transfer header,
/// status, then the samples.
const SLOT_TABLE: u64 = 0;
const SLOT_XFER: u64 = 48;
const SLOT_STATUS: u64 = 56;
const SLOT_DATA: u64 = 64;
/// How long a control request may take (at boot).
const CONTROL_TIMEOUT_MS: u64 = 1000;
/// Channels and bytes per frame of the physical stream.
pub const CHANNELS: u32 = 2;
const FRAME_BYTES: u32 = 2 * CHANNELS;

/// A physical output stream, prepared and fed a period at a time.
pub struct PhysicalSpeaker {
    transport: Transport,
    dma: DmaRegion,
    control: DriverQueue,
    tx: DriverQueue,
    stream: u32,
    period_frames: u32,
    /// Which slot each tx descriptor id carries, and the free slots.
    slot_of: Vec<u16>,
    free: Vec<u16>,
    slots: u16,
    started: bool,
    /// A period's samples as the words written to a slot (kept, so that
    /// queueing a period allocates nothing).
    words: Vec<u32>,
    /// Periods the device returned with an error status.
    pub errors: u64,
}

impl PhysicalSpeaker {
    /// Initialises the virtio-snd device in the frame at `base` and
    /// prepares its first output stream that plays 48 kHz S16 stereo, with
    /// `slots` periods of `period_frames` frames as its buffer.
    pub fn open(
        base: u64,
        size: u64,
        period_frames: u32,
        slots: u16,
    ) -> Result<PhysicalSpeaker, String> {
        let transport = Transport::open(
            base,
            size,
            id::SOUND,
            "virtio-sound",
            feature::VERSION_1 | feature::INDIRECT_DESC,
            feature::VERSION_1 | feature::INDIRECT_DESC,
        )?;
        let streams = transport.config32(snd::config::STREAMS as u64);
        // The ring is a power of two (a split ring's rule here); the
        // periods in flight are at most its size.
        let queue_max = transport
            .queue_max(TXQ)
            .min(u32::from(DriverQueue::MAX_SIZE)) as u16;
        if queue_max == 0 {
            return Err(format!("virtio-sound at {base:#x} has no tx queue"));
        }
        let tx_size = slots
            .max(1)
            .next_power_of_two()
            .min(prev_power_of_two(queue_max));
        let slots = slots.clamp(1, tx_size);
        let period_bytes = period_frames * FRAME_BYTES;
        let slot_bytes = (SLOT_DATA + u64::from(period_bytes)).next_multiple_of(64);
        let control_rings = DriverQueue::memory_bytes(CONTROL_QUEUE_SIZE).next_multiple_of(4096);
        let tx_rings = DriverQueue::memory_bytes(tx_size).next_multiple_of(4096);
        let bytes = control_rings + tx_rings + CONTROL_BYTES + u64::from(slots) * slot_bytes;
        let dma = DmaRegion::alloc(bytes as usize).ok_or("no memory for the audio buffers")?;
        let err = |e| format!("queue memory {e:?}");
        let control = DriverQueue::new(CONTROL_QUEUE_SIZE, dma.base(), &dma).map_err(err)?;
        let tx = DriverQueue::new(tx_size, dma.base() + control_rings, &dma).map_err(err)?;
        transport.set_queue(CONTROLQ, &control)?;
        transport.set_queue(TXQ, &tx)?;
        transport.driver_ok();
        let mut speaker = PhysicalSpeaker {
            transport,
            dma,
            control,
            tx,
            stream: 0,
            period_frames,
            slot_of: alloc::vec![0; usize::from(tx_size)],
            free: (0..slots).rev().collect(),
            slots,
            started: false,
            words: Vec::with_capacity((period_frames * CHANNELS / 2) as usize),
            errors: 0,
        };
        speaker.stream = speaker.find_output(streams)?;
        let params = SetParams {
            stream_id: speaker.stream,
            buffer_bytes: period_bytes * u32::from(slots),
            period_bytes,
            features: 0,
            channels: CHANNELS as u8,
            format: snd::PCM_FMT_S16,
            rate: snd::PCM_RATE_48000,
        };
        speaker.control(&params.to_bytes(), 0)?;
        speaker.control(&pcm_request(code::PCM_PREPARE, speaker.stream), 0)?;
        Ok(speaker)
    }

    /// The first output stream that plays S16 at 48 kHz in stereo.
    fn find_output(&mut self, streams: u32) -> Result<u32, String> {
        let count = streams.min(MAX_STREAMS);
        if count == 0 {
            return Err(format!(
                "virtio-sound at {:#x} has no streams",
                self.transport.base()
            ));
        }
        let query = QueryInfo {
            code: code::PCM_INFO,
            start_id: 0,
            count,
            size: PCM_INFO_BYTES as u32,
        };
        let answer = self.control(&query.to_bytes(), count as usize * PCM_INFO_BYTES)?;
        for i in 0..count as usize {
            let mut info = [0u8; PCM_INFO_BYTES];
            let at = 4 + i * PCM_INFO_BYTES;
            info.copy_from_slice(&answer[at..at + PCM_INFO_BYTES]);
            let info = PcmInfo::from_bytes(&info);
            if info.direction == snd::D_OUTPUT
                && info.formats & 1 << snd::PCM_FMT_S16 != 0
                && info.rates & 1 << snd::PCM_RATE_48000 != 0
                && (info.channels_min..=info.channels_max).contains(&(CHANNELS as u8))
            {
                return Ok(i as u32);
            }
        }
        Err(format!(
            "virtio-sound at {:#x}: no output stream plays 48 kHz S16 stereo",
            self.transport.base()
        ))
    }

    fn control_area(&self) -> u64 {
        self.dma.base()
            + DriverQueue::memory_bytes(CONTROL_QUEUE_SIZE).next_multiple_of(4096)
            + DriverQueue::memory_bytes(self.tx.size()).next_multiple_of(4096)
    }

    fn slot_base(&self, slot: u16) -> u64 {
        let slot_bytes =
            (SLOT_DATA + u64::from(self.period_frames * FRAME_BYTES)).next_multiple_of(64);
        self.control_area() + CONTROL_BYTES + u64::from(slot) * slot_bytes
    }

    /// One control request, waited for (at boot, or when the stream
    /// starts): returns the answer (status first, then `extra` bytes),
    /// an error unless the status is OK.
    fn control(&mut self, request: &[u8], extra: usize) -> Result<Vec<u8>, String> {
        let at = self.control_area();
        let answer_len = 4 + extra;
        let err = |e| format!("DMA area: {e:?}");
        self.dma.write(at, request).map_err(err)?;
        self.dma.write(at + ANSWER_AT, &[0; 4]).map_err(err)?;
        let bufs = [
            Buf {
                addr: at,
                len: request.len() as u32,
                device_writes: false,
            },
            Buf {
                addr: at + ANSWER_AT,
                len: answer_len as u32,
                device_writes: true,
            },
        ];
        self.control
            .add(at + CONTROL_TABLE_AT, &bufs, &self.dma)
            .map_err(|e| format!("control queue: {e:?}"))?;
        if self.control.should_notify(&self.dma) {
            self.transport.notify(CONTROLQ);
        }
        let code = u32::from_le_bytes([request[0], request[1], request[2], request[3]]);
        let deadline = cpu::counter() + CONTROL_TIMEOUT_MS * cpu::counter_frequency() / 1000;
        loop {
            match self.control.pop_used(&self.dma) {
                Ok(Some(_)) => break,
                Ok(None) if cpu::counter() > deadline => {
                    return Err(format!(
                        "virtio-sound at {:#x}: no answer to request {code:#x}",
                        self.transport.base()
                    ));
                }
                Ok(None) => core::hint::spin_loop(),
                Err(e) => return Err(format!("control used ring: {e:?}")),
            }
        }
        let mut answer = alloc::vec![0u8; answer_len];
        self.dma.read(at + ANSWER_AT, &mut answer).map_err(err)?;
        let got = u32::from_le_bytes([answer[0], answer[1], answer[2], answer[3]]);
        if got != status::OK {
            return Err(format!(
                "virtio-sound at {:#x}: request {code:#x} answered {got:#x}",
                self.transport.base()
            ));
        }
        Ok(answer)
    }

    /// Frames per period.
    pub fn period_frames(&self) -> u32 {
        self.period_frames
    }

    /// Periods the device holds at most.
    pub fn slots(&self) -> u16 {
        self.slots
    }

    /// Periods that can be submitted now.
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Queues one period (`CHANNELS` interleaved samples per frame,
    /// exactly a period); the first one queued after [`Self::open`]
    /// waits until [`Self::start`].
    pub fn submit(&mut self, samples: &[i16]) -> Result<(), String> {
        if samples.len() != (self.period_frames * CHANNELS) as usize {
            return Err(format!("a period is {} frames", self.period_frames));
        }
        let slot = self.free.pop().ok_or("every period is queued")?;
        let at = self.slot_base(slot);
        let period_bytes = self.period_frames * FRAME_BYTES;
        self.words.clear();
        self.words.extend(
            samples
                .chunks_exact(2)
                .map(|p| u32::from(p[0] as u16) | u32::from(p[1] as u16) << 16),
        );
        let err = |e| format!("DMA area: {e:?}");
        self.dma
            .write_words(at + SLOT_DATA, &self.words)
            .map_err(err)?;
        self.dma
            .write(at + SLOT_XFER, &self.stream.to_le_bytes())
            .map_err(err)?;
        self.dma
            .write(at + SLOT_STATUS, &[0; PCM_STATUS_BYTES])
            .map_err(err)?;
        let bufs = [
            Buf {
                addr: at + SLOT_XFER,
                len: snd::XFER_BYTES as u32,
                device_writes: false,
            },
            Buf {
                addr: at + SLOT_DATA,
                len: period_bytes,
                device_writes: false,
            },
            Buf {
                addr: at + SLOT_STATUS,
                len: PCM_STATUS_BYTES as u32,
                device_writes: true,
            },
        ];
        match self.tx.add(at + SLOT_TABLE, &bufs, &self.dma) {
            Ok(id) => {
                if let Some(s) = self.slot_of.get_mut(usize::from(id)) {
                    *s = slot;
                }
            }
            Err(e) => {
                self.free.push(slot);
                return Err(format!("tx queue: {e:?}"));
            }
        }
        if self.tx.should_notify(&self.dma) {
            self.transport.notify(TXQ);
        }
        Ok(())
    }

    /// Starts the stream (after the first periods are queued).
    pub fn start(&mut self) -> Result<(), String> {
        if !self.started {
            self.control(&pcm_request(code::PCM_START, self.stream), 0)?;
            self.started = true;
        }
        Ok(())
    }

    /// Takes back the periods the device has played; returns how many.
    pub fn reap(&mut self) -> Result<usize, String> {
        let mut n = 0;
        for _ in 0..self.slots {
            let used = match self.tx.pop_used(&self.dma) {
                Ok(Some(used)) => used,
                Ok(None) => break,
                Err(e) => return Err(format!("tx used ring: {e:?}")),
            };
            let slot = self.slot_of[usize::from(used.id) % self.slot_of.len()];
            let mut b = [0u8; PCM_STATUS_BYTES];
            let _ = self.dma.read(self.slot_base(slot) + SLOT_STATUS, &mut b);
            if PcmStatus::from_bytes(&b).status != status::OK {
                self.errors += 1;
            }
            self.free.push(slot);
            n += 1;
        }
        Ok(n)
    }

    /// Lowers the device's interrupt line.
    pub fn ack_interrupt(&self) {
        self.transport.ack_interrupt();
    }
}

/// The largest power of two at most `n` (at least 1).
fn prev_power_of_two(n: u16) -> u16 {
    1 << (15 - n.max(1).leading_zeros())
}

/// `struct virtio_snd_pcm_hdr` of `code` for `stream`.
fn pcm_request(code: u32, stream: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&code.to_le_bytes());
    b[4..].copy_from_slice(&stream.to_le_bytes());
    b
}
