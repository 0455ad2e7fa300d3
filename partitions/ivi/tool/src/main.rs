//! `ivi-tool`: see `ivi-tool help`. Runs in the ivi partition's initramfs
//! (/bin/ivi-tool), started by /init.

use std::process::ExitCode;

use ivi_tool::check::{self, Sources};
use ivi_tool::cli::{self, Command, USAGE};
use ivi_tool::{draw, play, touch};

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Clock) => match clock() {
            Some((ticks, hz)) => {
                println!(
                    "ivi-tool: clock {ticks} ticks at {hz} Hz = {} ms",
                    ticks * 1000 / hz.max(1)
                );
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("ivi-tool: clock: no AArch64 counter here");
                ExitCode::FAILURE
            }
        },
        Ok(Command::Check(options)) => {
            let report = match Sources::read(&options.root) {
                Ok(sources) => check::evaluate(&sources, &options),
                Err(e) => check::Report::unreadable(e),
            };
            for line in check::render(&report) {
                println!("{line}");
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else if options.report_only {
                println!("ivi-tool: --report given: not failing");
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok(Command::Touch(options)) => {
            match touch::run(options.device.as_deref(), &options.name, options.contacts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ivi-tool: touch: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok(Command::Draw(options)) => match draw::run(&options) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Ok(Command::Play(options)) => match play::run(&options) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("ivi-tool: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The virtual counter and its frequency (EL0 may read both under Linux).
#[cfg(target_arch = "aarch64")]
fn clock() -> Option<(u64, u64)> {
    let (ticks, hz): (u64, u64);
    // SAFETY: reads of EL0-accessible counter registers; no memory access.
    unsafe {
        std::arch::asm!("isb", "mrs {t}, cntvct_el0", "mrs {f}, cntfrq_el0", t = out(reg) ticks, f = out(reg) hz, options(nomem, nostack));
    }
    Some((ticks, hz))
}

#[cfg(not(target_arch = "aarch64"))]
fn clock() -> Option<(u64, u64)> {
    None
}
