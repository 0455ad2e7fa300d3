//! ALSA PCM playback through the kernel's interface, as raw ioctls on
//! `/dev/snd/pcmC<card>D<device>p`: no alsa-lib, no crate.
//!
//! With [`crate::kms`], the crate's modules with `unsafe` code: the ioctls
//! here hand the kernel pointers to argument structures (and, for
//! WRITEI_FRAMES, to the samples). The system call itself is
//! [`crate::kms`]'s. The structures are the kernel's uAPI
//! (`include/uapi/sound/asound.h`, PCM protocol 2.0.x) for a 64-bit kernel
//! (`snd_pcm_uframes_t` is an `unsigned long`, 8 bytes on arm64); the
//! tests pin their sizes, offsets and the request numbers.
//!
//! The hardware parameters are negotiated the kernel's way: a parameter
//! set starts as "anything" (every mask bit set, every interval 0 to
//! `u32::MAX`), HW_REFINE narrows it to what the driver allows, the player
//! narrows it further, and HW_PARAMS picks one configuration from what is
//! left and installs it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::kms::{check, nr, syscall};

/// `SNDRV_PCM_HW_PARAM_*`: the masks (0-2) and intervals (8-19) of a
/// hardware parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    Access = 0,
    Format = 1,
    Subformat = 2,
    SampleBits = 8,
    FrameBits = 9,
    Channels = 10,
    Rate = 11,
    PeriodTime = 12,
    PeriodSize = 13,
    PeriodBytes = 14,
    Periods = 15,
    BufferTime = 16,
    BufferSize = 17,
    BufferBytes = 18,
    TickTime = 19,
}

const FIRST_INTERVAL: usize = Param::SampleBits as usize;

/// `SNDRV_PCM_ACCESS_RW_INTERLEAVED`: read/write calls, interleaved frames.
pub const ACCESS_RW_INTERLEAVED: u32 = 3;
/// `SNDRV_PCM_FORMAT_S16_LE`.
pub const FORMAT_S16_LE: u32 = 2;
/// `SNDRV_PCM_VERSION` of the header these structures come from (2.0.15);
/// the kernel reads `tstamp_type` only from protocol 2.0.12 on.
const PROTOCOL_VERSION: u32 = (2 << 16) | 15;

/// `struct snd_mask`: a bit per value, 256 values.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mask {
    bits: [u32; 8],
}

/// `struct snd_interval`: `min` and `max`, then a 32-bit word of bit fields
/// (GCC's little-endian order: `openmin` is bit 0, `openmax` bit 1,
/// `integer` bit 2, `empty` bit 3).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Interval {
    min: u32,
    max: u32,
    flags: u32,
}

const OPENMIN: u32 = 1 << 0;
const OPENMAX: u32 = 1 << 1;
const EMPTY: u32 = 1 << 3;

/// `struct snd_pcm_hw_params` (608 bytes on a 64-bit kernel).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HwParams {
    flags: u32,
    masks: [Mask; 3],
    mres: [Mask; 5],
    intervals: [Interval; 12],
    ires: [Interval; 9],
    /// Which parameters the kernel is to refine (bit per `Param`); it
    /// clears this after each refinement.
    rmask: u32,
    cmask: u32,
    info: u32,
    msbits: u32,
    rate_num: u32,
    rate_den: u32,
    fifo_size: u64,
    reserved: [u8; 64],
}

impl HwParams {
    /// Every access, format, channel count, rate and size: what
    /// HW_REFINE then narrows to the device's abilities.
    pub fn any() -> HwParams {
        let any_interval = Interval {
            min: 0,
            max: u32::MAX,
            flags: 0,
        };
        HwParams {
            flags: 0,
            masks: [Mask {
                bits: [u32::MAX; 8],
            }; 3],
            mres: [Mask { bits: [0; 8] }; 5],
            intervals: [any_interval; 12],
            ires: [Interval {
                min: 0,
                max: 0,
                flags: 0,
            }; 9],
            rmask: u32::MAX,
            cmask: 0,
            info: u32::MAX,
            msbits: 0,
            rate_num: 0,
            rate_den: 0,
            fifo_size: 0,
            reserved: [0; 64],
        }
    }

    fn mask_mut(&mut self, param: Param) -> &mut Mask {
        assert!((param as usize) < FIRST_INTERVAL, "{param:?} is no mask");
        &mut self.masks[param as usize]
    }

