use super::code::*;
use super::*;

/// The cockpit's center display: the IVI's whole view (target 0) and the
/// cluster's strip along the bottom (target 1), a view of its own and
/// protected.
const SCREEN: Rect = Rect::new(0, 0, 1280, 800);
const IVI_VIEW: Rect = Rect::new(0, 0, 1280, 800);
const STRIP: Rect = Rect::new(0, 700, 1280, 100);

fn cockpit() -> Router<2> {
    Router::new(
        &[
            Area {
                rect: IVI_VIEW,
                priority: 10,
                protected: false,
                target: Some(0),
            },
            Area {
                rect: STRIP,
                priority: 200,
                protected: false,
                target: Some(1),
            },
            Area {
                rect: STRIP,
                priority: 200,
                protected: true,
                target: Some(1),
            },
        ],
        &[Target { view: IVI_VIEW }, Target { view: STRIP }],
    )
}

/// Routes `changes`; the frames each target got.
fn run(router: &mut Router<2>, changes: &[Change]) -> [Vec<Event>; 2] {
    let mut got: [Vec<Event>; 2] = Default::default();
    router.frame(changes, &mut |t, f| got[t].extend_from_slice(f));
    got
}

#[test]
fn a_tap_reaches_the_view_under_it_in_its_coordinates() {
    let mut r = cockpit();
    let got = run(
        &mut r,
        &[Change::Down {
            slot: 0,
            x: 100,
            y: 200,
        }],
    );
    assert_eq!(
        got[0],
        [
            abs(ABS_MT_SLOT, 0),
            abs(ABS_MT_TRACKING_ID, 0),
            abs(ABS_MT_POSITION_X, 100),
            abs(ABS_MT_POSITION_Y, 200),
            key(BTN_TOUCH, true),
            abs(ABS_X, 100),
            abs(ABS_Y, 200),
        ]
    );
    assert!(got[1].is_empty(), "nothing reaches the cluster");
    let got = run(&mut r, &[Change::Up { slot: 0 }]);
    assert_eq!(
        got[0],
        [
            abs(ABS_MT_SLOT, 0),
            abs(ABS_MT_TRACKING_ID, -1),
            key(BTN_TOUCH, false),
        ]
    );
    // The strip translates: screen y 750 is view y 50.
    let got = run(
        &mut r,
        &[Change::Down {
            slot: 0,
            x: 10,
            y: 750,
        }],
    );
    assert!(got[0].is_empty(), "the IVI's view is below the strip");
    assert!(got[1].contains(&abs(ABS_MT_POSITION_Y, 50)), "{:?}", got[1]);
    assert_eq!(r.counts().delivered, 2);
}

#[test]
fn a_drag_stays_with_its_owner_across_borders() {
    let mut r = cockpit();
    run(
        &mut r,
        &[Change::Down {
            slot: 3,
            x: 640,
            y: 400,
        }],
    );
    // Into the cluster's strip, then off the screen's edge.
    let got = run(
        &mut r,
        &[Change::Move {
            slot: 3,
            x: 640,
            y: 760,
        }],
    );
    assert!(got[1].is_empty());
    assert!(got[0].contains(&abs(ABS_MT_POSITION_Y, 760)));
    let got = run(&mut r, &[Change::Up { slot: 3 }]);
    assert!(got[1].is_empty() && got[0].contains(&abs(ABS_MT_TRACKING_ID, -1)));
    // The cluster's drag into the IVI's area: clamped to the strip.
    run(
        &mut r,
        &[Change::Down {
            slot: 0,
            x: 5,
            y: 790,
        }],
    );
    let got = run(
        &mut r,
        &[Change::Move {
            slot: 0,
            x: 5,
            y: 10,
        }],
    );
    assert!(got[0].is_empty());
    assert!(got[1].contains(&abs(ABS_MT_POSITION_Y, 0)), "{:?}", got[1]);
}

