//! `gpufuzz`: a hostile virtio-gpu driver. It brings its device up
//! normally, then sends malformed and abusive commands, one at a time,
//! and reports the answer to each. A device that sets DEVICE_NEEDS_RESET
//! is initialised again before the next case. At the end it floods the
//! device with resource creations, then checks that a valid frame
//! (create, attach, scanout, transfer, fenced flush of 64x200 opaque green
//! pixels at the top left of its first scanout) still works, and keeps
//! flushing as fast as it can.
//!
//! ```text
//! gpufuzz: device at 0x<base>
//! gpufuzz: <case> -> <answer>        answer: a response name (OK_NODATA,
//!                                    ERR_UNSPEC, ...), "no response (len <n>)",
//!                                    "needs-reset", "timeout"
//! gpufuzz: re-init -> ok | -> error <e>   (after needs-reset or timeout)
//! gpufuzz: <n> creations -> <ok> ok, <oom> out of memory, <other> other
//! gpufuzz: valid frame after abuse -> ok | -> error <e>
//! gpufuzz: done
//! gpufuzz: flooding flushes: <n>     (every 100 flushes)
//! ```

#![no_std]
#![no_main]

use testkit::println;
use testkit::rt::virtio_gpu::{self, FORMAT_B8G8R8A8, GpuError, Request, Shape, VirtioGpu, cmd};

testkit::entry!("gpufuzz", main);

/// Guest-physical address that is no partition's RAM.
const OUTSIDE_RAM: u64 = 0x1_0000_0000;
/// The emulated distributor: device memory, not RAM.
const GICD: u64 = 0x0800_0000;
/// Resource creations in the flood.
const CREATIONS: u32 = 100_000;
/// What its valid frame shows.
const GREEN: u32 = 0xff00_c000;

fn name(kind: u32) -> &'static str {
    match kind {
        cmd::OK_NODATA => "OK_NODATA",
        cmd::OK_DISPLAY_INFO => "OK_DISPLAY_INFO",
        cmd::OK_EDID => "OK_EDID",
        cmd::ERR_UNSPEC => "ERR_UNSPEC",
        cmd::ERR_OUT_OF_MEMORY => "ERR_OUT_OF_MEMORY",
        cmd::ERR_INVALID_SCANOUT_ID => "ERR_INVALID_SCANOUT_ID",
        cmd::ERR_INVALID_RESOURCE_ID => "ERR_INVALID_RESOURCE_ID",
        cmd::ERR_INVALID_PARAMETER => "ERR_INVALID_PARAMETER",
        _ => "unknown",
    }
}

/// Sends one case and reports the answer; re-initialises a device that
/// gave up.
fn case(gpu: &mut VirtioGpu, what: &str, request: &Request, shape: Shape) {
    let mut response = [0u8; 64];
    match gpu.command_as(request, &mut response, shape) {
        Ok((0, len)) => println!("gpufuzz: {} -> no response (len {})", what, len),
        Ok((kind, _)) => println!("gpufuzz: {} -> {}", what, name(kind)),
        Err(e) => {
            println!("gpufuzz: {} -> {}", what, e);
            match gpu.init() {
                Ok(()) => println!("gpufuzz: re-init -> ok"),
                Err(e) => println!("gpufuzz: re-init -> error {}", e),
            }
        }
    }
}

fn create(id: u32, format: u32, w: u32, h: u32) -> Request {
    let mut r = Request::new(cmd::RESOURCE_CREATE_2D, 0, 0);
    r.u32(id).u32(format).u32(w).u32(h);
    r
}

fn attach(id: u32, entries: u32, addr: u64, len: u32) -> Request {
    let mut r = Request::new(cmd::RESOURCE_ATTACH_BACKING, 0, 0);
    r.u32(id).u32(entries).u64(addr).u32(len).u32(0);
    r
}

fn transfer(id: u32, rect: (u32, u32, u32, u32), offset: u64) -> Request {
    let mut r = Request::new(cmd::TRANSFER_TO_HOST_2D, 0, 0);
    r.rect(rect.0, rect.1, rect.2, rect.3)
        .u64(offset)
        .u32(id)
        .u32(0);
    r
}

fn flush(id: u32, rect: (u32, u32, u32, u32)) -> Request {
    let mut r = Request::new(cmd::RESOURCE_FLUSH, cmd::FLAG_FENCE, 7);
    r.rect(rect.0, rect.1, rect.2, rect.3).u32(id).u32(0);
    r
}

