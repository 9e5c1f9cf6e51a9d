//! The report as one Markdown document.

use super::*;
use std::fmt::Write as _;

/// Render the whole report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    header(&mut out, r);
    if let Some(total) = &r.rollup {
        let _ = writeln!(out, "\n## {ROLLUP_TITLE}\n");
        assessment(&mut out, &r.rollup_assessment(total));
        figures(&mut out, total);
        lines(&mut out, &r.units, total);
    }
    if let Some(h) = &r.rollup_hygiene {
        hygiene_table(&mut out, h);
        hygiene_lines(&mut out, &r.hygiene, h);
        basis(&mut out, &hygiene::basis(h, true));
    }
    for u in &r.units {
        let _ = writeln!(
            out,
            "\n## Đơn vị: {} — {}\n",
            esc(&u.code),
            esc(unit_title(u))
        );
        let _ = writeln!(out, "- {UNIT_CODE}: {}", esc(&u.code));
        let _ = writeln!(out, "- {UNIT_NAME}: {}\n", esc(unit_title(u)));
        assessment(&mut out, &r.unit_assessment(u));
        figures(&mut out, u);
        if r.estimates {
            let h = r.hygiene_of(&u.code);
            hygiene_table(&mut out, &h);
            basis(&mut out, &hygiene::basis(&h, false));
        }
    }
    out
}

fn header(out: &mut String, r: &Report) {
    let _ = writeln!(out, "# {TITLE}\n");
    let _ = writeln!(out, "*{FORM}*\n");
    let _ = writeln!(out, "- {PERIOD}: {}", esc(&r.period_line()));
    let _ = writeln!(out, "- {SOURCE}: {}", esc(&r.source_line()));
    let _ = writeln!(out, "- {GENERATED}: {}", esc(&r.generated));
}

fn assessment(out: &mut String, sentences: &[String]) {
    let _ = writeln!(out, "### {ASSESSMENT}\n");
    for s in sentences {
        let _ = writeln!(out, "- {}", esc(s));
    }
}

/// The form's table: number, label, count.
fn figures(out: &mut String, f: &UnitFigures) {
    let _ = writeln!(out, "\n### {FIGURES}\n");
    let _ = writeln!(out, "| {NO} | {ITEM} | {COUNT} |\n|---:|---|---:|");
    for (i, (label, n)) in figure_rows(f).iter().enumerate() {
        let _ = writeln!(out, "| {} | **{label}** | {n} |", i + 1);
    }
}

/// One line per unit, then the total.
fn lines(out: &mut String, units: &[UnitFigures], total: &UnitFigures) {
    let labels: Vec<&str> = figure_rows(total).iter().map(|x| x.0).collect();
    let key = |u: &UnitFigures| (esc(&u.code), esc(unit_title(u)));
    unit_lines(out, LINES, &labels, units, total, key, counts);
}

/// A table of `title` with one line per unit (`key`: its code and name,
/// escaped; `cells`: its counts), then the total's.
fn unit_lines<T>(
    out: &mut String,
    title: &str,
    labels: &[&str],
    units: &[T],
    total: &T,
    key: impl Fn(&T) -> (String, String),
    cells: impl Fn(&T) -> String,
) {
    let _ = writeln!(out, "\n### {title}\n");
    let _ = writeln!(
        out,
        "| {NO} | {UNIT_CODE} | {UNIT_NAME} | {} |\n|---:|---|---|---:|---:|---:|---:|",
        labels.join(" | ")
    );
    for (i, u) in units.iter().enumerate() {
        let (code, name) = key(u);
        let _ = writeln!(out, "| {} | {code} | {name} | {} |", i + 1, cells(u));
    }
    let _ = writeln!(out, "|  |  | **{TOTAL}** | {} |", cells(total));
}

/// The estimates of one unit or the province, in a table of their own.
fn hygiene_table(out: &mut String, h: &Hygiene) {
    let _ = writeln!(out, "\n### {}\n", hygiene::HYGIENE_TITLE);
    let _ = writeln!(out, "| {NO} | {ITEM} | {COUNT} |\n|---:|---|---:|");
    for (i, (label, n)) in h.rows().iter().enumerate() {
        let _ = writeln!(out, "| {} | **{label}** | {} |", i + 1, hygiene::show(*n));
    }
}

/// The estimates per unit, then the province.
fn hygiene_lines(out: &mut String, units: &[Hygiene], total: &Hygiene) {
    let labels: Vec<&str> = total.rows().iter().map(|x| x.0).collect();
    let key = |u: &Hygiene| (esc(&u.code), esc(u.title()));
    unit_lines(
        out,
        hygiene::HYGIENE_LINES,
        &labels,
        units,
        total,
        key,
        hygiene_counts,
    );
}

fn hygiene_counts(h: &Hygiene) -> String {
    h.rows()
        .iter()
        .map(|x| hygiene::show(x.1))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The estimates' basis, under their tables.
fn basis(out: &mut String, sentences: &[String]) {
    let _ = writeln!(out, "\n**{}:**\n", hygiene::BASIS);
    for s in sentences {
        let _ = writeln!(out, "- {}", esc(s));
    }
}

fn counts(f: &UnitFigures) -> String {
    figure_rows(f)
        .iter()
        .map(|x| x.1.to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Backslash-escape Markdown punctuation (and `<`, `>`, so raw HTML in a
/// unit name shows as text); line breaks would end a table row.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' | '&' => {
                o.push('\\');
                o.push(c);
            }
            '\r' | '\n' => o.push(' '),
            _ => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_and_html_in_names_is_escaped() {
        assert_eq!(super::esc("<b>|x*\n"), "\\<b\\>\\|x\\* ");
    }
}
