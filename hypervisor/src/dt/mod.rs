//! Device trees: reading the platform's (what the board has: RAM, cores,
//! GIC, UART, timers, devices, and whether the config matches it) and
//! writing each partition's (its cores, memory, passthrough and emulated
//! devices).
#![forbid(unsafe_code)]

pub mod compact;
pub mod fdt_writer;
pub mod guest_dt;
pub mod platform;
