//! `${VAR}` expansion in socket paths.
//!
//! Only the braced form is accepted: a bare `$NAME` would silently swallow whatever
//! letters follow it, and a path that half-expanded is worse than an error.

/// Expands `${NAME}` from `env` and `$$` to `$`. On failure returns every problem in
/// the text, so one run reports all undefined variables at once.
pub(crate) fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                problems.push(format!(
                    "unterminated `${{` in `{text}`; write `${{NAME}}`, or `$$` for a literal `$`"
                ));
                return Err(problems);
            };
            let name = &body[..close];
            if !is_var_name(name) {
                problems.push(format!(
                    "`${{{name}}}` is not a valid variable reference; names are letters, digits and `_`, not starting with a digit"
                ));
            } else {
                match env(name) {
                    Some(value) => out.push_str(&value),
                    None => problems.push(format!("environment variable `{name}` is not set")),
                }
            }
            rest = &body[close + 1..];
        } else {
            problems.push(format!(
                "`$` must be followed by `{{NAME}}` or another `$` in `{text}`"
            ));
            rest = after;
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Escapes `$` so that [`expand`] gives `text` back; used when writing a manifest out.
pub(crate) fn escape(text: &str) -> String {
    text.replace('$', "$$")
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SOCKDIR" => Some("/tmp/socks".to_owned()),
            "EMPTY" => Some(String::new()),
            "_X1" => Some("x".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_dollar_escapes() {
        assert_eq!(
            expand("${SOCKDIR}/vh0.sock", &env).unwrap(),
            "/tmp/socks/vh0.sock"
        );
        assert_eq!(expand("a${EMPTY}b${_X1}", &env).unwrap(), "abx");
        assert_eq!(expand("cost$$5", &env).unwrap(), "cost$5");
        assert_eq!(expand("$$$${_X1}", &env).unwrap(), "$${_X1}");
        assert_eq!(expand("$$${_X1}", &env).unwrap(), "$x");
        assert_eq!(expand("plain/path", &env).unwrap(), "plain/path");
    }

    #[test]
    fn reports_every_undefined_variable() {
        let problems = expand("${A}/${SOCKDIR}/${B}", &env).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("`A`"), "{problems:?}");
        assert!(problems[1].contains("`B`"), "{problems:?}");
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in ["${SOCKDIR", "${}", "${1X}", "${A-B}", "$HOME/x", "end$"] {
            let problems = expand(bad, &env).unwrap_err();
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
        }
    }

    #[test]
    fn escape_round_trips_through_expand() {
        for text in ["/a/b", "/a/$b", "$$", "x$"] {
            assert_eq!(expand(&escape(text), &env).unwrap(), text);
        }
    }
}