    fn interval(&self, param: Param) -> &Interval {
        assert!(
            (param as usize) >= FIRST_INTERVAL,
            "{param:?} is no interval"
        );
        &self.intervals[param as usize - FIRST_INTERVAL]
    }

    fn interval_mut(&mut self, param: Param) -> &mut Interval {
        assert!(
            (param as usize) >= FIRST_INTERVAL,
            "{param:?} is no interval"
        );
        &mut self.intervals[param as usize - FIRST_INTERVAL]
    }

    /// Allows only `value` of a mask parameter (access, format, subformat).
    pub fn set_mask(&mut self, param: Param, value: u32) {
        let mask = self.mask_mut(param);
        mask.bits = [0; 8];
        mask.bits[(value / 32) as usize % 8] = 1 << (value % 32);
    }

    /// Whether a mask parameter allows `value`.
    pub fn mask_has(&self, param: Param, value: u32) -> bool {
        assert!((param as usize) < FIRST_INTERVAL, "{param:?} is no mask");
        self.masks[param as usize].bits[(value / 32) as usize % 8] & (1 << (value % 32)) != 0
    }

    /// Allows only `min..=max` of an interval parameter.
    pub fn set_range(&mut self, param: Param, min: u32, max: u32) {
        *self.interval_mut(param) = Interval { min, max, flags: 0 };
    }

    /// The values an interval parameter allows, closed at both ends;
    /// `None` if it is empty.
    pub fn range(&self, param: Param) -> Option<(u32, u32)> {
        let i = self.interval(param);
        let min = if i.flags & OPENMIN != 0 {
            i.min.checked_add(1)?
        } else {
            i.min
        };
        let max = if i.flags & OPENMAX != 0 {
            i.max.checked_sub(1)?
        } else {
            i.max
        };
        (i.flags & EMPTY == 0 && min <= max).then_some((min, max))
    }

    /// The value of an interval parameter that allows exactly one.
    pub fn value(&self, param: Param) -> Option<u32> {
        self.range(param)
            .and_then(|(min, max)| (min == max).then_some(min))
    }
}

/// `struct snd_pcm_sw_params` (136 bytes on a 64-bit kernel).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SwParams {
    tstamp_mode: i32,
    period_step: u32,
    sleep_min: u32,
    avail_min: u64,
    xfer_align: u64,
    start_threshold: u64,
    stop_threshold: u64,
    silence_threshold: u64,
    silence_size: u64,
    /// Written by the kernel: where its frame pointers wrap.
    boundary: u64,
    proto: u32,
    tstamp_type: u32,
    reserved: [u8; 56],
}

impl SwParams {
    /// Software parameters for playback: wake up when `avail_min` frames
    /// are free, start by itself once `start_threshold` frames are queued,
    /// stop with an underrun (EPIPE on the next write) when the buffer runs
    /// empty (`buffer_frames` free), no silence filling, no timestamps.
    pub fn playback(avail_min: u64, start_threshold: u64, buffer_frames: u64) -> SwParams {
        SwParams {
            tstamp_mode: 0,
            period_step: 1,
            sleep_min: 0,
            avail_min,
            xfer_align: 1,
            start_threshold,
            stop_threshold: buffer_frames,
            silence_threshold: 0,
            silence_size: 0,
            boundary: 0,
            proto: PROTOCOL_VERSION,
            tstamp_type: 0,
            reserved: [0; 56],
        }
    }

    /// The kernel's boundary (valid after [`Pcm::set_sw_params`]).
    pub fn boundary(&self) -> u64 {
        self.boundary
    }
}

/// `struct snd_xferi`: one READI/WRITEI transfer.
#[repr(C)]
struct Xferi {
    /// Written by the kernel: frames transferred (or an error).
    result: i64,
    buf: u64,
    frames: u64,
}

/// `struct snd_pcm_info` (288 bytes).
#[repr(C)]
struct Info {
    device: u32,
    subdevice: u32,
    /// `SNDRV_PCM_STREAM_PLAYBACK` (0) or `_CAPTURE` (1).
    stream: i32,
    card: i32,
    id: [u8; 64],
    name: [u8; 80],
    subname: [u8; 32],
    dev_class: i32,
    dev_subclass: i32,
    subdevices_count: u32,
    subdevices_avail: u32,
    sync: [u8; 16],
    reserved: [u8; 64],
}

/// What INFO says about a PCM device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcmInfo {
    pub card: i32,
    pub device: u32,
    pub playback: bool,
    pub name: String,
}

