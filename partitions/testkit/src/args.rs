//! Kernel-command-line style parsing of `/chosen/bootargs`.

/// The value of the first `key=value` word of `bootargs`, if any.
pub fn value<'a>(bootargs: &'a str, key: &str) -> Option<&'a str> {
    bootargs.split_ascii_whitespace().find_map(|word| {
        let (k, v) = word.split_once('=')?;
        (k == key).then_some(v)
    })
}

/// Whether `bootargs` has the word `key` on its own (a flag).
pub fn flag(bootargs: &str, key: &str) -> bool {
    bootargs.split_ascii_whitespace().any(|word| word == key)
}

/// Parses a hexadecimal number, with or without a `0x` prefix; `_` may
/// separate digits (`0x4000_0000`).
pub fn parse_hex(text: &str) -> Option<u64> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let mut value: u64 = 0;
    let mut any = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        value = value
            .checked_mul(16)?
            .checked_add(u64::from(c.to_digit(16)?))?;
        any = true;
    }
    any.then_some(value)
}

/// The comma-separated hexadecimal list of a `key=a,b,c` word: each item is
/// the parsed number or the text that did not parse. Empty items are skipped.
pub fn hex_list<'a>(
    bootargs: &'a str,
    key: &str,
) -> impl Iterator<Item = Result<u64, &'a str>> + 'a {
    value(bootargs, key)
        .unwrap_or("")
        .split(',')
        .filter(|item| !item.is_empty())
        .map(|item| parse_hex(item).ok_or(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values() {
        let args = "console=ttyAMA0 probe=0x1000,2000 idle=poll";
        assert_eq!(value(args, "probe"), Some("0x1000,2000"));
        assert_eq!(value(args, "idle"), Some("poll"));
        assert_eq!(value(args, "prob"), None);
        assert_eq!(value("", "probe"), None);
    }

    #[test]
    fn parses_hex() {
        assert_eq!(parse_hex("0x9000000"), Some(0x900_0000));
        assert_eq!(parse_hex("DEADbeef"), Some(0xdead_beef));
        assert_eq!(parse_hex("0x1_0000_0000"), Some(0x1_0000_0000));
        assert_eq!(parse_hex("0x"), None);
        assert_eq!(parse_hex("0xg"), None);
        assert_eq!(parse_hex("0x1_0000_0000_0000_0000"), None);
    }

    #[test]
    fn lists() {
        let got: Vec<_> = hex_list("probe=0x30000000,,9000000,zz", "probe").collect();
        assert_eq!(got, vec![Ok(0x3000_0000), Ok(0x900_0000), Err("zz")]);
        assert_eq!(hex_list("console=ttyAMA0", "probe").count(), 0);
    }
}
