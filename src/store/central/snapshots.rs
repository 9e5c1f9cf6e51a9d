//! Signed feed snapshots published on the central (`gw_snapshots`), and
//! what a sensor asks for: the newest one above the version it runs.
//!
//! The central stores bytes and what the publisher read from them; it
//! vouches for nothing. A sensor verifies what it fetches with its own
//! key and swaps it in only under the swap rules (`intel::snap::swap`),
//! so a row whose `version` column lies, or whose bytes another key
//! signed, is refused there.

use super::{Central, CentralError};

/// What publishing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// The snapshot is the newest one now.
    Inserted,
    /// The same version with the same bytes was published already.
    AlreadyThere,
}

/// The newest published snapshot above a version, as listed (its bytes
/// are fetched separately, only when wanted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub version: u64,
    pub sha256: String,
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn as_db(version: u64) -> Result<i64, CentralError> {
    i64::try_from(version).map_err(|_| {
        CentralError::Invalid(format!(
            "snapshot version {version} is beyond what the central stores (at most {})",
            i64::MAX
        ))
    })
}

impl Central {
    /// Publish the snapshot `bytes` (version `version`, `indicators`
    /// indicators, as the caller read them): refused unless newer than
    /// every published one; the same version with the same bytes is no
    /// change. Publishers are serialised by a table lock.
    pub fn publish_snapshot(
        &mut self,
        version: u64,
        indicators: u64,
        bytes: &[u8],
    ) -> Result<Published, CentralError> {
        let v = as_db(version)?;
        let n = i64::try_from(indicators).unwrap_or(i64::MAX);
        let sum = sha256_hex(bytes);
        let shown = self.shown.clone();
        let sql = |source| CentralError::Sql {
            url: shown.clone(),
            source,
        };
        let mut tx = self.client.transaction().map_err(sql)?;
        tx.batch_execute("LOCK TABLE gw_snapshots IN SHARE ROW EXCLUSIVE MODE")
            .map_err(sql)?;
        let newest = tx
            .query_opt(
                "SELECT version, sha256 FROM gw_snapshots ORDER BY version DESC LIMIT 1",
                &[],
            )
            .map_err(sql)?
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
        match newest {
            Some((nv, ns)) if nv == v && ns == sum => return Ok(Published::AlreadyThere),
            Some((nv, _)) if nv >= v => {
                return Err(CentralError::Invalid(format!(
                    "snapshot version {version} is not newer than version {nv} published already{}; compile it again with a higher --version",
                    if nv == v { " (with other bytes)" } else { "" }
                )));
            }
            _ => {}
        }
        tx.execute(
            "INSERT INTO gw_snapshots (version, published_at, indicators, sha256, bytes)
             VALUES ($1, now(), $2, $3, $4)",
            &[&v, &n, &sum, &bytes],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(Published::Inserted)
    }

    /// The newest published snapshot with a version above `running`.
    pub fn newest_snapshot_above(&mut self, running: u64) -> Result<Option<Listed>, CentralError> {
        let above = i64::try_from(running).unwrap_or(i64::MAX);
        let row = self
            .client
            .query_opt(
                "SELECT version, sha256 FROM gw_snapshots WHERE version > $1
                 ORDER BY version DESC LIMIT 1",
                &[&above],
            )
            .map_err(|e| self.sql(e))?;
        Ok(row.map(|r| Listed {
            version: r.get::<_, i64>(0).max(0) as u64,
            sha256: r.get(1),
        }))
    }

    /// The bytes of the published snapshot `version` (`None`: not there).
    pub fn snapshot_bytes(&mut self, version: u64) -> Result<Option<Vec<u8>>, CentralError> {
        let v = as_db(version)?;
        let row = self
            .client
            .query_opt("SELECT bytes FROM gw_snapshots WHERE version = $1", &[&v])
            .map_err(|e| self.sql(e))?;
        Ok(row.map(|r| r.get(0)))
    }
}