/// `_IOC` in the generic Linux encoding (AArch64, x86, Arm, RISC-V):
/// direction in bits 30-31 (1 write, 2 read), size in bits 16-29, type
/// `'A'` (the PCM interface) in bits 8-15.
const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'A' as u64) << 8) | nr
}
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

const INFO: u64 = ioc(IOC_READ, 0x01, size_of::<Info>());
const HW_REFINE: u64 = ioc(IOC_READ | IOC_WRITE, 0x10, size_of::<HwParams>());
const HW_PARAMS: u64 = ioc(IOC_READ | IOC_WRITE, 0x11, size_of::<HwParams>());
const SW_PARAMS: u64 = ioc(IOC_READ | IOC_WRITE, 0x13, size_of::<SwParams>());
const PREPARE: u64 = ioc(0, 0x40, 0);
const DRAIN: u64 = ioc(0, 0x44, 0);
const WRITEI_FRAMES: u64 = ioc(IOC_WRITE, 0x50, size_of::<Xferi>());

/// `EPIPE`: the stream under- (or over-) ran.
pub const EPIPE: i32 = 32;

/// An open PCM playback device.
pub struct Pcm {
    file: File,
}

impl Pcm {
    /// Opens the device for writing. The open itself does not wait for a
    /// device another process holds (EBUSY instead); reads and writes
    /// afterwards block, as playback wants.
    pub fn open(path: &Path) -> io::Result<Pcm> {
        const O_NONBLOCK: i32 = 0o4000;
        const F_SETFL: usize = 4;
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(path)?;
        // SAFETY: F_SETFL with no status flags: clears O_NONBLOCK on our
        // own descriptor; no memory involved.
        check(unsafe { syscall(nr::FCNTL, [file.as_raw_fd() as usize, F_SETFL, 0, 0, 0, 0]) })?;
        Ok(Pcm { file })
    }

    /// INFO: the card, device, direction and name.
    pub fn info(&self) -> io::Result<PcmInfo> {
        let mut info = Info {
            device: 0,
            subdevice: 0,
            stream: 0,
            card: 0,
            id: [0; 64],
            name: [0; 80],
            subname: [0; 32],
            dev_class: 0,
            dev_subclass: 0,
            subdevices_count: 0,
            subdevices_avail: 0,
            sync: [0; 16],
            reserved: [0; 64],
        };
        // SAFETY: INFO fills a `struct snd_pcm_info`; no pointers.
        unsafe { self.ioctl(INFO, &mut info)? };
        let len = info.name.iter().position(|&b| b == 0).unwrap_or(80);
        Ok(PcmInfo {
            card: info.card,
            device: info.device,
            playback: info.stream == 0,
            name: String::from_utf8_lossy(&info.name[..len]).into_owned(),
        })
    }

    /// HW_REFINE: narrows `params` to what the device allows (EINVAL if
    /// nothing is left).
    pub fn refine(&self, params: &mut HwParams) -> io::Result<()> {
        params.rmask = u32::MAX;
        // SAFETY: HW_REFINE takes a `struct snd_pcm_hw_params`; no pointers.
        unsafe { self.ioctl(HW_REFINE, params) }
    }

    /// HW_PARAMS: refines, picks one configuration out of what is left
    /// (the kernel's choice: the shortest period time, then the largest
    /// buffer) and installs it; `params` then holds single values.
    pub fn set_hw_params(&self, params: &mut HwParams) -> io::Result<()> {
        params.rmask = u32::MAX;
        // SAFETY: as in `refine`.
        unsafe { self.ioctl(HW_PARAMS, params) }
    }

    /// SW_PARAMS (after HW_PARAMS).
    pub fn set_sw_params(&self, params: &mut SwParams) -> io::Result<()> {
        // SAFETY: SW_PARAMS takes a `struct snd_pcm_sw_params`; no pointers.
        unsafe { self.ioctl(SW_PARAMS, params) }
    }

    /// PREPARE: ready to start (again, after an underrun).
    pub fn prepare(&self) -> io::Result<()> {
        // SAFETY: no argument.
        unsafe { self.ioctl_raw(PREPARE, 0) }.map(drop)
    }

    /// DRAIN: blocks until what was written has been played, then stops.
    pub fn drain(&self) -> io::Result<()> {
        // SAFETY: no argument.
        unsafe { self.ioctl_raw(DRAIN, 0) }.map(drop)
    }

