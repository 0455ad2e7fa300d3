//! `cargo xtask lint`: formatting, and clippy with warnings as errors on
//! the host crates (ivi-tool also for its Linux target) and on both
//! bare-metal targets. Every step runs; the command fails if any did.

use anyhow::{Result, bail};

use crate::paths::{self, DEFAULT_CONFIG, GUEST_TARGET, HV_TARGET};
use crate::process::{Cmd, step};
use crate::{guests, images, prereqs};

const DENY_WARNINGS: [&str; 3] = ["--", "-D", "warnings"];

pub fn run() -> Result<()> {
    prereqs::ensure_rust()?;
    let mut failed = Vec::new();
    let mut check = |what: &str, result: Result<()>| {
        if let Err(e) = result {
            eprintln!("{e:#}");
            failed.push(what.to_string());
        }
    };

    step("Formatting");
    check(
        "cargo fmt",
        Cmd::cargo().args(["fmt", "--all", "--check"]).run(),
    );

    step("Clippy on the host crates");
    check(
        "clippy (host crates)",
        Cmd::cargo()
            .args(["clippy", "--all-targets"])
            .args(["-p", "config", "-p", "shared-devices", "-p", "xtask"])
            .args(["-p", "ivi-tool"])
            .args(DENY_WARNINGS)
            .run(),
    );

    // The library with its unit tests; the rest of it is linted with the
    // EL2 binary below.
    step("Clippy on the hypervisor library for the host");
    check(
        "clippy (hypervisor --lib, host)",
        Cmd::cargo()
            .args(["clippy", "-p", "hypervisor", "--lib", "--profile", "test"])
            .args(DENY_WARNINGS)
            .run(),
    );

    step(format!(
        "Clippy on the bare-metal partitions ({GUEST_TARGET})"
    ));
    check(
        "clippy (testkit, cluster)",
        Cmd::cargo()
            .args([
                "clippy",
                "-p",
                "testkit",
                "-p",
                "cluster",
                "--target",
                GUEST_TARGET,
            ])
            .args(DENY_WARNINGS)
            .run(),
    );

    step(format!("Clippy on ivi-tool ({})", guests::TOOL_TARGET));
    check(
        "clippy (ivi-tool, Linux)",
        Cmd::cargo()
            .args(["clippy", "-p", "ivi-tool", "--target", guests::TOOL_TARGET])
            .args(DENY_WARNINGS)
            .run(),
    );

    // The hypervisor's build script compiles a config in, and configs name
    // guest images: those must exist first.
    check("guest images", images::build_guests().map(drop));
    check(
        "guest assets",
        guests::build_referenced(&[paths::root().join(DEFAULT_CONFIG)]),
    );
    step(format!("Clippy on the hypervisor ({HV_TARGET})"));
    check(
        "clippy (hypervisor)",
        Cmd::cargo()
            .env("HV_CONFIG", paths::root().join(DEFAULT_CONFIG))
            .args(["clippy", "-p", "hypervisor", "--target", HV_TARGET])
            .args(DENY_WARNINGS)
            .run(),
    );

    if failed.is_empty() {
        step("Lint: clean");
        Ok(())
    } else {
        bail!("lint failed: {}", failed.join(", "))
    }
}
