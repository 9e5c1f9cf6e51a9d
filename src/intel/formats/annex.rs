//! CERT annex tables (XLSX or CSV): indicator, type and description columns
//! under a header row named in English or Vietnamese.

use super::{Item, Take, hash_skip, note};
use crate::intel::feeds::{Column, FeedSpec};
use crate::intel::indicator::{EntryType, file_hash_kind};

/// Header cells that name the indicator column of an annex table.
const INDICATOR_HEADERS: [&str; 10] = [
    "indicator",
    "ioc",
    "value",
    "giá trị",
    "chỉ số",
    "địa chỉ",
    "tên miền/ip",
    "ip/tên miền",
    "tên miền",
    "địa chỉ ip",
];
const TYPE_HEADERS: [&str; 4] = ["type", "loại", "kiểu", "indicator_type"];
const DESC_HEADERS: [&str; 5] = ["description", "mô tả", "ghi chú", "comment", "note"];

/// A CERT annex table: rows of (row number, indicator, type, description)
/// below a header row that may follow title rows. Columns are found by
/// header name (English or Vietnamese) unless `column` names one.
///
/// `bytes` is the whole file; a spreadsheet is told from CSV by the
/// `xlsx`/`xls` extension of `spec.path` or by its ZIP or OLE signature.
pub fn annex(spec: &FeedSpec, bytes: &[u8], take: &mut Take<'_>) -> Result<(), String> {
    let by_ext = spec
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx") || e.eq_ignore_ascii_case("xls"));
    let by_magic = bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xd0, 0xcf, 0x11, 0xe0]);
    let sheets: Sheets = if by_ext || by_magic {
        read_xlsx(spec, bytes)?
    } else {
        read_csv(bytes)?
    };
    let mut found_any = false;
    for (sheet, rows) in &sheets {
        let Some(cols) = columns(rows, spec) else {
            continue;
        };
        found_any = true;
        read_rows(sheet, rows, cols, take);
    }
    if !found_any {
        return Err(format!(
            "no header row naming the indicator column (looked for: {}); set `column`",
            INDICATOR_HEADERS.join(", ")
        ));
    }
    Ok(())
}

/// Where a sheet's data starts and which columns hold the indicator, its
/// type and its description.
#[derive(Clone, Copy)]
struct Columns {
    first: usize,
    value: usize,
    ty: Option<usize>,
    desc: Option<usize>,
}

/// A cell as header names and types are compared.
fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The first cell of `row` that is one of `names`.
fn pick(row: &[String], names: &[&str]) -> Option<usize> {
    row.iter().position(|c| names.iter().any(|n| norm(c) == *n))
}

/// The columns of one sheet: the index `column` gives (data from the first
/// row), else those the header row names, the header row being the first
/// whose cells name the indicator column; `None` when there is none.
fn columns(rows: &[Vec<String>], spec: &FeedSpec) -> Option<Columns> {
    let header = rows.iter().position(|r| match &spec.column {
        Some(Column::Name(n)) => r.iter().any(|c| norm(c) == norm(n)),
        _ => pick(r, &INDICATOR_HEADERS).is_some(),
    });
    match (header, &spec.column) {
        (_, Some(Column::Index(i))) => Some(Columns {
            first: 0,
            value: *i,
            ty: None,
            desc: None,
        }),
        (Some(h), col) => {
            let value = match col {
                Some(Column::Name(n)) => rows[h].iter().position(|c| norm(c) == norm(n)),
                _ => pick(&rows[h], &INDICATOR_HEADERS),
            }?;
            Some(Columns {
                first: h + 1,
                value,
                ty: pick(&rows[h], &TYPE_HEADERS),
                desc: pick(&rows[h], &DESC_HEADERS),
            })
        }
        (None, _) => None,
    }
}

/// Hand on every row with an indicator, typed by its type cell (file
/// hashes skipped), referenced as `sheet!row` when the sheet has a name.
fn read_rows(sheet: &str, rows: &[Vec<String>], cols: Columns, take: &mut Take<'_>) {
    for (r, row) in rows.iter().enumerate().skip(cols.first) {
        let line = r as u64 + 1;
        let Some(value) = row
            .get(cols.value)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        let ty = cols
            .ty
            .and_then(|i| row.get(i))
            .map(|t| norm(t))
            .unwrap_or_default();
        let Some(as_type) = entry_type(&ty) else {
            let kind = file_hash_kind(value).unwrap_or("file");
            take(Item::Skip {
                line,
                value,
                reason: hash_skip(kind),
            });
            continue;
        };
        let desc = cols.desc.and_then(|i| row.get(i)).map(String::as_str);
        let reference = (!sheet.is_empty()).then(|| format!("{sheet}!{line}"));
        take(Item::Entry {
            line,
            value,
            as_type,
            note: note(reference.as_deref(), desc),
        });
    }
}

/// The entry type a (normalised) type cell names; `None` for a file hash.
fn entry_type(ty: &str) -> Option<EntryType> {
    if ty.contains("hash") || ty.contains("md5") || ty.contains("sha") {
        None
    } else if ty.contains("url") || ty.contains("đường dẫn") {
        Some(EntryType::Url)
    } else if ty.contains("domain") || ty.contains("tên miền") || ty.contains("hostname") {
        Some(EntryType::Domain)
    } else if ty.starts_with("ip") || ty.contains("địa chỉ ip") {
        Some(EntryType::Ip)
    } else {
        Some(EntryType::Auto)
    }
}

/// A CSV annex as one unnamed sheet, without a byte-order mark in any cell.
fn read_csv(bytes: &[u8]) -> Result<Sheets, String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let rows = r
        .records()
        .map(|rec| {
            rec.map(|r| {
                r.iter()
                    .map(|c| c.trim_start_matches('\u{feff}').to_string())
                    .collect()
            })
            .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<Vec<String>>, String>>()?;
    Ok(vec![(String::new(), rows)])
}

/// Sheets as (name, rows of cells).
type Sheets = Vec<(String, Vec<Vec<String>>)>;

/// The sheets of an XLSX annex (only `sheet` when set), cells as text.
fn read_xlsx(spec: &FeedSpec, bytes: &[u8]) -> Result<Sheets, String> {
    use calamine::{Reader, open_workbook_auto_from_rs};
    let mut wb =
        open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let names: Vec<String> = match &spec.sheet {
        Some(s) => vec![s.clone()],
        None => wb.sheet_names().to_vec(),
    };
    let mut out = Vec::new();
    for name in names {
        let range = wb
            .worksheet_range(&name)
            .map_err(|e| format!("sheet {name:?}: {e}"))?;
        let rows = range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        out.push((name, rows));
    }
    Ok(out)
}
