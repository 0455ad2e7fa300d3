//! `ivi-tool draw`: the navigation screen ([`crate::nav`]) on every
//! connected display, through DRM/KMS ([`crate::kms`]).
//!
//! For each connected connector with a mode: its preferred mode, a CRTC,
//! two XRGB8888 dumb buffers, a legacy SetCrtc. Then frame after frame:
//! draw into the buffer not on screen, page flip with an event and wait
//! for the event before that buffer is drawn again. Where a page flip
//! fails (no flip support), that connector gets SetCrtc and DirtyFB each
//! frame instead. The decisions (names, modes, CRTCs, events, pacing) are
//! pure functions, tested on the host.

use std::io;
use std::time::{Duration, Instant};

use crate::cli::DrawOptions;
use crate::kms::{self, Card, DumbFramebuffer, Encoder, ModeInfo};
use crate::nav;

/// Prefix of every line `draw` prints.
pub const PREFIX: &str = "ivi-tool: draw:";
/// A `frames=` line every this many frames.
pub const PROGRESS_EVERY: u64 = 30;
/// How long a flip may take to complete before `draw` gives up.
const FLIP_TIMEOUT: Duration = Duration::from_secs(5);

/// What failed: printed as `ivi-tool: draw: <what>: <error>`.
#[derive(Debug)]
pub struct DrawError {
    pub what: String,
    pub error: String,
}

impl std::fmt::Display for DrawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX} {}: {}", self.what, self.error)
    }
}

fn fail(what: impl Into<String>, error: impl ToString) -> DrawError {
    DrawError {
        what: what.into(),
        error: error.to_string(),
    }
}

/// How a connector's frames reach the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Present {
    PageFlip,
    SetCrtc,
}

impl Present {
    pub fn label(self) -> &'static str {
        match self {
            Present::PageFlip => "page flips",
            Present::SetCrtc => "setcrtc",
        }
    }
}

/// One display being drawn.
struct Output {
    connector: u32,
    name: String,
    crtc: u32,
    mode: ModeInfo,
    width: usize,
    height: usize,
    buffers: [DumbFramebuffer; 2],
    present: Present,
}

/// The connector's name as the kernel spells it (sysfs, dmesg):
/// `Virtual-1`, `HDMI-A-2`.
pub fn connector_name(kind: u32, kind_id: u32) -> String {
    const NAMES: &[&str] = &[
        "Unknown",
        "VGA",
        "DVI-I",
        "DVI-D",
        "DVI-A",
        "Composite",
        "SVIDEO",
        "LVDS",
        "Component",
        "DIN",
        "DP",
        "HDMI-A",
        "HDMI-B",
        "TV",
        "eDP",
        "Virtual",
        "DSI",
        "DPI",
        "Writeback",
        "SPI",
        "USB",
    ];
    match NAMES.get(kind as usize) {
        Some(name) => format!("{name}-{kind_id}"),
        None => format!("connector{kind}-{kind_id}"),
    }
}

/// The preferred mode, else the first one listed (the kernel lists the
/// preferred first anyway). None for a connector without modes or with
/// a zero-sized one.
pub fn preferred_mode(modes: &[ModeInfo]) -> Option<&ModeInfo> {
    modes
        .iter()
        .find(|m| m.kind & kms::MODE_TYPE_PREFERRED != 0)
        .or(modes.first())
        .filter(|m| m.hdisplay > 0 && m.vdisplay > 0)
}

/// A CRTC for a connector: the one its current encoder drives if still
/// free, else the first free one any of its encoders can drive (`crtcs`
/// in the card's order, which `possible_crtcs` bits index).
pub fn pick_crtc(
    current_encoder: u32,
    encoders: &[Encoder],
    crtcs: &[u32],
    taken: &[u32],
) -> Option<u32> {
    let free = |crtc: &u32| *crtc != 0 && !taken.contains(crtc);
    let current = encoders
        .iter()
        .find(|e| e.id == current_encoder && current_encoder != 0)
        .map(|e| e.crtc)
        .filter(free);
    current.or_else(|| {
        encoders.iter().find_map(|e| {
            crtcs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < 32 && e.possible_crtcs & (1 << i) != 0)
                .map(|(_, c)| *c)
                .find(free)
        })
    })
}

/// A DRM event as read from the device.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A page flip completed: its `user_data` and CRTC.
    FlipComplete { user_data: u64, crtc: u32 },
    /// Any other event, by type.
    Other(u32),
}

