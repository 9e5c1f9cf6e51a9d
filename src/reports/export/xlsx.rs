//! Store exports as an Excel workbook: one sheet per unit, so each unit can
//! be handed its own list, and with `--all` a summary sheet first.

use super::hygiene::{HYGIENE_HEADERS, HygieneSelection};
use super::table::{Cell, HEADERS, Selection, local_time};
use anyhow::{Context as _, Result};
use rust_xlsxwriter::{Format, Workbook, Worksheet};
use std::collections::HashSet;
use std::path::Path;

/// Name of the summary sheet written with `--all`.
pub const SUMMARY_SHEET: &str = "Tổng hợp";

/// Summary sheet headers: unit, then host counts by status.
pub const SUMMARY_HEADERS: [&str; 6] = [
    "Mã đơn vị",
    "Đơn vị",
    "Số máy nhiễm",
    "Chưa xử lý",
    "Đã xử lý",
    "Tái nhiễm",
];

/// Excel's limit on a sheet name, in UTF-16 code units.
const MAX_SHEET_NAME: usize = 31;

/// Column widths in characters: wide enough for most values, never so wide
/// that one long URL pushes the other columns off the screen.
const MIN_WIDTH: usize = 8;
const MAX_WIDTH: usize = 60;

/// Write the workbook for `sel` to `path`.
pub fn write_xlsx(sel: &Selection, path: &Path) -> Result<()> {
    workbook(sel)?
        .save(path)
        .with_context(|| format!("{}: cannot write the workbook", path.display()))
}

/// The workbook for `sel` as bytes (the console's download).
pub fn xlsx_bytes(sel: &Selection) -> Result<Vec<u8>> {
    Ok(workbook(sel)?.save_to_buffer()?)
}

fn workbook(sel: &Selection) -> Result<Workbook> {
    let mut wb = Workbook::new();
    let mut names = SheetNames::default();
    let bold = Format::new().set_bold();
    if sel.all {
        let ws = wb.add_worksheet();
        ws.set_name(names.claim(SUMMARY_SHEET))?;
        summary_sheet(ws, sel, &bold)?;
    }
    for (code, _) in &sel.units {
        let ws = wb.add_worksheet();
        ws.set_name(names.claim(code))?;
        let rows: Vec<Vec<Cell>> = sel.rows_of(code).map(|r| r.cells().to_vec()).collect();
        write_table(ws, &HEADERS, &rows, &bold)?;
    }
    Ok(wb)
}

/// `export --hygiene` as a workbook: one sheet per unit, no summary (the
/// report carries the per-unit counts).
pub fn write_hygiene_xlsx(sel: &HygieneSelection, path: &Path) -> Result<()> {
    let mut wb = Workbook::new();
    let mut names = SheetNames::default();
    let bold = Format::new().set_bold();
    for (code, _) in &sel.units {
        let ws = wb.add_worksheet();
        ws.set_name(names.claim(code))?;
        let rows: Vec<Vec<Cell>> = sel.rows_of(code).map(|r| r.cells().to_vec()).collect();
        write_table(ws, &HYGIENE_HEADERS, &rows, &bold)?;
    }
    if sel.units.is_empty() {
        // A workbook needs a sheet: the headers alone say "nothing found".
        write_table(wb.add_worksheet(), &HYGIENE_HEADERS, &[], &bold)?;
    }
    wb.save(path)
        .with_context(|| format!("{}: cannot write the workbook", path.display()))
}

/// Units with host counts by status, a bold total row, and when and from
/// which date the export was taken (people print and file these).
fn summary_sheet(ws: &mut Worksheet, sel: &Selection, bold: &Format) -> Result<()> {
    let counts = sel.unit_counts();
    let rows: Vec<Vec<Cell>> = counts
        .iter()
        .map(|u| {
            vec![
                Cell::Text(u.code.clone()),
                Cell::Text(u.name.clone()),
                Cell::Count(u.hosts),
                Cell::Count(u.open),
                Cell::Count(u.cleaned),
                Cell::Count(u.reinfected),
            ]
        })
        .collect();
    let mut at = write_table(ws, &SUMMARY_HEADERS, &rows, bold)? + 1;
    ws.write_string_with_format(at, 0, "Tổng cộng", bold)?;
    let sum = |f: fn(&crate::store::query::UnitRow) -> u64| counts.iter().map(f).sum::<u64>();
    for (col, n) in [
        sum(|u| u.hosts),
        sum(|u| u.open),
        sum(|u| u.cleaned),
        sum(|u| u.reinfected),
    ]
    .into_iter()
    .enumerate()
    {
        ws.write_number_with_format(at, col as u16 + 2, n as f64, bold)?;
    }
    at += 2;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    ws.write_string(at, 0, "Thời điểm xuất")?;
    ws.write_string(at, 1, local_time(now))?;
    if let Some(since) = sel.since_ns {
        ws.write_string(at + 1, 0, "Phát hiện từ")?;
        ws.write_string(at + 1, 1, local_time(since))?;
    }
    Ok(())
}

