//! How queue items become node data: an item is turned into bytes by a
//! [`QueueSerializer`], and the bytes are wrapped as Curator's `ItemSerializer` wraps
//! them (so a Java `DistributedQueue` with a serializer of the same bytes reads our
//! items, and we read its items, `putMulti` batches included): a 4-byte version
//! `0x00010001`, then per item the opcode `0x01`, a 4-byte big-endian length and the
//! bytes, then the opcode `0x02`. Every integer is big-endian.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why an item could not be turned into bytes or back.
pub type CodecError = Box<dyn std::error::Error + Send + Sync>;

/// Turns items into bytes and back (Curator's `QueueSerializer`).
pub trait QueueSerializer<T>: Send + Sync {
    /// The item's bytes.
    fn serialize(&self, item: &T) -> Result<Vec<u8>, CodecError>;
    /// The item these bytes stand for.
    fn deserialize(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// Items that are bytes already (`Vec<u8>`), kept as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerializer;

impl QueueSerializer<Vec<u8>> for BytesSerializer {
    fn serialize(&self, item: &Vec<u8>) -> Result<Vec<u8>, CodecError> {
        Ok(item.clone())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(bytes.to_vec())
    }
}

/// Items as JSON (serde_json), readable by a Java consumer with a JSON serializer.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSerializer;

impl<T: Serialize + DeserializeOwned> QueueSerializer<T> for JsonSerializer {
    fn serialize(&self, item: &T) -> Result<Vec<u8>, CodecError> {
        Ok(serde_json::to_vec(item)?)
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<T, CodecError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// Items as MessagePack (rmp-serde, struct fields by name): compact.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPackSerializer;

impl<T: Serialize + DeserializeOwned> QueueSerializer<T> for MsgPackSerializer {
    fn serialize(&self, item: &T) -> Result<Vec<u8>, CodecError> {
        Ok(rmp_serde::to_vec_named(item)?)
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<T, CodecError> {
        Ok(rmp_serde::from_slice(bytes)?)
    }
}

/// The version Curator's `ItemSerializer` writes first.
const ENVELOPE_VERSION: u32 = 0x0001_0001;
/// An item follows.
const ITEM_OPCODE: u8 = 0x01;
/// No more items.
const EOF_OPCODE: u8 = 0x02;

/// Node data holding `items` (Curator's `ItemSerializer.serialize`).
pub fn encode_items<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = ENVELOPE_VERSION.to_be_bytes().to_vec();
    for item in items {
        out.push(ITEM_OPCODE);
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item);
    }
    out.push(EOF_OPCODE);
    out
}

/// The items in node data (Curator's `ItemSerializer.deserialize`); `None` if it is
/// not such data. Bytes after the end opcode are ignored, as Curator ignores them.
pub fn decode_items(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let (version, mut rest) = split_u32(data)?;
    if version != ENVELOPE_VERSION {
        return None;
    }
    let mut items = Vec::new();
    loop {
        let (&opcode, after) = rest.split_first()?;
        match opcode {
            EOF_OPCODE => return Some(items),
            ITEM_OPCODE => {
                let (len, after) = split_u32(after)?;
                let len = usize::try_from(i32::try_from(len).ok()?).ok()?;
                if after.len() < len {
                    return None;
                }
                let (item, after) = after.split_at(len);
                items.push(item.to_vec());
                rest = after;
            }
            _ => return None,
        }
    }
}

fn split_u32(data: &[u8]) -> Option<(u32, &[u8])> {
    if data.len() < 4 {
        return None;
    }
    let (head, rest) = data.split_at(4);
    Some((u32::from_be_bytes(<[u8; 4]>::try_from(head).ok()?), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_wrapped_as_curator_wraps_them() {
        let data = encode_items([b"ab".as_slice()]);
        assert_eq!(data, [0, 1, 0, 1, 1, 0, 0, 0, 2, b'a', b'b', 2]);
        assert_eq!(decode_items(&data), Some(vec![b"ab".to_vec()]));
        let two = encode_items([b"".as_slice(), b"xyz".as_slice()]);
        assert_eq!(decode_items(&two), Some(vec![vec![], b"xyz".to_vec()]));
        assert_eq!(decode_items(&[0, 1, 0, 1, 2, 9, 9]), Some(vec![]));
        assert_eq!(decode_items(b"plain"), None);
        assert_eq!(decode_items(&[0, 1, 0, 1, 1, 0, 0, 0, 5, 1]), None);
        assert_eq!(decode_items(&[0, 1, 0, 1, 1, 0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn serializers_round_trip() {
        let json: &dyn QueueSerializer<(u32, String)> = &JsonSerializer;
        let bytes = json.serialize(&(7, "x".into())).unwrap();
        assert_eq!(bytes, br#"[7,"x"]"#);
        assert_eq!(json.deserialize(&bytes).unwrap(), (7, "x".into()));
        let pack: &dyn QueueSerializer<Vec<String>> = &MsgPackSerializer;
        let bytes = pack.serialize(&vec!["a".into()]).unwrap();
        assert_eq!(pack.deserialize(&bytes).unwrap(), vec!["a".to_string()]);
        assert!(pack.deserialize(b"\xc1").is_err());
    }
}