    /// WRITEI_FRAMES: queues whole frames of `channels` interleaved
    /// samples from `samples`, blocking while the buffer is full; returns
    /// how many frames went in (all unless interrupted). An underrun is
    /// `EPIPE` (see [`EPIPE`]): prepare again and write on.
    pub fn write_interleaved(&self, samples: &[i16], channels: usize) -> io::Result<usize> {
        let frames = samples.len() / channels.max(1);
        let mut xfer = Xferi {
            result: 0,
            buf: samples.as_ptr() as u64,
            frames: frames as u64,
        };
        // SAFETY: the kernel reads `frames` frames of the hw-configured
        // size from `buf`; the caller configured S16_LE with `channels`
        // channels, so that is at most `samples.len()` i16s, which live
        // until the call returns. It writes only `xfer.result`.
        unsafe { self.ioctl(WRITEI_FRAMES, &mut xfer)? };
        Ok(usize::try_from(xfer.result).unwrap_or(0))
    }

    /// An ioctl whose argument is `arg`.
    ///
    /// # Safety
    ///
    /// `request` must take a `T` (its size is checked), and every pointer
    /// in `arg` must be valid for what the kernel reads or writes through
    /// it.
    unsafe fn ioctl<T>(&self, request: u64, arg: &mut T) -> io::Result<()> {
        let encoded = ((request >> 16) & 0x3fff) as usize;
        assert_eq!(encoded, size_of::<T>(), "ioctl {request:#x}");
        // SAFETY: the caller's promise; `arg` is valid for size_of::<T>().
        unsafe { self.ioctl_raw(request, arg as *mut T as usize) }.map(drop)
    }