/// A bold, frozen header row, the rows under it with an autofilter over
/// them, and column widths fitted to the content. Returns the last row.
fn write_table(
    ws: &mut Worksheet,
    headers: &[&str],
    rows: &[Vec<Cell>],
    bold: &Format,
) -> Result<u32> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for (col, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, col as u16, *h, bold)?;
    }
    for (i, row) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        for (col, cell) in row.iter().enumerate() {
            let c = col as u16;
            let w = match cell {
                Cell::Text(t) => {
                    ws.write_string(r, c, t)?;
                    t.chars().count()
                }
                Cell::Count(n) => {
                    ws.write_number(r, c, *n as f64)?;
                    n.to_string().len()
                }
            };
            widths[col] = widths[col].max(w);
        }
    }
    let last_row = rows.len() as u32;
    let last_col = headers.len() as u16 - 1;
    ws.autofilter(0, 0, last_row, last_col)?;
    ws.set_freeze_panes(1, 0)?;
    for (col, w) in widths.into_iter().enumerate() {
        ws.set_column_width(col as u16, (w + 2).clamp(MIN_WIDTH, MAX_WIDTH) as f64)?;
    }
    Ok(last_row)
}

/// Hands out sheet names that Excel accepts: unique ignoring case.
#[derive(Default)]
struct SheetNames {
    taken: HashSet<String>,
}

impl SheetNames {
    fn claim(&mut self, want: &str) -> String {
        let base = sheet_name(want);
        let mut name = base.clone();
        let mut n = 1;
        while !self.taken.insert(name.to_lowercase()) {
            n += 1;
            let suffix = format!("~{n}");
            name = format!(
                "{}{suffix}",
                truncate_utf16(&base, MAX_SHEET_NAME - suffix.len())
            );
        }
        name
    }
}

/// `code` under Excel's sheet-name rules: at most 31 UTF-16 units, none of
/// `[ ] : * ? / \`, no apostrophe first or last, not blank, not "History"
/// (reserved). Offending characters become `_`.
pub fn sheet_name(code: &str) -> String {
    let cleaned: String = code
        .chars()
        .map(|c| {
            if "[]:*?/\\".contains(c) || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut name = truncate_utf16(&cleaned, MAX_SHEET_NAME).to_owned();
    if name.starts_with('\'') {
        name.replace_range(..1, "_");
    }
    if name.ends_with('\'') {
        name.replace_range(name.len() - 1.., "_");
    }
    if name.is_empty() {
        name.push('_');
    }
    if name.eq_ignore_ascii_case("history") {
        name.push('_');
    }
    name
}

fn truncate_utf16(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_follow_excels_rules() {
        assert_eq!(sheet_name("U001"), "U001");
        assert_eq!(sheet_name("a[b]:c*d?e/f\\g"), "a_b__c_d_e_f_g");
        assert_eq!(sheet_name("'quoted'"), "_quoted_");
        assert_eq!(sheet_name(""), "_");
        assert_eq!(sheet_name("History"), "History_");
        let long = "PHÒNG-GIÁO-DỤC-VÀ-ĐÀO-TẠO-HUYỆN-ĐIỆN-BÀN";
        let n = sheet_name(long);
        assert_eq!(n.encode_utf16().count(), 31);
        assert!(long.starts_with(&n));
        for name in ["U001", "x", "a[b]:c*d?e/f\\g", long, "'q'"] {
            rust_xlsxwriter::utility::check_sheet_name(&sheet_name(name)).unwrap();
        }
    }

    #[test]
    fn clashing_sheet_names_get_a_suffix() {
        let mut names = SheetNames::default();
        let long = "A".repeat(40);
        assert_eq!(names.claim(SUMMARY_SHEET), SUMMARY_SHEET);
        assert_eq!(names.claim("u/1"), "u_1");
        assert_eq!(names.claim("U:1"), "U_1~2");
        assert_eq!(names.claim(&long), "A".repeat(31));
        let again = names.claim(&format!("{long}B"));
        assert_eq!(again, format!("{}~2", "A".repeat(29)));
    }
}
