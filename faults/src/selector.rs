//! Node selectors: which nodes a fail-point rule, an open-gate request or a fault applies to
//! (`*`, a node name, or a glob such as `n*`).

use std::fmt;

/// Which nodes a rule (or an open-gate request) applies to.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Selector {
    All,
    Node(String),
    /// A glob where `*` matches any run of characters, e.g. `n*`.
    Pattern(String),
}

impl Selector {
    /// `*` is `All`, text containing `*` a `Pattern`, anything else a `Node`.
    pub fn parse(text: &str) -> Selector {
        match text {
            "*" => Selector::All,
            t if t.contains('*') => Selector::Pattern(t.to_string()),
            t => Selector::Node(t.to_string()),
        }
    }

    /// True if the selector covers `node`.
    pub fn matches(&self, node: &str) -> bool {
        match self {
            Selector::All => true,
            Selector::Node(n) => n == node,
            Selector::Pattern(p) => glob_match(p, node),
        }
    }

    /// Specificity: higher wins.
    pub(crate) fn rank(&self) -> (u8, usize) {
        match self {
            Selector::All => (0, 0),
            Selector::Pattern(p) => (1, p.chars().filter(|c| *c != '*').count()),
            Selector::Node(_) => (2, 0),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::All => f.write_str("*"),
            Selector::Node(n) | Selector::Pattern(n) => f.write_str(n),
        }
    }
}

/// Matches `text` against a glob in which `*` matches any (possibly empty) run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty(); // no '*' at all
    };
    for part in middle {
        match rest.find(part) {
            Some(pos) => rest = &rest[pos + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("n*", "n1"));
        assert!(glob_match("*", ""));
        assert!(glob_match("n*1", "n11"));
        assert!(glob_match("*a*b*", "xaxxb"));
        assert!(!glob_match("n*1", "n12"));
        assert!(!glob_match("n*", "m1"));
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("n1", "n1"));
        assert!(!glob_match("n1", "n10"));
    }

    #[test]
    fn parse_and_match() {
        assert_eq!(Selector::parse("*"), Selector::All);
        assert_eq!(Selector::parse("n*"), Selector::Pattern("n*".into()));
        assert_eq!(Selector::parse("n1"), Selector::Node("n1".into()));
        assert!(Selector::parse("n*").matches("n12"));
        assert!(!Selector::parse("n1").matches("n12"));
        assert!(Selector::Node("n1".into()).rank() > Selector::Pattern("n1*".into()).rank());
    }
}