    /// An ioctl, retried while interrupted by a signal.
    ///
    /// # Safety
    ///
    /// `arg` must be what `request` expects.
    unsafe fn ioctl_raw(&self, request: u64, arg: usize) -> io::Result<usize> {
        let fd = self.file.as_raw_fd() as usize;
        loop {
            // SAFETY: the caller's promise about `arg`; `fd` is open for as
            // long as `self` lives.
            let ret = unsafe { syscall(nr::IOCTL, [fd, request as usize, arg, 0, 0, 0]) };
            match check(ret) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

/// The playback devices `/proc/asound/pcm` lists (lines like `00-00:
/// virtio-snd PCM 0 : virtio-snd PCM 0 : playback 1 : capture 1`), as
/// their device nodes, in its order.
pub fn playback_devices(proc_asound_pcm: &str) -> Vec<String> {
    proc_asound_pcm
        .lines()
        .filter(|line| {
            line.split(':')
                .skip(1)
                .any(|field| field.trim().starts_with("playback"))
        })
        .filter_map(|line| {
            let (card, device) = line.split(':').next()?.trim().split_once('-')?;
            let card: u32 = card.parse().ok()?;
            let device: u32 = device.parse().ok()?;
            Some(format!("/dev/snd/pcmC{card}D{device}p"))
        })
        .collect()
}

/// The first playback device: from `/proc/asound/pcm`, else the first
/// `/dev/snd/pcmC*D*p` by card and device number.
pub fn first_playback_device() -> Option<String> {
    if let Ok(text) = std::fs::read_to_string("/proc/asound/pcm")
        && let Some(first) = playback_devices(&text).into_iter().next()
    {
        return Some(first);
    }
    let mut nodes: Vec<(u32, u32, String)> = std::fs::read_dir("/dev/snd")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (card, device) = name
                .strip_prefix("pcmC")?
                .strip_suffix('p')?
                .split_once('D')?;
            Some((card.parse().ok()?, device.parse().ok()?, name))
        })
        .collect();
    nodes.sort();
    nodes
        .into_iter()
        .next()
        .map(|(_, _, name)| format!("/dev/snd/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn argument_layouts_are_the_kernels() {
        // `include/uapi/sound/asound.h` on a 64-bit kernel (arm64, x86-64).
        assert_eq!(size_of::<Mask>(), 32);
        assert_eq!(size_of::<Interval>(), 12);
        assert_eq!(size_of::<HwParams>(), 608);
        assert_eq!(offset_of!(HwParams, masks), 4);
        assert_eq!(offset_of!(HwParams, intervals), 260);
        assert_eq!(offset_of!(HwParams, rmask), 512);
        assert_eq!(offset_of!(HwParams, info), 520);
        assert_eq!(offset_of!(HwParams, rate_num), 528);
        assert_eq!(offset_of!(HwParams, fifo_size), 536);
        assert_eq!(size_of::<SwParams>(), 136);
        assert_eq!(offset_of!(SwParams, avail_min), 16);
        assert_eq!(offset_of!(SwParams, start_threshold), 32);
        assert_eq!(offset_of!(SwParams, stop_threshold), 40);
        assert_eq!(offset_of!(SwParams, boundary), 64);
        assert_eq!(offset_of!(SwParams, proto), 72);
        assert_eq!(size_of::<Xferi>(), 24);
        assert_eq!(size_of::<Info>(), 288);
        assert_eq!(offset_of!(Info, name), 80);
        assert_eq!(offset_of!(Info, sync), 208);
        assert_eq!(offset_of!(Xferi, buf), 8);
        assert_eq!(offset_of!(Xferi, frames), 16);
    }

    #[test]
    fn request_numbers_are_the_kernels() {
        // What the uAPI's _IOWR/_IOW/_IO('A', ...) give (strace shows them).
        assert_eq!(INFO, 0x8120_4101);
        assert_eq!(HW_REFINE, 0xc260_4110);
        assert_eq!(HW_PARAMS, 0xc260_4111);
        assert_eq!(SW_PARAMS, 0xc088_4113);
        assert_eq!(PREPARE, 0x4140);
        assert_eq!(DRAIN, 0x4144);
        assert_eq!(WRITEI_FRAMES, 0x4018_4150);
    }

    #[test]
    fn parameter_sets() {
        let mut p = HwParams::any();
        assert!(p.mask_has(Param::Format, FORMAT_S16_LE));
        assert_eq!(p.range(Param::Rate), Some((0, u32::MAX)));
        p.set_mask(Param::Access, ACCESS_RW_INTERLEAVED);
        assert!(p.mask_has(Param::Access, ACCESS_RW_INTERLEAVED));
        assert!(!p.mask_has(Param::Access, 0));
        assert_eq!(p.masks[0].bits, [8, 0, 0, 0, 0, 0, 0, 0]);
        p.set_range(Param::Rate, 48000, 48000);
        assert_eq!(p.value(Param::Rate), Some(48000));
        assert_eq!(p.intervals[3].min, 48000);
        // Open ends, as the kernel marks them, close inwards.
        p.interval_mut(Param::PeriodTime).min = 10;
        p.interval_mut(Param::PeriodTime).max = 20;
        p.interval_mut(Param::PeriodTime).flags = OPENMIN | OPENMAX;
        assert_eq!(p.range(Param::PeriodTime), Some((11, 19)));
        assert_eq!(p.value(Param::PeriodTime), None);
        p.interval_mut(Param::PeriodTime).flags = EMPTY;
        assert_eq!(p.range(Param::PeriodTime), None);
        // Bit fields: openmin is the word's lowest bit, empty bit 3.
        assert_eq!((OPENMIN, OPENMAX, EMPTY), (1, 2, 8));
    }

    #[test]
    fn playback_devices_from_proc() {
        let text = "\
00-00: virtio-snd PCM 0 : virtio-snd PCM 0 : capture 1
01-00: virtio-snd PCM 0 : virtio-snd PCM 0 : playback 1 : capture 1
01-03: HDMI 3 : HDMI 3 : playback 1
";
        assert_eq!(
            playback_devices(text),
            ["/dev/snd/pcmC1D0p", "/dev/snd/pcmC1D3p"]
        );
        assert!(playback_devices("").is_empty());
    }

    #[test]
    fn software_parameters() {
        let sw = SwParams::playback(1024, 4096, 4096);
        assert_eq!(
            (sw.avail_min, sw.start_threshold, sw.stop_threshold),
            (1024, 4096, 4096)
        );
        assert_eq!((sw.silence_threshold, sw.silence_size), (0, 0));
        assert_eq!(sw.proto, 0x2000f);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pcm_ioctls_on_a_non_pcm_file_fail_cleanly() {
        let pcm = Pcm::open(Path::new("/dev/null")).unwrap();
        // ENOTTY: not a sound device.
        assert_eq!(pcm.info().unwrap_err().raw_os_error(), Some(25));
        assert_eq!(
            pcm.refine(&mut HwParams::any()).unwrap_err().raw_os_error(),
            Some(25)
        );
        assert!(pcm.prepare().is_err());
        assert!(pcm.write_interleaved(&[0; 4], 2).is_err());
        assert!(pcm.drain().is_err());
    }
}