#[test]
fn simultaneous_contacts_get_their_owners_own_slots_and_ids() {
    let mut r = cockpit();
    let got = run(
        &mut r,
        &[
            Change::Down {
                slot: 0,
                x: 100,
                y: 100,
            },
            Change::Down {
                slot: 1,
                x: 200,
                y: 720,
            },
            Change::Down {
                slot: 2,
                x: 300,
                y: 300,
            },
        ],
    );
    // The IVI: slots 0 and 1, ids 0 and 1; the cluster: slot 0, id 0.
    let ids = |f: &[Event]| -> Vec<(u32, u32)> {
        f.windows(2)
            .filter(|w| w[0].code == ABS_MT_SLOT && w[1].code == ABS_MT_TRACKING_ID)
            .map(|w| (w[0].value, w[1].value))
            .collect()
    };
    assert_eq!(ids(&got[0]), [(0, 0), (1, 1)]);
    assert_eq!(ids(&got[1]), [(0, 0)]);
    // Ids go on counting; slots are reused.
    run(&mut r, &[Change::Up { slot: 0 }]);
    let got = run(
        &mut r,
        &[Change::Down {
            slot: 0,
            x: 1,
            y: 1,
        }],
    );
    assert_eq!(ids(&got[0]), [(0, 2)]);
}

#[test]
fn protected_regions_win_and_views_without_touch_swallow() {
    // A third partition's view (no touch device) over the IVI's middle,
    // and a protected region of the cluster outside its own strip view.
    let mut r: Router<2> = Router::new(
        &[
            Area {
                rect: IVI_VIEW,
                priority: 10,
                protected: false,
                target: Some(0),
            },
            Area {
                rect: Rect::new(400, 300, 100, 100),
                priority: 50,
                protected: false,
                target: None,
            },
            Area {
                rect: Rect::new(0, 0, 50, 50),
                priority: 200,
                protected: true,
                target: Some(1),
            },
            Area {
                rect: Rect::new(0, 0, 50, 50),
                priority: 255,
                protected: false,
                target: Some(0),
            },
        ],
        &[
            Target { view: IVI_VIEW },
            Target {
                view: Rect::new(0, 0, 50, 50),
            },
        ],
    );
    assert_eq!(r.route(10, 10), Some(1), "the protected region's owner");
    assert_eq!(r.route(450, 350), None, "the view on top has no touch");
    assert_eq!(r.route(600, 350), Some(0));
    let got = run(
        &mut r,
        &[Change::Down {
            slot: 0,
            x: 450,
            y: 350,
        }],
    );
    assert!(got[0].is_empty() && got[1].is_empty());
    assert_eq!(r.counts().nowhere, 1);
    // Its moves and lift go nowhere either.
    let got = run(
        &mut r,
        &[
            Change::Move {
                slot: 0,
                x: 600,
                y: 350,
            },
            Change::Up { slot: 0 },
        ],
    );
    assert!(got[0].is_empty() && got[1].is_empty());
}

#[test]
fn a_forgotten_target_loses_its_contacts_until_they_lift() {
    let mut r = cockpit();
    run(
        &mut r,
        &[Change::Down {
            slot: 0,
            x: 100,
            y: 100,
        }],
    );
    r.forget(0);
    assert_eq!(r.counts().lost, 1);
    // The contact moves into the cluster's strip and lifts: nobody's.
    let got = run(
        &mut r,
        &[Change::Move {
            slot: 0,
            x: 100,
            y: 750,
        }],
    );
    assert!(got[0].is_empty() && got[1].is_empty());
    let got = run(&mut r, &[Change::Up { slot: 0 }]);
    assert!(got[0].is_empty() && got[1].is_empty());
    // The restarted IVI starts afresh: slot 0, id 0.
    let got = run(
        &mut r,
        &[Change::Down {
            slot: 0,
            x: 1,
            y: 1,
        }],
    );
    assert_eq!(
        &got[0][..2],
        [abs(ABS_MT_SLOT, 0), abs(ABS_MT_TRACKING_ID, 0)]
    );
}

#[test]
fn a_target_out_of_slots_drops_the_extra_contact() {
    let mut r = cockpit();
    let downs: Vec<Change> = (0..12)
        .map(|s| Change::Down {
            slot: s,
            x: 10 * u32::from(s),
            y: 10,
        })
        .collect();
    let got = run(&mut r, &downs);
    let slots = got[0].iter().filter(|e| e.code == ABS_MT_SLOT).count();
    assert_eq!(slots, GUEST_SLOTS);
    assert_eq!(r.counts().no_slot, 2);
    assert!(got[0].len() <= FRAME_EVENTS);
}

