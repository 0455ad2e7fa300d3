//! The touch mediator's policy: which partition a contact on the shared
//! panel belongs to, and what it sees of it.
//!
//! The physical panel speaks Linux multi-touch protocol B (through
//! virtio-input): per slot, a tracking id (-1 when the finger lifts) and a
//! position, in frames ended by SYN_REPORT. [`PanelDecoder`] turns those
//! frames into contact changes in screen pixels. A panel may also have an
//! absolute pointer on its display (a tablet: `ABS_X`/`ABS_Y` and a
//! button; QEMU's mouse over the display's window): [`PointerDecoder`]
//! turns its button-down drags into the changes of one more contact, in
//! physical slot [`POINTER_SLOT`], which the panel's decoder never uses.
//! [`Router`] gives each contact to one *target* (a partition's
//! virtio-input device on this panel's display) and produces, per target,
//! the protocol-B frame it sees: its own slots and tracking ids, positions
//! in its view. It does not tell a pointer's contact from a finger's.
//!
//! Routing rules:
//! - a contact belongs to the owner of the protected region under its
//!   first point, if any (the highest-priority one), else to the partition
//!   whose topmost view (highest priority) lies under it; if that
//!   partition has no touch device, or nothing lies there, the contact
//!   goes nowhere (counted) — never to a partition below;
//! - it stays with its owner until it lifts, even when it moves out of
//!   the owner's view (positions are then clamped to the view's edge);
//! - when a target goes away (its partition stops or restarts) its open
//!   contacts are *lost*: they stay nobody's until they lift, never handed
//!   to anyone else.

use crate::display::Rect;

mod pointer;

pub use pointer::PointerDecoder;

/// One input event, as virtio-input carries it.
pub use crate::virtio::input::InputEvent as Event;
/// Linux input event types and codes (those of the virtio-input protocol).
pub use crate::virtio::input::protocol as code;

/// An absolute axis event (`value` as Linux's `s32`).
pub const fn abs(code: u16, value: i32) -> Event {
    Event::new(code::EV_ABS, code, value as u32)
}

/// A key (button) event.
pub const fn key(code: u16, down: bool) -> Event {
    Event::new(code::EV_KEY, code, down as u32)
}

/// Physical slots followed at most (QEMU's panel has 10): the panel's
/// fingers in all but the last, a pointer's contact in the last.
pub const PANEL_SLOTS: usize = 16;
/// The physical slot of a pointer's contact ([`PointerDecoder`]): the
/// panel's decoder ignores what the panel says about it, so the two never
/// share a slot.
pub const POINTER_SLOT: u8 = (PANEL_SLOTS - 1) as u8;
/// Physical slots of the panel's own fingers.
const FINGER_SLOTS: usize = PANEL_SLOTS - 1;

/// `EV_KEY` code of a mouse's or tablet's left button (Linux's
/// `BTN_LEFT`): a pointer's contact is down while it (or `BTN_TOUCH`) is.
pub const BTN_LEFT: u16 = 0x110;
/// Slots of each partition's device (its `ABS_MT_SLOT` range).
pub const GUEST_SLOTS: usize = 10;
/// Events of one target's frame at most: per slot, slot + id + x + y,
/// then BTN_TOUCH, ABS_X and ABS_Y.
pub const FRAME_EVENTS: usize = 4 * GUEST_SLOTS + 3;

/// An axis of the physical panel, as its ABS_INFO gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    pub min: i32,
    pub max: i32,
}

impl Axis {
    /// `value` on this axis as a pixel of a screen `pixels` wide (or
    /// high): min maps to 0, max to `pixels - 1`, values beyond clamp.
    pub fn to_pixel(&self, value: i32, pixels: u32) -> u32 {
        let span = i64::from(self.max) - i64::from(self.min);
        if span <= 0 || pixels == 0 {
            return 0;
        }
        let v = (i64::from(value) - i64::from(self.min)).clamp(0, span);
        ((v * (i64::from(pixels) - 1) + span / 2) / span) as u32
    }
}