/// Splits what a read of the DRM device returned into events (`struct
/// drm_event` headers: type and length; a flip's `struct drm_event_vblank`
/// adds user_data, the time, the sequence and the CRTC). A truncated or
/// malformed tail is dropped.
pub fn parse_events(mut bytes: &[u8]) -> Vec<Event> {
    let u32_at = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|s| u32::from_ne_bytes(s.try_into().expect("4 bytes")))
    };
    let mut events = Vec::new();
    while let (Some(kind), Some(length)) = (u32_at(bytes, 0), u32_at(bytes, 4)) {
        let length = length as usize;
        if length < 8 || length > bytes.len() {
            break;
        }
        let event = &bytes[..length];
        events.push(match kind {
            kms::EVENT_FLIP_COMPLETE if length >= 32 => Event::FlipComplete {
                user_data: u64::from_ne_bytes(event[8..16].try_into().expect("8 bytes")),
                crtc: u32_at(event, 28).expect("32 bytes"),
            },
            other => Event::Other(other),
        });
        bytes = &bytes[length..];
    }
    events
}

/// The line after `presented` frames, if one is due.
pub fn progress_line(presented: u64) -> Option<String> {
    (presented > 0 && presented.is_multiple_of(PROGRESS_EVERY))
        .then(|| format!("{PREFIX} frames={presented}"))
}

/// When the next frame may be shown: a period after the last one, or
/// now if drawing has fallen behind (no burst to catch up).
pub fn next_deadline(last: Instant, period: Duration, now: Instant) -> Instant {
    (last + period).max(now)
}

/// Runs `draw`; Ok with the frames presented when `--frames` is reached.
/// Prints the connector, progress and done lines as it goes.
pub fn run(options: &DrawOptions) -> Result<u64, DrawError> {
    let card = Card::open(&options.card)
        .map_err(|e| fail(format!("open {}", options.card.display()), e))?;
    card.set_master().map_err(|e| fail("set master", e))?;
    match card.capability(kms::CAP_DUMB_BUFFER) {
        Ok(0) => return Err(fail("dumb buffers", "not supported by the driver")),
        Ok(_) => {}
        Err(e) => return Err(fail("dumb buffers", e)),
    }
    let mut outputs = outputs(&card)?;

    // Frame 0 with SetCrtc (the mode set), then one flip to the same
    // buffer to learn whether flips work.
    for output in &mut outputs {
        let (w, h) = (output.width, output.height);
        let buffer = &mut output.buffers[0];
        let stride = buffer.stride;
        nav::render_strided(0, buffer.pixels(), w, h, stride);
        card.set_crtc(output.crtc, buffer.fb, output.connector, &output.mode)
            .map_err(|e| fail(format!("{}: set crtc {}", output.name, output.crtc), e))?;
    }
    let mut pending = Vec::new();
    for (index, output) in outputs.iter_mut().enumerate() {
        match card.page_flip(output.crtc, output.buffers[0].fb, index as u64) {
            Ok(()) => pending.push(index as u64),
            Err(_) => {
                output.present = Present::SetCrtc;
                // No flip to wait for; make sure frame 0 reached the host.
                let _ = card.dirty(output.buffers[0].fb);
            }
        }
    }
    wait_flips(&card, &mut pending)?;
    for output in &outputs {
        println!(
            "{PREFIX} {} {}x{} crtc {} ({})",
            output.name,
            output.width,
            output.height,
            output.crtc,
            output.present.label()
        );
    }

    let period = Duration::from_secs(1) / options.fps.max(1);
    let mut last = Instant::now();
    let mut presented: u64 = 1;
    loop {
        if options.frames.is_some_and(|limit| presented >= limit) {
            println!("{PREFIX} done after {presented} frames");
            return Ok(presented);
        }
        let frame = presented;
        let back = (frame % 2) as usize;
        for output in &mut outputs {
            let (w, h) = (output.width, output.height);
            let buffer = &mut output.buffers[back];
            let stride = buffer.stride;
            nav::render_strided(frame, buffer.pixels(), w, h, stride);
        }
        // Not before the frame is due.
        let now = Instant::now();
        let due = next_deadline(last, period, now);
        if due > now {
            std::thread::sleep(due - now);
        }
        last = due;
        for (index, output) in outputs.iter().enumerate() {
            let fb = output.buffers[back].fb;
            match output.present {
                Present::PageFlip => {
                    card.page_flip(output.crtc, fb, index as u64)
                        .map_err(|e| fail(format!("{}: page flip", output.name), e))?;
                    pending.push(index as u64);
                }
                Present::SetCrtc => {
                    card.set_crtc(output.crtc, fb, output.connector, &output.mode)
                        .map_err(|e| {
                            fail(format!("{}: set crtc {}", output.name, output.crtc), e)
                        })?;
                    // Drivers that flush on SetCrtc have no dirty hook.
                    let _ = card.dirty(fb);
                }
            }
        }
        // The buffer now on screen before it is drawn again: the flips done.
        wait_flips(&card, &mut pending)?;
        presented += 1;
        if let Some(line) = progress_line(presented) {
            println!("{line}");
        }
    }
}

