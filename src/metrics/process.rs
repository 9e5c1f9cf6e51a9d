//! This process's memory, read from `/proc/self/status` (for benchmarks and
//! `feeds check`; the Prometheus process collector covers `/metrics`).

/// Reset the kernel's peak-RSS mark (VmHWM), so a benchmark can report each
/// stage's own peak. Best effort: older kernels lack it.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size of this process (VmHWM), in MiB; 0 where unknown.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Resident set size of this process now (VmRSS), in MiB; 0 where unknown.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