/// What happened to one physical contact in a frame, in screen pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Down { slot: u8, x: u32, y: u32 },
    Move { slot: u8, x: u32, y: u32 },
    Up { slot: u8 },
}

/// The state of one physical slot as the decoder sees it.
#[derive(Clone, Copy, Default)]
struct PanelSlot {
    /// Tracking id, -1 (or never set) when no finger is there.
    down: bool,
    x: i32,
    y: i32,
    /// What changed since the last SYN_REPORT.
    began: bool,
    moved: bool,
    ended: bool,
}

/// Turns the panel's protocol-B event stream into [`Change`]s, frame by
/// frame. Any event order and value is accepted; slots from
/// [`POINTER_SLOT`] on are ignored (counted).
pub struct PanelDecoder {
    x: Axis,
    y: Axis,
    screen: Rect,
    slot: usize,
    slots: [PanelSlot; FINGER_SLOTS],
    ignored: u64,
}

impl PanelDecoder {
    /// A panel whose axes are `x` and `y`, lying on a screen of `screen`'s
    /// size.
    pub fn new(x: Axis, y: Axis, screen: Rect) -> Self {
        Self {
            x,
            y,
            screen,
            slot: 0,
            slots: [PanelSlot::default(); FINGER_SLOTS],
            ignored: 0,
        }
    }

    /// Events about slots from [`POINTER_SLOT`] on, ignored.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Takes one event; at SYN_REPORT calls `frame` with the frame's
    /// changes (if any), in slot order.
    pub fn event(&mut self, e: Event, frame: &mut dyn FnMut(&[Change])) {
        match (e.kind, e.code) {
            (code::EV_ABS, code::ABS_MT_SLOT) => self.slot = e.value as usize,
            (code::EV_ABS, code::ABS_MT_TRACKING_ID) => {
                let Some(s) = self.current() else { return };
                let down = e.value as i32 >= 0;
                if down && !s.down {
                    s.began = true;
                    s.ended = false;
                } else if !down && s.down {
                    s.ended = true;
                }
                s.down = down;
            }
            (code::EV_ABS, code::ABS_MT_POSITION_X) => {
                if let Some(s) = self.current() {
                    s.x = e.value as i32;
                    s.moved = true;
                }
            }
            (code::EV_ABS, code::ABS_MT_POSITION_Y) => {
                if let Some(s) = self.current() {
                    s.y = e.value as i32;
                    s.moved = true;
                }
            }
            (code::EV_SYN, code::SYN_REPORT) => self.report(frame),
            _ => {}
        }
    }

    fn current(&mut self) -> Option<&mut PanelSlot> {
        match self.slots.get_mut(self.slot) {
            Some(s) => Some(s),
            None => {
                self.ignored += 1;
                None
            }
        }
    }

    fn report(&mut self, frame: &mut dyn FnMut(&[Change])) {
        let mut changes: heapless::Vec<Change, { 2 * PANEL_SLOTS }> = heapless::Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            let slot = i as u8;
            let x = self.x.to_pixel(s.x, self.screen.width);
            let y = self.y.to_pixel(s.y, self.screen.height);
            // A finger that came and went within one frame: both.
            if s.began {
                let _ = changes.push(Change::Down { slot, x, y });
            } else if s.moved && s.down {
                let _ = changes.push(Change::Move { slot, x, y });
            }
            if s.ended || (s.began && !s.down) {
                let _ = changes.push(Change::Up { slot });
            }
            s.began = false;
            s.moved = false;
            s.ended = false;
        }
        if !changes.is_empty() {
            frame(&changes);
        }
    }
}

/// One place a contact can start: a view of a partition (on the panel's
/// display), or a protected region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area {
    /// Where it lies on the screen.
    pub rect: Rect,
    pub priority: u8,
    /// A protected region (it wins over views, whatever their priority).
    pub protected: bool,
    /// The target the contact goes to, if its partition has a touch
    /// device here.
    pub target: Option<usize>,
}

