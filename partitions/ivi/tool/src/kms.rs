//! DRM/KMS, the few ioctls `ivi-tool draw` needs, as raw system calls.
//!
//! This module and [`crate::alsa`] are the ones with `unsafe` code (apart
//! from `main`'s counter read). This one has the system calls themselves
//! (`svc` on AArch64, `syscall` on the x86-64 host that runs the tests;
//! [`crate::alsa`] makes its ioctls through them), the DRM ioctls, whose
//! argument structures carry pointers the kernel writes through, and the
//! memory map of a dumb buffer. Everything it hands out is safe to use.
//!
//! No crate: the `drm` crate would bring drm-ffi, drm-sys, drm-fourcc,
//! bytemuck with its derive macros, rustix and linux-raw-sys into a binary
//! that goes into the hypervisor image, and even rustix leaves each DRM
//! ioctl `unsafe`. The argument structures below are the kernel's uAPI
//! (`include/uapi/drm/drm.h`, `drm_mode.h`); the tests pin their sizes and
//! the request numbers.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// `DRM_IOCTL_BASE`.
const DRM_TYPE: u64 = b'd' as u64;

/// `_IO('d', nr)`: no argument.
const fn io(nr: u64) -> u64 {
    (DRM_TYPE << 8) | nr
}

/// `_IOWR('d', nr, T)`: the generic Linux encoding (AArch64, x86, Arm,
/// RISC-V): direction in bits 30-31, argument size in bits 16-29.
const fn iowr<T>(nr: u64) -> u64 {
    (3 << 30) | ((size_of::<T>() as u64) << 16) | (DRM_TYPE << 8) | nr
}

const SET_MASTER: u64 = io(0x1e);
const GET_CAP: u64 = iowr::<GetCap>(0x0c);
const MODE_GETRESOURCES: u64 = iowr::<CardRes>(0xa0);
const MODE_SETCRTC: u64 = iowr::<ModeCrtc>(0xa2);
const MODE_GETENCODER: u64 = iowr::<GetEncoder>(0xa6);
const MODE_GETCONNECTOR: u64 = iowr::<GetConnector>(0xa7);
const MODE_ADDFB: u64 = iowr::<FbCmd>(0xae);
const MODE_PAGE_FLIP: u64 = iowr::<PageFlip>(0xb0);
const MODE_DIRTYFB: u64 = iowr::<FbDirty>(0xb1);
const MODE_CREATE_DUMB: u64 = iowr::<CreateDumb>(0xb2);
const MODE_MAP_DUMB: u64 = iowr::<MapDumb>(0xb3);

/// `DRM_CAP_DUMB_BUFFER`.
pub const CAP_DUMB_BUFFER: u64 = 0x1;
/// `DRM_MODE_PAGE_FLIP_EVENT`.
const PAGE_FLIP_EVENT: u32 = 0x01;
/// `DRM_MODE_CONNECTED`.
const CONNECTED: u32 = 1;
/// `DRM_MODE_TYPE_PREFERRED`.
pub const MODE_TYPE_PREFERRED: u32 = 1 << 3;
/// `DRM_EVENT_FLIP_COMPLETE`.
pub const EVENT_FLIP_COMPLETE: u32 = 0x02;

/// `struct drm_get_cap`.
#[repr(C)]
#[derive(Default)]
struct GetCap {
    capability: u64,
    value: u64,
}

/// `struct drm_mode_card_res`.
#[repr(C)]
#[derive(Default)]
struct CardRes {
    fb_id_ptr: u64,
    crtc_id_ptr: u64,
    connector_id_ptr: u64,
    encoder_id_ptr: u64,
    count_fbs: u32,
    count_crtcs: u32,
    count_connectors: u32,
    count_encoders: u32,
    min_width: u32,
    max_width: u32,
    min_height: u32,
    max_height: u32,
}

/// `struct drm_mode_modeinfo`: a display mode, as the kernel lists it and
/// takes it back in SetCrtc.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModeInfo {
    pub clock: u32,
    pub hdisplay: u16,
    pub hsync_start: u16,
    pub hsync_end: u16,
    pub htotal: u16,
    pub hskew: u16,
    pub vdisplay: u16,
    pub vsync_start: u16,
    pub vsync_end: u16,
    pub vtotal: u16,
    pub vscan: u16,
    pub vrefresh: u32,
    pub flags: u32,
    /// `DRM_MODE_TYPE_*` bits.
    pub kind: u32,
    pub name: [u8; 32],
}

