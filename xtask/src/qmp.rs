//! A QEMU Machine Protocol client: just enough to take screenshots of the
//! physical displays (`screendump`) of a running QEMU, and to touch their
//! panels (`input-send-event`: fingers, and the mouse as their pointers
//! see it).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A QMP connection in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to QEMU's `-qmp unix:<socket>,server=on,wait=off`, waiting
    /// up to `patience` for QEMU to create it, and leaves capabilities
    /// negotiation.
    pub fn connect(socket: &Path, patience: Duration) -> Result<Qmp> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(e) if start.elapsed() < patience => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("QMP socket {}", socket.display()));
                }
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        let greeting = qmp.message()?;
        if greeting.get("QMP").is_none() {
            bail!("QMP: unexpected greeting {greeting}");
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn message(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("QMP: QEMU closed the connection");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP: {line:?}"))
    }

    /// Runs `command` with `arguments`; its `return` value, or its error.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let request = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{request}")?;
        loop {
            let reply = self.message()?;
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = reply.get("error") {
                bail!(
                    "QMP {command}: {}",
                    error["desc"].as_str().unwrap_or("error")
                );
            }
            // An asynchronous event: not ours.
        }
    }

    /// Sends one multi-touch frame to the panel bound to display device
    /// `device` (QMP `input-send-event`, type `mtt`): each contact's
    /// begin/update/end, then its position, then QEMU's sync.
    pub fn touch(&mut self, device: &str, contacts: &[Mtt]) -> Result<()> {
        let mut events = Vec::new();
        for c in contacts {
            // QEMU's panel turns begin/update/end into the slot and its
            // tracking id (as given: a lift is -1), and a `data` event
            // into a position of whatever slot was selected last: the
            // positions follow.
            let id = if c.kind == "end" { -1 } else { i64::from(c.id) };
            events.push(json!({ "type": "mtt", "data": {
                "type": c.kind, "slot": c.slot, "tracking-id": id,
                "axis": "x", "value": c.x } }));
            if c.kind != "end" {
                for (axis, value) in [("x", c.x), ("y", c.y)] {
                    events.push(json!({ "type": "mtt", "data": {
                        "type": "data", "slot": c.slot, "tracking-id": id,
                        "axis": axis, "value": value } }));
                }
            }
        }
        self.execute(
            "input-send-event",
            json!({ "device": device, "events": events }),
        )?;
        Ok(())
    }

    /// Moves the mouse to QEMU's absolute coordinates (`x`, `y`) (0..=32767
    /// across the display) over display device `device`, with its left
    /// button `down` or up, in one frame (QMP `input-send-event`: `abs` x
    /// and y, then `btn` left). QEMU gives them to the first input device
    /// bound to the display that takes them: only a tablet takes `abs`;
    /// `btn` goes to the tablet too if its driver set it up after the
    /// panel's (both take buttons; the one set up last comes first), as
    /// the hypervisor does.
    pub fn pointer(&mut self, device: &str, x: u32, y: u32, down: bool) -> Result<()> {
        let events = json!([
            { "type": "abs", "data": { "axis": "x", "value": x } },
            { "type": "abs", "data": { "axis": "y", "value": y } },
            { "type": "btn", "data": { "button": "left", "down": down } },
        ]);
        self.execute(
            "input-send-event",
            json!({ "device": device, "events": events }),
        )?;
        Ok(())
    }

    /// Writes what the display device `device` shows to `png`.
    pub fn screendump(&mut self, device: &str, png: &Path) -> Result<()> {
        self.execute(
            "screendump",
            json!({ "filename": png, "device": device, "format": "png" }),
        )?;
        Ok(())
    }
}

/// One contact of a multi-touch frame: `kind` is `begin`, `update` or
/// `end`; `x` and `y` are QEMU's absolute coordinates (0..=32767 across
/// the display).
#[derive(Clone, Copy, Debug)]
pub struct Mtt {
    pub kind: &'static str,
    pub slot: u32,
    pub id: u32,
    pub x: u32,
    pub y: u32,
}

impl Mtt {
    /// Display pixel (`px`, `py`) of a `width` x `height` display in
    /// QEMU's absolute coordinates.
    pub fn at(
        kind: &'static str,
        slot: u32,
        id: u32,
        (px, py): (u32, u32),
        (width, height): (u32, u32),
    ) -> Mtt {
        Mtt {
            kind,
            slot,
            id,
            x: absolute(px, width),
            y: absolute(py, height),
        }
    }
}

/// One mouse frame ([`Qmp::pointer`]): QEMU's absolute coordinates and
/// the left button.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pointer {
    pub x: u32,
    pub y: u32,
    pub down: bool,
}