fn scanout(scanout: u32, id: u32, rect: (u32, u32, u32, u32)) -> Request {
    let mut r = Request::new(cmd::SET_SCANOUT, 0, 0);
    r.rect(rect.0, rect.1, rect.2, rect.3).u32(scanout).u32(id);
    r
}

fn main() -> ! {
    let Some(node) = virtio_gpu::find() else {
        println!("gpufuzz: no virtio-gpu device");
        testkit::rt::park()
    };
    let mut gpu = match VirtioGpu::open(node) {
        Ok(gpu) => gpu,
        Err(e) => {
            println!("gpufuzz: open -> error {}", e);
            testkit::rt::park()
        }
    };
    println!("gpufuzz: device at 0x{:x}", node.base);
    let (ram, ram_len) = virtio_gpu::free_ram();
    let ram = ram as u64;
    let normal = Shape::default();

    // A 64x64 resource (id 1) with valid backing, for the cases that need one.
    case(
        &mut gpu,
        "setup create",
        &create(1, FORMAT_B8G8R8A8, 64, 64),
        normal,
    );
    case(
        &mut gpu,
        "setup attach",
        &attach(1, 1, ram, 64 * 64 * 4),
        normal,
    );

    case(
        &mut gpu,
        "unknown-command",
        &Request::new(0x0999, 0, 0),
        normal,
    );
    case(
        &mut gpu,
        "3d-context-create",
        &Request::new(0x0200, 0, 0),
        normal,
    );
    case(
        &mut gpu,
        "create-id-0",
        &create(0, FORMAT_B8G8R8A8, 8, 8),
        normal,
    );
    case(&mut gpu, "create-bad-format", &create(2, 999, 8, 8), normal);
    case(
        &mut gpu,
        "create-zero-size",
        &create(2, FORMAT_B8G8R8A8, 0, 8),
        normal,
    );
    case(
        &mut gpu,
        "create-overflowing-size",
        &create(2, FORMAT_B8G8R8A8, u32::MAX, u32::MAX),
        normal,
    );
    case(
        &mut gpu,
        "create-bigger-than-memory",
        &create(2, FORMAT_B8G8R8A8, 16384, 16384),
        normal,
    );
    case(
        &mut gpu,
        "create-reused-id",
        &create(1, FORMAT_B8G8R8A8, 8, 8),
        normal,
    );
    let mut unref = Request::new(cmd::RESOURCE_UNREF, 0, 0);
    unref.u32(4242).u32(0);
    case(&mut gpu, "unref-unknown", &unref, normal);
    case(
        &mut gpu,
        "create 3",
        &create(3, FORMAT_B8G8R8A8, 16, 16),
        normal,
    );
    case(
        &mut gpu,
        "attach-outside-ram",
        &attach(3, 1, OUTSIDE_RAM, 4096),
        normal,
    );
    case(
        &mut gpu,
        "attach-device-memory",
        &attach(3, 1, GICD, 4096),
        normal,
    );
    case(
        &mut gpu,
        "attach-wrapping-address",
        &attach(3, 1, u64::MAX - 100, 4096),
        normal,
    );
    case(
        &mut gpu,
        "attach-100k-entries",
        &attach(3, 100_000, ram, 4096),
        normal,
    );
    case(
        &mut gpu,
        "attach-fewer-entries-than-said",
        &attach(3, 4, ram, 4096),
        normal,
    );
    case(
        &mut gpu,
        "attach-twice",
        &attach(1, 1, ram, 64 * 64 * 4),
        normal,
    );
    case(
        &mut gpu,
        "attach-unknown-resource",
        &attach(4242, 1, ram, 4096),
        normal,
    );
    case(
        &mut gpu,
        "transfer-outside-resource",
        &transfer(1, (60, 60, 10, 10), 0),
        normal,
    );
    case(
        &mut gpu,
        "transfer-overflowing-rect",
        &transfer(1, (u32::MAX, 0, 2, 1), 0),
        normal,
    );
    case(
        &mut gpu,
        "transfer-past-backing",
        &transfer(1, (0, 0, 64, 64), 64 * 64 * 4),
        normal,
    );
    case(
        &mut gpu,
        "transfer-without-backing",
        &transfer(3, (0, 0, 4, 4), 0),
        normal,
    );
    case(
        &mut gpu,
        "flush-outside-resource",
        &flush(1, (0, 0, 65, 1)),
        normal,
    );
    case(
        &mut gpu,
        "flush-unknown-resource",
        &flush(4242, (0, 0, 1, 1)),
        normal,
    );
    case(
        &mut gpu,
        "scanout-bad-id",
        &scanout(99, 1, (0, 0, 64, 64)),
        normal,
    );
    case(
        &mut gpu,
        "scanout-rect-outside",
        &scanout(0, 1, (10, 10, 64, 64)),
        normal,
    );
    case(
        &mut gpu,
        "scanout-unknown-resource",
        &scanout(0, 4242, (0, 0, 1, 1)),
        normal,
    );
    let mut short = Request::new(cmd::RESOURCE_CREATE_2D, 0, 0);
    short.truncate(24);
    case(&mut gpu, "short-request", &short, normal);
    let mut half_header = Request::new(cmd::GET_DISPLAY_INFO, 0, 0);
    half_header.truncate(8);
    case(&mut gpu, "half-header", &half_header, normal);
    let tiny = Shape {
        response_len: Some(8),
        ..Shape::default()
    };
    case(
        &mut gpu,
        "tiny-response",
        &Request::new(cmd::GET_DISPLAY_INFO, 0, 0),
        tiny,
    );
    let display_info_small = Shape {
        response_len: Some(24),
        ..Shape::default()
    };
    case(
        &mut gpu,
        "display-info-too-small",
        &Request::new(cmd::GET_DISPLAY_INFO, 0, 0),
        display_info_small,
    );
    let backwards = Shape {
        request_writable: true,
        ..Shape::default()
    };
    case(
        &mut gpu,
        "request-device-writable",
        &Request::new(cmd::GET_DISPLAY_INFO, 0, 0),
        backwards,
    );
    let readable = Shape {
        response_readable: true,
        ..Shape::default()
    };
    case(
        &mut gpu,
        "response-device-readable",
        &Request::new(cmd::GET_DISPLAY_INFO, 0, 0),
        readable,
    );

    // The flood: ids 1000.. of 1x1 resources, never freed.
    let (mut ok, mut oom, mut other) = (0u32, 0u32, 0u32);
    let mut response = [0u8; 24];
    for i in 0..CREATIONS {
        match gpu.command(&create(1000 + i, FORMAT_B8G8R8A8, 1, 1), &mut response) {
            Ok(cmd::OK_NODATA) => ok += 1,
            Ok(cmd::ERR_OUT_OF_MEMORY) => oom += 1,
            _ => other += 1,
        }
    }
    println!(
        "gpufuzz: {} creations -> {} ok, {} out of memory, {} other",
        CREATIONS, ok, oom, other
    );

    // A fresh start, then one valid frame: 64x200 of opaque green at the
    // top left of its view.
    let (w, h) = (64u32, 200u32);
    let bytes = (w * h * 4) as usize;
    if bytes <= ram_len {
        // SAFETY: RAM above the image that nothing else uses (free_ram).
        let pixels = unsafe { core::slice::from_raw_parts_mut(ram as *mut u32, bytes / 4) };
        pixels.fill(GREEN);
        gpu.sync(ram as usize, bytes);
    }
    let valid = gpu
        .init()
        .and_then(|()| gpu.create_2d(1, FORMAT_B8G8R8A8, w, h))
        .and_then(|()| gpu.attach(1, ram, bytes as u32))
        .and_then(|()| gpu.set_scanout(0, 1, w, h))
        .and_then(|()| gpu.transfer(1, w, (0, 0, w, h)))
        .and_then(|()| gpu.flush(1, (0, 0, w, h)));
    match valid {
        Ok(()) => println!("gpufuzz: valid frame after abuse -> ok"),
        Err(e) => println!("gpufuzz: valid frame after abuse -> error {}", e),
    }
    println!("gpufuzz: done");

    // Then flushes as fast as it can: paced by the display, it only
    // delays itself.
    let mut n: u64 = 0;
    loop {
        if let Err(GpuError::NeedsReset) = gpu.flush(1, (0, 0, w, h)) {
            let _ = gpu.init();
        }
        n += 1;
        if n.is_multiple_of(100) {
            println!("gpufuzz: flooding flushes: {}", n);
        }
    }
}
