//! The report as an Excel workbook: the roll-up sheet first, then one sheet
//! per unit. Labels are bold text, counts are numbers.

use super::*;
use rust_xlsxwriter::{Format, FormatBorder, Workbook, Worksheet, XlsxError};
use std::path::Path;

/// Name of the roll-up sheet.
pub const ROLLUP_SHEET: &str = "Tổng hợp toàn tỉnh";

/// Excel's limit on sheet names, in UTF-16 code units.
const SHEET_NAME_MAX: usize = 31;

struct Styles {
    title: Format,
    bold: Format,
    head: Format,
    label: Format,
    cell: Format,
    num: Format,
    na: Format,
}

impl Styles {
    fn new() -> Styles {
        let border = |f: Format| f.set_border(FormatBorder::Thin);
        Styles {
            title: Format::new().set_bold().set_font_size(14),
            bold: Format::new().set_bold(),
            head: border(Format::new().set_bold().set_background_color(0xEEEEEE)),
            label: border(Format::new().set_bold()),
            cell: border(Format::new()),
            num: border(Format::new().set_num_format("0")),
            na: border(
                Format::new()
                    .set_italic()
                    .set_align(rust_xlsxwriter::FormatAlign::Right),
            ),
        }
    }
}

/// Write the workbook to `path`.
pub fn write(r: &Report, path: &Path) -> Result<(), XlsxError> {
    workbook(r)?.save(path)
}

/// The workbook as bytes (the console's download).
pub fn bytes(r: &Report) -> Result<Vec<u8>, XlsxError> {
    workbook(r)?.save_to_buffer()
}

fn workbook(r: &Report) -> Result<Workbook, XlsxError> {
    let mut wb = Workbook::new();
    let st = Styles::new();
    let mut taken: Vec<String> = Vec::new();
    if let Some(total) = &r.rollup {
        let ws = wb.add_worksheet();
        ws.set_name(sheet_name(ROLLUP_SHEET, &mut taken))?;
        let row = header(ws, &st, r, ROLLUP_TITLE)?;
        let row = sentences(ws, &st, &r.rollup_assessment(total), row)?;
        let row = figures(ws, &st, total, row)?;
        let row = lines(ws, &st, &r.units, total, row)?;
        if let Some(h) = &r.rollup_hygiene {
            let row = hygiene_table(ws, &st, h, row)?;
            let row = hygiene_lines(ws, &st, &r.hygiene, h, row)?;
            sentences_titled(ws, &st, hygiene::BASIS, &hygiene::basis(h, true), row)?;
        }
    }
    for u in &r.units {
        let ws = wb.add_worksheet();
        let wanted = format!("{} {}", u.code, unit_title(u));
        ws.set_name(sheet_name(&wanted, &mut taken))?;
        let mut row = header(ws, &st, r, &format!("Đơn vị: {}", unit_title(u)))?;
        for (k, v) in [(UNIT_CODE, &u.code), (UNIT_NAME, &u.name)] {
            ws.write_string_with_format(row, 0, format!("{k}:"), &st.bold)?;
            ws.write_string(row, 1, v.as_str())?;
            row += 1;
        }
        let row = sentences(ws, &st, &r.unit_assessment(u), row + 1)?;
        let row = figures(ws, &st, u, row)?;
        if r.estimates {
            let h = r.hygiene_of(&u.code);
            let row = hygiene_table(ws, &st, &h, row)?;
            sentences_titled(ws, &st, hygiene::BASIS, &hygiene::basis(&h, false), row)?;
        }
    }
    Ok(wb)
}

/// Title, form and report metadata; returns the next free row.
fn header(ws: &mut Worksheet, st: &Styles, r: &Report, heading: &str) -> Result<u32, XlsxError> {
    ws.set_column_width(0, 24)?;
    ws.set_column_width(1, 58)?;
    ws.set_column_width(2, 16)?;
    ws.set_landscape()
        .set_paper_size(9)
        .set_print_fit_to_pages(1, 0);
    ws.write_string_with_format(0, 0, TITLE, &st.title)?;
    ws.write_string(1, 0, FORM)?;
    let meta = [
        (PERIOD, r.period_line()),
        (SOURCE, r.source_line()),
        (GENERATED, r.generated.clone()),
    ];
    for (i, (k, v)) in meta.iter().enumerate() {
        let row = 3 + i as u32;
        ws.write_string_with_format(row, 0, format!("{k}:"), &st.bold)?;
        ws.write_string(row, 1, v.as_str())?;
    }
    ws.write_string_with_format(7, 0, heading, &st.title)?;
    Ok(8)
}