/// `struct drm_mode_crtc`.
#[repr(C)]
#[derive(Default)]
struct ModeCrtc {
    set_connectors_ptr: u64,
    count_connectors: u32,
    crtc_id: u32,
    fb_id: u32,
    x: u32,
    y: u32,
    gamma_size: u32,
    mode_valid: u32,
    mode: ModeInfo,
}

/// `struct drm_mode_get_encoder`.
#[repr(C)]
#[derive(Default)]
struct GetEncoder {
    encoder_id: u32,
    encoder_type: u32,
    crtc_id: u32,
    possible_crtcs: u32,
    possible_clones: u32,
}

/// `struct drm_mode_get_connector`.
#[repr(C)]
#[derive(Default)]
struct GetConnector {
    encoders_ptr: u64,
    modes_ptr: u64,
    props_ptr: u64,
    prop_values_ptr: u64,
    count_modes: u32,
    count_props: u32,
    count_encoders: u32,
    encoder_id: u32,
    connector_id: u32,
    connector_type: u32,
    connector_type_id: u32,
    connection: u32,
    mm_width: u32,
    mm_height: u32,
    subpixel: u32,
    pad: u32,
}

/// `struct drm_mode_fb_cmd` (legacy AddFB: bpp and depth, no fourcc).
#[repr(C)]
#[derive(Default)]
struct FbCmd {
    fb_id: u32,
    width: u32,
    height: u32,
    pitch: u32,
    bpp: u32,
    depth: u32,
    handle: u32,
}

/// `struct drm_mode_crtc_page_flip`.
#[repr(C)]
#[derive(Default)]
struct PageFlip {
    crtc_id: u32,
    fb_id: u32,
    flags: u32,
    reserved: u32,
    user_data: u64,
}

/// `struct drm_mode_fb_dirty_cmd`.
#[repr(C)]
#[derive(Default)]
struct FbDirty {
    fb_id: u32,
    flags: u32,
    color: u32,
    num_clips: u32,
    clips_ptr: u64,
}

/// `struct drm_mode_create_dumb`.
#[repr(C)]
#[derive(Default)]
struct CreateDumb {
    height: u32,
    width: u32,
    bpp: u32,
    flags: u32,
    handle: u32,
    pitch: u32,
    size: u64,
}

/// `struct drm_mode_map_dumb`.
#[repr(C)]
#[derive(Default)]
struct MapDumb {
    handle: u32,
    pad: u32,
    offset: u64,
}

/// The card's CRTCs, connectors and encoders, by object id.
#[derive(Debug, Default)]
pub struct Resources {
    pub crtcs: Vec<u32>,
    pub connectors: Vec<u32>,
    pub encoders: Vec<u32>,
}

/// A connector as GetConnector reports it.
#[derive(Debug)]
pub struct Connector {
    pub id: u32,
    /// `DRM_MODE_CONNECTOR_*`, e.g. 15 for Virtual.
    pub kind: u32,
    /// Its number among connectors of its kind, from 1.
    pub kind_id: u32,
    pub connected: bool,
    /// The encoder driving it now (0 for none).
    pub encoder: u32,
    pub encoders: Vec<u32>,
    pub modes: Vec<ModeInfo>,
}

/// An encoder: the CRTC it uses now (0 for none) and the ones it can use,
/// as bits by index in [`Resources::crtcs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    pub id: u32,
    pub crtc: u32,
    pub possible_crtcs: u32,
}

/// An open DRM device (`/dev/dri/cardN`).
pub struct Card {
    file: File,
}

