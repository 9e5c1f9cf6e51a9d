//! Store exports as CSV (for spreadsheets) and JSON (for programs).

use super::hygiene::{HYGIENE_HEADERS, HygieneHostRow};
use super::table::{Cell, ExportRow, HEADERS};
use anyhow::Result;
use serde::Serialize;
use std::io::Write;

/// UTF-8 byte order mark: without it Excel decodes a CSV file in the local
/// ANSI code page and garbles every Vietnamese letter.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// CSV with a BOM and the Vietnamese header row.
pub fn write_csv(rows: &[ExportRow], out: &mut dyn Write) -> Result<()> {
    write_cells(&HEADERS, rows.iter().map(|r| r.cells().to_vec()), out)
}

/// `export --hygiene` as CSV, like [`write_csv`].
pub fn write_hygiene_csv(rows: &[HygieneHostRow], out: &mut dyn Write) -> Result<()> {
    write_cells(
        &HYGIENE_HEADERS,
        rows.iter().map(|r| r.cells().to_vec()),
        out,
    )
}

fn write_cells(
    headers: &[&str],
    rows: impl Iterator<Item = Vec<Cell>>,
    out: &mut dyn Write,
) -> Result<()> {
    out.write_all(BOM)?;
    let mut w = csv::Writer::from_writer(out);
    w.write_record(headers)?;
    for r in rows {
        w.write_record(r.iter().map(csv_field))?;
    }
    w.flush()?;
    Ok(())
}

/// A JSON array of rows, with the stable snake_case field names.
pub fn write_json<T: Serialize>(rows: &[T], out: &mut dyn Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, rows)?;
    writeln!(out)?;
    Ok(())
}

/// Text that Excel would run as a formula gets a leading apostrophe: host
/// names come from the network and indicators from third-party feeds, and
/// the file is opened by unit staff.
fn csv_field(c: &Cell) -> String {
    match c {
        Cell::Count(n) => n.to_string(),
        Cell::Text(t) if t.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{t}"),
        Cell::Text(t) => t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_text_is_defused_and_the_rest_kept() {
        let f = |s: &str| csv_field(&Cell::Text(s.into()));
        assert_eq!(f("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(f("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(f("+1"), "'+1");
        assert_eq!(f("10.20.1.13"), "10.20.1.13");
        assert_eq!(f("Đã xử lý"), "Đã xử lý");
        assert_eq!(csv_field(&Cell::Count(42)), "42");
    }
}