fn sentences(ws: &mut Worksheet, st: &Styles, s: &[String], row: u32) -> Result<u32, XlsxError> {
    sentences_titled(ws, st, ASSESSMENT, s, row)
}

/// A bold title, then one "- sentence" a row; returns the next free row.
fn sentences_titled(
    ws: &mut Worksheet,
    st: &Styles,
    title: &str,
    s: &[String],
    row: u32,
) -> Result<u32, XlsxError> {
    ws.write_string_with_format(row, 0, title, &st.bold)?;
    for (i, line) in s.iter().enumerate() {
        ws.write_string(row + 1 + i as u32, 0, format!("- {line}"))?;
    }
    Ok(row + 2 + s.len() as u32)
}

/// The form's table: number, label, count; returns the next free row.
fn figures(ws: &mut Worksheet, st: &Styles, f: &UnitFigures, row: u32) -> Result<u32, XlsxError> {
    ws.write_string_with_format(row, 0, FIGURES, &st.bold)?;
    for (c, h) in [NO, ITEM, COUNT].iter().enumerate() {
        ws.write_string_with_format(row + 1, c as u16, *h, &st.head)?;
    }
    let rows = figure_rows(f);
    for (i, (label, n)) in rows.iter().enumerate() {
        let r = row + 2 + i as u32;
        ws.write_number_with_format(r, 0, (i + 1) as f64, &st.cell)?;
        ws.write_string_with_format(r, 1, *label, &st.label)?;
        ws.write_number_with_format(r, 2, *n as f64, &st.num)?;
    }
    Ok(row + 3 + rows.len() as u32)
}

/// One line per unit, then the total.
fn lines(
    ws: &mut Worksheet,
    st: &Styles,
    units: &[UnitFigures],
    total: &UnitFigures,
    row: u32,
) -> Result<u32, XlsxError> {
    ws.write_string_with_format(row, 0, LINES, &st.bold)?;
    let mut heads = vec![NO, UNIT_CODE, UNIT_NAME];
    heads.extend(figure_rows(total).iter().map(|x| x.0));
    for (c, h) in heads.iter().enumerate() {
        ws.write_string_with_format(row + 1, c as u16, *h, &st.head)?;
        if c >= 3 {
            ws.set_column_width(c as u16, 18)?;
        }
    }
    let mut r = row + 2;
    for (i, u) in units.iter().enumerate() {
        ws.write_number_with_format(r, 0, (i + 1) as f64, &st.cell)?;
        ws.write_string_with_format(r, 1, &u.code, &st.cell)?;
        ws.write_string_with_format(r, 2, unit_title(u), &st.cell)?;
        counts(ws, st, u, r)?;
        r += 1;
    }
    ws.write_string_with_format(r, 2, TOTAL, &st.label)?;
    counts(ws, st, total, r)?;
    Ok(r + 2)
}

fn counts(ws: &mut Worksheet, st: &Styles, f: &UnitFigures, r: u32) -> Result<(), XlsxError> {
    for (c, (_, n)) in figure_rows(f).iter().enumerate() {
        ws.write_number_with_format(r, 3 + c as u16, *n as f64, &st.num)?;
    }
    Ok(())
}

/// The estimates of one unit or the province, in a table of their own;
/// returns the next free row.
fn hygiene_table(ws: &mut Worksheet, st: &Styles, h: &Hygiene, row: u32) -> Result<u32, XlsxError> {
    ws.write_string_with_format(row, 0, hygiene::HYGIENE_TITLE, &st.bold)?;
    for (c, head) in [NO, ITEM, COUNT].iter().enumerate() {
        ws.write_string_with_format(row + 1, c as u16, *head, &st.head)?;
    }
    let rows = h.rows();
    for (i, (label, n)) in rows.iter().enumerate() {
        let r = row + 2 + i as u32;
        ws.write_number_with_format(r, 0, (i + 1) as f64, &st.cell)?;
        ws.write_string_with_format(r, 1, *label, &st.label)?;
        count_cell(ws, st, r, 2, *n)?;
    }
    Ok(row + 3 + rows.len() as u32)
}