/// A partition's touch device on this panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The view its coordinates are in (screen rectangle).
    pub view: Rect,
}

/// Who a physical slot's contact belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Owner {
    #[default]
    Free,
    /// Delivered to `target` as its slot `slot`.
    To { target: usize, slot: u8 },
    /// Goes nowhere until it lifts (outside every area, to a partition
    /// without touch, out of guest slots, or its target went away).
    Nobody,
}

/// A target's side: its slots and tracking ids.
#[derive(Clone, Copy, Default)]
struct TargetState {
    slots: [bool; GUEST_SLOTS],
    next_id: u16,
    /// Slot of the pointer emulation (ABS_X/Y follow it).
    pointer: Option<u8>,
}

/// Counters of where contacts went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Contacts that went to a target.
    pub delivered: u64,
    /// Contacts that started where no partition with touch is on top.
    pub nowhere: u64,
    /// Contacts lost because their target went away while they were down.
    pub lost: u64,
    /// Contacts dropped because their target had no free slot.
    pub no_slot: u64,
}

/// Routes contacts to targets (see the module's rules). `T` targets at
/// most.
pub struct Router<const T: usize> {
    areas: heapless::Vec<Area, 32>,
    targets: heapless::Vec<Target, T>,
    state: [TargetState; T],
    owners: [Owner; PANEL_SLOTS],
    counts: Counts,
}

/// A target's frame: its events, without the SYN_REPORT.
pub type Frame = heapless::Vec<Event, FRAME_EVENTS>;