/// Every connected connector with a mode, with a CRTC and two buffers.
fn outputs(card: &Card) -> Result<Vec<Output>, DrawError> {
    let resources = card.resources().map_err(|e| fail("get resources", e))?;
    let mut outputs = Vec::new();
    let mut taken = Vec::new();
    for &id in &resources.connectors {
        let connector = card
            .connector(id)
            .map_err(|e| fail(format!("connector {id}"), e))?;
        let name = connector_name(connector.kind, connector.kind_id);
        if !connector.connected {
            continue;
        }
        let Some(mode) = preferred_mode(&connector.modes).copied() else {
            continue;
        };
        let encoders = connector
            .encoders
            .iter()
            .map(|&e| card.encoder(e))
            .collect::<io::Result<Vec<_>>>()
            .map_err(|e| fail(format!("{name}: encoders"), e))?;
        let crtc = pick_crtc(connector.encoder, &encoders, &resources.crtcs, &taken)
            .ok_or_else(|| fail(name.clone(), "no free CRTC"))?;
        taken.push(crtc);
        let (width, height) = (u32::from(mode.hdisplay), u32::from(mode.vdisplay));
        let buffer = || {
            card.dumb_framebuffer(width, height)
                .map_err(|e| fail(format!("{name}: dumb buffer {width}x{height}"), e))
        };
        let buffers = [buffer()?, buffer()?];
        outputs.push(Output {
            connector: id,
            name,
            crtc,
            mode,
            width: width as usize,
            height: height as usize,
            buffers,
            present: Present::PageFlip,
        });
    }
    if outputs.is_empty() {
        return Err(fail("connectors", "none connected with a mode"));
    }
    Ok(outputs)
}

