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
