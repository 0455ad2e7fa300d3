//! The command line of xtask's own commands: `--flag` and `--flag VALUE`
//! options, one at a time, each error with the command's usage.

use anyhow::{Result, anyhow};

/// A command's arguments, walked one option at a time.
pub struct Options<'a> {
    rest: std::slice::Iter<'a, String>,
    usage: &'static str,
}

impl<'a> Options<'a> {
    pub fn new(args: &'a [String], usage: &'static str) -> Options<'a> {
        Options {
            rest: args.iter(),
            usage,
        }
    }

    /// The next option's name.
    pub fn next_option(&mut self) -> Option<&'a str> {
        self.rest.next().map(String::as_str)
    }

    /// The value that must follow `option`.
    pub fn value(&mut self, option: &str) -> Result<&'a str> {
        self.rest
            .next()
            .map(String::as_str)
            .ok_or_else(|| anyhow!("{option} needs a value\n{}", self.usage))
    }

    /// The error for an option the command does not take.
    pub fn unexpected(&self, option: &str) -> anyhow::Error {
        anyhow!("unexpected argument `{option}`\n{}", self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_values() {
        let args: Vec<String> = ["--a", "1", "--b", "--c"].map(String::from).to_vec();
        let mut o = Options::new(&args, "usage: x");
        assert_eq!(o.next_option(), Some("--a"));
        assert_eq!(o.value("--a").unwrap(), "1");
        assert_eq!(o.next_option(), Some("--b"));
        assert_eq!(o.next_option(), Some("--c"));
        let e = o.value("--c").unwrap_err().to_string();
        assert!(e.starts_with("--c needs a value\nusage: x"), "{e}");
        assert!(o.unexpected("--d").to_string().contains("`--d`"));
        assert_eq!(o.next_option(), None);
    }
}
