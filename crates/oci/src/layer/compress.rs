//! Compression detection and transparent decompression of layer blobs.
//!
//! Registries serve layers gzip- or zstd-compressed (or, rarely, plain). The media type is not
//! trusted: the first bytes of the stream decide, as in Docker's `DecompressStream`.

use std::io::{self, BufRead, Read};

const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The media-type suffix (`+gzip`, `+zstd`) or `""`.
    pub fn media_type_suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "+gzip",
            Compression::Zstd => "+zstd",
        }
    }
}

/// Recognises gzip and zstd by their magic bytes; anything else (tar included) is `None`.
pub fn detect_compression(peek: &[u8]) -> Compression {
    if peek.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if peek.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `r` in the decompressor its first bytes call for. Streams that are neither gzip nor
/// zstd are passed through unchanged (a tar reader then rejects garbage). Gzip streams of several
/// members are read to the end, as Go's gzip reader does.
pub fn decompress<'a, R: BufRead + 'a>(mut r: R) -> io::Result<Box<dyn Read + 'a>> {
    // `fill_buf` may return fewer bytes than the magic needs (a short first read); gather up to
    // four bytes without consuming them where the buffer allows it.
    let peek = fill_peek(&mut r)?;
    Ok(match detect_compression(&peek) {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(r)?),
        Compression::None => Box::new(r),
    })
}

/// Returns the first bytes of `r` without consuming them (at most 4; fewer only at EOF or when
/// the reader's buffer cannot hold them, in which case detection sees what is there).
fn fill_peek<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        return Ok(buf[..buf.len().min(4)].to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Write};

    #[test]
    fn detects_magic() {
        assert_eq!(
            detect_compression(&[0x1f, 0x8b, 0x08, 0]),
            Compression::Gzip
        );
        assert_eq!(detect_compression(&ZSTD_MAGIC), Compression::Zstd);
        assert_eq!(detect_compression(b"etc/\0\0\0"), Compression::None);
        assert_eq!(detect_compression(&[]), Compression::None);
        assert_eq!(detect_compression(&[0x1f]), Compression::None);
    }

    #[test]
    fn round_trips() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        for blob in [gz, zs, data.clone()] {
            let mut out = Vec::new();
            decompress(BufReader::new(&blob[..]))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
        // Empty input is an empty stream.
        let mut out = Vec::new();
        decompress(&b""[..]).unwrap().read_to_end(&mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn multi_member_gzip() {
        let mut blob = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            blob.extend(gz.finish().unwrap());
        }
        let mut out = String::new();
        decompress(&blob[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello world");
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[7u8; 100_000]).unwrap();
        let gz = gz.finish().unwrap();
        let cut = &gz[..gz.len() - 10];
        let mut out = Vec::new();
        assert!(decompress(cut).unwrap().read_to_end(&mut out).is_err());
    }
}