/// The estimates per unit, then the province; returns the next free row.
fn hygiene_lines(
    ws: &mut Worksheet,
    st: &Styles,
    units: &[Hygiene],
    total: &Hygiene,
    row: u32,
) -> Result<u32, XlsxError> {
    ws.write_string_with_format(row, 0, hygiene::HYGIENE_LINES, &st.bold)?;
    let mut heads = vec![NO, UNIT_CODE, UNIT_NAME];
    heads.extend(total.rows().iter().map(|x| x.0));
    for (c, h) in heads.iter().enumerate() {
        ws.write_string_with_format(row + 1, c as u16, *h, &st.head)?;
    }
    let mut r = row + 2;
    for (i, u) in units.iter().enumerate() {
        ws.write_number_with_format(r, 0, (i + 1) as f64, &st.cell)?;
        ws.write_string_with_format(r, 1, &u.code, &st.cell)?;
        ws.write_string_with_format(r, 2, u.title(), &st.cell)?;
        for (c, (_, n)) in u.rows().iter().enumerate() {
            count_cell(ws, st, r, 3 + c as u16, *n)?;
        }
        r += 1;
    }
    ws.write_string_with_format(r, 2, TOTAL, &st.label)?;
    for (c, (_, n)) in total.rows().iter().enumerate() {
        count_cell(ws, st, r, 3 + c as u16, *n)?;
    }
    Ok(r + 2)
}

/// A count as a number, or the not-available text.
fn count_cell(
    ws: &mut Worksheet,
    st: &Styles,
    r: u32,
    c: u16,
    n: Option<u64>,
) -> Result<(), XlsxError> {
    match n {
        Some(n) => ws.write_number_with_format(r, c, n as f64, &st.num)?,
        None => ws.write_string_with_format(r, c, hygiene::NOT_AVAILABLE, &st.na)?,
    };
    Ok(())
}

/// A sheet name Excel accepts, unique in the workbook (case-insensitively,
/// as Excel compares them): forbidden characters become `_`, the name is
/// cut to 31 UTF-16 units, and a clash gets a ` (2)`-style suffix.
pub fn sheet_name(wanted: &str, taken: &mut Vec<String>) -> String {
    let clean: String = wanted
        .chars()
        .map(|c| match c {
            '[' | ']' | ':' | '*' | '?' | '/' | '\\' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let clean = clean.trim().trim_matches('\'').trim();
    let base = if clean.is_empty() || clean.eq_ignore_ascii_case("history") {
        format!("{clean}_sheet").trim_start_matches('_').to_owned()
    } else {
        clean.to_owned()
    };
    let mut n = 1;
    loop {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!(" ({n})")
        };
        let cand = format!(
            "{}{suffix}",
            cut_utf16(&base, SHEET_NAME_MAX - suffix.len())
        );
        let lower = cand.to_lowercase();
        if !taken.iter().any(|t| t.to_lowercase() == lower) {
            taken.push(cand.clone());
            return cand;
        }
        n += 1;
    }
}

/// The longest prefix of `s` within `max` UTF-16 units, without a trailing
/// space or apostrophe (Excel refuses a name ending in `'`).
fn cut_utf16(s: &str, max: usize) -> &str {
    let mut units = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            break;
        }
        end = i + c.len_utf8();
    }
    s[..end].trim_end_matches([' ', '\''])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_follow_excel_rules() {
        let mut taken = vec![];
        let long = "U001 Văn phòng Hội đồng nhân dân và Ủy ban nhân dân tỉnh";
        let a = sheet_name(long, &mut taken);
        let b = sheet_name(long, &mut taken);
        assert_eq!(a, "U001 Văn phòng Hội đồng nhân dâ");
        assert_eq!(b, "U001 Văn phòng Hội đồng nhâ (2)");
        let odd = sheet_name("'a/b:c*d?[e]\\'", &mut taken);
        assert_eq!(odd, "a_b_c_d__e__");
        assert_eq!(sheet_name("History", &mut taken), "History_sheet");
        assert_eq!(sheet_name("", &mut taken), "sheet");
        assert_eq!(sheet_name("A", &mut taken), "A");
        assert_eq!(sheet_name("a", &mut taken), "a (2)");
        for n in &taken {
            rust_xlsxwriter::utility::check_sheet_name(n).unwrap();
        }
    }
}
