//! An absolute pointer on a panel's display as one more contact on the
//! panel: while its button is down, a tablet (QEMU's mouse over the
//! display's window) is a finger in physical slot [`POINTER_SLOT`].
//!
//! A tablet reports `ABS_X`/`ABS_Y` (in the ranges of its ABS_INFO) and
//! buttons (`EV_KEY`), in frames ended by SYN_REPORT. QEMU sends motion
//! and a button change in frames of their own, so a press comes with no
//! position: the decoder keeps the last one it was given, with the button
//! up or down. `BTN_LEFT` or `BTN_TOUCH` held is a contact; motion with
//! neither is none. Everything else (other buttons, the wheel, other axes,
//! other event types) is ignored.

use super::{Axis, BTN_LEFT, Change, Event, POINTER_SLOT, code};
use crate::display::Rect;

/// The buttons that make a contact, as bits of [`PointerDecoder::held`].
const LEFT: u8 = 1 << 0;
const TOUCH: u8 = 1 << 1;

/// Turns a tablet's event stream into the [`Change`]s of one contact in
/// slot [`POINTER_SLOT`], frame by frame. Any event order and value is
/// accepted; positions beyond the axes' ranges clamp to the screen's edge.
pub struct PointerDecoder {
    x: Axis,
    y: Axis,
    screen: Rect,
    /// The last position the tablet gave, in its units.
    at: (i32, i32),
    /// The contact buttons held (`LEFT`, `TOUCH`).
    held: u8,
    /// Whether its contact is down, as the changes so far say.
    down: bool,
    /// Since the last SYN_REPORT: a press (none of the buttons held, then
    /// one), a release (the other way round), a position.
    pressed: bool,
    released: bool,
    moved: bool,
}

impl PointerDecoder {
    /// A tablet whose axes are `x` and `y`, lying on a screen of
    /// `screen`'s size.
    pub fn new(x: Axis, y: Axis, screen: Rect) -> Self {
        Self {
            x,
            y,
            screen,
            at: (0, 0),
            held: 0,
            down: false,
            pressed: false,
            released: false,
            moved: false,
        }
    }

    /// Takes one event; at SYN_REPORT calls `frame` with the frame's
    /// changes (if any): up to a lift and a new touch, when the button was
    /// released and pressed again within the frame.
    pub fn event(&mut self, e: Event, frame: &mut dyn FnMut(&[Change])) {
        match (e.kind, e.code) {
            (code::EV_ABS, code::ABS_X) => {
                self.at.0 = e.value as i32;
                self.moved = true;
            }
            (code::EV_ABS, code::ABS_Y) => {
                self.at.1 = e.value as i32;
                self.moved = true;
            }
            (code::EV_KEY, BTN_LEFT) => self.button(LEFT, e.value != 0),
            (code::EV_KEY, code::BTN_TOUCH) => self.button(TOUCH, e.value != 0),
            (code::EV_SYN, code::SYN_REPORT) => self.report(frame),
            _ => {}
        }
    }

    /// Button `bit` went down (or up; a key's value 2, autorepeat, is
    /// down).
    fn button(&mut self, bit: u8, down: bool) {
        let was = self.held != 0;
        if down {
            self.held |= bit;
        } else {
            self.held &= !bit;
        }
        let now = self.held != 0;
        self.pressed |= now && !was;
        self.released |= was && !now;
    }

    fn report(&mut self, frame: &mut dyn FnMut(&[Change])) {
        let slot = POINTER_SLOT;
        let x = self.x.to_pixel(self.at.0, self.screen.width);
        let y = self.y.to_pixel(self.at.1, self.screen.height);
        let mut changes: heapless::Vec<Change, 4> = heapless::Vec::new();
        if self.down && (self.moved || self.released) {
            if self.moved {
                let _ = changes.push(Change::Move { slot, x, y });
            }
            if self.released {
                let _ = changes.push(Change::Up { slot });
                self.down = false;
            }
        }
        // A press: from up, or after a release in this same frame. Pressed
        // and released within the frame: a tap, both.
        if !self.down && self.pressed {
            let _ = changes.push(Change::Down { slot, x, y });
            self.down = self.held != 0;
            if !self.down {
                let _ = changes.push(Change::Up { slot });
            }
        }
        self.pressed = false;
        self.released = false;
        self.moved = false;
        if !changes.is_empty() {
            frame(&changes);
        }
    }
}
