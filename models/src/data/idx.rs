//! The IDX format of LeCun et al.'s MNIST files, raw or gzip-compressed.
//!
//! Layout: two zero bytes, a type byte, the number of dimensions `d`, then
//! `d` big-endian `u32` sizes, then the data, row-major. Only unsigned bytes
//! (type `0x08`, what MNIST uses) are accepted; other types are refused with
//! a clear error rather than misread.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use super::error::DataError;

/// Largest IDX payload read (1 GiB): MNIST's largest file is 47 MB, and a
/// header claiming more is far more likely corrupt than real.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxU8 {
    /// Sizes of each dimension, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads the IDX file at `path`, decompressing it if it is gzip (detected
/// by its magic bytes, not its name).
///
/// Fails on an unreadable file, a bad header (magic, type other than
/// unsigned byte, zero or more than 4 dimensions, size over
/// [`MAX_IDX_BYTES`]), a corrupted or truncated gzip stream, and data
/// shorter or longer than the header promises.
pub fn read_idx_u8(path: &Path) -> Result<IdxU8, DataError> {
    read(path, None)
}

/// Like [`read_idx_u8`], also feeding every decompressed byte to `hasher`,
/// so a caller can check the content against a known digest in the same pass.
pub fn read_idx_u8_hashed(path: &Path, hasher: &mut Sha256) -> Result<IdxU8, DataError> {
    read(path, Some(hasher))
}

fn read(path: &Path, hasher: Option<&mut Sha256>) -> Result<IdxU8, DataError> {
    let io = |source| DataError::Io { path: path.to_owned(), source };
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    let mut magic = [0u8; 2];
    let peeked = read_up_to(&mut file, &mut magic).map_err(io)?;
    let head = std::io::Cursor::new(magic[..peeked].to_vec());
    if peeked == 2 && magic == [0x1f, 0x8b] {
        let gz = GzDecoder::new(head.chain(file));
        parse(path, &mut Hashing { inner: gz, hasher }, true)
    } else {
        parse(path, &mut Hashing { inner: head.chain(file), hasher }, false)
    }
}

/// A reader that feeds what passes through it to a hasher.
struct Hashing<'h, R> {
    inner: R,
    hasher: Option<&'h mut Sha256>,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_deref_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn parse(path: &Path, r: &mut impl Read, gzip: bool) -> Result<IdxU8, DataError> {
    let err = |source: std::io::Error| -> DataError {
        let path: PathBuf = path.to_owned();
        if gzip { DataError::Gzip { path, source } } else { DataError::Io { path, source } }
    };
    let bad = |reason: String| DataError::BadHeader { path: path.to_owned(), reason };
    let mut head = [0u8; 4];
    if read_up_to(r, &mut head).map_err(err)? < 4 {
        return Err(bad("the file ends inside the 4-byte magic".into()));
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(bad(format!("magic starts {:#04x} {:#04x}, expected 0x00 0x00", head[0], head[1])));
    }
    if head[2] != 0x08 {
        return Err(bad(format!("element type {:#04x}; only unsigned bytes (0x08) are supported", head[2])));
    }
    let ndim = usize::from(head[3]);
    if !(1..=4).contains(&ndim) {
        return Err(bad(format!("{ndim} dimensions; expected 1 to 4")));
    }
    let mut dims = Vec::with_capacity(ndim);
    let mut total: u64 = 1;
    for i in 0..ndim {
        let mut b = [0u8; 4];
        if read_up_to(r, &mut b).map_err(err)? < 4 {
            return Err(bad(format!("the file ends inside dimension {i}")));
        }
        let d = u32::from_be_bytes(b);
        total = total.saturating_mul(u64::from(d));
        dims.push(d as usize);
    }
    if total > MAX_IDX_BYTES {
        return Err(bad(format!("dimensions {dims:?} call for {total} bytes, over the {MAX_IDX_BYTES}-byte limit")));
    }
    // Read at most one byte more than promised: enough to tell "too long"
    // without trusting the file to end.
    let mut data = Vec::with_capacity(total as usize);
    r.take(total + 1).read_to_end(&mut data).map_err(err)?;
    if data.len() as u64 != total {
        return Err(DataError::Length { path: path.to_owned(), expected: total, actual: data.len() as u64 });
    }
    Ok(IdxU8 { dims, data })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{Compression, write::GzEncoder};

    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_raw_and_gzip_alike() {
        let dir = tempfile::tempdir().unwrap();
        let raw = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let want = IdxU8 { dims: vec![2, 3], data: vec![1, 2, 3, 4, 5, 6] };
        assert_eq!(read_idx_u8(&write(dir.path(), "a", &raw)).unwrap(), want);
        assert_eq!(read_idx_u8(&write(dir.path(), "a.gz", &gz(&raw))).unwrap(), want);
    }

    #[test]
    fn truncation_corruption_and_bad_headers_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let raw = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let short = read_idx_u8(&write(d, "short", &raw[..raw.len() - 1])).unwrap_err();
        assert!(matches!(short, DataError::Length { expected: 6, actual: 5, .. }), "{short}");
        let mut long = raw.clone();
        long.push(9);
        assert!(matches!(read_idx_u8(&write(d, "long", &long)).unwrap_err(), DataError::Length { actual: 7, .. }));

        let zipped = gz(&raw);
        let cut = read_idx_u8(&write(d, "cut.gz", &zipped[..zipped.len() - 6])).unwrap_err();
        assert!(matches!(cut, DataError::Gzip { .. } | DataError::Length { .. }), "{cut}");
        let mut flipped = zipped.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert!(read_idx_u8(&write(d, "flip.gz", &flipped)).is_err());

        let mut float = raw.clone();
        float[2] = 0x0d;
        assert!(read_idx_u8(&write(d, "f", &float)).unwrap_err().to_string().contains("only unsigned bytes"));
        let huge = idx(&[60_000, 60_000, 60_000], &[]);
        assert!(read_idx_u8(&write(d, "huge", &huge)).unwrap_err().to_string().contains("limit"));
        assert!(read_idx_u8(&write(d, "tiny", &[0, 0])).unwrap_err().to_string().contains("magic"));
        assert!(read_idx_u8(&write(d, "zero", &idx(&[], &[]))).unwrap_err().to_string().contains("0 dimensions"));
        assert!(matches!(read_idx_u8(&d.join("absent")).unwrap_err(), DataError::Io { .. }));
    }
}
