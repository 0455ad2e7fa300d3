//! What goes into the next physical frame, so that the safety partition's
//! pictures never wait behind anyone else's.
//!
//! The home core keeps each layer's damage that is not on the screen yet
//! (its *pending* rectangles). A frame takes:
//! - everything pending of the top layers (those at the highest priority
//!   given: the hypervisor gives the system's top priority, the safety
//!   partition's, even for a screen it has no view on), whole;
//! - then, highest priority first, the others' pending rectangles until
//!   the frame holds `budget` pixels of them: a rectangle larger than what
//!   is left gives its top rows and keeps the rest for the next frame.
//!
//! So a frame carries at most `budget` pixels that are not the top
//! layers', and a top layer's flush waits for at most one such frame
//! before its own. Frames follow each other as soon as the previous one
//! is on the screen while anything is pending, so the lower layers get
//! every pixel the display can take beyond the top layers' share.
//!
//! A layer is *clean* when nothing of it is pending: everything it drew
//! up to the last time damage was taken is in a frame. The hypervisor
//! answers a partition's flush once its layers are clean and that frame
//! is shown.

use super::{Rect, Rects};

/// Rectangles one physical frame sends at most.
pub const FRAME_RECTS: usize = 12;

/// The rectangles of one frame: the top layers' first.
pub type FrameRects = heapless::Vec<Rect, FRAME_RECTS>;

/// Takes the next frame's damage out of `pending` (one entry per layer,
/// `priority[i]` the priority of layer `i`): all of the top layers' (up to
/// [`FRAME_RECTS`]; more stay pending) and at most `budget` pixels of the
/// others'. A frame that would be empty gets one row of the others', so
/// every layer's damage is composed in the end, whatever `budget` is; a
/// `budget` of 0 makes a frame of the top layers alone when they have
/// damage.
pub fn next_frame(pending: &mut [Rects], priority: &[u8], budget: u64) -> FrameRects {
    let mut frame = FrameRects::new();
    let Some(top) = priority.iter().copied().max() else {
        return frame;
    };
    for (rects, _) in pending.iter_mut().zip(priority).filter(|&(_, &p)| p == top) {
        let mut kept = Rects::default();
        for &r in rects.as_slice() {
            if frame.push(r).is_err() {
                kept.push(r);
            }
        }
        *rects = kept;
    }
    // The others, highest priority first, in layer order among equals.
    let mut left = budget;
    let mut any = false;
    let mut above = top;
    while let Some(level) = priority.iter().copied().filter(|&p| p < above).max() {
        above = level;
        for (rects, _) in pending
            .iter_mut()
            .zip(priority)
            .filter(|&(_, &p)| p == level)
        {
            let mut kept = Rects::default();
            for &r in rects.as_slice() {
                let rows = if frame.is_full() {
                    0
                } else {
                    let fit = left / u64::from(r.width.max(1));
                    // Progress: a frame that would be empty gets a row.
                    let fit = if any || !frame.is_empty() {
                        fit
                    } else {
                        fit.max(1)
                    };
                    fit.min(u64::from(r.height)) as u32
                };
                if rows == 0 {
                    kept.push(r);
                    continue;
                }
                let _ = frame.push(Rect::new(r.x, r.y, r.width, rows));
                any = true;
                left = left.saturating_sub(u64::from(r.width) * u64::from(rows));
                if rows < r.height {
                    kept.push(Rect::new(r.x, r.y + rows, r.width, r.height - rows));
                }
            }
            *rects = kept;
        }
    }
    frame
}

