//! The sensor's status for the console, read off the registry: the same
//! numbers `/metrics` shows, so the two can never disagree.

use super::Metrics;
use crate::store::console::{CaptureStatus, FeedStatus, SensorStatus};
use prometheus::proto::{Metric, MetricFamily, MetricType};
use std::collections::BTreeMap;

fn label<'a>(m: &'a Metric, name: &str) -> &'a str {
    m.get_label()
        .iter()
        .find(|l| l.name() == name)
        .map_or("", |l| l.value())
}

/// A sample's value, whichever type the family has.
fn value(f: &MetricFamily, m: &Metric) -> f64 {
    match f.get_field_type() {
        MetricType::COUNTER => m.get_counter().get_value(),
        MetricType::GAUGE => m.get_gauge().get_value(),
        _ => 0.0,
    }
}

fn feed<'a>(feeds: &'a mut BTreeMap<String, FeedStatus>, m: &Metric) -> &'a mut FeedStatus {
    let name = label(m, "feed");
    feeds.entry(name.to_owned()).or_insert_with(|| FeedStatus {
        name: name.to_owned(),
        ..Default::default()
    })
}

fn capture<'a>(
    captures: &'a mut BTreeMap<String, CaptureStatus>,
    m: &Metric,
) -> &'a mut CaptureStatus {
    let name = label(m, "interface");
    captures
        .entry(name.to_owned())
        .or_insert_with(|| CaptureStatus {
            interface: name.to_owned(),
            ..Default::default()
        })
}

impl Metrics {
    /// The status `sensor` reports now (`mode`: `live` or `replay`).
    pub fn status(&self, sensor: &str, mode: &str, at_ns: i64) -> SensorStatus {
        self.refresh();
        let families = self.registry.gather();
        let mut feeds: BTreeMap<String, FeedStatus> = BTreeMap::new();
        let mut captures: BTreeMap<String, CaptureStatus> = BTreeMap::new();
        let mut drops = BTreeMap::new();
        for f in &families {
            for m in f.get_metric() {
                fold(f, m, &mut feeds, &mut captures, &mut drops);
            }
        }
        SensorStatus {
            sensor: sensor.to_owned(),
            at_ns,
            mode: mode.to_owned(),
            feeds: feeds.into_values().collect(),
            captures: captures.into_values().collect(),
            drops,
        }
    }
}

fn fold(
    f: &MetricFamily,
    m: &Metric,
    feeds: &mut BTreeMap<String, FeedStatus>,
    captures: &mut BTreeMap<String, CaptureStatus>,
    drops: &mut BTreeMap<String, u64>,
) {
    let v = value(f, m);
    match f.name() {
        "gatewatch_feed_indicators" => {
            let kind = label(m, "kind").to_owned();
            feed(feeds, m).indicators.insert(kind, v as u64);
        }
        "gatewatch_feed_last_load_timestamp_seconds" if v > 0.0 => {
            feed(feeds, m).last_load_s = Some(v)
        }
        "gatewatch_feed_last_failure_timestamp_seconds" if v > 0.0 => {
            feed(feeds, m).last_failure_s = Some(v)
        }
        "gatewatch_feed_reload_refused_total" => {
            let reason = label(m, "reason").to_owned();
            feed(feeds, m).refused.insert(reason, v as u64);
        }
        "gatewatch_capture_packets_total" => capture(captures, m).packets = v as u64,
        "gatewatch_capture_errors_total" => capture(captures, m).errors = v as u64,
        "gatewatch_capture_up" => capture(captures, m).up = v > 0.0,
        "gatewatch_drops_total" => {
            drops.insert(label(m, "stage").to_owned(), v as u64);
        }
        _ => {}
    }
}
