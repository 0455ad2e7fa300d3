//! The compositor: stacks partitions' views on one physical display, back
//! to front by priority, and keeps lower views out of protected regions.
//!
//! Rules, for every pixel of the damaged area:
//! - it starts as [`BACKGROUND`] (opaque black);
//! - each layer that covers it, from the lowest priority to the highest,
//!   is blended over it ("over", with the pixel's alpha; formats without
//!   alpha are opaque). Where a layer's partition shows nothing (no image
//!   on the scanout, or the image is smaller than the view) the layer
//!   paints its opaque `blank` colour;
//! - a layer whose priority is lower than a [`Protection`]'s never paints
//!   inside that protection's rectangle, whatever its pixels: there the
//!   owner's pixels lie over the background alone, even where they are
//!   transparent;
//! - a layer in fallback (its partition missed its deadline) paints the
//!   warning pattern ([`fallback_pixel`]) instead of its pixels in its
//!   own protections (those of its priority), or over all of it if it has
//!   none on the display.
//!
//! The work is done in bands of rows: for each band, each layer's pixels
//! are read in one [`LayerSource::with_source`] call, so the hypervisor
//! holds a partition's device lock for one band of one layer at a time,
//! and a partition drawing meanwhile waits at most that long.

use super::{PixelFormat, Rect};

/// What is under every layer: opaque black.
pub const BACKGROUND: u32 = 0xff00_0000;

/// One view on the display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Where the view lies on the display.
    pub screen: Rect,
    /// Its partition's priority: higher is nearer the viewer. Layers are
    /// given lowest first; two of the same priority do not overlap (the
    /// config checks it).
    pub priority: u8,
    /// Opaque colour (`0xffRRGGBB`) where the partition shows nothing.
    pub blank: u32,
    /// Opaque colour of the warning pattern while the layer is in
    /// fallback; `None` normally.
    pub fallback: Option<u32>,
}

/// The warning pattern at screen pixel (`x`, `y`): diagonal stripes 16
/// pixels wide of `colour` and black.
pub const fn fallback_pixel(colour: u32, x: u32, y: u32) -> u32 {
    if ((x as u64 + y as u64) / 16).is_multiple_of(2) {
        colour
    } else {
        BACKGROUND
    }
}

/// A screen rectangle in which no layer of lower priority than `priority`
/// (its owner's) ever paints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    pub rect: Rect,
    pub priority: u8,
}

/// The image a layer shows: the part `area` of a buffer of 4-byte pixels.
/// View pixel (vx, vy) is buffer pixel (area.x + vx, area.y + vy) when vx
/// < area.width and vy < area.height and the buffer holds it; otherwise
/// the layer's blank colour.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub pixels: &'a [u8],
    /// Bytes from one row of the buffer to the next.
    pub stride: usize,
    pub format: PixelFormat,
    pub area: Rect,
}