#[test]
fn the_decoder_turns_protocol_b_into_changes_in_pixels() {
    let axis = Axis {
        min: 0,
        max: 0x7fff,
    };
    let mut d = PanelDecoder::new(axis, axis, SCREEN);
    let mut frames: Vec<Vec<Change>> = Vec::new();
    let mut feed = |d: &mut PanelDecoder, events: &[(u16, u16, i32)]| {
        for &(kind, code, value) in events {
            d.event(
                Event {
                    kind,
                    code,
                    value: value as u32,
                },
                &mut |c| frames.push(c.to_vec()),
            );
        }
    };
    feed(
        &mut d,
        &[
            (EV_ABS, ABS_MT_SLOT, 1),
            (EV_ABS, ABS_MT_TRACKING_ID, 7),
            (EV_ABS, ABS_MT_POSITION_X, 0x7fff),
            (EV_ABS, ABS_MT_POSITION_Y, 0),
            (EV_KEY, BTN_TOUCH, 1),
            (EV_SYN, SYN_REPORT, 0),
            (EV_ABS, ABS_MT_POSITION_X, 0x4000),
            (EV_SYN, SYN_REPORT, 0),
            (EV_SYN, SYN_REPORT, 0),
            (EV_ABS, ABS_MT_TRACKING_ID, -1),
            (EV_SYN, SYN_REPORT, 0),
            // A slot beyond what the decoder follows.
            (EV_ABS, ABS_MT_SLOT, 99),
            (EV_ABS, ABS_MT_TRACKING_ID, 1),
            (EV_SYN, SYN_REPORT, 0),
        ],
    );
    assert_eq!(
        frames,
        [
            vec![Change::Down {
                slot: 1,
                x: 1279,
                y: 0
            }],
            vec![Change::Move {
                slot: 1,
                x: 640,
                y: 0
            }],
            vec![Change::Up { slot: 1 }],
        ]
    );
    assert_eq!(d.ignored(), 1);
}

#[test]
fn axes_map_their_whole_range_onto_the_screen() {
    let a = Axis {
        min: -100,
        max: 100,
    };
    assert_eq!(a.to_pixel(-100, 1280), 0);
    assert_eq!(a.to_pixel(100, 1280), 1279);
    assert_eq!(a.to_pixel(0, 1281), 640);
    assert_eq!(a.to_pixel(i32::MIN, 1280), 0);
    assert_eq!(a.to_pixel(i32::MAX, 1280), 1279);
    assert_eq!(Axis { min: 5, max: 5 }.to_pixel(5, 1280), 0);
}

// ---- the pointer -------------------------------------------------------------

/// A tablet's axes, as QEMU's: 0..=0x7fff across the screen.
const TABLET: Axis = Axis {
    min: 0,
    max: 0x7fff,
};

/// Screen pixel `p` of `pixels` in the tablet's units (exact: its pixel
/// maps back to `p`).
fn tablet(p: u32, pixels: u32) -> i32 {
    (u64::from(p) * 0x7fff / u64::from(pixels - 1)) as i32
}

/// What QEMU's window sends: motion to (`x`, `y`) in a frame.
fn motion(x: u32, y: u32) -> Vec<Event> {
    vec![
        abs(ABS_X, tablet(x, 1280)),
        abs(ABS_Y, tablet(y, 800)),
        Event::SYN_REPORT,
    ]
}

/// What QEMU's window sends: the left button, in a frame of its own.
fn left(down: bool) -> Vec<Event> {
    vec![key(BTN_LEFT, down), Event::SYN_REPORT]
}

/// Feeds `events` to `d`; the frames of changes it gave.
fn decode(d: &mut PointerDecoder, events: &[Event]) -> Vec<Vec<Change>> {
    let mut frames = Vec::new();
    for &e in events {
        d.event(e, &mut |c| frames.push(c.to_vec()));
    }
    frames
}

