//! Running external programs with readable echo and error messages.

use std::ffi::OsStr;
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::paths;

/// A command to run, remembered as text so it can be echoed and quoted in
/// error messages.
pub struct Cmd {
    command: Command,
    text: String,
}

impl Cmd {
    /// A command for `program`, run from the workspace root.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref();
        let mut command = Command::new(program);
        command.current_dir(paths::root());
        Cmd {
            command,
            text: quote(program),
        }
    }

    /// `cargo`, the same one that runs xtask when there is one.
    pub fn cargo() -> Self {
        Cmd::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .with_text_program("cargo")
    }

    fn with_text_program(mut self, name: &str) -> Self {
        self.text = name.to_string();
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.text.push(' ');
        self.text.push_str(&quote(arg.as_ref()));
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    /// Sets an environment variable; it is shown in front of the command.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.text = format!("{key}={} {}", quote(value.as_ref()), self.text);
        self.command.env(key, value);
        self
    }

    /// Runs without `key` in the environment (e.g. a toolchain override
    /// inherited from the cargo that runs xtask).
    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Runs in `dir` instead of the workspace root.
    pub fn current_dir(mut self, dir: impl AsRef<std::path::Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// The command as a shell would read it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The underlying command, for callers that manage the process
    /// themselves (QEMU).
    pub fn into_command(self) -> Command {
        self.command
    }

    /// Echoes the command, runs it with the terminal attached and fails
    /// unless it exits successfully.
    pub fn run(self) -> Result<()> {
        println!("$ {}", self.text);
        let text = self.text.clone();
        let status = self.status()?;
        check(&text, status)
    }

    /// Runs the command with the terminal attached and returns its exit
    /// status, failing only when it cannot be started.
    pub fn status(mut self) -> Result<ExitStatus> {
        self.command
            .status()
            .map_err(|e| spawn_error(&self.text, e))
    }

    /// Runs the command silently and returns its standard output; on failure
    /// the error carries what it printed (checkers such as `e2fsck` report
    /// on standard output).
    pub fn read(mut self) -> Result<String> {
        let output = self
            .command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| spawn_error(&self.text, e))?;
        if !output.status.success() {
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            bail!(
                "`{}` failed ({}):\n{}{}",
                self.text,
                output.status,
                stdout,
                stderr.trim_end()
            );
        }
        String::from_utf8(output.stdout)
            .with_context(|| format!("`{}` printed non-UTF-8", self.text))
    }
}

/// An error for a command that could not be started at all.
pub fn spawn_error(text: &str, error: std::io::Error) -> anyhow::Error {
    let program = text.split(' ').find(|w| !w.contains('=')).unwrap_or(text);
    if error.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!("cannot run `{text}`: `{program}` is not installed or not on PATH")
    } else {
        anyhow::anyhow!("cannot run `{text}`: {error}")
    }
}

/// Turns a non-zero exit status into an error that names the command.
pub fn check(text: &str, status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        bail!("`{text}` failed ({status})")
    }
}

/// Whether `program` can be found on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Where `program` is: on PATH, or in the sbin directories a normal
/// user's PATH often lacks on Debian (`e2fsck`, `debugfs`).
pub fn find_program(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Quotes a word for display when a shell would need it.
pub fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Prints a step header, so long runs show where they are.
pub fn step(message: impl std::fmt::Display) {
    println!("==> {message}");
}
