//! The instrument cluster partition's target-independent part: the drive
//! it simulates, the layout and drawing of the instrument display into a
//! pixel buffer, the damage of each frame, the frame counter, the
//! odometer record, and the warning chimes with the control of the
//! stream that plays them. The binary (`src/main.rs`, with
//! `src/speaker.rs`) adds the devices and the frame loop on testkit's
//! runtime.
//!
//! Everything here is unit tested on the host: `cargo test -p cluster --lib`.

#![cfg_attr(not(test), no_std)]

pub mod canvas;
pub mod chime;
pub mod config;
pub mod counter;
pub mod damage;
pub mod drive;
pub mod layout;
pub mod player;
pub mod record;
pub mod scene;
pub mod segment;