/// Where layers' pixels come from.
pub trait LayerSource {
    /// Calls `f` once with what layer `index` shows now (`None`: nothing,
    /// e.g. its scanout is disabled or its partition is restarting).
    fn with_source(&self, index: usize, f: &mut dyn FnMut(Option<Source<'_>>));
}

/// Why nothing was composed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComposeError {
    /// The band buffer does not hold one row of the damaged area.
    BandTooSmall,
}

/// Composes the part of `damage` that lies on a display of `size` (only
/// its width and height count) and passes it to `sink` band by band: the
/// band's rectangle and its pixels (`0xAARRGGBB`, row after row, as wide
/// as the rectangle). `band` is the work buffer: as many rows of the
/// damage's width as it holds make one band. `layers` are lowest priority
/// first. Returns the number of bands.
pub fn compose(
    size: Rect,
    layers: &[Layer],
    protected: &[Protection],
    source: &dyn LayerSource,
    damage: Rect,
    band: &mut [u32],
    sink: &mut dyn FnMut(Rect, &[u32]),
) -> Result<u32, ComposeError> {
    compose_checked(
        size,
        layers,
        protected,
        source,
        damage,
        band,
        &mut [],
        sink,
        &mut [],
    )
}

/// Most owners (distinct priorities of protections) whose regions one
/// composition checks.
pub const MAX_CHECKED_OWNERS: usize = 4;

/// [`compose`], and for each protection the signature of what it must
/// show: the layers of its priority and above alone over black, whatever
/// lies below them. Each layer is read once per band (one
/// [`LayerSource::with_source`] call) and painted both into the frame and
/// into the owners' views of it (`scratch`, as many bands as fit), so
/// both come from the same pixels even if a partition changes them
/// meanwhile. `expected[i]` (if `protected[i]` lies in the damage and its
/// owner got a scratch band) is the signature of `protected[i].rect ∩
/// damage`, row after row; else it is left alone. Compare it with the
/// signature of what the framebuffer shows there.
#[allow(clippy::too_many_arguments)]
pub fn compose_checked(
    size: Rect,
    layers: &[Layer],
    protected: &[Protection],
    source: &dyn LayerSource,
    damage: Rect,
    band: &mut [u32],
    scratch: &mut [u32],
    sink: &mut dyn FnMut(Rect, &[u32]),
    expected: &mut [Option<Signature>],
) -> Result<u32, ComposeError> {
    debug_assert!(layers.windows(2).all(|w| w[0].priority <= w[1].priority));
    let screen = Rect::new(0, 0, size.width, size.height);
    let Some(damage) = screen.intersection(&damage) else {
        return Ok(0);
    };
    let width = damage.width as usize;
    let rows = (band.len() / width).min(damage.height as usize) as u32;
    if rows == 0 {
        return Err(ComposeError::BandTooSmall);
    }
    // The owners to check, each with a scratch band.
    let mut owners: heapless::Vec<u8, MAX_CHECKED_OWNERS> = heapless::Vec::new();
    let scratch_bands = scratch.len() / band.len();
    for (p, e) in protected.iter().zip(expected.iter_mut()) {
        if p.rect.intersection(&damage).is_none() {
            continue;
        }
        if !owners.contains(&p.priority) {
            if owners.len() == scratch_bands.min(MAX_CHECKED_OWNERS) {
                continue;
            }
            let _ = owners.push(p.priority);
        }
        *e = Some(Signature::default());
    }
    let stride = band.len();
    let mut bands = 0;
    let mut y = damage.y;
    while u64::from(y) < damage.bottom() {
        let height = rows.min((damage.bottom() - u64::from(y)) as u32);
        let area = Rect::new(damage.x, y, damage.width, height);
        let n = width * height as usize;
        let pixels = &mut band[..n];
        pixels.fill(BACKGROUND);
        // Only the owners with a checked region in this band.
        let mut active = [false; MAX_CHECKED_OWNERS];
        for (p, e) in protected.iter().zip(expected.iter()) {
            if e.is_some()
                && p.rect.intersection(&area).is_some()
                && let Some(k) = owners.iter().position(|&o| o == p.priority)
            {
                active[k] = true;
            }
        }
        for k in (0..owners.len()).filter(|&k| active[k]) {
            scratch[k * stride..][..n].fill(BACKGROUND);
        }
        for (index, layer) in layers.iter().enumerate() {
            let Some(part) = layer.screen.intersection(&area) else {
                continue;
            };
            source.with_source(index, &mut |image| {
                paint(layer, image.as_ref(), protected, part, area, pixels);
                for (k, &owner) in owners.iter().enumerate() {
                    if active[k] && layer.priority >= owner {
                        let view = &mut scratch[k * stride..][..n];
                        paint(layer, image.as_ref(), protected, part, area, view);
                    }
                }
            });
        }
        sink(area, pixels);
        for (p, e) in protected.iter().zip(expected.iter_mut()) {
            let (Some(signature), Some(r)) = (e.as_mut(), p.rect.intersection(&area)) else {
                continue;
            };
            let Some(k) = owners.iter().position(|&o| o == p.priority) else {
                continue;
            };
            let view = &scratch[k * stride..][..n];
            for row in r.y..r.y + r.height {
                let at = ((row - area.y) * area.width + (r.x - area.x)) as usize;
                signature.add(&view[at..at + r.width as usize]);
            }
        }
        bands += 1;
        y += height;
    }
    Ok(bands)
}

/// Blends `layer` over the band `area` (whose pixels are `out`) within
/// `part`, skipping what protections above it cover.
fn paint(
    layer: &Layer,
    image: Option<&Source<'_>>,
    protected: &[Protection],
    part: Rect,
    area: Rect,
    out: &mut [u32],
) {
    let above: &dyn Fn(&Protection) -> bool = &|p| p.priority > layer.priority;
    // In fallback: the pattern over its own protections, or over all of
    // it if it has none here.
    let own = |p: &&Protection| {
        p.priority == layer.priority && p.rect.intersection(&layer.screen).is_some()
    };
    let whole = !protected.iter().any(|p| own(&p));
    for y in part.y..part.y + part.height {
        let row_out = &mut out[((y - area.y) * area.width) as usize..][..area.width as usize];
        let vy = y - layer.screen.y;
        // The image's row for this view row, if it has one.
        let row_in = image.and_then(|img| {
            if vy >= img.area.height {
                return None;
            }
            let start = (img.area.y as usize + vy as usize).checked_mul(img.stride)?;
            img.pixels.get(start..).map(|row| (img, row))
        });
        let mut x = part.x;
        let end = part.right() as u32;
        while x < end {
            // Inside a protection of a higher layer: jump past it.
            if let Some(p) = protected
                .iter()
                .filter(|p| above(p) && covers(&p.rect, x, y))
                .max_by_key(|p| p.rect.right())
            {
                x = (p.rect.right() as u32).min(end);
                continue;
            }
            // Up to the next protection that starts on this row, if any.
            let stop = protected
                .iter()
                .filter(|p| above(p) && row_of(&p.rect, y) && p.rect.x > x)
                .map(|p| p.rect.x)
                .min()
                .unwrap_or(end)
                .min(end);
            let dst = &mut row_out[(x - area.x) as usize..(stop - area.x) as usize];
            let first = x - layer.screen.x;
            // The image's pixels for this span (fewer where it ends).
            let (pixels, format) = match row_in {
                Some((img, row)) if first < img.area.width => {
                    let n = (img.area.width - first).min(stop - x) as usize;
                    let start = (img.area.x as usize + first as usize) * 4;
                    let bytes = row.get(start..).unwrap_or(&[]);
                    let bytes = &bytes[..(n * 4).min(bytes.len() / 4 * 4)];
                    (bytes, img.format)
                }
                _ => (&[][..], PixelFormat::B8G8R8X8),
            };
            let drawn = pixels.len() / 4;
            blend_span(format, pixels, dst);
            // The blank colour is opaque.
            dst[drawn..].fill(layer.blank);
            if let Some(colour) = layer.fallback {
                for (i, d) in dst.iter_mut().enumerate() {
                    let sx = x + i as u32;
                    if whole || protected.iter().filter(own).any(|p| covers(&p.rect, sx, y)) {
                        *d = fallback_pixel(colour, sx, y);
                    }
                }
            }
            x = stop;
        }
    }
}

/// Blends the pixels `src` (in `format`) over `dst`, as many as both
/// hold. The formats Linux and our guests use have their own loops: this
/// is where the compositor spends its time.
fn blend_span(format: PixelFormat, src: &[u8], dst: &mut [u32]) {
    let words = src
        .chunks_exact(4)
        .map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]]));
    match format {
        // 0xXXRRGGBB in memory order: opaque, nothing to blend.
        PixelFormat::B8G8R8X8 => {
            for (d, w) in dst.iter_mut().zip(words) {
                *d = w | 0xff00_0000;
            }
        }
        PixelFormat::B8G8R8A8 => {
            for (d, w) in dst.iter_mut().zip(words) {
                *d = over(w, *d);
            }
        }
        _ => {
            for (d, p) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = over(format.to_argb([p[0], p[1], p[2], p[3]]), *d);
            }
        }
    }
}

