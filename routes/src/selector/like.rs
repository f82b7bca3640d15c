//! `LIKE` patterns: `%` matches any run of characters, `_` exactly one, with an optional escape
//! character, matched without backtracking blow-up.

/// One element of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// This exact character.
    Lit(char),
    /// Any one character (`_`).
    One,
    /// Any run of characters, possibly empty (`%`).
    Many,
}

/// A compiled `LIKE` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LikePattern {
    toks: Vec<Tok>,
}

impl LikePattern {
    /// Compiles `pattern`. As in ActiveMQ, the escape character makes the following `%`, `_` or
    /// escape character literal; anywhere else (including at the end) it is an ordinary
    /// character, or a wildcard if it is itself `%` or `_`.
    pub(super) fn compile(pattern: &str, escape: Option<char>) -> LikePattern {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks: Vec<Tok> = Vec::with_capacity(chars.len());
        let mut i = 0;
        while let Some(&c) = chars.get(i) {
            i += 1;
            if Some(c) == escape {
                if let Some(&next) = chars.get(i) {
                    if next == '%' || next == '_' || next == c {
                        toks.push(Tok::Lit(next));
                        i += 1;
                        continue;
                    }
                }
            }
            match c {
                // Consecutive `%` are one `%`; collapsing them keeps matching cheap.
                '%' if toks.last() == Some(&Tok::Many) => {}
                '%' => toks.push(Tok::Many),
                '_' => toks.push(Tok::One),
                _ => toks.push(Tok::Lit(c)),
            }
        }
        LikePattern { toks }
    }

    /// Whether the whole of `text` matches.
    ///
    /// Greedy two-pointer matching: on a mismatch, retry from the most recent `%`, letting it
    /// swallow one more character. Only the latest `%` is ever revisited (an earlier one can
    /// never help once a later one has matched), so the cost is `O(pattern × text)` at worst.
    pub(super) fn matches(&self, text: &str) -> bool {
        // Positions in `text` are byte offsets, always on character boundaries.
        let char_at = |t: usize| text.get(t..).and_then(|rest| rest.chars().next());
        let (mut t, mut p) = (0usize, 0usize);
        // (pattern index just after the latest `%`, text offset that `%` currently stops at)
        let mut resume: Option<(usize, usize)> = None;
        while let Some(c) = char_at(t) {
            match self.toks.get(p) {
                Some(Tok::Many) => {
                    p += 1;
                    resume = Some((p, t));
                    continue;
                }
                Some(Tok::One) => {
                    t += c.len_utf8();
                    p += 1;
                    continue;
                }
                Some(Tok::Lit(l)) if *l == c => {
                    t += c.len_utf8();
                    p += 1;
                    continue;
                }
                _ => {}
            }
            // Mismatch: let the latest `%` swallow one more character and retry after it.
            match resume {
                Some((rp, rt)) => {
                    let swallowed = char_at(rt).map_or(1, char::len_utf8);
                    p = rp;
                    t = rt + swallowed;
                    resume = Some((rp, t));
                }
                None => return false,
            }
        }
        self.toks
            .get(p..)
            .is_some_and(|rest| rest.iter().all(|k| *k == Tok::Many))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn like(pattern: &str, escape: Option<char>, text: &str) -> bool {
        LikePattern::compile(pattern, escape).matches(text)
    }

    /// Exponential-time reference matcher, for cross-checking on small inputs.
    fn reference(p: &[Tok], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((Tok::Many, rest)) => {
                (0..=t.len()).any(|k| reference(rest, t.get(k..).unwrap_or(&[])))
            }
            Some((Tok::One, rest)) => !t.is_empty() && reference(rest, t.get(1..).unwrap_or(&[])),
            Some((Tok::Lit(c), rest)) => {
                t.first() == Some(c) && reference(rest, t.get(1..).unwrap_or(&[]))
            }
        }
    }

    #[test]
    fn wildcards() {
        assert!(like("%", None, ""));
        assert!(like("%", None, "anything"));
        assert!(!like("_", None, ""));
        assert!(like("_", None, "x"));
        assert!(!like("_", None, "xy"));
        assert!(like("12%3", None, "123"));
        assert!(like("12%3", None, "12993"));
        assert!(!like("12%3", None, "1234"));
        assert!(like("l_se", None, "lose"));
        assert!(!like("l_se", None, "loose"));
        assert!(like("%oo", None, "_foo"));
        assert!(!like("%ar", None, "_foo"));
        assert!(like("a%b%c", None, "aXXbYYbZc"));
        assert!(!like("a%b%c", None, "aXXbYYbZ"));
        assert!(like("", None, ""));
        assert!(!like("", None, "a"));
    }

    #[test]
    fn unicode_is_matched_by_character() {
        assert!(like("_", None, "é"));
        assert!(like("caf_", None, "café"));
        assert!(like("%😀%", None, "a😀b"));
    }

    #[test]
    fn escapes() {
        assert!(like("\\_%", Some('\\'), "_foo"));
        assert!(!like("\\_%", Some('\\'), "xfoo"));
        assert!(like("!_%", Some('!'), "_foo"));
        assert!(!like("!_%", Some('!'), "'In God We Trust'"));
        assert!(like("100!%", Some('!'), "100%"));
        assert!(!like("100!%", Some('!'), "1000"));
        assert!(like("a!!b", Some('!'), "a!b"));
        // The escape character before anything else is itself, as is a trailing one.
        assert!(like("a!b", Some('!'), "a!b"));
        assert!(like("ab!", Some('!'), "ab!"));
        // An escape character that is a wildcard is a wildcard unless it escapes something.
        assert!(like("a%%b", Some('%'), "a%b"));
        assert!(!like("a%%b", Some('%'), "axb"));
        assert!(like("a%x", Some('%'), "abcx"));
    }

    #[test]
    fn regex_metacharacters_are_literal() {
        let p = "!#$&()*+,-./:;<=>?@[\\]^`{|}~";
        assert!(like(p, None, p));
        assert!(!like("a.c", None, "abc"));
        assert!(like("a.c", None, "a.c"));
        assert!(like("a\nb", None, "a\nb"));
        assert!(like("a_b", None, "a\nb"));
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let text = "a".repeat(20_000);
        let pattern = format!("{}b", "%a".repeat(50));
        let start = std::time::Instant::now();
        assert!(!like(&pattern, None, &text));
        assert!(like(&format!("{}a", "%a".repeat(50)), None, &text));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn agrees_with_reference_on_small_inputs() {
        let alphabet = ['a', 'b', '%', '_'];
        let texts = [
            "", "a", "b", "ab", "ba", "aab", "abab", "bbba", "aaaa", "abba",
        ];
        // Every pattern of length up to 4 over the alphabet.
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let mut longer = Vec::new();
            for p in &patterns {
                for c in alphabet {
                    longer.push(format!("{p}{c}"));
                }
            }
            patterns.extend(longer);
            patterns.dedup();
        }
        for p in &patterns {
            let compiled = LikePattern::compile(p, None);
            for t in texts {
                let chars: Vec<char> = t.chars().collect();
                assert_eq!(
                    compiled.matches(t),
                    reference(&compiled.toks, &chars),
                    "pattern {p:?} text {t:?}"
                );
            }
        }
    }
}
