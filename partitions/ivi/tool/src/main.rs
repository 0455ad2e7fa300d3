//! `ivi-tool`: see `ivi-tool help`. Runs in the ivi partition's initramfs
//! (/bin/ivi-tool), started by /init.

use std::process::ExitCode;

use ivi_tool::check::{self, Sources};
use ivi_tool::cli::{self, Command, USAGE};

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
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
        Err(e) => {
            eprintln!("ivi-tool: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
