//! `cargo xtask check-config [--explain | --json] FILE...`, and the one
//! place xtask calls the config crate's validator.
//!
//! Without a flag a valid config gets its summary; `--explain` prints the
//! resolved system as tables and `--json` the same data as one JSON
//! document (both come from `config::explain::Explanation`). Diagnostics of
//! an invalid config always go to stderr as `file:line:col: message`, and
//! then the command fails.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use config::explain::Explanation;
use serde::Serialize;

use crate::paths;

const USAGE: &str = "usage: cargo xtask check-config [--explain | --json] FILE...";

/// What a valid config prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `config::check`'s summary.
    Summary,
    /// `--explain`: the resolved system as tables.
    Explain,
    /// `--json`: the resolved system as JSON, for tools.
    Json,
}

/// Where configs find boards and guest images.
pub fn context() -> config::Context {
    config::Context {
        boards_dir: paths::boards_dir(),
        build_dir: paths::partitions_dir(),
    }
}

/// Validates `path` the way the hypervisor's build script does. Returns the
/// config's summary, or its diagnostics rendered as `file:line:col: message`.
pub fn check(path: &Path) -> Result<String, Vec<String>> {
    config::check(path, &context())
        .map_err(|diagnostics| diagnostics.iter().map(|d| d.to_string()).collect())
}

/// The files a valid config is built from (itself, the board's device tree,
/// every image it names); `None` if it is invalid.
pub fn inputs(path: &Path) -> Option<Vec<PathBuf>> {
    config::load(path, &context())
        .ok()
        .map(|loaded| loaded.dependencies)
}

/// `check-config`'s arguments: at most one of `--explain` and `--json`
/// (anywhere), then the files.
pub fn command(args: &[String]) -> Result<()> {
    let (output, files) = parse_args(args)?;
    run(&files, output)
}

fn parse_args(args: &[String]) -> Result<(Output, Vec<PathBuf>)> {
    let mut output = Output::Summary;
    let mut files = Vec::new();
    for arg in args {
        let flag = match arg.as_str() {
            "--explain" => Output::Explain,
            "--json" => Output::Json,
            option if option.starts_with('-') => {
                bail!("check-config: unknown option {option}\n{USAGE}")
            }
            file => {
                files.push(PathBuf::from(file));
                continue;
            }
        };
        if output != Output::Summary && output != flag {
            bail!("check-config: --explain and --json exclude each other\n{USAGE}");
        }
        output = flag;
    }
    if files.is_empty() {
        bail!("{USAGE}");
    }
    Ok((output, files))
}

/// Checks each file: prints what `output` asks for of a valid one on
/// stdout and each diagnostic of an invalid one on stderr. Fails if any
/// file is invalid.
pub fn run(files: &[PathBuf], output: Output) -> Result<()> {
    if files.is_empty() {
        bail!("{USAGE}");
    }
    let ctx = context();
    let mut invalid = 0;
    let mut documents = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let result = if file.is_file() {
            config::load(file, &ctx).map(|loaded| loaded.system)
        } else {
            Err(Vec::new())
        };
        match (&result, output) {
            (Ok(system), Output::Summary) => {
                println!("{}: ok", file.display());
                println!("{}", system.summary().trim_end());
            }
            (Ok(system), Output::Explain) => {
                if n > 0 {
                    println!();
                }
                println!("{}: ok", file.display());
                println!("{}", Explanation::of(system).text().trim_end());
            }
            (Ok(_), Output::Json) => {}
            (Err(diagnostics), _) => {
                invalid += 1;
                for diagnostic in diagnostics {
                    eprintln!("{diagnostic}");
                }
                if !file.is_file() {
                    eprintln!("{}: no such file", file.display());
                } else if diagnostics.is_empty() {
                    eprintln!("{}: invalid (no diagnostic given)", file.display());
                }
            }
        }
        if output == Output::Json {
            let explained = result.as_ref().map(Explanation::of);
            documents.push(Document::new(file, explained.map_err(|d| d.as_slice())));
        }
    }
    if output == Output::Json {
        // One file: its object; several: an array of them, in order.
        let text = match documents.as_slice() {
            [one] => serde_json::to_string_pretty(one)?,
            all => serde_json::to_string_pretty(all)?,
        };
        println!("{text}");
    }
    if invalid > 0 {
        bail!("{invalid} of {} config file(s) invalid", files.len());
    }
    Ok(())
}

