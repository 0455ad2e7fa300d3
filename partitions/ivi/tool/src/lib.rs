//! The ivi partition's userspace tool. `main.rs` only parses the command
//! line and prints; everything it decides is here, so it is tested on the
//! host.
//!
//! - [`cli`]: the command line.
//! - [`check`]: `ivi-tool check`, which compares what the kernel sees (CPUs,
//!   memory, device tree) with what the partition's config promised.
//! - [`draw`]: `ivi-tool draw`, an animated navigation screen on the
//!   displays through DRM/KMS; [`nav`] draws the picture, [`kms`] makes the
//!   DRM ioctls (with [`alsa`], the crate's only `unsafe` code besides
//!   `main`'s counter read).
//! - [`play`]: `ivi-tool play`, test tones (or a WAV file) through an ALSA
//!   PCM device; [`alsa`] makes the kernel's PCM ioctls.
//! - [`touch`]: `ivi-tool touch`, the contacts of a multi-touch device
//!   through evdev.

pub mod alsa;
pub mod check;
pub mod cli;
pub mod draw;
pub mod kms;
pub mod nav;
pub mod play;
pub mod touch;
