//! CSV that a spreadsheet opens as text, never as formulas (OWASP: CSV injection).
//!
//! Spreadsheets run a cell that begins with `=`, `+`, `-`, `@`, tab or CR. Which characters
//! split a line into cells depends on the program and the locale (`,` here, `;` in much of
//! Europe, tab and `|` on import), so a cell such as `x;=1+1` is harmless where `,` splits
//! and a formula where `;` does. Every cell is therefore quoted, and every cell that holds a
//! formula start at its beginning or after any common separator (possibly after spaces or
//! quotes) gets a leading apostrophe, which makes a spreadsheet read the whole cell as text.

/// Characters that split cells in some program or locale, and line breaks.
const SEPARATORS: [char; 6] = [',', ';', '\t', '|', '\r', '\n'];

/// Characters a spreadsheet reads as the start of a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether some common separator could make a formula of part of `cell`.
pub fn could_be_formula(cell: &str) -> bool {
    let opens_formula = |piece: &str| {
        piece
            .trim_start_matches([' ', '"', '\''])
            .starts_with(FORMULA_STARTS)
    };
    // The cell's start, and each piece after a separator, may be a cell of its own.
    opens_formula(cell) || cell.split(SEPARATORS).any(opens_formula)
}

/// `cell`, with a leading apostrophe when it could be read as a formula.
pub fn defuse(cell: &str) -> String {
    if could_be_formula(cell) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// A CSV writer that quotes every cell (so no cell's own separators split it where `,` is
/// the separator), for records passed through [`defuse`].
pub fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_formula_after_any_common_separator_is_defused() {
        for cell in [
            "=1+1", "+SUM(1)", "-2+3", "@A1", "\tx", "\rx", "x;=1+1", "x,=1+1", "x|=1+1", "x\t+1",
            "x; =1+1", "x;\"=1+1", "x; '@cmd", "x\n=1+1", "  =1+1", "\"=1+1\"",
        ] {
            assert_eq!(defuse(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for cell in [
            "Completed",
            "2026-03-01 10:00",
            "said \"hi\", left",
            "CHG123456",
            "lnx-web-01",
            "a = b",
            "first line\r\nsecond line",
            "x\t1",
            "e-mail me@example.org",
            "",
        ] {
            assert_eq!(defuse(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn every_cell_is_quoted() {
        let mut out = writer();
        out.write_record(["a", "x;=1+1"].iter().map(|c| defuse(c)))
            .unwrap();
        let text = String::from_utf8(out.into_inner().unwrap()).unwrap();
        assert_eq!(text, "\"a\",\"'x;=1+1\"\n");
    }
}