impl Card {
    pub fn open(path: &Path) -> io::Result<Card> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Card { file })
    }

    /// Becomes the DRM master, which mode setting needs. (The first opener
    /// usually is already; asking again is harmless.)
    pub fn set_master(&self) -> io::Result<()> {
        // SAFETY: SET_MASTER takes no argument.
        unsafe { self.ioctl_raw(SET_MASTER, 0) }
    }

    /// `DRM_IOCTL_GET_CAP`.
    pub fn capability(&self, capability: u64) -> io::Result<u64> {
        let mut cap = GetCap {
            capability,
            value: 0,
        };
        // SAFETY: GET_CAP's argument is a `struct drm_get_cap`, no pointers.
        unsafe { self.ioctl(GET_CAP, &mut cap)? };
        Ok(cap.value)
    }

    pub fn resources(&self) -> io::Result<Resources> {
        loop {
            // First the counts, then the lists; again if they grew between.
            let mut counts = CardRes::default();
            // SAFETY: all counts are 0, so the kernel writes through none
            // of the (null) pointers.
            unsafe { self.ioctl(MODE_GETRESOURCES, &mut counts)? };
            let mut crtcs = vec![0u32; counts.count_crtcs as usize];
            let mut connectors = vec![0u32; counts.count_connectors as usize];
            let mut encoders = vec![0u32; counts.count_encoders as usize];
            let mut lists = CardRes {
                crtc_id_ptr: crtcs.as_mut_ptr() as u64,
                count_crtcs: counts.count_crtcs,
                connector_id_ptr: connectors.as_mut_ptr() as u64,
                count_connectors: counts.count_connectors,
                encoder_id_ptr: encoders.as_mut_ptr() as u64,
                count_encoders: counts.count_encoders,
                ..CardRes::default()
            };
            // SAFETY: each pointer is a u32 vector of exactly the count
            // beside it, and the kernel writes at most that many ids;
            // count_fbs is 0, so the null fb pointer is not written.
            unsafe { self.ioctl(MODE_GETRESOURCES, &mut lists)? };
            if lists.count_crtcs <= counts.count_crtcs
                && lists.count_connectors <= counts.count_connectors
                && lists.count_encoders <= counts.count_encoders
            {
                crtcs.truncate(lists.count_crtcs as usize);
                connectors.truncate(lists.count_connectors as usize);
                encoders.truncate(lists.count_encoders as usize);
                return Ok(Resources {
                    crtcs,
                    connectors,
                    encoders,
                });
            }
        }
    }

    /// The connector `id`, with its modes. The first call of each pair,
    /// with no room for modes, makes the kernel probe the connector (as
    /// the master).
    pub fn connector(&self, id: u32) -> io::Result<Connector> {
        loop {
            let mut counts = GetConnector {
                connector_id: id,
                ..GetConnector::default()
            };
            // SAFETY: all counts are 0: the kernel writes through none of
            // the (null) pointers.
            unsafe { self.ioctl(MODE_GETCONNECTOR, &mut counts)? };
            let mut modes = vec![ModeInfo::default(); counts.count_modes as usize];
            let mut encoders = vec![0u32; counts.count_encoders as usize];
            let mut lists = GetConnector {
                connector_id: id,
                modes_ptr: modes.as_mut_ptr() as u64,
                count_modes: counts.count_modes,
                encoders_ptr: encoders.as_mut_ptr() as u64,
                count_encoders: counts.count_encoders,
                ..GetConnector::default()
            };
            // SAFETY: the mode and encoder pointers are vectors of exactly
            // the counts beside them (`ModeInfo` is `drm_mode_modeinfo`);
            // the kernel writes no more. count_props is 0: the null
            // property pointers are not written.
            unsafe { self.ioctl(MODE_GETCONNECTOR, &mut lists)? };
            if lists.count_modes <= counts.count_modes
                && lists.count_encoders <= counts.count_encoders
            {
                modes.truncate(lists.count_modes as usize);
                encoders.truncate(lists.count_encoders as usize);
                return Ok(Connector {
                    id,
                    kind: lists.connector_type,
                    kind_id: lists.connector_type_id,
                    connected: lists.connection == CONNECTED,
                    encoder: lists.encoder_id,
                    encoders,
                    modes,
                });
            }
        }
    }

    pub fn encoder(&self, id: u32) -> io::Result<Encoder> {
        let mut encoder = GetEncoder {
            encoder_id: id,
            ..GetEncoder::default()
        };
        // SAFETY: `struct drm_mode_get_encoder`, no pointers.
        unsafe { self.ioctl(MODE_GETENCODER, &mut encoder)? };
        Ok(Encoder {
            id,
            crtc: encoder.crtc_id,
            possible_crtcs: encoder.possible_crtcs,
        })
    }

    /// A `width` × `height` XRGB8888 dumb buffer, added as a framebuffer
    /// and mapped. (If a step fails, what the earlier ones made stays until
    /// the device is closed.)
    pub fn dumb_framebuffer(&self, width: u32, height: u32) -> io::Result<DumbFramebuffer> {
        let mut create = CreateDumb {
            width,
            height,
            bpp: 32,
            ..CreateDumb::default()
        };
        // SAFETY: `struct drm_mode_create_dumb`, no pointers.
        unsafe { self.ioctl(MODE_CREATE_DUMB, &mut create)? };
        let mut fb = FbCmd {
            width,
            height,
            pitch: create.pitch,
            bpp: 32,
            depth: 24,
            handle: create.handle,
            ..FbCmd::default()
        };
        // SAFETY: `struct drm_mode_fb_cmd`, no pointers.
        unsafe { self.ioctl(MODE_ADDFB, &mut fb)? };
        let mut map = MapDumb {
            handle: create.handle,
            ..MapDumb::default()
        };
        // SAFETY: `struct drm_mode_map_dumb`, no pointers.
        unsafe { self.ioctl(MODE_MAP_DUMB, &mut map)? };
        let len = usize::try_from(create.size)
            .map_err(|_| io::Error::other("dumb buffer larger than the address space"))?;
        let needed = u64::from(create.pitch) * u64::from(height);
        if !create.pitch.is_multiple_of(4) || create.pitch / 4 < width || create.size < needed {
            return Err(io::Error::other(format!(
                "dumb buffer of {} bytes with pitch {} cannot hold {width}x{height}",
                create.size, create.pitch
            )));
        }
        let mapping = Mapping::new(&self.file, len, map.offset)?;
        Ok(DumbFramebuffer {
            fb: fb.fb_id,
            stride: create.pitch as usize / 4,
            mapping,
        })
    }

    /// Legacy SetCrtc: `fb` on `crtc` in `mode`, driving `connector`.
    pub fn set_crtc(&self, crtc: u32, fb: u32, connector: u32, mode: &ModeInfo) -> io::Result<()> {
        let connectors = [connector];
        let mut set = ModeCrtc {
            set_connectors_ptr: connectors.as_ptr() as u64,
            count_connectors: 1,
            crtc_id: crtc,
            fb_id: fb,
            mode_valid: 1,
            mode: *mode,
            ..ModeCrtc::default()
        };
        // SAFETY: the kernel reads one connector id from the array, which
        // lives until the call returns; it writes only into `set`.
        unsafe { self.ioctl(MODE_SETCRTC, &mut set) }
    }

    /// Shows `fb` on `crtc` at the next vertical blank; a flip-complete
    /// event carrying `user_data` follows (see [`Card::read_events`]).
    pub fn page_flip(&self, crtc: u32, fb: u32, user_data: u64) -> io::Result<()> {
        let mut flip = PageFlip {
            crtc_id: crtc,
            fb_id: fb,
            flags: PAGE_FLIP_EVENT,
            reserved: 0,
            user_data,
        };
        // SAFETY: `struct drm_mode_crtc_page_flip`, no pointers (user_data
        // is only handed back in the event).
        unsafe { self.ioctl(MODE_PAGE_FLIP, &mut flip) }
    }

    /// DirtyFB for the whole of `fb` (no clip rectangles).
    pub fn dirty(&self, fb: u32) -> io::Result<()> {
        let mut dirty = FbDirty {
            fb_id: fb,
            ..FbDirty::default()
        };
        // SAFETY: num_clips is 0: the null clip pointer is not read.
        unsafe { self.ioctl(MODE_DIRTYFB, &mut dirty) }
    }

    /// Waits until an event can be read, at most `timeout`; false on a
    /// time-out.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        poll_in(self.file.as_raw_fd(), timeout)
    }

    /// Reads pending events (whole `struct drm_event`s) into `buf`; blocks
    /// until there is one.
    pub fn read_events(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// An ioctl whose argument is `arg`, retried while interrupted (as
    /// libdrm's drmIoctl does).
    ///
    /// # Safety
    ///
    /// `request` must take a `T` (its size is checked), and every pointer
    /// in `arg` must be valid for what the kernel reads or writes through
    /// it for this request and the counts in `arg`.
    unsafe fn ioctl<T>(&self, request: u64, arg: &mut T) -> io::Result<()> {
        let encoded = ((request >> 16) & 0x3fff) as usize;
        assert_eq!(encoded, size_of::<T>(), "ioctl {request:#x}");
        // SAFETY: the caller's promise; `arg` is valid for size_of::<T>().
        unsafe { self.ioctl_raw(request, arg as *mut T as usize) }
    }

    /// # Safety
    ///
    /// `arg` must be what `request` expects (see [`Card::ioctl`]).
    unsafe fn ioctl_raw(&self, request: u64, arg: usize) -> io::Result<()> {
        let fd = self.file.as_raw_fd() as usize;
        loop {
            // SAFETY: the caller's promise about `arg`; `fd` is open for as
            // long as `self` lives.
            let ret = unsafe { syscall(nr::IOCTL, [fd, request as usize, arg, 0, 0, 0]) };
            match check(ret) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(EAGAIN) => continue,
                other => return other.map(drop),
            }
        }
    }
}