/// One file's `--json` object: `{"file", "ok": true, "system"}` for a
/// valid config, `{"file", "ok": false, "errors": [{"line", "col",
/// "message"}]}` for an invalid one (no errors: it could not be read).
#[derive(Serialize)]
struct Document {
    file: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<Explanation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<Error>>,
}

/// A diagnostic in a [`Document`]: its position in the file, and what.
#[derive(Serialize)]
struct Error {
    line: usize,
    col: usize,
    message: String,
}

impl Document {
    fn new(file: &Path, result: Result<Explanation, &[config::Diagnostic]>) -> Document {
        let (system, errors) = match result {
            Ok(explanation) => (Some(explanation), None),
            Err(diagnostics) => (
                None,
                Some(
                    diagnostics
                        .iter()
                        .map(|d| Error {
                            line: d.line,
                            col: d.col,
                            message: d.message.clone(),
                        })
                        .collect(),
                ),
            ),
        };
        Document {
            file: file.display().to_string(),
            ok: system.is_some(),
            system,
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn flags_and_files() {
        let (output, files) = parse_args(&args(&["a.toml", "b.toml"])).unwrap();
        assert_eq!(output, Output::Summary);
        assert_eq!(files, [PathBuf::from("a.toml"), PathBuf::from("b.toml")]);
        let (output, files) = parse_args(&args(&["a.toml", "--explain"])).unwrap();
        assert_eq!((output, files.len()), (Output::Explain, 1));
        let (output, _) = parse_args(&args(&["--json", "--json", "a.toml"])).unwrap();
        assert_eq!(output, Output::Json);
        let err = parse_args(&args(&["--json", "--explain", "a.toml"])).unwrap_err();
        assert!(err.to_string().contains("exclude each other"), "{err}");
        let err = parse_args(&args(&["--verbose", "a.toml"])).unwrap_err();
        assert!(
            err.to_string().contains("unknown option --verbose"),
            "{err}"
        );
        let err = parse_args(&args(&["--json"])).unwrap_err();
        assert!(err.to_string().starts_with("usage:"), "{err}");
    }

    #[test]
    fn json_of_an_invalid_file_lists_its_errors() {
        let file = paths::root().join("config/qemu-virt/invalid/cpu-twice.toml");
        let diagnostics = config::load(&file, &context()).unwrap_err();
        let document = serde_json::to_value(Document::new(&file, Err(&diagnostics))).unwrap();
        assert_eq!(document["ok"], false);
        assert_eq!(document["file"], file.display().to_string());
        let first = &document["errors"][0];
        assert_eq!(first["line"], diagnostics[0].line);
        assert_eq!(first["col"], diagnostics[0].col);
        assert_eq!(first["message"], diagnostics[0].message);
        // A missing file: not ok, no errors to point at.
        let document =
            serde_json::to_value(Document::new(Path::new("no/such.toml"), Err(&[]))).unwrap();
        assert_eq!(
            document,
            json!({ "file": "no/such.toml", "ok": false, "errors": [] })
        );
    }

    /// The default config's `--json` object, when its images are built
    /// (they are not in a fresh checkout; config's own tests cover the
    /// explanation with fake images).
    #[test]
    fn json_of_the_default_config_has_its_system() {
        let file = paths::root().join("config/qemu-virt/default.toml");
        let Ok(loaded) = config::load(&file, &context()) else {
            return;
        };
        let document =
            serde_json::to_value(Document::new(&file, Ok(Explanation::of(&loaded.system))))
                .unwrap();
        assert_eq!(document["ok"], true);
        let partitions: Vec<&str> = document["system"]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(partitions, ["cluster", "ivi"]);
    }
}
