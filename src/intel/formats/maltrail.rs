//! Maltrail `trails.csv` files.

use super::{Item, Take, note};
use crate::intel::indicator::EntryType;

/// Maltrail `trails.csv`: `trail,info,reference`, no header.
pub fn maltrail(bytes: &[u8], take: &mut Take<'_>) -> Result<(), String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(bytes);
    let mut rec = csv::StringRecord::new();
    loop {
        match r.read_record(&mut rec) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = rec.position().map_or(0, |p| p.line());
                let value = rec.get(0).unwrap_or("");
                take(Item::Entry {
                    line,
                    value,
                    as_type: EntryType::Auto,
                    note: note(rec.get(2), rec.get(1)),
                });
            }
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                let line = e.position().map_or(0, |p| p.line());
                take(Item::Skip {
                    line,
                    value: "",
                    reason: "not UTF-8".into(),
                });
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
