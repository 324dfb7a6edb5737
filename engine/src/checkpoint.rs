//! Small state files written atomically: tmp file, fsync, rename, fsync the directory (DESIGN.md §3). The
//! format is text, one record per line, sealed by a CRC-32C line so that a torn or edited file is detected
//! and treated as absent rather than trusted.
//!
//! ```text
//! <kind> v1
//! <field> <field> ...
//! crc32c <8 hex digits over every byte above this line>
//! ```

use std::path::Path;

use glommio::io::{BufferedFile, Directory};

use crate::error::{EngineError, Result};

/// Encodes `rows` under a `<kind> v1` header and a CRC line.
pub fn encode(kind: &str, rows: &[Vec<i64>]) -> Vec<u8> {
    let mut text = format!("{kind} v1\n");
    for row in rows {
        let fields: Vec<String> = row.iter().map(i64::to_string).collect();
        text.push_str(&fields.join(" "));
        text.push('\n');
    }
    let crc = crc32c::crc32c(text.as_bytes());
    text.push_str(&format!("crc32c {crc:08x}\n"));
    text.into_bytes()
}

/// Decodes what [`encode`] wrote. `None` when the kind, version or CRC do not match, or a field is not a
/// number: the caller then rebuilds the state from the log.
pub fn decode(kind: &str, bytes: &[u8]) -> Option<Vec<Vec<i64>>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let body_end = text.trim_end_matches('\n').rfind('\n')? + 1;
    let (body, crc_line) = text.split_at(body_end);
    let stored = u32::from_str_radix(crc_line.trim().strip_prefix("crc32c ")?, 16).ok()?;
    if crc32c::crc32c(body.as_bytes()) != stored {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != format!("{kind} v1") {
        return None;
    }
    lines
        .map(|line| line.split_whitespace().map(|field| field.parse::<i64>().ok()).collect::<Option<Vec<_>>>())
        .collect()
}

/// How a checkpoint write is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and the directory now.
    Now,
    /// Leave it to one later `syncfs`: the one before the clean-shutdown marker is written, or the one that
    /// ends a process start's recovery (`LogManager::sync_recovered`). Nothing may rely on the file before
    /// then; a crash first leaves the previous version or an unreadable one, and the next start, being
    /// unclean, recovers from the log again.
    Deferred,
}

/// Writes `bytes` to `dir/name` atomically and durably.
pub async fn write_atomic(dir: &Path, name: &str, bytes: Vec<u8>) -> Result<()> {
    write_with(dir, name, bytes, Durability::Now).await
}

/// Writes `bytes` to `dir/name` by tmp file and rename, fsyncing as `durability` says.
pub async fn write_with(dir: &Path, name: &str, bytes: Vec<u8>, durability: Durability) -> Result<()> {
    let final_path = dir.join(name);
    let tmp_path = dir.join(format!("{name}.tmp"));
    let file =
        BufferedFile::create(&tmp_path).await.map_err(|e| EngineError::glommio("create checkpoint", &tmp_path, e))?;
    let expected = bytes.len();
    let written = file.write_at(bytes, 0).await.map_err(|e| EngineError::glommio("write checkpoint", &tmp_path, e))?;
    if written != expected {
        return Err(EngineError::io(
            "write checkpoint",
            &tmp_path,
            std::io::Error::new(std::io::ErrorKind::WriteZero, "short write"),
        ));
    }
    if durability == Durability::Now {
        file.fdatasync().await.map_err(|e| EngineError::glommio("fsync checkpoint", &tmp_path, e))?;
    }
    file.close().await.map_err(|e| EngineError::glommio("close checkpoint", &tmp_path, e))?;
    glommio::io::rename(&tmp_path, &final_path)
        .await
        .map_err(|e| EngineError::glommio("rename checkpoint", &final_path, e))?;
    match durability {
        Durability::Now => sync_dir(dir).await,
        Durability::Deferred => Ok(()),
    }
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub async fn sync_dir(dir: &Path) -> Result<()> {
    let handle = Directory::open(dir).await.map_err(|e| EngineError::glommio("open directory", dir, e))?;
    handle.sync().await.map_err(|e| EngineError::glommio("fsync directory", dir, e))?;
    handle.close().await.map_err(|e| EngineError::glommio("close directory", dir, e))
}

/// Reads a whole small file; `Ok(None)` when it does not exist.
pub async fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match BufferedFile::open(path).await {
        Ok(file) => file,
        Err(e) => {
            let io: std::io::Error = e.into();
            if io.kind() == std::io::ErrorKind::NotFound {
                return Ok(None);
            }
            return Err(EngineError::io("open", path, io));
        }
    };
    let size = file.file_size().await.map_err(|e| EngineError::glommio("stat", path, e))?;
    let data = file.read_at(0, size as usize).await.map_err(|e| EngineError::glommio("read", path, e))?;
    let bytes = data.to_vec();
    file.close().await.map_err(|e| EngineError::glommio("close", path, e))?;
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let rows = vec![vec![1, 2], vec![-1, i64::MAX]];
        let bytes = encode("test", &rows);
        assert_eq!(decode("test", &bytes), Some(rows));
        assert_eq!(decode("other", &bytes), None);
        let mut tampered = bytes.clone();
        tampered[8] = b'9';
        assert_eq!(decode("test", &tampered), None);
        assert_eq!(decode("test", &bytes[..bytes.len() - 4]), None);
        assert_eq!(decode("test", b""), None);
    }

    #[test]
    fn docs_format_checkpoint_examples() {
        // The examples drawn in docs/format.md.
        assert_eq!(encode("partition", &[vec![0, 1200, 1180]]), b"partition v1\n0 1200 1180\ncrc32c 42b4a8bb\n");
        assert_eq!(
            encode("leader-epochs", &[vec![0, 0], vec![3, 840]]),
            b"leader-epochs v1\n0 0\n3 840\ncrc32c c44258ee\n"
        );
    }
}
