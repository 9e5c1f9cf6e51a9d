//! What officials read, from the offender store: per-unit offender lists
//! ([`export`]: CSV, JSON, XLSX) and the campaign report ([`report`]:
//! Markdown, HTML, XLSX).

pub mod central;
pub mod export;
pub mod report;
