//! Private keys written by `keygen` and `evidence keygen`: readable by their owner only,
//! and never written over a key that may still be needed.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates `output` with mode 0600 and writes `text`; refuses to overwrite.
pub(super) fn create(output: &Path, text: &str, what: &str) -> Result<(), u8> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            errln!(
                "error: {} already exists; refusing to overwrite {what}\n  hint: choose another path, or delete the old one if you are sure",
                output.display()
            );
            return Err(2);
        }
        Err(e) => {
            errln!("error: cannot create {}: {e}", output.display());
            return Err(2);
        }
    };
    if let Err(e) = file
        .write_all(text.as_bytes())
        .and_then(|_| file.sync_all())
    {
        errln!("error: cannot write {}: {e}", output.display());
        let _ = std::fs::remove_file(output);
        return Err(2);
    }
    Ok(())
}
