//! A sample ticket number made from a profile's ticket pattern, shown to requesters as "like
//! CHG123456": the regex itself means nothing to most of them.

use regex_syntax::hir::{Class, Hir, HirKind};

/// A short text `pattern` matches, or `None` when none can be made (or it would not match).
pub fn sample(pattern: &str) -> Option<String> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let mut out = String::new();
    write(&hir, &mut out, 0)?;
    let made = !out.is_empty() && out.chars().count() <= 64;
    let matches =
        crate::domain::catalog::compile_ticket_pattern(pattern).is_ok_and(|re| re.is_match(&out));
    (made && matches).then_some(out)
}

fn write(hir: &Hir, out: &mut String, depth: usize) -> Option<()> {
    if depth > 32 || out.len() > 64 {
        return None;
    }
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => out.push_str(std::str::from_utf8(&l.0).ok()?),
        HirKind::Class(Class::Unicode(c)) => {
            let first = c.ranges().first()?;
            out.push(pick(first.start(), first.end(), out));
        }
        HirKind::Class(Class::Bytes(c)) => {
            let first = c.ranges().first()?;
            out.push(pick(
                char::from(first.start()),
                char::from(first.end()),
                out,
            ));
        }
        HirKind::Repetition(r) => {
            let times = r
                .min
                .max(u32::from(r.max != Some(0) && r.min == 0 && r.greedy));
            for _ in 0..times.min(32) {
                write(&r.sub, out, depth + 1)?;
            }
        }
        HirKind::Capture(c) => write(&c.sub, out, depth + 1)?,
        HirKind::Concat(parts) => {
            for p in parts {
                write(p, out, depth + 1)?;
            }
        }
        HirKind::Alternation(parts) => write(parts.first()?, out, depth + 1)?,
    }
    Some(())
}

/// A character of `start..=end`: counting digits (1, 2, 3, ...) where the range holds them,
/// so a sample reads like a number rather than 000000.
fn pick(start: char, end: char, so_far: &str) -> char {
    let digits = so_far.chars().filter(char::is_ascii_digit).count();
    let digit = char::from_digit(u32::try_from(digits % 9).unwrap_or(0) + 1, 10).unwrap_or('1');
    if (start..=end).contains(&digit) && start <= '0' {
        return digit;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_match_their_patterns() {
        assert_eq!(sample("^CHG[0-9]{6}$").as_deref(), Some("CHG123456"));
        assert_eq!(sample("^(INC|CHG)\\d+$").as_deref(), Some("INC1"));
        assert_eq!(sample("^[A-Z]{3}-[0-9]{4}$").as_deref(), Some("AAA-1234"));
        assert_eq!(sample("^$"), None);
    }
}
