//! Reading the files the manifest's rows point at: the data lines of a feed
//! file, columns of a CSV file.

use std::fmt;
use std::path::Path;

/// The data lines of a line-based feed file: not blank, not a `#` comment.
pub fn data_lines(p: &Path) -> Result<usize, String> {
    Ok(std::fs::read_to_string(p)
        .map_err(|e| format!("{}: {e}", p.display()))?
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count())
}

/// The `columns` (by header name) of every row of the CSV file `p`.
pub fn csv_columns(p: &Path, columns: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let at = |e: &dyn fmt::Display| format!("{}: {e}", p.display());
    let mut r = csv::Reader::from_path(p).map_err(|e| at(&e))?;
    let hdr = r.headers().map_err(|e| at(&e))?.clone();
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| {
            hdr.iter()
                .position(|h| h == *c)
                .ok_or_else(|| at(&format!("no column {c:?}")))
        })
        .collect::<Result<_, _>>()?;
    r.records()
        .map(|rec| {
            let rec = rec.map_err(|e| at(&e))?;
            Ok(idx
                .iter()
                .map(|&i| rec.get(i).unwrap_or("").to_owned())
                .collect())
        })
        .collect()
}