/// Feeds `events` to `d` and routes its frames through `r`; the events
/// each target got.
fn point(d: &mut PointerDecoder, r: &mut Router<2>, events: &[Event]) -> [Vec<Event>; 2] {
    let mut got: [Vec<Event>; 2] = Default::default();
    for frame in decode(d, events) {
        r.frame(&frame, &mut |t, f| got[t].extend_from_slice(f));
    }
    got
}

fn tablet_decoder() -> PointerDecoder {
    PointerDecoder::new(TABLET, TABLET, SCREEN)
}

#[test]
fn a_click_drag_release_is_one_contact_that_stays_with_its_owner() {
    let mut d = tablet_decoder();
    let mut r = cockpit();
    // The mouse comes over the IVI's area: nothing yet.
    let got = point(&mut d, &mut r, &motion(300, 400));
    assert!(got[0].is_empty() && got[1].is_empty());
    // The press, with no position of its own: where the mouse is.
    let got = point(&mut d, &mut r, &left(true));
    assert_eq!(
        got[0],
        [
            abs(ABS_MT_SLOT, 0),
            abs(ABS_MT_TRACKING_ID, 0),
            abs(ABS_MT_POSITION_X, 300),
            abs(ABS_MT_POSITION_Y, 400),
            key(BTN_TOUCH, true),
            abs(ABS_X, 300),
            abs(ABS_Y, 400),
        ]
    );
    assert!(got[1].is_empty());
    // Dragged into the cluster's protected strip: still the IVI's.
    let got = point(&mut d, &mut r, &motion(310, 760));
    assert_eq!(
        got[0],
        [
            abs(ABS_MT_SLOT, 0),
            abs(ABS_MT_POSITION_X, 310),
            abs(ABS_MT_POSITION_Y, 760),
            abs(ABS_X, 310),
            abs(ABS_Y, 760),
        ]
    );
    assert!(got[1].is_empty(), "nothing leaks to the strip's owner");
    let got = point(&mut d, &mut r, &left(false));
    assert_eq!(
        got[0],
        [
            abs(ABS_MT_SLOT, 0),
            abs(ABS_MT_TRACKING_ID, -1),
            key(BTN_TOUCH, false),
        ]
    );
    assert!(got[1].is_empty());
    // A click on the strip goes to the cluster only, in its view; its drag
    // up into the IVI's area stays the cluster's, clamped to the strip.
    point(&mut d, &mut r, &motion(20, 790));
    let got = point(&mut d, &mut r, &left(true));
    assert!(got[0].is_empty());
    assert_eq!(
        &got[1][..4],
        [
            abs(ABS_MT_SLOT, 0),
            abs(ABS_MT_TRACKING_ID, 0),
            abs(ABS_MT_POSITION_X, 20),
            abs(ABS_MT_POSITION_Y, 90),
        ]
    );
    let got = point(&mut d, &mut r, &motion(20, 100));
    assert!(got[0].is_empty());
    assert!(got[1].contains(&abs(ABS_MT_POSITION_Y, 0)), "{:?}", got[1]);
    let got = point(&mut d, &mut r, &left(false));
    assert!(got[0].is_empty() && got[1].contains(&abs(ABS_MT_TRACKING_ID, -1)));
    assert_eq!(r.counts().delivered, 2);
}