impl Pointer {
    /// The mouse at display pixel (`px`, `py`) of a `width` x `height`
    /// display, its left button `down` or up.
    pub fn at((px, py): (u32, u32), (width, height): (u32, u32), down: bool) -> Pointer {
        Pointer {
            x: absolute(px, width),
            y: absolute(py, height),
            down,
        }
    }
}

/// Pixel `p` of `n` in QEMU's absolute coordinates (0..=32767 across).
fn absolute(p: u32, n: u32) -> u32 {
    (u64::from(p) * 32767 / u64::from(n.max(2) - 1)) as u32
}

/// A screenshot: `0xffRRGGBB` pixels, row after row.
#[derive(Clone, Debug)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u32>,
}

impl Image {
    /// Reads an 8-bit RGB or RGBA PNG (what QEMU's screendump writes).
    pub fn load(png: &Path) -> Result<Image> {
        let file = std::fs::File::open(png).with_context(|| format!("{}", png.display()))?;
        let mut decoder = png::Decoder::new(file);
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info()?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf)?;
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => bail!("{}: {other:?} pixels", png.display()),
        };
        let pixels = buf[..info.buffer_size()]
            .chunks_exact(channels)
            .map(|p| 0xff00_0000 | u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2]))
            .collect();
        Ok(Image {
            width: info.width,
            height: info.height,
            pixels,
        })
    }

    /// The pixel at (`x`, `y`), if inside.
    pub fn at(&self, x: u32, y: u32) -> Option<u32> {
        (x < self.width && y < self.height).then(|| self.pixels[(y * self.width + x) as usize])
    }

    /// The 16-bit frame counter a test partition draws at (`x`, `y`): 16
    /// blocks of 4x4 pixels, bit 0 first, white for 1 (read at each
    /// block's centre).
    pub fn frame_counter(&self, x: u32, y: u32) -> Option<u16> {
        let mut n = 0u16;
        for bit in 0..16 {
            let p = self.at(x + bit * 4 + 2, y + 2)?;
            let bright = (p >> 16 & 0xff) > 0x80 && (p >> 8 & 0xff) > 0x80 && (p & 0xff) > 0x80;
            if bright {
                n |= 1 << bit;
            }
        }
        Some(n)
    }

    /// Every pixel of the rectangle (`x`, `y`, `w`, `h`) (clipped to the
    /// image) for which `f` holds, counted.
    pub fn count(&self, rect: (u32, u32, u32, u32), f: impl Fn(u32) -> bool) -> usize {
        let (x, y, w, h) = rect;
        (y..(y + h).min(self.height))
            .flat_map(|py| (x..(x + w).min(self.width)).map(move |px| (px, py)))
            .filter(|&(px, py)| f(self.pixels[(py * self.width + px) as usize]))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A display's corners are QEMU's; a pointer and a contact at one
    /// pixel are at one place.
    #[test]
    fn pixels_in_qemu_coordinates() {
        assert_eq!(
            Pointer::at((0, 799), (1280, 800), true),
            Pointer {
                x: 0,
                y: 32767,
                down: true
            }
        );
        let p = Pointer::at((640, 300), (1280, 800), false);
        let m = Mtt::at("begin", 0, 1, (640, 300), (1280, 800));
        assert_eq!((p.x, p.y, p.down), (m.x, m.y, false));
    }

    /// A PNG written with the png crate reads back; the counter decodes.
    #[test]
    fn reads_a_png_and_its_frame_counter() {
        let dir = crate::paths::target_dir().join("xtask-test-qmp");
        crate::paths::create_dir(&dir).unwrap();
        let path = dir.join("counter.png");
        let (w, h) = (80u32, 8u32);
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        // 0b101 = 5: blocks 0 and 2 white.
        for bit in [0u32, 2] {
            for y in 0..4 {
                for x in bit * 4..bit * 4 + 4 {
                    let at = ((y * w + x) * 3) as usize;
                    rgb[at..at + 3].copy_from_slice(&[255, 255, 255]);
                }
            }
        }
        rgb[((7 * w + 79) * 3) as usize] = 200;
        {
            let file = std::fs::File::create(&path).unwrap();
            let mut encoder = png::Encoder::new(file, w, h);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            encoder
                .write_header()
                .unwrap()
                .write_image_data(&rgb)
                .unwrap();
        }
        let image = Image::load(&path).unwrap();
        assert_eq!((image.width, image.height), (w, h));
        assert_eq!(image.frame_counter(0, 0), Some(5));
        assert_eq!(image.at(79, 7), Some(0xffc8_0000));
        assert_eq!(image.at(80, 0), None);
        assert_eq!(image.count((0, 0, 100, 100), |p| p == 0xffff_ffff), 32);
    }
}