/// Reads events until every flip in `pending` (by user_data) completed.
fn wait_flips(card: &Card, pending: &mut Vec<u64>) -> Result<(), DrawError> {
    let mut buf = [0u8; 1024];
    while !pending.is_empty() {
        let ready = card
            .wait_readable(FLIP_TIMEOUT)
            .map_err(|e| fail("wait for flip", e))?;
        if !ready {
            return Err(fail(
                "wait for flip",
                format!("no flip-complete event within {} s", FLIP_TIMEOUT.as_secs()),
            ));
        }
        let n = card
            .read_events(&mut buf)
            .map_err(|e| fail("read events", e))?;
        for event in parse_events(&buf[..n]) {
            if let Event::FlipComplete { user_data, .. } = event {
                pending.retain(|&p| p != user_data);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(w: u16, h: u16, kind: u32) -> ModeInfo {
        ModeInfo {
            hdisplay: w,
            vdisplay: h,
            kind,
            ..ModeInfo::default()
        }
    }

    #[test]
    fn connector_names() {
        assert_eq!(connector_name(15, 1), "Virtual-1");
        assert_eq!(connector_name(15, 2), "Virtual-2");
        assert_eq!(connector_name(11, 1), "HDMI-A-1");
        assert_eq!(connector_name(14, 1), "eDP-1");
        assert_eq!(connector_name(0, 3), "Unknown-3");
        assert_eq!(connector_name(99, 1), "connector99-1");
    }

    #[test]
    fn the_preferred_mode_wins() {
        let driver = 1 << 6;
        let modes = [
            mode(1024, 768, driver),
            mode(1280, 800, driver | kms::MODE_TYPE_PREFERRED),
            mode(800, 600, driver),
        ];
        assert_eq!(
            preferred_mode(&modes).map(|m| (m.hdisplay, m.vdisplay)),
            Some((1280, 800))
        );
        assert_eq!(preferred_mode(&modes[..1]).map(|m| m.hdisplay), Some(1024));
        assert_eq!(preferred_mode(&[]), None);
        assert_eq!(
            preferred_mode(&[mode(0, 0, kms::MODE_TYPE_PREFERRED)]),
            None
        );
    }

    #[test]
    fn crtcs_are_picked_once_each() {
        let crtcs = [40, 41];
        // virtio-gpu: encoder n can drive CRTC n only.
        let first = [Encoder {
            id: 50,
            crtc: 0,
            possible_crtcs: 0b01,
        }];
        let second = [Encoder {
            id: 51,
            crtc: 0,
            possible_crtcs: 0b10,
        }];
        assert_eq!(pick_crtc(0, &first, &crtcs, &[]), Some(40));
        assert_eq!(pick_crtc(0, &second, &crtcs, &[40]), Some(41));
        assert_eq!(pick_crtc(0, &first, &crtcs, &[40]), None);
        // The CRTC the current encoder drives, when free.
        let active = [Encoder {
            id: 50,
            crtc: 41,
            possible_crtcs: 0b11,
        }];
        assert_eq!(pick_crtc(50, &active, &crtcs, &[]), Some(41));
        assert_eq!(pick_crtc(50, &active, &crtcs, &[41]), Some(40));
        // Not the current encoder: any possible one, in order.
        assert_eq!(pick_crtc(0, &active, &crtcs, &[]), Some(40));
        // No encoders, bits past the list.
        assert_eq!(pick_crtc(0, &[], &crtcs, &[]), None);
        let wide = [Encoder {
            id: 1,
            crtc: 0,
            possible_crtcs: 0b100,
        }];
        assert_eq!(pick_crtc(0, &wide, &crtcs, &[]), None);
    }

    fn vblank(kind: u32, user_data: u64, crtc: u32) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&kind.to_ne_bytes());
        e.extend_from_slice(&32u32.to_ne_bytes());
        e.extend_from_slice(&user_data.to_ne_bytes());
        e.extend_from_slice(&[0; 12]); // tv_sec, tv_usec, sequence
        e.extend_from_slice(&crtc.to_ne_bytes());
        e
    }

    #[test]
    fn events_are_split_and_read() {
        let mut bytes = vblank(kms::EVENT_FLIP_COMPLETE, 1, 41);
        bytes.extend(vblank(1, 7, 40));
        bytes.extend(vblank(kms::EVENT_FLIP_COMPLETE, 0, 40));
        assert_eq!(
            parse_events(&bytes),
            vec![
                Event::FlipComplete {
                    user_data: 1,
                    crtc: 41
                },
                Event::Other(1),
                Event::FlipComplete {
                    user_data: 0,
                    crtc: 40
                },
            ]
        );
        // Truncated or nonsensical: what is whole is kept.
        assert_eq!(parse_events(&bytes[..40]).len(), 1);
        assert_eq!(parse_events(&[]), vec![]);
        let mut zero_length = vblank(2, 0, 0);
        zero_length[4..8].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(parse_events(&zero_length), vec![]);
        // A short flip event is not a flip.
        let mut short = vec![0u8; 8];
        short[..4].copy_from_slice(&kms::EVENT_FLIP_COMPLETE.to_ne_bytes());
        short[4..].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(
            parse_events(&short),
            vec![Event::Other(kms::EVENT_FLIP_COMPLETE)]
        );
    }

    #[test]
    fn progress_every_30_frames() {
        assert_eq!(progress_line(0), None);
        assert_eq!(progress_line(29), None);
        assert_eq!(
            progress_line(30).as_deref(),
            Some("ivi-tool: draw: frames=30")
        );
        assert_eq!(progress_line(31), None);
        assert_eq!(
            progress_line(90).as_deref(),
            Some("ivi-tool: draw: frames=90")
        );
    }

    #[test]
    fn pacing_does_not_burst() {
        let start = Instant::now();
        let period = Duration::from_millis(33);
        // On time: a period after the last frame.
        assert_eq!(next_deadline(start, period, start), start + period);
        // Late: now, not in the past.
        let late = start + Duration::from_millis(100);
        assert_eq!(next_deadline(start, period, late), late);
    }

    #[test]
    fn errors_print_what_failed() {
        let e = fail(
            "open /dev/dri/card0",
            "No such file or directory (os error 2)",
        );
        assert_eq!(
            e.to_string(),
            "ivi-tool: draw: open /dev/dri/card0: No such file or directory (os error 2)"
        );
        assert_eq!(Present::PageFlip.label(), "page flips");
        assert_eq!(Present::SetCrtc.label(), "setcrtc");
    }
}
