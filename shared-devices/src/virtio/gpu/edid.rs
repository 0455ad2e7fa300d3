//! The EDID a scanout reports (GET_EDID): one 128-byte EDID 1.3 base
//! block, no extensions, whose preferred (first detailed) timing is the
//! view's size at 60 Hz with reduced blanking (the CVT reduced-blanking
//! rules: 160 pixels of horizontal blanking, at least 460 µs of vertical
//! blanking). It lists no established or standard timings and does not
//! claim continuous frequencies, so Linux offers exactly that one mode.
//!
//! A detailed timing holds at most 4095 x 4095 pixels and a 655.35 MHz
//! pixel clock. A larger view gets an EDID without a detailed timing (and
//! without the preferred-timing bit); Linux then falls back to the size
//! from GET_DISPLAY_INFO. A view too big for 60 Hz within the clock limit
//! gets a lower refresh rate.

/// Bytes of an EDID base block.
pub const EDID_BYTES: usize = 128;

/// Largest active size and pixel clock (in 10 kHz units) a detailed
/// timing can express.
const DTD_MAX_ACTIVE: u32 = 4095;
const DTD_MAX_CLOCK: u64 = 0xffff;

/// Refresh rate aimed at.
const REFRESH_HZ: u64 = 60;
/// Reduced blanking: horizontal front porch, sync, blanking in total.
const H_FRONT: u32 = 48;
const H_SYNC: u32 = 32;
const H_BLANK: u32 = 160;
/// Vertical front porch and the least back porch, in lines.
const V_FRONT: u32 = 3;
const V_BACK_MIN: u32 = 6;
/// The least vertical blanking time, in microseconds.
const V_BLANK_MIN_US: u64 = 460;

/// Dots per inch assumed for the physical size.
const DPI: u32 = 96;

/// A video timing as a detailed timing descriptor holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Pixel clock in 10 kHz units.
    pub clock_10khz: u16,
    pub h_active: u32,
    pub h_blank: u32,
    pub h_front: u32,
    pub h_sync: u32,
    pub v_active: u32,
    pub v_blank: u32,
    pub v_front: u32,
    pub v_sync: u32,
}

impl Timing {
    /// The reduced-blanking timing of a `width` x `height` mode at 60 Hz
    /// (less if the clock would exceed the limit), if a detailed timing
    /// can hold it.
    pub fn reduced_blanking(width: u32, height: u32) -> Option<Timing> {
        if width == 0 || height == 0 || width > DTD_MAX_ACTIVE || height > DTD_MAX_ACTIVE {
            return None;
        }
        // The vertical sync width says the aspect ratio (CVT).
        let v_sync = match (u64::from(width) * 1000) / u64::from(height) {
            1333 => 4,
            1777 | 1778 => 5,
            1600 => 6,
            1250 | 1666 | 1667 => 7,
            _ => 10,
        };
        // Lines of blanking: enough for 460 µs at the line period the
        // active lines leave (frame time minus the blanking, per line).
        let frame_us = 1_000_000 / REFRESH_HZ;
        let lines = V_BLANK_MIN_US * u64::from(height) / (frame_us - V_BLANK_MIN_US) + 1;
        let v_blank = (lines as u32).max(V_FRONT + v_sync + V_BACK_MIN);
        let h_total = u64::from(width + H_BLANK);
        let v_total = u64::from(height + v_blank);
        let clock = (h_total * v_total * REFRESH_HZ + 5_000) / 10_000;
        Some(Timing {
            clock_10khz: clock.clamp(1, DTD_MAX_CLOCK) as u16,
            h_active: width,
            h_blank: H_BLANK,
            h_front: H_FRONT,
            h_sync: H_SYNC,
            v_active: height,
            v_blank,
            v_front: V_FRONT,
            v_sync,
        })
    }

    pub fn h_total(&self) -> u32 {
        self.h_active + self.h_blank
    }

