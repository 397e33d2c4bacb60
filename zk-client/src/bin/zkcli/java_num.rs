//! Java's number parsing, as zkCli.sh's commands parse their arguments:
//! `Integer.parseInt`, `Long.parseLong`, `Integer.decode`.

/// Java's `Integer.parseInt`.
pub fn java_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Java's `Long.parseLong`.
pub fn java_long(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Java's `Integer.decode`: sign, then `0x`/`#` hex, `0` octal, or decimal.
pub fn java_decode(s: &str) -> Option<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = if let Some(h) = rest.strip_prefix("0x").or(rest.strip_prefix("0X")) {
        (16, h)
    } else if let Some(h) = rest.strip_prefix('#') {
        (16, h)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    let v = if neg { -v } else { v };
    i32::try_from(v).ok().map(i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_numbers() {
        assert_eq!(java_int("-5"), Some(-5));
        assert_eq!(java_int("+5"), Some(5));
        assert_eq!(java_int(" 5"), None);
        assert_eq!(java_int("2147483648"), None);
        assert_eq!(java_long("2147483648"), Some(2147483648));
    }

    #[test]
    fn decodes_as_java() {
        assert_eq!(java_decode("12"), Some(12));
        assert_eq!(java_decode("0x1f"), Some(31));
        assert_eq!(java_decode("#10"), Some(16));
        assert_eq!(java_decode("010"), Some(8));
        assert_eq!(java_decode("-3"), Some(-3));
        assert_eq!(java_decode("0"), Some(0));
        assert_eq!(java_decode("x"), None);
        assert_eq!(java_decode("--1"), None);
    }
}
