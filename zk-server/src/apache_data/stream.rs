//! The compression around a snapshot file, chosen by its name as ZooKeeper's
//! `SnapStream` chooses it: `snapshot.<zxid>` is plain, `snapshot.<zxid>.gz` gzip
//! (`GZIPOutputStream`), `snapshot.<zxid>.snappy` snappy-java's stream format
//! (`SnappyOutputStream`). The Adler-32 checksums are computed over the uncompressed
//! bytes, so the snapshot reader sees the same bytes whatever the compression.
//!
//! snappy-java's stream: an 8-byte magic (`0x82 "SNAPPY" 0`), a version and a
//! minimum compatible version (big-endian ints, both 1), then blocks of
//! `[compressed length: i32][raw snappy block]`, each block at most 32 KiB
//! uncompressed.

use std::io::{Read, Write};

/// How a snapshot file is compressed (`zookeeper.snapshot.compression.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// None (`CHECKED`).
    None,
    /// gzip (`gz`).
    Gzip,
    /// snappy-java (`snappy`).
    Snappy,
}

const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const SNAPPY_BLOCK: usize = 32 * 1024;

impl Compression {
    /// The compression a file name denotes (`StreamMode.fromString` of its last
    /// dot-separated part).
    pub fn of_file_name(name: &str) -> Compression {
        match name.rsplit('.').next() {
            Some("gz") => Compression::Gzip,
            Some("snappy") => Compression::Snappy,
            _ => Compression::None,
        }
    }

    /// From `zookeeper.snapshot.compression.method`'s value.
    pub fn from_method(method: &str) -> Option<Compression> {
        match method {
            "" | "none" | "checked" => Some(Compression::None),
            "gz" => Some(Compression::Gzip),
            "snappy" => Some(Compression::Snappy),
            _ => None,
        }
    }

    /// The file-name suffix, with its dot (`""` for none).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Snappy => ".snappy",
        }
    }

    /// The uncompressed bytes of a file's contents.
    pub fn decode(self, raw: Vec<u8>) -> Result<Vec<u8>, String> {
        match self {
            Compression::None => Ok(raw),
            Compression::Gzip => {
                let mut out = Vec::with_capacity(raw.len().saturating_mul(4));
                flate2::read::GzDecoder::new(raw.as_slice())
                    .read_to_end(&mut out)
                    .map_err(|e| format!("gzip stream is damaged or cut short: {e}"))?;
                Ok(out)
            }
            Compression::Snappy => snappy_decode(&raw),
        }
    }

    /// The file contents for uncompressed bytes.
    pub fn encode(self, plain: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Compression::None => Ok(plain.to_vec()),
            Compression::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(plain).map_err(|e| e.to_string())?;
                enc.finish().map_err(|e| e.to_string())
            }
            Compression::Snappy => snappy_encode(plain),
        }
    }
}

fn snappy_decode(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut rest = raw
        .strip_prefix(SNAPPY_MAGIC.as_slice())
        .ok_or("not a snappy-java stream (no SNAPPY magic)")?;
    if rest.len() < 8 {
        return Err("snappy stream cut short in its header".into());
    }
    rest = &rest[8..];
    let mut out = Vec::with_capacity(raw.len().saturating_mul(3));
    let mut decoder = snap::raw::Decoder::new();
    while !rest.is_empty() {
        // snappy-java concatenates streams by repeating the header.
        if let Some(after) = rest.strip_prefix(SNAPPY_MAGIC.as_slice()) {
            rest = after
                .get(8..)
                .ok_or("snappy stream cut short in a header")?;
            continue;
        }
        let (len, after) = rest
            .split_first_chunk::<4>()
            .ok_or("snappy stream cut short in a block length")?;
        let len = i32::from_be_bytes(*len);
        let len = usize::try_from(len).map_err(|_| format!("snappy block length {len}"))?;
        let block = after
            .get(..len)
            .ok_or("snappy stream cut short inside a block")?;
        let plain = decoder
            .decompress_vec(block)
            .map_err(|e| format!("snappy block is damaged: {e}"))?;
        out.extend_from_slice(&plain);
        rest = &after[len..];
    }
    Ok(out)
}

fn snappy_encode(plain: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(plain.len() / 2 + 16);
    out.extend_from_slice(&SNAPPY_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for block in plain.chunks(SNAPPY_BLOCK) {
        let compressed = encoder.compress_vec(block).map_err(|e| e.to_string())?;
        out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_select_the_compression() {
        assert_eq!(Compression::of_file_name("snapshot.1f"), Compression::None);
        assert_eq!(
            Compression::of_file_name("snapshot.1f.gz"),
            Compression::Gzip
        );
        assert_eq!(
            Compression::of_file_name("snapshot.1f.snappy"),
            Compression::Snappy
        );
    }

    #[test]
    fn every_compression_round_trips_and_detects_cuts() {
        let plain: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for c in [Compression::None, Compression::Gzip, Compression::Snappy] {
            let enc = c.encode(&plain).unwrap();
            assert_eq!(c.decode(enc.clone()).unwrap(), plain, "{c:?}");
            if c != Compression::None {
                let cut = enc[..enc.len() - 7].to_vec();
                assert!(c.decode(cut).is_err(), "{c:?} cut short");
            }
        }
    }
}