#[test]
fn the_pointer_and_fingers_are_contacts_at_once() {
    let mut d = tablet_decoder();
    let mut r = cockpit();
    // A finger on the IVI (physical slot 0), then the mouse down beside it.
    let got = run(
        &mut r,
        &[Change::Down {
            slot: 0,
            x: 100,
            y: 100,
        }],
    );
    assert_eq!(
        &got[0][..2],
        [abs(ABS_MT_SLOT, 0), abs(ABS_MT_TRACKING_ID, 0)]
    );
    point(&mut d, &mut r, &motion(900, 300));
    let got = point(&mut d, &mut r, &left(true));
    assert_eq!(
        &got[0][..4],
        [
            abs(ABS_MT_SLOT, 1),
            abs(ABS_MT_TRACKING_ID, 1),
            abs(ABS_MT_POSITION_X, 900),
            abs(ABS_MT_POSITION_Y, 300),
        ]
    );
    // A second finger, on the strip: the cluster's, while both go on.
    let got = run(
        &mut r,
        &[Change::Down {
            slot: 1,
            x: 50,
            y: 750,
        }],
    );
    assert!(got[0].is_empty());
    assert_eq!(
        &got[1][..2],
        [abs(ABS_MT_SLOT, 0), abs(ABS_MT_TRACKING_ID, 0)]
    );
    // The finger on the IVI lifts; the mouse drags on in its own slot.
    let got = run(&mut r, &[Change::Up { slot: 0 }]);
    assert_eq!(
        &got[0][..2],
        [abs(ABS_MT_SLOT, 0), abs(ABS_MT_TRACKING_ID, -1)]
    );
    let got = point(&mut d, &mut r, &motion(910, 310));
    assert_eq!(
        &got[0][..3],
        [
            abs(ABS_MT_SLOT, 1),
            abs(ABS_MT_POSITION_X, 910),
            abs(ABS_MT_POSITION_Y, 310),
        ]
    );
    let got = point(&mut d, &mut r, &left(false));
    assert_eq!(
        got[0],
        [
            abs(ABS_MT_SLOT, 1),
            abs(ABS_MT_TRACKING_ID, -1),
            key(BTN_TOUCH, false),
        ]
    );
    assert_eq!(r.counts().delivered, 3);
}

#[test]
fn the_panel_never_reports_in_the_pointers_slot() {
    let mut d = PanelDecoder::new(TABLET, TABLET, SCREEN);
    let mut frames: Vec<Vec<Change>> = Vec::new();
    for e in [
        abs(ABS_MT_SLOT, i32::from(POINTER_SLOT)),
        abs(ABS_MT_TRACKING_ID, 3),
        abs(ABS_MT_POSITION_X, 5),
        Event::SYN_REPORT,
    ] {
        d.event(e, &mut |c| frames.push(c.to_vec()));
    }
    assert!(frames.is_empty());
    assert_eq!(d.ignored(), 2, "its tracking id and position");
}

#[test]
fn moves_without_the_button_are_no_contact() {
    let mut d = tablet_decoder();
    let mut events = Vec::new();
    for i in 0..20 {
        events.extend(motion(10 * i, 5 * i));
    }
    // Other buttons are not the contact button either.
    events.extend([key(0x111, true), Event::SYN_REPORT]);
    events.extend(motion(400, 400));
    events.extend([key(0x111, false), Event::SYN_REPORT]);
    assert!(decode(&mut d, &events).is_empty());
    // The position it kept is where a press then starts.
    assert_eq!(
        decode(&mut d, &left(true)),
        [vec![Change::Down {
            slot: POINTER_SLOT,
            x: 400,
            y: 400
        }]]
    );
}

#[test]
fn a_press_and_a_release_in_one_frame_are_a_tap() {
    let mut d = tablet_decoder();
    decode(&mut d, &motion(640, 20));
    let tap = [key(BTN_LEFT, true), key(BTN_LEFT, false), Event::SYN_REPORT];
    assert_eq!(
        decode(&mut d, &tap),
        [vec![
            Change::Down {
                slot: POINTER_SLOT,
                x: 640,
                y: 20
            },
            Change::Up { slot: POINTER_SLOT },
        ]]
    );
    // Released and pressed again in one frame, having moved: it lifts
    // where it went, and touches there anew.
    decode(&mut d, &left(true));
    let mut events = vec![key(BTN_LEFT, false), key(BTN_LEFT, true)];
    events.extend(motion(10, 30));
    assert_eq!(
        decode(&mut d, &events),
        [vec![
            Change::Move {
                slot: POINTER_SLOT,
                x: 10,
                y: 30
            },
            Change::Up { slot: POINTER_SLOT },
            Change::Down {
                slot: POINTER_SLOT,
                x: 10,
                y: 30
            },
        ]]
    );
}