/// Pixels in `rects`, overlaps counted twice.
pub fn pixels(rects: &[Rect]) -> u64 {
    rects
        .iter()
        .map(|r| u64::from(r.width) * u64::from(r.height))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: u8 = 200;
    const IVI: u8 = 10;

    fn pending(rects: &[&[Rect]]) -> Vec<Rects> {
        rects
            .iter()
            .map(|rs| {
                let mut p = Rects::default();
                for r in *rs {
                    p.push(*r);
                }
                p
            })
            .collect()
    }

    #[test]
    fn the_top_layer_goes_whole_and_first() {
        // IVI's whole view (1 Mpx) and the cluster's counter and needle.
        let ivi = Rect::new(0, 0, 1280, 800);
        let counter = Rect::new(0, 0, 64, 8);
        let needle = Rect::new(900, 300, 200, 200);
        let mut p = pending(&[&[ivi], &[counter, needle]]);
        let frame = next_frame(&mut p, &[IVI, CLUSTER], 128 * 1280);
        assert_eq!(
            frame.as_slice(),
            &[counter, needle, Rect::new(0, 0, 1280, 128)]
        );
        assert!(p[1].is_empty(), "the cluster is clean");
        assert_eq!(p[0].as_slice(), &[Rect::new(0, 128, 1280, 672)]);
    }

    #[test]
    fn lower_layers_drain_at_the_budget_per_frame_in_priority_order() {
        let nav = Rect::new(560, 80, 800, 320);
        let media = Rect::new(0, 0, 1280, 800);
        // Layers: media (5), nav (10), cluster (200) with nothing pending.
        let mut p = pending(&[&[media], &[nav], &[]]);
        let prio = [5, 10, 200];
        let budget = 800 * 100;
        let mut frames = Vec::new();
        while p.iter().any(|r| !r.is_empty()) {
            let f = next_frame(&mut p, &prio, budget);
            assert!(pixels(&f) <= budget, "{f:?}");
            frames.push(f);
        }
        // The nav view's 320 rows take 3.2 frames' budget, then the media.
        assert_eq!(frames[0].as_slice(), &[Rect::new(560, 80, 800, 100)]);
        assert_eq!(frames[3][0], Rect::new(560, 380, 800, 20));
        assert_eq!(frames[3][1].y, 0, "media starts in the same frame");
        let composed: u64 = frames.iter().map(|f| pixels(f)).sum();
        assert_eq!(composed, pixels(&[nav, media]), "every pixel once");
    }

    #[test]
    fn a_tiny_budget_still_makes_progress() {
        let mut p = pending(&[&[Rect::new(0, 0, 100, 3)], &[]]);
        let mut n = 0;
        while !p[0].is_empty() {
            let f = next_frame(&mut p, &[1, 2], 0);
            assert_eq!(f.as_slice(), &[Rect::new(0, n, 100, 1)]);
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn a_frame_never_holds_more_rectangles_than_it_can_send() {
        // Three top layers with four rectangles each, and a lower one.
        let r = |i: u32| Rect::new(i * 20, 0, 10, 10);
        let top = [r(0), r(1), r(2), r(3)];
        let mut p = pending(&[&top, &top, &top, &[r(9)]]);
        let prio = [7, 7, 7, 1];
        let f = next_frame(&mut p, &prio, u64::MAX);
        assert_eq!(f.len(), FRAME_RECTS);
        // The top layers' rectangles are all taken; the lower one waits.
        assert!(p[..3].iter().all(|r| r.is_empty()));
        assert_eq!(p[3].as_slice(), &[r(9)]);
        let f = next_frame(&mut p, &prio, u64::MAX);
        assert_eq!(f.as_slice(), &[r(9)]);
    }

    #[test]
    fn no_budget_is_a_frame_of_the_top_layers_alone() {
        let counter = Rect::new(0, 0, 64, 8);
        let ivi = Rect::new(0, 0, 1280, 800);
        let mut p = pending(&[&[ivi], &[counter]]);
        let f = next_frame(&mut p, &[IVI, CLUSTER], 0);
        assert_eq!(f.as_slice(), &[counter]);
        assert_eq!(p[0].as_slice(), &[ivi], "the IVI waits whole");
    }

    #[test]
    fn nothing_pending_is_an_empty_frame() {
        let mut p = pending(&[&[], &[]]);
        assert!(next_frame(&mut p, &[1, 2], 1000).is_empty());
        assert!(next_frame(&mut [], &[], 1000).is_empty());
    }
}