    pub fn v_total(&self) -> u32 {
        self.v_active + self.v_blank
    }

    /// Refresh rate in millihertz.
    pub fn refresh_mhz(&self) -> u64 {
        u64::from(self.clock_10khz) * 10_000 * 1000
            / (u64::from(self.h_total()) * u64::from(self.v_total()))
    }

    /// The 18-byte detailed timing descriptor; `size_mm` is the image
    /// size.
    fn descriptor(&self, size_mm: (u32, u32)) -> [u8; 18] {
        let mut d = [0u8; 18];
        let lo = |v: u32| (v & 0xff) as u8;
        let hi4 = |v: u32| ((v >> 8) & 0xf) as u8;
        d[0..2].copy_from_slice(&self.clock_10khz.to_le_bytes());
        d[2] = lo(self.h_active);
        d[3] = lo(self.h_blank);
        d[4] = (hi4(self.h_active) << 4) | hi4(self.h_blank);
        d[5] = lo(self.v_active);
        d[6] = lo(self.v_blank);
        d[7] = (hi4(self.v_active) << 4) | hi4(self.v_blank);
        d[8] = lo(self.h_front);
        d[9] = lo(self.h_sync);
        d[10] = (((self.v_front & 0xf) as u8) << 4) | (self.v_sync & 0xf) as u8;
        d[11] = ((((self.h_front >> 8) & 3) as u8) << 6)
            | ((((self.h_sync >> 8) & 3) as u8) << 4)
            | ((((self.v_front >> 4) & 3) as u8) << 2)
            | (((self.v_sync >> 4) & 3) as u8);
        d[12] = lo(size_mm.0);
        d[13] = lo(size_mm.1);
        d[14] = (hi4(size_mm.0) << 4) | hi4(size_mm.1);
        // No borders; digital separate sync, hsync positive, vsync
        // negative (as reduced blanking has it).
        d[17] = 0x18 | 0x02;
        d
    }
}

/// A display descriptor (not a timing): tag and 13 bytes of data.
fn display_descriptor(tag: u8, data: &[u8; 13]) -> [u8; 18] {
    let mut d = [0u8; 18];
    d[3] = tag;
    d[5..].copy_from_slice(data);
    d
}

/// Text for a descriptor: up to 13 bytes, then a line feed, then spaces.
fn text(s: &[u8]) -> [u8; 13] {
    let mut t = [b' '; 13];
    let n = s.len().min(13);
    t[..n].copy_from_slice(&s[..n]);
    if n < 13 {
        t[n] = b'\n';
    }
    t
}

/// Millimetres of `px` pixels at [`DPI`].
fn mm(px: u32) -> u32 {
    (u64::from(px) * 254 / (u64::from(DPI) * 10)).min(4095) as u32
}

/// The 10-bit chromaticity coordinates of sRGB (Rx, Ry, Gx, Gy, Bx, By,
/// Wx, Wy), each the coordinate times 1024, rounded.
const SRGB: [u16; 8] = [655, 338, 307, 614, 154, 61, 320, 337];

