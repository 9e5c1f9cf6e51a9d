//! The overview's chart, drawn on the server as SVG: hosts detected,
//! marked cleaned and found reinfected per day. No script; each point has
//! a `<title>` (the browser's tooltip) and the page has the same numbers as
//! a table.

use crate::store::console::DayCounts;
use maud::{Markup, html};

const W: f64 = 1000.0;
const H: f64 = 260.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 34.0;

/// One line: label, colour, its value on a day.
type Series = (&'static str, &'static str, fn(&DayCounts) -> u64);

const SERIES: [Series; 3] = [
    ("Phát hiện mới", "#b00020", |d| d.detected),
    ("Đã xử lý", "#1a7f37", |d| d.cleaned),
    ("Tái nhiễm", "#d97706", |d| d.reinfected),
];

/// A y-axis step that gives at most about five grid lines.
fn step(max: u64) -> u64 {
    let mut s = 1;
    while max / s > 5 {
        s = match s.to_string().as_bytes()[0] {
            b'1' => s * 2,
            b'2' => s / 2 * 5,
            _ => s * 2,
        };
    }
    s
}

fn label(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|d| d.format("%d/%m").to_string())
        .unwrap_or_default()
}

/// `days`: one entry per day, in order (zeros included).
pub fn daily(days: &[DayCounts]) -> Markup {
    let n = days.len().max(1);
    let max = days
        .iter()
        .flat_map(|d| SERIES.iter().map(move |s| (s.2)(d)))
        .max()
        .unwrap_or(0);
    let st = step(max.max(1));
    let top = max.max(1).div_ceil(st) * st;
    // Rounded to a tenth: short attributes, no float noise in the page.
    let r = |v: f64| (v * 10.0).round() / 10.0;
    let x = |i: usize| r(LEFT + (W - LEFT - RIGHT) * (i as f64 + 0.5) / n as f64);
    let y = |v: u64| r(TOP + (H - TOP - BOTTOM) * (1.0 - v as f64 / top as f64));
    let every = n.div_ceil(10).max(1);
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H) } width="100%"
            role="img" aria-label="Số máy phát hiện, đã xử lý và tái nhiễm theo ngày" {
            @for g in (0..=top).step_by(st as usize) {
                line x1=(LEFT) x2=(W - RIGHT) y1=(y(g)) y2=(y(g)) stroke="#e1e4e8" {}
                text x=(LEFT - 6.0) y=(y(g) + 4.0) text-anchor="end" font-size="11" fill="#57606a" { (g) }
            }
            @for (i, d) in days.iter().enumerate() {
                @if i % every == 0 {
                    text x=(x(i)) y=(H - BOTTOM + 16.0) text-anchor="middle" font-size="11" fill="#57606a" { (label(d.day)) }
                }
            }
            @for (si, (name, colour, value)) in SERIES.iter().enumerate() {
                polyline fill="none" stroke=(colour) stroke-width="2"
                    points=(days.iter().enumerate().map(|(i, d)| format!("{:.1},{:.1}", x(i), y(value(d)))).collect::<Vec<_>>().join(" ")) {}
                @for (i, d) in days.iter().enumerate() {
                    circle cx=(x(i)) cy=(y(value(d))) r="3" fill=(colour) {
                        title { (label(d.day)) ": " (value(d)) " " (name) }
                    }
                }
                rect x=(LEFT + 150.0 * si as f64) y="6" width="12" height="12" fill=(colour) {}
                text x=(LEFT + 150.0 * si as f64 + 18.0) y="16" font-size="12" fill="#1d2733" { (name) }
            }
        }
    }
}

/// Days `from..=to` with the counts of `per_unit` summed, zeros filled.
pub fn fill<'a>(
    from: i64,
    to: i64,
    per_unit: impl Iterator<Item = &'a [DayCounts]>,
) -> Vec<DayCounts> {
    let mut out: Vec<DayCounts> = (from..=to)
        .map(|day| DayCounts {
            day,
            ..Default::default()
        })
        .collect();
    for days in per_unit {
        for d in days {
            if let Some(o) = usize::try_from(d.day - from)
                .ok()
                .and_then(|i| out.get_mut(i))
            {
                o.detected += d.detected;
                o.cleaned += d.cleaned;
                o.reinfected += d.reinfected;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round_and_few() {
        assert_eq!(step(1), 1);
        assert_eq!(step(7), 2);
        assert_eq!(step(23), 5);
        assert_eq!(step(60), 20);
        assert_eq!(step(480), 100);
    }

    #[test]
    fn days_are_summed_and_filled() {
        let a = [DayCounts {
            day: 11,
            detected: 2,
            cleaned: 1,
            reinfected: 0,
        }];
        let b = [
            DayCounts {
                day: 11,
                detected: 1,
                cleaned: 0,
                reinfected: 1,
            },
            DayCounts {
                day: 40,
                detected: 9,
                cleaned: 0,
                reinfected: 0,
            },
        ];
        let v = fill(10, 12, [&a[..], &b[..]].into_iter());
        assert_eq!(v.len(), 3);
        assert_eq!((v[1].detected, v[1].cleaned, v[1].reinfected), (3, 1, 1));
        assert_eq!(
            v[0],
            DayCounts {
                day: 10,
                ..Default::default()
            }
        );
        let svg = daily(&v).into_string();
        assert_eq!(svg.matches("<circle").count(), 9);
        assert!(svg.contains("12/01: 3 Phát hiện mới"), "{svg}");
        assert!(!svg.contains("0000000"), "{svg}");
    }
}
