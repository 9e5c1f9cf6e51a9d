//! The report as one self-contained, printable HTML file. Every piece of
//! text from the store goes through [`esc`].

use super::*;
use std::fmt::Write as _;

/// Inline style: A4 print, one unit per printed page.
const STYLE: &str = "
body { font-family: 'Times New Roman', 'DejaVu Serif', serif; font-size: 13pt;
       max-width: 60em; margin: 1.5em auto; padding: 0 1em; color: #000; }
h1 { font-size: 15pt; text-align: center; margin: .4em 0; }
h2 { font-size: 14pt; border-bottom: 1px solid #000; margin-top: 1.6em; }
h3 { font-size: 13pt; margin: 1em 0 .4em; }
p.form { text-align: right; font-style: italic; margin: 0; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: .4em 0; }
th, td { border: 1px solid #000; padding: .25em .5em; vertical-align: top; }
thead th { background: #eee; }
th[scope=row] { text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.na { text-align: right; font-style: italic; }
ul.basis { font-size: 11pt; }
tr.total th, tr.total td { font-weight: bold; }
@page { size: A4; margin: 15mm; }
@media print {
  body { margin: 0; max-width: none; }
  section.unit { break-before: page; }
  thead th { background: none; }
}
";

/// Render the whole report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"vi\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(TITLE),
        esc(&r.period_line())
    );
    header(&mut out, r);
    if let Some(total) = &r.rollup {
        out.push_str("<section class=\"rollup\">\n");
        let _ = writeln!(out, "<h2>{}</h2>", esc(ROLLUP_TITLE));
        assessment(&mut out, &r.rollup_assessment(total));
        figures(&mut out, total);
        lines(&mut out, &r.units, total);
        if let Some(h) = &r.rollup_hygiene {
            hygiene_table(&mut out, h);
            hygiene_lines(&mut out, &r.hygiene, h);
            basis(&mut out, &hygiene::basis(h, true));
        }
        out.push_str("</section>\n");
    }
    for u in &r.units {
        unit(&mut out, r, u);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn header(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "<header>\n<p class=\"form\">{}</p>\n<h1>{}</h1>",
        esc(FORM),
        esc(TITLE)
    );
    out.push_str("<dl class=\"meta\">\n");
    for (k, v) in [
        (PERIOD, r.period_line()),
        (SOURCE, r.source_line()),
        (GENERATED, r.generated.clone()),
    ] {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    }
    out.push_str("</dl>\n</header>\n");
}

fn unit(out: &mut String, r: &Report, u: &UnitFigures) {
    let _ = writeln!(
        out,
        "<section class=\"unit\" data-unit=\"{}\">\n<h2>Đơn vị: {} — {}</h2>",
        esc(&u.code),
        esc(&u.code),
        esc(unit_title(u))
    );
    let _ = writeln!(
        out,
        "<dl class=\"meta\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
        esc(UNIT_CODE),
        esc(&u.code),
        esc(UNIT_NAME),
        esc(unit_title(u))
    );
    assessment(out, &r.unit_assessment(u));
    figures(out, u);
    if r.estimates {
        let h = r.hygiene_of(&u.code);
        hygiene_table(out, &h);
        basis(out, &hygiene::basis(&h, false));
    }
    out.push_str("</section>\n");
}

fn assessment(out: &mut String, sentences: &[String]) {
    let _ = writeln!(
        out,
        "<h3>{}</h3>\n<ul class=\"assessment\">",
        esc(ASSESSMENT)
    );
    for s in sentences {
        let _ = writeln!(out, "<li>{}</li>", esc(s));
    }
    out.push_str("</ul>\n");
}

/// The form's table: number, label, count.
fn figures(out: &mut String, f: &UnitFigures) {
    let _ = writeln!(
        out,
        "<h3>{}</h3>\n<table class=\"figures\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
        esc(FIGURES),
        esc(NO),
        esc(ITEM),
        esc(COUNT)
    );
    for (i, (label, n)) in figure_rows(f).iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><th scope=\"row\">{}</th><td class=\"num\">{n}</td></tr>",
            i + 1,
            esc(label)
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

/// One line per unit, then the total.
fn lines(out: &mut String, units: &[UnitFigures], total: &UnitFigures) {
    let labels: Vec<&str> = figure_rows(total).iter().map(|x| x.0).collect();
    let key = |u: &UnitFigures| (esc(&u.code), esc(unit_title(u)));
    let t = Table {
        title: LINES,
        class: "lines",
        labels: &labels,
    };
    unit_lines(out, &t, units, total, key, counts);
}

/// The head of a table of units.
struct Table<'a> {
    title: &'a str,
    class: &'a str,
    labels: &'a [&'a str],
}

/// Table `t` with one line per unit (`key`: its code and name, escaped;
/// `cells`: its count cells and the row's end), then the total's.
fn unit_lines<T>(
    out: &mut String,
    t: &Table<'_>,
    units: &[T],
    total: &T,
    key: impl Fn(&T) -> (String, String),
    cells: impl Fn(&mut String, &T),
) {
    let _ = write!(
        out,
        "<h3>{}</h3>\n<table class=\"{}\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th>",
        esc(t.title),
        t.class,
        esc(NO),
        esc(UNIT_CODE),
        esc(UNIT_NAME)
    );
    for label in t.labels {
        let _ = write!(out, "<th>{}</th>", esc(label));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (i, u) in units.iter().enumerate() {
        let (code, name) = key(u);
        let _ = write!(
            out,
            "<tr data-unit=\"{code}\"><td class=\"num\">{}</td><td>{code}</td><td>{name}</td>",
            i + 1
        );
        cells(out, u);
    }
    let _ = write!(
        out,
        "<tr class=\"total\"><td></td><td></td><th scope=\"row\">{}</th>",
        esc(TOTAL)
    );
    cells(out, total);
    out.push_str("</tbody>\n</table>\n");
}

fn counts(out: &mut String, f: &UnitFigures) {
    for (_, n) in figure_rows(f) {
        let _ = write!(out, "<td class=\"num\">{n}</td>");
    }
    out.push_str("</tr>\n");
}

/// The estimates of one unit or the province, in a table of their own.
fn hygiene_table(out: &mut String, h: &Hygiene) {
    let _ = writeln!(
        out,
        "<h3>{}</h3>\n<table class=\"hygiene\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
        esc(hygiene::HYGIENE_TITLE),
        esc(NO),
        esc(ITEM),
        esc(COUNT)
    );
    for (i, (label, n)) in h.rows().iter().enumerate() {
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><th scope=\"row\">{}</th>",
            i + 1,
            esc(label)
        );
        count_cell(out, *n);
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The estimates per unit, then the province.
fn hygiene_lines(out: &mut String, units: &[Hygiene], total: &Hygiene) {
    let labels: Vec<&str> = total.rows().iter().map(|x| x.0).collect();
    let key = |u: &Hygiene| (esc(&u.code), esc(u.title()));
    let t = Table {
        title: hygiene::HYGIENE_LINES,
        class: "hygiene-lines",
        labels: &labels,
    };
    unit_lines(out, &t, units, total, key, hygiene_counts);
}

fn hygiene_counts(out: &mut String, h: &Hygiene) {
    for (_, n) in h.rows() {
        count_cell(out, n);
    }
    out.push_str("</tr>\n");
}

/// A count, or the not-available text in a cell of its own class.
fn count_cell(out: &mut String, n: Option<u64>) {
    match n {
        Some(n) => {
            let _ = write!(out, "<td class=\"num\">{n}</td>");
        }
        None => {
            let _ = write!(out, "<td class=\"na\">{}</td>", esc(hygiene::NOT_AVAILABLE));
        }
    }
}

/// The estimates' basis, under their tables.
fn basis(out: &mut String, sentences: &[String]) {
    let _ = writeln!(
        out,
        "<p><strong>{}:</strong></p>\n<ul class=\"basis\">",
        esc(hygiene::BASIS)
    );
    for s in sentences {
        let _ = writeln!(out, "<li>{}</li>", esc(s));
    }
    out.push_str("</ul>\n");
}

/// Escape text for element content and double- or single-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(
            super::esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
