//! Diagnostics: a message tied to a line and column of the config file.
//!
//! The parser and the validator work with byte offsets (that is what TOML
//! spans are); they are turned into line and column only when a diagnostic
//! is made, so the conversion rules live in one place.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (see [`line_col`]).
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

impl std::error::Error for Diagnostic {}

/// 1-based line and column of byte `offset` in `text`.
///
/// Lines end at `\n`, so a CRLF file counts lines like an LF one and the
/// `\r` is just the last character of its line. A column counts Unicode
/// scalar values, not bytes, so a multi-byte character is one column; a tab
/// is one column too, as in rustc's and most editors' "go to line:col". A
/// leading byte-order mark is not a column. An offset past the end, or in
/// the middle of a character, is clamped to the nearest preceding character
/// boundary so a slightly-off span still yields a usable position.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let mut prefix = &before[line_start..];
    if line == 1 {
        prefix = prefix.strip_prefix('\u{feff}').unwrap_or(prefix);
    }
    (line, prefix.chars().count() + 1)
}

/// Collects diagnostics for one source file.
pub(crate) struct Diagnostics<'a> {
    file: &'a Path,
    text: &'a str,
    /// Byte offset of each diagnostic, kept for sorting: two diagnostics on
    /// the same position stay in the order they were found.
    found: Vec<(usize, Diagnostic)>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Diagnostics {
            file,
            text,
            found: Vec::new(),
        }
    }

    /// Records `message` at the start of `span`.
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = line_col(self.text, span.start);
        let diagnostic = Diagnostic {
            file: self.file.to_path_buf(),
            line,
            col,
            message: message.into(),
        };
        self.found.push((span.start, diagnostic));
    }

    /// Line and column of a byte offset, to refer to another place in a
    /// message ("first used on line 4").
    pub fn position(&self, offset: usize) -> (usize, usize) {
        line_col(self.text, offset)
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// All diagnostics by position, without exact duplicates (two rules can
    /// notice the same fault through different routes).
    pub fn into_sorted(self) -> Vec<Diagnostic> {
        let mut found = self.found;
        found.sort_by_key(|(offset, _)| *offset);
        let mut out: Vec<Diagnostic> = Vec::with_capacity(found.len());
        for (_, d) in found {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }
}

/// A diagnostic about the file as a whole (unreadable, not UTF-8), which
/// has no better position than its start.
pub(crate) fn whole_file(file: &Path, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: file.to_path_buf(),
        line: 1,
        col: 1,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_character_is_one_one() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("", 0), (1, 1));
    }

    #[test]
    fn counts_lines_at_newlines() {
        let text = "a = 1\nbb = 2\n\nc = 3";
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 8), (2, 3));
        assert_eq!(line_col(text, 13), (3, 1));
        assert_eq!(line_col(text, 14), (4, 1));
        assert_eq!(line_col(text, 18), (4, 5));
    }

    #[test]
    fn newline_itself_is_last_column_of_its_line() {
        assert_eq!(line_col("ab\ncd", 2), (1, 3));
    }

    #[test]
    fn crlf_is_one_line_break() {
        let text = "a = 1\r\nb = = 2\r\n";
        // `b` starts right after "\r\n".
        assert_eq!(line_col(text, 7), (2, 1));
        // The second `=`.
        assert_eq!(line_col(text, 11), (2, 5));
        // The `\r` belongs to the line it ends.
        assert_eq!(line_col(text, 5), (1, 6));
    }

    #[test]
    fn tab_is_one_column() {
        let text = "\tname =\t\"x\"";
        assert_eq!(line_col(text, 1), (1, 2));
        assert_eq!(line_col(text, 8), (1, 9));
    }

    #[test]
    fn multibyte_characters_are_one_column() {
        // "é" is 2 bytes, "€" 3, "𝄞" 4.
        let text = "# é€𝄞\nx = \"ü\" y";
        let y = text.rfind('y').unwrap();
        assert_eq!(line_col(text, y), (2, 9));
        let after_clef = text.find('\n').unwrap();
        assert_eq!(line_col(text, after_clef), (1, 6));
    }

    #[test]
    fn offset_inside_a_character_clamps_back() {
        let text = "a€b";
        assert_eq!(line_col(text, 2), (1, 2));
        assert_eq!(line_col(text, 4), (1, 3));
    }

    #[test]
    fn offset_past_end_clamps_to_end() {
        assert_eq!(line_col("ab\nc", 100), (2, 2));
    }

    #[test]
    fn byte_order_mark_is_not_a_column() {
        let text = "\u{feff}board = 1\nx";
        assert_eq!(line_col(text, 3), (1, 1));
        assert_eq!(line_col(text, 9), (1, 7));
        assert_eq!(line_col(text, text.len() - 1), (2, 1));
    }

    #[test]
    fn display_is_file_line_col_message() {
        let d = Diagnostic {
            file: "a/b.toml".into(),
            line: 3,
            col: 7,
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "a/b.toml:3:7: bad");
    }

    #[test]
    fn sorted_by_position_and_deduplicated() {
        let text = "line one\nline two\n";
        let mut diags = Diagnostics::new(Path::new("f.toml"), text);
        diags.error(9..10, "second");
        diags.error(0..1, "first");
        diags.error(9..12, "second");
        diags.error(9..10, "third");
        let out: Vec<String> = diags
            .into_sorted()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            out,
            [
                "f.toml:1:1: first",
                "f.toml:2:1: second",
                "f.toml:2:1: third"
            ]
        );
    }
}