/// A dumb buffer added as a framebuffer, mapped into this process.
pub struct DumbFramebuffer {
    /// The framebuffer id for SetCrtc and page flips.
    pub fb: u32,
    /// Pixels from one row to the next.
    pub stride: usize,
    mapping: Mapping,
}

impl DumbFramebuffer {
    /// The pixels, rows [`DumbFramebuffer::stride`] apart.
    pub fn pixels(&mut self) -> &mut [u32] {
        self.mapping.pixels()
    }
}

/// A shared memory map of part of a file (a dumb buffer, through the DRM
/// device's fake offset), unmapped on drop.
pub struct Mapping {
    ptr: *mut u32,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `file` from `offset`, readable and writable,
    /// shared.
    pub fn new(file: &File, len: usize, offset: u64) -> io::Result<Mapping> {
        const PROT_READ_WRITE: usize = 0x1 | 0x2;
        const MAP_SHARED: usize = 0x01;
        if len == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let args = [
            0,
            len,
            PROT_READ_WRITE,
            MAP_SHARED,
            file.as_raw_fd() as usize,
            offset as usize,
        ];
        // SAFETY: a new mapping at an address the kernel picks (none given,
        // no MAP_FIXED): no memory this program uses changes.
        let ret = unsafe { syscall(nr::MMAP, args) };
        let addr = check(ret)?;
        Ok(Mapping {
            ptr: addr as *mut u32,
            len,
        })
    }