#[test]
fn btn_touch_is_a_contact_button_too() {
    let mut d = tablet_decoder();
    decode(&mut d, &motion(1, 2));
    let frames = decode(&mut d, &[key(BTN_TOUCH, true), Event::SYN_REPORT]);
    assert_eq!(frames.len(), 1);
    // Both held: down until both are up. Autorepeat (2) is held.
    let frames = decode(
        &mut d,
        &[
            key(BTN_LEFT, true),
            Event::new(EV_KEY, BTN_LEFT, 2),
            Event::SYN_REPORT,
            key(BTN_TOUCH, false),
            Event::SYN_REPORT,
        ],
    );
    assert!(frames.is_empty(), "{frames:?}");
    assert_eq!(
        decode(&mut d, &left(false)),
        [vec![Change::Up { slot: POINTER_SLOT }]]
    );
}

#[test]
fn pointer_positions_beyond_the_axes_clamp() {
    let mut d = PointerDecoder::new(
        Axis { min: 100, max: 200 },
        Axis { min: -50, max: 50 },
        SCREEN,
    );
    let events = [
        abs(ABS_X, -7),
        abs(ABS_Y, i32::MAX),
        Event::SYN_REPORT,
        key(BTN_LEFT, true),
        Event::SYN_REPORT,
        abs(ABS_X, 1_000_000),
        abs(ABS_Y, i32::MIN),
        Event::SYN_REPORT,
        abs(ABS_X, 150),
        abs(ABS_Y, 0),
        Event::SYN_REPORT,
    ];
    assert_eq!(
        decode(&mut d, &events),
        [
            vec![Change::Down {
                slot: POINTER_SLOT,
                x: 0,
                y: 799
            }],
            vec![Change::Move {
                slot: POINTER_SLOT,
                x: 1279,
                y: 0
            }],
            vec![Change::Move {
                slot: POINTER_SLOT,
                x: 640,
                y: 400
            }],
        ]
    );
}

#[test]
fn junk_from_the_pointer_is_ignored() {
    let mut d = tablet_decoder();
    let junk = [
        Event::new(EV_REL, 0x08, 1),        // the wheel
        Event::new(EV_ABS, ABS_MT_SLOT, 3), // a panel's axes
        Event::new(EV_ABS, ABS_MT_TRACKING_ID, 5),
        Event::new(EV_ABS, ABS_MT_POSITION_X, 9),
        Event::new(EV_ABS, 0x02, 77), // ABS_Z
        Event::new(EV_KEY, 0x112, 1), // BTN_MIDDLE
        Event::new(EV_MSC, MSC_TIMESTAMP, 12345),
        Event::new(EV_SYN, SYN_MT_REPORT, 0),
        Event::new(EV_SYN, SYN_DROPPED, 0),
        Event::new(0x1f, BTN_LEFT, 1), // no such type
        Event::new(EV_LED, BTN_LEFT, 1),
        Event::new(0xffff, 0xffff, u32::MAX),
        Event::SYN_REPORT,
    ];
    assert!(decode(&mut d, &junk).is_empty());
    // A release never pressed is nothing either; then a real click works.
    assert!(decode(&mut d, &left(false)).is_empty());
    let mut events = motion(5, 6);
    events.extend(left(true));
    events.extend(junk);
    events.extend(left(false));
    assert_eq!(
        decode(&mut d, &events),
        [
            vec![Change::Down {
                slot: POINTER_SLOT,
                x: 5,
                y: 6
            }],
            vec![Change::Up { slot: POINTER_SLOT }],
        ]
    );
}

#[test]
fn a_pointer_contact_is_lost_until_it_lifts_when_its_owner_restarts() {
    let mut d = tablet_decoder();
    let mut r = cockpit();
    point(&mut d, &mut r, &motion(100, 100));
    point(&mut d, &mut r, &left(true));
    r.forget(0);
    assert_eq!(r.counts().lost, 1);
    // Dragged onto the strip and released: nobody's.
    let got = point(&mut d, &mut r, &motion(100, 750));
    assert!(got[0].is_empty() && got[1].is_empty());
    let got = point(&mut d, &mut r, &left(false));
    assert!(got[0].is_empty() && got[1].is_empty());
    // The next click on the IVI's area is the restarted IVI's, afresh.
    point(&mut d, &mut r, &motion(100, 100));
    let got = point(&mut d, &mut r, &left(true));
    assert_eq!(
        &got[0][..2],
        [abs(ABS_MT_SLOT, 0), abs(ABS_MT_TRACKING_ID, 0)]
    );
}