/// The EDID of scanout `index` (0-based) showing `width` x `height`.
pub fn edid(index: usize, width: u32, height: u32) -> [u8; EDID_BYTES] {
    let mut e = [0u8; EDID_BYTES];
    e[0..8].copy_from_slice(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]);
    // Manufacturer "SHD" (three 5-bit letters, 'A' = 1, big endian).
    let letter = |c: u8| u16::from(c - b'A' + 1);
    let id = (letter(b'S') << 10) | (letter(b'H') << 5) | letter(b'D');
    e[8..10].copy_from_slice(&id.to_be_bytes());
    e[10..12].copy_from_slice(&0x0010u16.to_le_bytes());
    e[12..16].copy_from_slice(&(index as u32 + 1).to_le_bytes());
    // Week unknown, model year 2024.
    e[16] = 0;
    e[17] = (2024 - 1990) as u8;
    e[18] = 1;
    e[19] = 3;
    // Digital input.
    e[20] = 0x80;
    let size = (mm(width), mm(height));
    e[21] = size.0.div_ceil(10).clamp(1, 255) as u8;
    e[22] = size.1.div_ceil(10).clamp(1, 255) as u8;
    // Gamma 2.2.
    e[23] = 120;
    let timing = Timing::reduced_blanking(width, height);
    // RGB colour, sRGB, and the first descriptor is the preferred timing.
    e[24] = 0x04 | if timing.is_some() { 0x02 } else { 0 };
    let c = SRGB;
    let low = |a: u16, b: u16, x: u16, y: u16| -> u8 {
        (((a & 3) << 6) | ((b & 3) << 4) | ((x & 3) << 2) | (y & 3)) as u8
    };
    e[25] = low(c[0], c[1], c[2], c[3]);
    e[26] = low(c[4], c[5], c[6], c[7]);
    for (i, v) in c.iter().enumerate() {
        e[27 + i] = (v >> 2) as u8;
    }
    // No established timings (35..38); standard timings unused (01 01).
    for b in e[38..54].iter_mut() {
        *b = 0x01;
    }
    let mut name = *b"SHDV view    ";
    let n = index + 1;
    let mut len = 10;
    if n >= 10 {
        name[len] = b'0' + (n / 10 % 10) as u8;
        len += 1;
    }
    name[len] = b'0' + (n % 10) as u8;
    len += 1;
    let mut descriptors = [[0u8; 18]; 4];
    let mut next = 0;
    if let Some(t) = timing {
        descriptors[0] = t.descriptor(size);
        // Range limits around the one mode: vertical Hz, horizontal kHz,
        // pixel clock in 10 MHz; "range limits only" (no GTF or CVT
        // formula modes).
        let hz = t.refresh_mhz().div_ceil(1000) as u32;
        let khz = u32::from(t.clock_10khz) * 10 / t.h_total();
        let clamp = |v: u32| v.clamp(1, 255) as u8;
        let mut r = [0u8; 13];
        r[0] = clamp(hz.saturating_sub(1));
        r[1] = clamp(hz + 1);
        r[2] = clamp(khz.saturating_sub(1));
        r[3] = clamp(khz + 1);
        r[4] = clamp(u32::from(t.clock_10khz).div_ceil(1000));
        r[5] = 0x01;
        r[6] = b'\n';
        for b in r[7..].iter_mut() {
            *b = b' ';
        }
        descriptors[1] = display_descriptor(0xfd, &r);
        next = 2;
    }
    descriptors[next] = display_descriptor(0xfc, &text(&name[..len]));
    next += 1;
    for d in descriptors[next..].iter_mut() {
        // Dummy descriptors.
        *d = display_descriptor(0x10, &[0; 13]);
    }
    for (i, d) in descriptors.iter().enumerate() {
        e[54 + 18 * i..72 + 18 * i].copy_from_slice(d);
    }
    // No extension blocks; checksum.
    e[126] = 0;
    let sum = e[..127].iter().fold(0u8, |s, b| s.wrapping_add(*b));
    e[127] = 0u8.wrapping_sub(sum);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first detailed timing, decoded back: (clock, h active, h blank,
    /// v active, v blank).
    fn decode(e: &[u8; EDID_BYTES]) -> (u16, u32, u32, u32, u32) {
        let d = &e[54..72];
        let clock = u16::from_le_bytes([d[0], d[1]]);
        let h_active = u32::from(d[2]) | (u32::from(d[4] >> 4) << 8);
        let h_blank = u32::from(d[3]) | (u32::from(d[4] & 0xf) << 8);
        let v_active = u32::from(d[5]) | (u32::from(d[7] >> 4) << 8);
        let v_blank = u32::from(d[6]) | (u32::from(d[7] & 0xf) << 8);
        (clock, h_active, h_blank, v_active, v_blank)
    }

    fn checksum_ok(e: &[u8; EDID_BYTES]) -> bool {
        e.iter().fold(0u8, |s, b| s.wrapping_add(*b)) == 0
    }

    #[test]
    fn full_hd_is_the_standard_reduced_blanking_mode() {
        let e = edid(0, 1920, 1080);
        assert!(checksum_ok(&e));
        assert_eq!(&e[..8], &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
        assert_eq!((e[18], e[19]), (1, 3), "EDID 1.3");
        assert_eq!(e[126], 0, "no extensions");
        assert_ne!(e[24] & 0x02, 0, "preferred timing");
        // CVT-RB 1920x1080@60: 138.5 MHz, 2080 x 1111 total.
        let (clock, ha, hb, va, vb) = decode(&e);
        assert_eq!((ha, hb, va, vb), (1920, 160, 1080, 31));
        assert_eq!(clock, 13865, "rounded to 10 kHz, not down to 250 kHz");
        let t = Timing::reduced_blanking(1920, 1080).unwrap();
        assert!((59_990..=60_010).contains(&t.refresh_mhz()));
        // The name descriptor.
        let name = &e[54 + 2 * 18..54 + 3 * 18];
        assert_eq!(name[3], 0xfc);
        assert_eq!(&name[5..18], b"SHDV view 1\n ");
        // Range limits: 59..61 Hz.
        let range = &e[54 + 18..54 + 2 * 18];
        assert_eq!((range[3], range[5], range[6]), (0xfd, 59, 61));
        // 1920 px at 96 dpi: 508 mm.
        assert_eq!((e[21], e[22]), (51, 29));
    }

    #[test]
    fn every_size_a_timing_can_hold() {
        for (w, h) in [
            (1, 1),
            (2, 4095),
            (4095, 1),
            (640, 480),
            (800, 1280),
            (1024, 600),
            (1280, 720),
            (2560, 1600),
            (3840, 2160),
            (4095, 4095),
        ] {
            for index in [0, 9, 15] {
                let e = edid(index, w, h);
                assert!(checksum_ok(&e), "{w}x{h}");
                let (clock, ha, hb, va, vb) = decode(&e);
                assert_ne!(clock, 0, "a timing, not a display descriptor");
                assert_eq!((ha, va), (w, h));
                assert_eq!(hb, 160);
                assert!(vb >= 13);
                let t = Timing::reduced_blanking(w, h).unwrap();
                // 60 Hz, or less where the clock tops out.
                let hz = t.refresh_mhz();
                if u64::from(clock) < DTD_MAX_CLOCK {
                    assert!((59_000..=62_000).contains(&hz), "{w}x{h}: {hz}");
                } else {
                    assert!(hz < 60_000, "{w}x{h}: {hz}");
                }
                // Blanking of at least 460 µs.
                let line_ns = u64::from(t.h_total()) * 100_000 / u64::from(clock);
                assert!(u64::from(vb) * line_ns >= 460_000, "{w}x{h}");
            }
        }
        let name = |e: [u8; EDID_BYTES]| e[54 + 2 * 18 + 5..54 + 3 * 18].to_vec();
        assert_eq!(name(edid(15, 800, 600)), b"SHDV view 16\n");
    }

    #[test]
    fn too_big_for_a_timing() {
        for (w, h) in [(4096, 2160), (1920, 4096), (16384, 16384)] {
            let e = edid(3, w, h);
            assert!(checksum_ok(&e));
            assert_eq!(e[24] & 0x02, 0, "no preferred timing");
            assert_eq!(&e[54..57], &[0, 0, 0], "a display descriptor first");
            assert_eq!(e[54 + 3], 0xfc);
            assert!(Timing::reduced_blanking(w, h).is_none());
        }
        assert!(Timing::reduced_blanking(0, 10).is_none());
    }
}