fn row_of(r: &Rect, y: u32) -> bool {
    y >= r.y && u64::from(y) < r.bottom()
}

fn covers(r: &Rect, x: u32, y: u32) -> bool {
    row_of(r, y) && x >= r.x && u64::from(x) < r.right()
}

/// A frame's signature over some pixels (`0xAARRGGBB`, alpha ignored),
/// as a display controller's signature unit computes one over what it
/// scans out: FNV-1a, 64 bits, over the pixels' colour in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature(u64);

impl Default for Signature {
    fn default() -> Self {
        Signature(0xcbf2_9ce4_8422_2325)
    }
}

impl Signature {
    /// Adds `pixels`, in order.
    pub fn add(&mut self, pixels: &[u32]) {
        for p in pixels {
            self.0 = (self.0 ^ u64::from(p & 0x00ff_ffff)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn value(&self) -> u64 {
        self.0
    }
}

/// `src` over `dst` (both `0xAARRGGBB`); the result is opaque when `dst`
/// is (it always is here: the background is).
pub fn over(src: u32, dst: u32) -> u32 {
    let a = src >> 24;
    match a {
        0xff => src,
        0 => dst,
        _ => {
            let mix = |shift: u32| {
                let s = (src >> shift) & 0xff;
                let d = (dst >> shift) & 0xff;
                ((s * a + d * (255 - a) + 127) / 255) << shift
            };
            0xff00_0000 | mix(16) | mix(8) | mix(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: u32 = 0xffff_0000;
    const GREEN: u32 = 0xff00_ff00;
    const BLUE: u32 = 0xff00_00ff;
    const GREY: u32 = 0xff40_4040;

    /// A solid image of one colour per layer, or none.
    struct Solid {
        images: Vec<Option<(Vec<u8>, Rect)>>,
        calls: core::cell::Cell<usize>,
    }

    impl Solid {
        /// Layer i: a `w`x`h` B8G8R8A8 image of `argb`, or nothing.
        fn new(images: &[Option<(u32, u32, u32)>]) -> Solid {
            Solid {
                images: images
                    .iter()
                    .map(|i| {
                        i.map(|(argb, w, h)| {
                            let px = argb.to_le_bytes();
                            (px.repeat((w * h) as usize), Rect::new(0, 0, w, h))
                        })
                    })
                    .collect(),
                calls: core::cell::Cell::new(0),
            }
        }
    }

    impl LayerSource for Solid {
        fn with_source(&self, index: usize, f: &mut dyn FnMut(Option<Source<'_>>)) {
            self.calls.set(self.calls.get() + 1);
            f(self.images[index].as_ref().map(|(pixels, area)| Source {
                pixels,
                stride: area.width as usize * 4,
                format: PixelFormat::B8G8R8A8,
                area: *area,
            }))
        }
    }

    /// The whole `w`x`h` screen, composed.
    fn screen(
        w: u32,
        h: u32,
        layers: &[Layer],
        protected: &[Protection],
        source: &dyn LayerSource,
    ) -> Vec<u32> {
        let mut out = vec![0; (w * h) as usize];
        let mut band = vec![0; w as usize * 3];
        compose(
            Rect::new(0, 0, w, h),
            layers,
            protected,
            source,
            Rect::new(0, 0, w, h),
            &mut band,
            &mut |r, px| {
                for row in 0..r.height {
                    let at = ((r.y + row) * w + r.x) as usize;
                    out[at..at + r.width as usize]
                        .copy_from_slice(&px[(row * r.width) as usize..][..r.width as usize]);
                }
            },
        )
        .unwrap();
        out
    }

    fn layer(x: u32, y: u32, w: u32, h: u32, priority: u8) -> Layer {
        Layer {
            screen: Rect::new(x, y, w, h),
            priority,
            blank: GREY,
            fallback: None,
        }
    }

    #[test]
    fn a_layer_in_fallback_shows_the_pattern_in_its_protections() {
        const AMBER: u32 = 0xffff_b000;
        let mut layers = [layer(0, 0, 64, 4, 10), layer(0, 0, 64, 4, 200)];
        layers[1].fallback = Some(AMBER);
        let source = Solid::new(&[Some((GREEN, 64, 4)), Some((RED, 64, 4))]);
        let protected = [Protection {
            rect: Rect::new(0, 0, 40, 4),
            priority: 200,
        }];
        let out = screen(64, 4, &layers, &protected, &source);
        for y in 0..4u32 {
            for x in 0..64u32 {
                let want = if x < 40 {
                    fallback_pixel(AMBER, x, y)
                } else {
                    RED
                };
                assert_eq!(out[(y * 64 + x) as usize], want, "({x}, {y})");
            }
        }
        assert_eq!(out[0], AMBER);
        assert_eq!(out[16], BACKGROUND);
        // Without protections of its own, all of it.
        let out = screen(64, 4, &layers, &[], &source);
        assert!((0..64).all(|x| out[x as usize] == fallback_pixel(AMBER, x, 0)));
        // A lower layer's fallback stays out of a higher one's protections.
        let mut layers = [layer(0, 0, 64, 4, 10), layer(48, 0, 16, 4, 200)];
        layers[0].fallback = Some(AMBER);
        let protected = [Protection {
            rect: Rect::new(0, 0, 8, 4),
            priority: 200,
        }];
        let out = screen(
            64,
            4,
            &layers,
            &protected,
            &Solid::new(&[Some((GREEN, 64, 4)), None]),
        );
        assert_eq!(
            out[0], BACKGROUND,
            "the cluster's protection, no cluster view there"
        );
        assert_eq!(out[8], fallback_pixel(AMBER, 8, 0));
        assert_eq!(out[50], GREY, "the cluster's blank view on top");
    }

    #[test]
    fn higher_priority_is_on_top_and_blank_fills_what_is_not_drawn() {
        // IVI (10) covers the left 6 columns; the cluster (200) columns
        // 4..8; the IVI's image is 5 wide, so its column 5 is blank.
        let layers = [layer(0, 0, 6, 2, 10), layer(4, 0, 4, 2, 200)];
        let source = Solid::new(&[Some((GREEN, 5, 2)), Some((RED, 4, 2))]);
        let out = screen(10, 2, &layers, &[], &source);
        let row = &out[..10];
        assert_eq!(
            row,
            &[
                GREEN, GREEN, GREEN, GREEN, RED, RED, RED, RED, BACKGROUND, BACKGROUND
            ]
        );
        // A layer with nothing to show is blank.
        let source = Solid::new(&[None, Some((RED, 4, 2))]);
        let out = screen(10, 2, &layers, &[], &source);
        assert_eq!(&out[..4], &[GREY; 4]);
    }

    #[test]
    fn transparent_pixels_show_the_layer_below() {
        // The cluster on top, fully transparent in a window, half in
        // another: the IVI shows through.
        let layers = [layer(0, 0, 4, 1, 10), layer(0, 0, 4, 1, 200)];
        let mut source = Solid::new(&[Some((BLUE, 4, 1)), Some((0, 4, 1))]);
        let pixels = &mut source.images[1].as_mut().unwrap().0;
        pixels[0..4].copy_from_slice(&RED.to_le_bytes());
        pixels[4..8].copy_from_slice(&0x80ff_0000u32.to_le_bytes());
        let out = screen(4, 1, &layers, &[], &source);
        assert_eq!(out[0], RED);
        assert_eq!(out[1], 0xff80_007f, "half red over blue");
        assert_eq!(&out[2..], &[BLUE, BLUE]);
    }

    #[test]
    fn nothing_lower_appears_in_a_protected_region() {
        // The cluster's layer is transparent everywhere; its protected
        // strip is columns 2..5 of row 1. The IVI (below) paints solid
        // green over the whole screen.
        let layers = [layer(0, 0, 8, 3, 10), layer(0, 0, 8, 3, 200)];
        let source = Solid::new(&[Some((GREEN, 8, 3)), Some((0, 8, 3))]);
        let protected = [Protection {
            rect: Rect::new(2, 1, 3, 1),
            priority: 200,
        }];
        let out = screen(8, 3, &layers, &protected, &source);
        for y in 0..3u32 {
            for x in 0..8u32 {
                let inside = y == 1 && (2..5).contains(&x);
                let want = if inside { BACKGROUND } else { GREEN };
                assert_eq!(out[(y * 8 + x) as usize], want, "({x}, {y})");
            }
        }
        // The owner's own pixels do show there.
        let source = Solid::new(&[Some((GREEN, 8, 3)), Some((RED, 8, 3))]);
        let out = screen(8, 3, &layers, &protected, &source);
        assert!(out.iter().all(|&p| p == RED));
    }

    #[test]
    fn overlapping_protections_and_edges() {
        let layers = [layer(0, 0, 10, 1, 10)];
        let source = Solid::new(&[Some((GREEN, 10, 1))]);
        let protected = [
            Protection {
                rect: Rect::new(1, 0, 3, 1),
                priority: 200,
            },
            Protection {
                rect: Rect::new(2, 0, 4, 1),
                priority: 200,
            },
            Protection {
                rect: Rect::new(9, 0, 5, 1),
                priority: 200,
            },
            // Its own priority: no effect on it.
            Protection {
                rect: Rect::new(7, 0, 1, 1),
                priority: 10,
            },
        ];
        let out = screen(10, 1, &layers, &protected, &source);
        let want: Vec<u32> = (0..10)
            .map(|x| {
                if (1..6).contains(&x) || x == 9 {
                    BACKGROUND
                } else {
                    GREEN
                }
            })
            .collect();
        assert_eq!(out, want);
    }

    #[test]
    fn damage_is_clipped_and_composed_in_bands() {
        let layers = [layer(0, 0, 16, 16, 10), layer(4, 4, 4, 4, 200)];
        let source = Solid::new(&[Some((GREEN, 16, 16)), Some((RED, 4, 4))]);
        let mut seen = Vec::new();
        let mut band = vec![0; 8 * 3];
        let bands = compose(
            Rect::new(0, 0, 16, 16),
            &layers,
            &[],
            &source,
            Rect::new(8, 10, 100, 100),
            &mut band,
            &mut |r, px| seen.push((r, px.len())),
        )
        .unwrap();
        // 8 columns (8..16) by 6 rows (10..16), 3 rows a band.
        assert_eq!(bands, 2);
        assert_eq!(
            seen,
            [(Rect::new(8, 10, 8, 3), 24), (Rect::new(8, 13, 8, 3), 24)]
        );
        // The cluster's layer misses the damage: only the IVI is read.
        assert_eq!(source.calls.get(), 2);
        let mut tiny = [0u32; 4];
        assert_eq!(
            compose(
                Rect::new(0, 0, 16, 16),
                &layers,
                &[],
                &source,
                Rect::new(0, 0, 8, 1),
                &mut tiny,
                &mut |_, _| {}
            ),
            Err(ComposeError::BandTooSmall)
        );
        assert_eq!(
            compose(
                Rect::new(0, 0, 16, 16),
                &layers,
                &[],
                &source,
                Rect::new(20, 0, 8, 1),
                &mut tiny,
                &mut |_, _| panic!("nothing on screen")
            ),
            Ok(0)
        );
    }

    #[test]
    fn a_source_smaller_than_it_says_is_blank_beyond_its_pixels() {
        // The area claims 4x4 but the buffer holds one row.
        struct Short(Vec<u8>);
        impl LayerSource for Short {
            fn with_source(&self, _: usize, f: &mut dyn FnMut(Option<Source<'_>>)) {
                f(Some(Source {
                    pixels: &self.0,
                    stride: 16,
                    format: PixelFormat::B8G8R8X8,
                    area: Rect::new(0, 0, 4, 4),
                }))
            }
        }
        let layers = [layer(0, 0, 4, 2, 10)];
        let out = screen(4, 2, &layers, &[], &Short(RED.to_le_bytes().repeat(4)));
        assert_eq!(&out[..4], &[RED; 4]);
        assert_eq!(&out[4..], &[GREY; 4]);
    }

    /// The signature of a protected region is that of the owner's layer
    /// over black: what the composed frame shows there, unless something
    /// else got in.
    #[test]
    fn protected_regions_have_the_signature_of_their_owner_alone() {
        let layers = [layer(0, 0, 8, 3, 10), layer(0, 0, 8, 3, 200)];
        let mut source = Solid::new(&[Some((GREEN, 8, 3)), Some((0, 8, 3))]);
        // The owner draws one red pixel; the rest of it is transparent.
        source.images[1].as_mut().unwrap().0[4 * 9..4 * 10].copy_from_slice(&RED.to_le_bytes());
        let protected = [
            Protection {
                rect: Rect::new(0, 1, 8, 1),
                priority: 200,
            },
            // Outside the damage below: not checked.
            Protection {
                rect: Rect::new(0, 0, 8, 1),
                priority: 200,
            },
        ];
        let mut frame = vec![0u32; 24];
        let mut band = vec![0; 8];
        let mut scratch = vec![0; 8];
        let mut expected = [None, None];
        let bands = compose_checked(
            Rect::new(0, 0, 8, 3),
            &layers,
            &protected,
            &source,
            Rect::new(0, 1, 8, 2),
            &mut band,
            &mut scratch,
            &mut |r, px| {
                let at = (r.y * 8) as usize;
                frame[at..at + px.len()].copy_from_slice(px);
            },
            &mut expected,
        )
        .unwrap();
        assert_eq!(bands, 2, "one row a band");
        assert_eq!(expected[1], None);
        let shown = |frame: &[u32]| {
            let mut s = Signature::default();
            s.add(&frame[8..16]);
            s
        };
        assert_eq!(Some(shown(&frame)), expected[0]);
        let mut want = [BACKGROUND; 8];
        want[1] = RED;
        let mut direct = Signature::default();
        direct.add(&want);
        assert_eq!(expected[0], Some(direct));
        // A leaked pixel of the IVI's (or any corruption) changes it.
        let mut leaked = frame.clone();
        leaked[10] = GREEN;
        assert_ne!(Some(shown(&leaked)), expected[0]);
        // Without scratch room nothing is checked.
        let mut expected = [None, None];
        compose_checked(
            Rect::new(0, 0, 8, 3),
            &layers,
            &protected,
            &source,
            Rect::new(0, 1, 8, 2),
            &mut band,
            &mut [],
            &mut |_, _| {},
            &mut expected,
        )
        .unwrap();
        assert_eq!(expected, [None, None]);
        // Alpha is not part of it.
        let mut s = Signature::default();
        s.add(&[0x00ff_0000]);
        let mut t = Signature::default();
        t.add(&[0xffff_0000]);
        assert_eq!(s, t);
    }

    #[test]
    fn every_format_blends_as_its_pixels_say() {
        // Five pixels of varied alpha and colour, in each format's bytes.
        let bytes: Vec<u8> = [
            [0x10, 0x20, 0x30, 0xff],
            [0x80, 0x40, 0x20, 0x00],
            [0xff, 0x00, 0x7f, 0x80],
            [0x01, 0x02, 0x03, 0x04],
            [0xaa, 0xbb, 0xcc, 0xdd],
        ]
        .concat();
        for format in PixelFormat::ALL {
            struct One<'a>(&'a [u8], PixelFormat);
            impl LayerSource for One<'_> {
                fn with_source(&self, _: usize, f: &mut dyn FnMut(Option<Source<'_>>)) {
                    f(Some(Source {
                        pixels: self.0,
                        stride: self.0.len(),
                        format: self.1,
                        area: Rect::new(0, 0, 5, 1),
                    }))
                }
            }
            let layers = [Layer {
                screen: Rect::new(0, 0, 5, 1),
                priority: 1,
                blank: GREY,
                fallback: None,
            }];
            let got = screen(5, 1, &layers, &[], &One(&bytes, format));
            let want: Vec<u32> = bytes
                .chunks_exact(4)
                .map(|p| over(format.to_argb([p[0], p[1], p[2], p[3]]), BACKGROUND))
                .collect();
            assert_eq!(got, want, "{format:?}");
        }
    }

    #[test]
    fn over_blends() {
        assert_eq!(over(RED, BLUE), RED);
        assert_eq!(over(0x00ff_0000, BLUE), BLUE);
        assert_eq!(over(0x80ff_ffff, BACKGROUND), 0xff80_8080);
    }
}
