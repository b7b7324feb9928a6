//! Checks an LMDB environment must pass before anything reads its pages.

use std::path::Path;

use heed::Env;

use super::error::StoreError;

/// Refuses an environment whose file is shorter than its newest snapshot needs
/// ([`StoreError::Truncated`]). Called right after `mdb_env_open`, which reads only the
/// two meta pages, and before any transaction touches a data page.
pub(super) fn refuse_truncated<T>(env: &Env<T>, dir: &Path) -> Result<(), StoreError> {
    let info = env.info();
    let page = u64::from(env.stat().page_size);
    let need = (info.last_page_number as u64)
        .saturating_add(1)
        .saturating_mul(page);
    let have = env.real_disk_size()?;
    if have < need {
        return Err(StoreError::Truncated {
            path: dir.join("data.mdb").display().to_string(),
            have,
            need,
        });
    }
    Ok(())
}
