//! The node key file: created 0600 on first start, refused when others can read it.

use std::path::Path;

use super::{invalid, ConfigError};

/// Loads the node key from `path`, or creates it (mode 0600) on first start.
/// The file holds the 32-byte secret as 64 hex characters.
pub fn load_or_create_key(path: &Path) -> Result<crate::crypto::NodeKey, ConfigError> {
    use crate::crypto::NodeKey;
    use zeroize::Zeroizing;
    if path.exists() {
        return load_key(path);
    }
    let key = NodeKey::random();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| ConfigError::Read {
            path: dir.to_path_buf(),
            err,
        })?;
    }
    let text = Zeroizing::new(hex::encode(*key.to_bytes()));
    write_private(path, text.as_bytes()).map_err(|err| ConfigError::Read {
        path: path.to_path_buf(),
        err,
    })?;
    Ok(key)
}

/// Loads an existing key file (64 hex characters, not readable by others).
pub fn load_key(path: &Path) -> Result<crate::crypto::NodeKey, ConfigError> {
    use crate::crypto::NodeKey;
    use zeroize::Zeroizing;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                return Err(invalid(
                    "key_file",
                    format!("{} is readable by others; chmod 600 it", path.display()),
                ));
            }
        }
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.to_path_buf(),
            err,
        })?,
    );
    let raw = Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| invalid("key_file", "not 64 hex characters"))?,
    );
    let arr: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| invalid("key_file", "not 64 hex characters"))?;
    let arr = Zeroizing::new(arr);
    NodeKey::from_bytes(&arr).map_err(|_| invalid("key_file", "not a valid secret key"))
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}