    pub fn pixels(&mut self) -> &mut [u32] {
        // SAFETY: the mapping is `len` bytes, readable and writable, page
        // aligned (so u32 aligned) and alive until drop; `&mut self` keeps
        // this the only slice of it in this program. The device may read it
        // meanwhile (that is the point), which tears a picture at worst.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len / 4) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no slice of it outlives
        // `self` (`pixels` borrows `self`).
        let ret = unsafe { syscall(nr::MUNMAP, [self.ptr as usize, self.len, 0, 0, 0, 0]) };
        // Nothing to do about a failure here but keep the memory mapped.
        let _ = check(ret);
    }
}

/// `ppoll` for POLLIN on `fd`: true when readable.
fn poll_in(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    /// `struct pollfd`.
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    /// `struct timespec` (64-bit).
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    const POLLIN: i16 = 0x1;
    let mut fds = PollFd {
        fd,
        events: POLLIN,
        revents: 0,
    };
    let limit = Timespec {
        sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        nsec: i64::from(timeout.subsec_nanos()),
    };
    loop {
        let args = [
            &mut fds as *mut PollFd as usize,
            1,
            &limit as *const Timespec as usize,
            0,
            8,
            0,
        ];
        // SAFETY: one pollfd the kernel may write `revents` of, a timespec
        // it reads, no signal mask; all live across the call.
        let ret = unsafe { syscall(nr::PPOLL, args) };
        match check(ret) {
            Ok(n) => return Ok(n > 0 && fds.revents != 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

const EAGAIN: i32 = 11;

/// A raw system call's result: a value or, in -4095..=-1, an errno.
pub(crate) fn check(ret: isize) -> io::Result<usize> {
    if (-4095..0).contains(&ret) {
        Err(io::Error::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// System call numbers.
#[cfg(target_arch = "aarch64")]
pub(crate) mod nr {
    pub const FCNTL: usize = 25;
    pub const IOCTL: usize = 29;
    pub const PPOLL: usize = 73;
    pub const MUNMAP: usize = 215;
    pub const MMAP: usize = 222;
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod nr {
    pub const MMAP: usize = 9;
    pub const MUNMAP: usize = 11;
    pub const IOCTL: usize = 16;
    pub const FCNTL: usize = 72;
    pub const PPOLL: usize = 271;
}

#[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
pub(crate) mod nr {
    pub const FCNTL: usize = 0;
    pub const IOCTL: usize = 0;
    pub const PPOLL: usize = 0;
    pub const MUNMAP: usize = 0;
    pub const MMAP: usize = 0;
}

/// A Linux system call with six arguments; the raw result.
///
/// # Safety
///
/// The call must not break Rust's assumptions: memory it writes must be
/// memory the caller owns for that, and it must not unmap or change memory
/// in use.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
pub(crate) unsafe fn syscall(number: usize, args: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller's promise; `svc 0` clobbers only x0 (the result)
    // and touches no stack.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") number,
            inlateout("x0") args[0] as isize => ret,
            in("x1") args[1],
            in("x2") args[2],
            in("x3") args[3],
            in("x4") args[4],
            in("x5") args[5],
            options(nostack),
        );
    }
    ret
}

/// See the AArch64 version.
///
/// # Safety
///
/// As there.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) unsafe fn syscall(number: usize, args: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller's promise; `syscall` clobbers rax (the result),
    // rcx and r11, and touches no stack.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") number as isize => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Elsewhere: no system calls (ENOSYS).
///
/// # Safety
///
/// Always safe; `unsafe` to match the Linux versions.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "aarch64", target_arch = "x86_64")
)))]
pub(crate) unsafe fn syscall(_number: usize, _args: [usize; 6]) -> isize {
    -38
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_layouts_are_the_kernels() {
        assert_eq!(size_of::<GetCap>(), 16);
        assert_eq!(size_of::<CardRes>(), 64);
        assert_eq!(size_of::<ModeInfo>(), 68);
        assert_eq!(size_of::<ModeCrtc>(), 104);
        assert_eq!(size_of::<GetEncoder>(), 20);
        assert_eq!(size_of::<GetConnector>(), 80);
        assert_eq!(size_of::<FbCmd>(), 28);
        assert_eq!(size_of::<PageFlip>(), 24);
        assert_eq!(size_of::<FbDirty>(), 24);
        assert_eq!(size_of::<CreateDumb>(), 32);
        assert_eq!(size_of::<MapDumb>(), 16);
        assert_eq!(std::mem::offset_of!(ModeInfo, vrefresh), 24);
        assert_eq!(std::mem::offset_of!(ModeCrtc, mode), 36);
        assert_eq!(std::mem::offset_of!(GetConnector, connection), 60);
    }

    #[test]
    fn request_numbers_are_the_kernels() {
        // What the uAPI's DRM_IO/DRM_IOWR macros give (strace shows them).
        assert_eq!(SET_MASTER, 0x641e);
        assert_eq!(GET_CAP, 0xc010_640c);
        assert_eq!(MODE_GETRESOURCES, 0xc040_64a0);
        assert_eq!(MODE_SETCRTC, 0xc068_64a2);
        assert_eq!(MODE_GETENCODER, 0xc014_64a6);
        assert_eq!(MODE_GETCONNECTOR, 0xc050_64a7);
        assert_eq!(MODE_ADDFB, 0xc01c_64ae);
        assert_eq!(MODE_PAGE_FLIP, 0xc018_64b0);
        assert_eq!(MODE_DIRTYFB, 0xc018_64b1);
        assert_eq!(MODE_CREATE_DUMB, 0xc020_64b2);
        assert_eq!(MODE_MAP_DUMB, 0xc010_64b3);
    }

    #[test]
    fn errors_come_back_as_errno() {
        assert_eq!(check(0).unwrap(), 0);
        assert_eq!(check(0x1000).unwrap(), 0x1000);
        assert_eq!(check(-25).unwrap_err().raw_os_error(), Some(25));
        assert_eq!(check(-4095).unwrap_err().raw_os_error(), Some(4095));
        // A high address (negative as isize) is not an error.
        assert!(check(-4096).is_ok());
    }

    // The system calls themselves, on files every Linux has.
    #[cfg(target_os = "linux")]
    #[test]
    fn drm_ioctls_on_a_non_drm_file_fail_cleanly() {
        let card = Card::open(Path::new("/dev/null")).unwrap();
        // ENOTTY: not a DRM device.
        assert_eq!(card.set_master().unwrap_err().raw_os_error(), Some(25));
        assert_eq!(card.resources().unwrap_err().raw_os_error(), Some(25));
        assert!(card.page_flip(1, 2, 3).is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn map_write_and_poll() {
        let zero = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/zero")
            .unwrap();
        let mut mapping = Mapping::new(&zero, 8192, 0).unwrap();
        let pixels = mapping.pixels();
        assert_eq!(pixels.len(), 2048);
        assert!(pixels.iter().all(|&p| p == 0));
        pixels.fill(0xff00_ff00);
        assert_eq!(pixels[2047], 0xff00_ff00);
        drop(mapping);
        assert!(Mapping::new(&zero, 0, 0).is_err());
        // /dev/zero is always readable.
        assert!(poll_in(zero.as_raw_fd(), Duration::from_millis(10)).unwrap());
    }
}
