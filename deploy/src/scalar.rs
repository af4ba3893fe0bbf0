//! How a YAML scalar is typed.
//!
//! The manifest follows the YAML 1.2 core schema, narrowed to what it needs: integers
//! are decimal only, and a quoted scalar is always a string, so `queue_pairs: "2"` is a
//! type error rather than a silent conversion.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scalar {
    pub text: String,
    /// Unquoted, so the text may denote a number, boolean or null. Block scalars
    /// (`|`, `>`) count as quoted: YAML treats them as strings.
    pub plain: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarKind {
    Null,
    Bool,
    Int,
    Float,
    Str,
}

impl Scalar {
    pub fn new(text: String, plain: bool) -> Self {
        Scalar { text, plain }
    }

    pub fn null() -> Self {
        Scalar::new(String::new(), true)
    }

    /// A value left out entirely (`key:`), as opposed to an explicit `null` or `~`.
    pub fn is_absent(&self) -> bool {
        self.plain && self.text.is_empty()
    }

    pub fn is_null(&self) -> bool {
        self.kind() == ScalarKind::Null
    }

    pub fn kind(&self) -> ScalarKind {
        if !self.plain {
            return ScalarKind::Str;
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => ScalarKind::Null,
            "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => ScalarKind::Bool,
            _ if is_decimal_int(t) => ScalarKind::Int,
            _ if is_float(t) => ScalarKind::Float,
            _ => ScalarKind::Str,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self.kind() {
            ScalarKind::Null => "an empty value",
            ScalarKind::Bool => "a boolean",
            ScalarKind::Int => "an integer",
            ScalarKind::Float => "a number with a fraction",
            ScalarKind::Str => "a string",
        }
    }
}

fn is_decimal_int(t: &str) -> bool {
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_float(t: &str) -> bool {
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.strip_prefix(['-', '+']).unwrap_or(&lower);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    let (mantissa, exponent) = match unsigned.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = (!int_part.is_empty() || !frac_part.is_empty())
        && all_digits(int_part)
        && all_digits(frac_part);
    let exponent_ok = exponent.is_none_or(is_decimal_int);
    // Without a dot or an exponent it would have been an integer already.
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(t: &str) -> ScalarKind {
        Scalar::new(t.to_owned(), true).kind()
    }

    #[test]
    fn plain_scalars_are_typed_by_their_text() {
        assert_eq!(plain("2"), ScalarKind::Int);
        assert_eq!(plain("-17"), ScalarKind::Int);
        assert_eq!(plain("+3"), ScalarKind::Int);
        assert_eq!(plain("~"), ScalarKind::Null);
        assert_eq!(plain(""), ScalarKind::Null);
        assert_eq!(plain("true"), ScalarKind::Bool);
        assert_eq!(plain("1.5"), ScalarKind::Float);
        assert_eq!(plain("1e3"), ScalarKind::Float);
        assert_eq!(plain(".inf"), ScalarKind::Float);
        assert_eq!(plain("0x10"), ScalarKind::Str);
        assert_eq!(plain("52:54:00:00:00:01"), ScalarKind::Str);
        assert_eq!(plain("vm0"), ScalarKind::Str);
        assert_eq!(plain("-"), ScalarKind::Str);
        assert_eq!(plain("."), ScalarKind::Str);
        assert_eq!(plain("1.2.3"), ScalarKind::Str);
    }

    #[test]
    fn quoted_scalars_are_always_strings() {
        assert_eq!(Scalar::new("2".into(), false).kind(), ScalarKind::Str);
        assert_eq!(Scalar::new(String::new(), false).kind(), ScalarKind::Str);
        assert!(!Scalar::new(String::new(), false).is_absent());
    }
}
