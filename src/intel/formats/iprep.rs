//! Suricata IP reputation files.

use super::{Item, Take, note};
use crate::intel::indicator::EntryType;
use std::collections::HashMap;

/// Suricata IP reputation: `ip-or-cidr,category,score`, no header; the
/// optional categories file (`id,short,description`) names the category.
/// Entries scored below `min_score` are skipped.
pub fn iprep(
    text: &str,
    categories: Option<&str>,
    min_score: u32,
    take: &mut Take<'_>,
) -> Result<(), String> {
    let mut names: HashMap<String, String> = HashMap::new();
    if let Some(text) = categories {
        for l in text.lines() {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() >= 2 {
                names.insert(f[0].trim().to_string(), f[1].trim().to_string());
            }
        }
    }
    let min = min_score;
    for (i, l) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let (Some(ip), Some(cat), Some(score)) = (f.first(), f.get(1), f.get(2)) else {
            take(Item::Skip {
                line,
                value: l,
                reason: "expected ip-or-cidr,category,score".into(),
            });
            continue;
        };
        let Ok(score) = score.parse::<u32>() else {
            take(Item::Skip {
                line,
                value: l,
                reason: format!("score {score:?} is not a number"),
            });
            continue;
        };
        if score < min {
            take(Item::Skip {
                line,
                value: ip,
                reason: format!("score {score} below min_score {min}"),
            });
            continue;
        }
        let cat_name = names.get(*cat).map_or(*cat, String::as_str);
        take(Item::Entry {
            line,
            value: ip,
            as_type: EntryType::Ip,
            note: note(None, Some(&format!("{cat_name} (score {score})"))),
        });
    }
    Ok(())
}