impl<const T: usize> Router<T> {
    /// A router over `areas` (any order) for `targets`; areas and targets
    /// beyond the capacities (32, `T`) are left out.
    pub fn new(areas: &[Area], targets: &[Target]) -> Self {
        Self {
            areas: areas.iter().copied().take(32).collect(),
            targets: targets.iter().copied().take(T).collect(),
            state: [TargetState::default(); T],
            owners: [Owner::Free; PANEL_SLOTS],
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Who gets a contact starting at screen pixel (`x`, `y`).
    pub fn route(&self, x: u32, y: u32) -> Option<usize> {
        let inside = |a: &&Area| {
            u64::from(x) >= u64::from(a.rect.x)
                && u64::from(x) < a.rect.right()
                && u64::from(y) >= u64::from(a.rect.y)
                && u64::from(y) < a.rect.bottom()
        };
        let top = |protected: bool| {
            self.areas
                .iter()
                .filter(|a| a.protected == protected)
                .filter(inside)
                .max_by_key(|a| a.priority)
        };
        top(true).or_else(|| top(false)).and_then(|a| a.target)
    }

    /// Routes one frame of the panel's changes; calls `deliver` once per
    /// target that has something new, with its frame.
    pub fn frame(&mut self, changes: &[Change], deliver: &mut dyn FnMut(usize, &Frame)) {
        let mut frames: [Frame; T] = core::array::from_fn(|_| Frame::new());
        let mut touched = [false; T];
        for &change in changes {
            match change {
                Change::Down { slot, x, y } => {
                    let Some(owner) = self.owners.get_mut(usize::from(slot)) else {
                        continue;
                    };
                    *owner = Owner::Nobody;
                    let Some(target) = self.route_checked(x, y) else {
                        self.counts.nowhere += 1;
                        continue;
                    };
                    let st = &mut self.state[target];
                    let Some(free) = st.slots.iter().position(|used| !used) else {
                        self.counts.no_slot += 1;
                        continue;
                    };
                    st.slots[free] = true;
                    let id = st.next_id;
                    st.next_id = st.next_id.wrapping_add(1);
                    self.owners[usize::from(slot)] = Owner::To {
                        target,
                        slot: free as u8,
                    };
                    self.counts.delivered += 1;
                    let (vx, vy) = self.in_view(target, x, y);
                    let f = &mut frames[target];
                    let _ = f.push(abs(code::ABS_MT_SLOT, free as i32));
                    let _ = f.push(abs(code::ABS_MT_TRACKING_ID, i32::from(id)));
                    let _ = f.push(abs(code::ABS_MT_POSITION_X, vx as i32));
                    let _ = f.push(abs(code::ABS_MT_POSITION_Y, vy as i32));
                    touched[target] = true;
                }
                Change::Move { slot, x, y } => {
                    let Some(&Owner::To { target, slot: s }) = self.owners.get(usize::from(slot))
                    else {
                        continue;
                    };
                    let (vx, vy) = self.in_view(target, x, y);
                    let f = &mut frames[target];
                    let _ = f.push(abs(code::ABS_MT_SLOT, i32::from(s)));
                    let _ = f.push(abs(code::ABS_MT_POSITION_X, vx as i32));
                    let _ = f.push(abs(code::ABS_MT_POSITION_Y, vy as i32));
                    touched[target] = true;
                }
                Change::Up { slot } => {
                    let Some(owner) = self.owners.get_mut(usize::from(slot)) else {
                        continue;
                    };
                    let was = core::mem::take(owner);
                    let Owner::To { target, slot: s } = was else {
                        continue;
                    };
                    self.state[target].slots[usize::from(s)] = false;
                    let f = &mut frames[target];
                    let _ = f.push(abs(code::ABS_MT_SLOT, i32::from(s)));
                    let _ = f.push(abs(code::ABS_MT_TRACKING_ID, -1));
                    touched[target] = true;
                }
            }
        }
        for target in (0..self.targets.len()).filter(|&t| touched[t]) {
            self.pointer(target, changes, &mut frames[target]);
            deliver(target, &frames[target]);
        }
    }

    /// The target for a contact starting at (`x`, `y`), if it has one
    /// within the targets this router has.
    fn route_checked(&self, x: u32, y: u32) -> Option<usize> {
        self.route(x, y).filter(|&t| t < self.targets.len())
    }

    /// Screen pixel (`x`, `y`) in `target`'s view, clamped to it.
    fn in_view(&self, target: usize, x: u32, y: u32) -> (u32, u32) {
        let v = self.targets[target].view;
        let clamp = |p: u32, from: u32, len: u32| p.saturating_sub(from).min(len.saturating_sub(1));
        (clamp(x, v.x, v.width), clamp(y, v.y, v.height))
    }

    /// BTN_TOUCH and the single-touch pointer (ABS_X/Y, following the
    /// target's lowest active slot), as Linux's own drivers report them.
    fn pointer(&mut self, target: usize, changes: &[Change], f: &mut Frame) {
        let st = &mut self.state[target];
        let lowest = st.slots.iter().position(|&used| used).map(|s| s as u8);
        let was = st.pointer;
        st.pointer = lowest;
        if was.is_some() != lowest.is_some() {
            let _ = f.push(key(code::BTN_TOUCH, lowest.is_some()));
        }
        let Some(slot) = lowest else { return };
        // Its current position: the physical slot that owns it.
        let physical = self
            .owners
            .iter()
            .position(|o| *o == Owner::To { target, slot });
        let at = physical.and_then(|p| {
            changes.iter().rev().find_map(|c| match *c {
                Change::Down { slot, x, y } | Change::Move { slot, x, y }
                    if usize::from(slot) == p =>
                {
                    Some((x, y))
                }
                _ => None,
            })
        });
        if let Some((x, y)) = at {
            let (vx, vy) = self.in_view(target, x, y);
            let _ = f.push(abs(code::ABS_X, vx as i32));
            let _ = f.push(abs(code::ABS_Y, vy as i32));
        }
    }

    /// `target` went away (its partition stopped or restarted): its
    /// contacts are lost until they lift, its slots and ids start afresh.
    pub fn forget(&mut self, target: usize) {
        for owner in self.owners.iter_mut() {
            if matches!(*owner, Owner::To { target: t, .. } if t == target) {
                *owner = Owner::Nobody;
                self.counts.lost += 1;
            }
        }
        if let Some(st) = self.state.get_mut(target) {
            *st = TargetState::default();
        }
    }
}

#[cfg(test)]
mod tests;
