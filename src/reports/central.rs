//! The campaign report of the central view: the nation, or one province,
//! with units named per province in the nation's (two provinces may share
//! a unit code). Figures only: the hygiene estimates need a sensor's raw
//! records, which the central does not keep.

use crate::reports::report::{Period, Report};
use crate::store::central::{Central, CentralError};
use crate::store::query::UnitFigures;

/// Units of the nation are named after their province too.
fn national(province: String, mut u: UnitFigures) -> UnitFigures {
    u.code = format!("{province}/{}", u.code);
    u.name = format!("{} ({province})", u.name);
    u
}

/// The report for `period` over `province` (`None`: the nation), or one
/// `unit` of it; `None` when that unit has no detection in the period.
pub fn report(
    central: &mut Central,
    period: Period,
    province: Option<&str>,
    unit: Option<&str>,
) -> Result<Option<Report>, CentralError> {
    let national_view = province.is_none();
    let mut units: Vec<UnitFigures> = central
        .unit_figures(period.from_ns, period.to_ns, province)?
        .into_iter()
        .map(|(p, u)| if national_view { national(p, u) } else { u })
        .collect();
    if let Some(code) = unit {
        units.retain(|u| u.code == code);
        if units.is_empty() {
            return Ok(None);
        }
    }
    let sensors = central.sensors(province)?;
    let source = format!("cơ sở dữ liệu trung tâm {}", central.shown());
    Ok(Some(Report::from_figures(
        period,
        units,
        source,
        sensors,
        unit.is_none(),
    )))
}
