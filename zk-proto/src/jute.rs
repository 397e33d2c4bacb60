//! Jute, ZooKeeper's serialisation format, and the [`Record`] trait every wire type implements.
//!
//! The encoding is Java's `BinaryOutputArchive`:
//!
//! | jute type         | bytes                                                        |
//! |-------------------|--------------------------------------------------------------|
//! | `int`             | i32, big-endian                                              |
//! | `long`            | i64, big-endian                                              |
//! | `boolean`         | one byte, 0 or 1 (any non-zero byte reads as true, as Java)  |
//! | `buffer`          | i32 length, then the bytes; length -1 is `null`              |
//! | `ustring`         | i32 length, then UTF-8; length -1 is `null`                  |
//! | `vector<T>`       | i32 count, then each element; count -1 is `null`             |
//! | record            | its fields in declaration order, nothing around them         |
//!
//! Decoding never trusts a length or count: anything negative other than -1, or larger
//! than what is left of the input, is an error, and nothing is allocated from a claimed
//! size before the bytes backing it are known to be there.
//!
//! # Null and empty
//!
//! Jute can say `null` (-1) where Java has a null reference. Where Apache ZooKeeper 3.8
//! gives null its own meaning, it stays distinct here (or is refused); elsewhere null
//! is read as empty and written back as empty, so re-encoding such a record gives the
//! canonical empty form, not the original bytes. Case by case, with what ZooKeeper does
//! (read in its 3.8 classes; `tests/null_and_empty.rs` pins each):
//!
//! - **Kept apart** (`Option`): znode data (`get` shows `null` for a node created
//!   without data), reconfig's member lists (null = not given) and the server's SASL
//!   token (ZooKeeper 3.8 without a SASL provider answers a null one, as ours does).
//! - **Null reads as empty, as ZooKeeper treats it:**
//!   - the ACL list of create, create2, createContainer, createTTL, setACL and a multi's
//!     creates: `PrepRequestProcessor.fixupACL` maps null and empty alike to an empty
//!     list (`removeDuplicates`) and answers InvalidACL to both;
//!   - `ConnectRequest.passwd`: `ZooKeeperServer.createSession` replaces null by
//!     `new byte[0]`, and resuming checks `Arrays.equals(passwd, generatePasswd(id))`,
//!     false for null and empty alike.
//! - **Null reads as empty; ZooKeeper never sends it:** the lists of getACL,
//!   getChildren(2), multiRead, getEphemerals and whoAmI replies (the server copies a
//!   collection) and `ConnectResponse.passwd` (always 16 bytes).
//! - **`Id.id`, for the `auth` scheme only:** `fixupACL` never reads an `auth` entry's
//!   id, and kazoo sends `CREATOR_ALL_ACL`'s empty id as null; for every other scheme a
//!   null id is refused, as ZooKeeper's NullPointerException there is MarshallingError
//!   (see [`crate::Id`]).
//! - **The client's SASL token:** null reads as empty; our server has no SASL provider
//!   and gives every sasl request the same answer, whatever its token.
//! - **Null refused** (`DecodeError::UnexpectedNull`, via [`read_non_null_buffer`] and
//!   [`read_non_null_vec`]), because ZooKeeper fails the request on null but not on
//!   empty, and a body our server cannot read gets that same answer:
//!   - `AuthPacket.auth`: `DigestAuthenticationProvider` does `new String(null)`, the
//!     NullPointerException becomes AUTHFAILED and the connection is closed, while empty
//!     bytes authenticate as the digest of `""` (only the `ip` scheme, which ignores the
//!     bytes, would have accepted null);
//!   - the watch lists of setWatches and setWatches2: `DataTree.setWatches` iterates
//!     each list, so null throws and `FinalRequestProcessor` answers MarshallingError;
//!     an empty list is fine.
//!
//! Strings that must not be null (paths, schemes) are an error when null.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the record did.
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} left")]
    UnexpectedEof {
        /// Bytes the next field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length or element count that is negative (other than -1) or exceeds the input.
    #[error("invalid {what} length {len} ({remaining} bytes left)")]
    InvalidLength {
        /// Which kind of field carried the length.
        what: &'static str,
        /// The length as read.
        len: i32,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A `null` (-1) where the record requires a value.
    #[error("unexpected null {what}")]
    UnexpectedNull {
        /// Which kind of field was null.
        what: &'static str,
    },
    /// A `ustring` that is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A discriminant (opcode, create mode, multi op type, …) this protocol does not define.
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// What the value was meant to be.
        what: &'static str,
        /// The value as read.
        value: i64,
    },
    /// Bytes were left over after a record that must fill its frame.
    #[error("{0} trailing bytes after record")]
    TrailingBytes(usize),
}

/// Result of decoding.
pub type DecodeResult<T> = Result<T, DecodeError>;

/// A cursor over received bytes. Buffers are returned as zero-copy slices of the input.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// A reader over `buf`.
    pub fn new(buf: impl Into<Bytes>) -> Self {
        Reader { buf: buf.into() }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// What is left of the input, consuming it.
    pub fn take_rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless the input has been fully consumed.
    pub fn finish(&self) -> DecodeResult<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    fn need(&self, n: usize) -> DecodeResult<()> {
        if self.buf.len() < n {
            return Err(DecodeError::UnexpectedEof {
                needed: n,
                remaining: self.buf.len(),
            });
        }
        Ok(())
    }

    /// Reads a jute `int`.
    pub fn read_i32(&mut self) -> DecodeResult<i32> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads a jute `long`.
    pub fn read_i64(&mut self) -> DecodeResult<i64> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a jute `boolean`.
    pub fn read_bool(&mut self) -> DecodeResult<bool> {
        self.need(1)?;
        Ok(self.buf.get_u8() != 0)
    }

    /// Reads a length prefix: `None` for -1 (null), an error for any other negative
    /// value or one larger than `remaining / min_item_size`.
    fn read_len(
        &mut self,
        what: &'static str,
        min_item_size: usize,
    ) -> DecodeResult<Option<usize>> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        let remaining = self.remaining();
        match usize::try_from(len) {
            Ok(n) if n.saturating_mul(min_item_size) <= remaining => Ok(Some(n)),
            _ => Err(DecodeError::InvalidLength {
                what,
                len,
                remaining,
            }),
        }
    }

    /// Reads a jute `buffer`, `None` when null. The bytes share the input's allocation.
    pub fn read_buffer(&mut self) -> DecodeResult<Option<Bytes>> {
        Ok(self
            .read_len("buffer", 1)?
            .map(|len| self.buf.split_to(len)))
    }

    /// Reads a jute `ustring`, `None` when null.
    pub fn read_ustring(&mut self) -> DecodeResult<Option<String>> {
        match self.read_len("string", 1)? {
            None => Ok(None),
            Some(len) => {
                let raw = self.buf.split_to(len);
                String::from_utf8(raw.to_vec())
                    .map(Some)
                    .map_err(|_| DecodeError::InvalidUtf8)
            }
        }
    }

    /// Reads a jute `vector` header: the element count, `None` when null. `min_item_size`
    /// is the smallest encoding of one element, so the count is checked against the input.
    pub fn read_vector_len(&mut self, min_item_size: usize) -> DecodeResult<Option<usize>> {
        self.read_len("vector", min_item_size.max(1))
    }
}

/// Appends jute primitives to a buffer.
pub trait JuteWrite {
    /// Writes a jute `int`.
    fn write_i32(&mut self, v: i32);
    /// Writes a jute `long`.
    fn write_i64(&mut self, v: i64);
    /// Writes a jute `boolean`.
    fn write_bool(&mut self, v: bool);
    /// Writes a jute `buffer` (`None` = null).
    fn write_buffer(&mut self, v: Option<&[u8]>);
    /// Writes a jute `ustring` (`None` = null).
    fn write_ustring(&mut self, v: Option<&str>);
}

impl JuteWrite for BytesMut {
    fn write_i32(&mut self, v: i32) {
        self.put_i32(v);
    }
    fn write_i64(&mut self, v: i64) {
        self.put_i64(v);
    }
    fn write_bool(&mut self, v: bool) {
        self.put_u8(u8::from(v));
    }
    fn write_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(len_i32(b.len()));
                self.put_slice(b);
            }
        }
    }
    fn write_ustring(&mut self, v: Option<&str>) {
        self.write_buffer(v.map(str::as_bytes));
    }
}

/// A length as jute writes it. Lengths beyond `i32::MAX` cannot be expressed in jute; no
/// frame that large can be sent either (see [`crate::frame`]), so saturate rather than wrap.
fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// A value with a jute encoding: every record of the protocol, and the primitive field
/// types records are made of.
pub trait Record: Sized {
    /// The fewest bytes any value of this type encodes to; used to bound vector counts.
    const MIN_SIZE: usize;

    /// Appends the encoding of `self`.
    fn write(&self, w: &mut BytesMut);

    /// Decodes one value from the front of `r`.
    fn read(r: &mut Reader) -> DecodeResult<Self>;

    /// The encoding of `self` as bytes.
    fn to_bytes(&self) -> Bytes {
        let mut w = BytesMut::new();
        self.write(&mut w);
        w.freeze()
    }

    /// Decodes a value that must fill `buf` exactly.
    fn from_bytes(buf: impl Into<Bytes>) -> DecodeResult<Self> {
        let mut r = Reader::new(buf);
        let v = Self::read(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

impl Record for i32 {
    const MIN_SIZE: usize = 4;
    fn write(&self, w: &mut BytesMut) {
        w.write_i32(*self);
    }
    fn read(r: &mut Reader) -> DecodeResult<Self> {
        r.read_i32()
    }
}

impl Record for i64 {
    const MIN_SIZE: usize = 8;
    fn write(&self, w: &mut BytesMut) {
        w.write_i64(*self);
    }
    fn read(r: &mut Reader) -> DecodeResult<Self> {
        r.read_i64()
    }
}

impl Record for bool {
    const MIN_SIZE: usize = 1;
    fn write(&self, w: &mut BytesMut) {
        w.write_bool(*self);
    }
    fn read(r: &mut Reader) -> DecodeResult<Self> {
        r.read_bool()
    }
}

/// A `ustring` that must not be null (paths, schemes, names).
impl Record for String {
    const MIN_SIZE: usize = 4;
    fn write(&self, w: &mut BytesMut) {
        w.write_ustring(Some(self));
    }
    fn read(r: &mut Reader) -> DecodeResult<Self> {
        r.read_ustring()?
            .ok_or(DecodeError::UnexpectedNull { what: "string" })
    }
}

/// A `ustring` that may be null.
impl Record for Option<String> {
    const MIN_SIZE: usize = 4;
    fn write(&self, w: &mut BytesMut) {
        w.write_ustring(self.as_deref());
    }
    fn read(r: &mut Reader) -> DecodeResult<Self> {
        r.read_ustring()
    }
}

/// A `buffer` whose null is read as empty (passwords, SASL tokens): ZooKeeper treats
/// null and empty alike there (see "Null and empty" above). Fields where it does not use
/// [`read_non_null_buffer`].
impl Record for Bytes {
    const MIN_SIZE: usize = 4;
    fn write(&self, w: &mut BytesMut) {
        w.write_buffer(Some(self));
    }
    fn read(r: &mut Reader) -> DecodeResult<Self> {
        Ok(r.read_buffer()?.unwrap_or_default())
    }
}

/// A `buffer` whose null is meaningful: znode data, where ZooKeeper keeps `null` and
/// empty apart (`get` shows `null` for a node created without data).
impl Record for Option<Bytes> {
    const MIN_SIZE: usize = 4;
    fn write(&self, w: &mut BytesMut) {
        w.write_buffer(self.as_deref());
    }
    fn read(r: &mut Reader) -> DecodeResult<Self> {
        r.read_buffer()
    }
}

/// A `vector<T>`. A null vector reads as empty: ZooKeeper treats null and empty alike in
/// every list that uses this (see "Null and empty" above); lists where it does not use
/// [`read_non_null_vec`].
impl<T: Record> Record for Vec<T> {
    const MIN_SIZE: usize = 4;
    fn write(&self, w: &mut BytesMut) {
        w.write_i32(len_i32(self.len()));
        for item in self {
            item.write(w);
        }
    }
    fn read(r: &mut Reader) -> DecodeResult<Self> {
        let Some(count) = r.read_vector_len(T::MIN_SIZE)? else {
            return Ok(Vec::new());
        };
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::read(r)?);
        }
        Ok(items)
    }
}

/// Reads a `buffer` that must not be null: null is [`DecodeError::UnexpectedNull`].
pub fn read_non_null_buffer(r: &mut Reader) -> DecodeResult<Bytes> {
    r.read_buffer()?
        .ok_or(DecodeError::UnexpectedNull { what: "buffer" })
}

/// Reads a `vector<T>` that must not be null: null is [`DecodeError::UnexpectedNull`].
pub fn read_non_null_vec<T: Record>(r: &mut Reader) -> DecodeResult<Vec<T>> {
    if r.buf.get(..4) == Some(&[0xff; 4][..]) {
        return Err(DecodeError::UnexpectedNull { what: "vector" });
    }
    Vec::read(r)
}

/// Declares a jute record: a struct with public fields, encoded field by field in order.
///
/// Every field type must implement [`Record`]; a field may name its own reader after
/// `=>` (`pub auth: Bytes => read_non_null_buffer`) when its null handling differs
/// from the type's. Under `cfg(test)` it also implements
/// [`crate::arbitrary::ArbitraryRecord`], so each record gets a property-test strategy.
macro_rules! jute_record {
    (@read $r:ident, $ty:ty) => {
        <$ty as $crate::jute::Record>::read($r)?
    };
    (@read $r:ident, $ty:ty, $reader:path) => {
        $reader($r)?
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident : $ty:ty $(=> $reader:path)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        impl $crate::jute::Record for $name {
            const MIN_SIZE: usize = 0 $(+ <$ty as $crate::jute::Record>::MIN_SIZE)*;

            fn write(&self, w: &mut ::bytes::BytesMut) {
                let _ = &w;
                $( $crate::jute::Record::write(&self.$field, w); )*
            }

            fn read(r: &mut $crate::jute::Reader) -> $crate::jute::DecodeResult<Self> {
                let _ = &r;
                Ok($name {
                    $( $field: $crate::jute::jute_record!(@read r, $ty $(, $reader)?), )*
                })
            }
        }

        #[cfg(test)]
        impl $crate::arbitrary::ArbitraryRecord for $name {
            fn strategy() -> ::proptest::strategy::BoxedStrategy<Self> {
                use ::proptest::strategy::Strategy;
                (
                    $( <$ty as $crate::arbitrary::ArbitraryRecord>::strategy(), )*
                )
                    .prop_map(|( $( $field, )* )| $name { $( $field, )* })
                    .boxed()
            }
        }
    };
}
pub(crate) use jute_record;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_are_big_endian() {
        let mut w = BytesMut::new();
        w.write_i32(0x0102_0304);
        w.write_i64(-2);
        w.write_bool(true);
        assert_eq!(
            &w[..],
            &[1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 1]
        );
    }

    #[test]
    fn null_buffer_and_string_are_minus_one() {
        let mut w = BytesMut::new();
        w.write_buffer(None);
        w.write_ustring(None);
        assert_eq!(&w[..], &[0xff; 8]);
        let mut r = Reader::new(w.freeze());
        assert_eq!(r.read_buffer(), Ok(None));
        assert_eq!(r.read_ustring(), Ok(None));
    }

    #[test]
    fn required_string_rejects_null() {
        let err = String::from_bytes(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]));
        assert_eq!(err, Err(DecodeError::UnexpectedNull { what: "string" }));
    }

    #[test]
    fn length_beyond_input_is_an_error_not_an_allocation() {
        // A buffer claiming 2 GiB with four bytes behind it.
        let bytes = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4]);
        assert!(matches!(
            Option::<Bytes>::from_bytes(bytes),
            Err(DecodeError::InvalidLength { len: i32::MAX, .. })
        ));
    }

    #[test]
    fn negative_length_other_than_null_is_an_error() {
        let bytes = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(matches!(
            Vec::<String>::from_bytes(bytes),
            Err(DecodeError::InvalidLength { len: -2, .. })
        ));
    }

    #[test]
    fn vector_count_is_checked_against_element_size() {
        // 3 strings need at least 12 bytes; 8 are present.
        let bytes = Bytes::from_static(&[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            Vec::<String>::from_bytes(bytes),
            Err(DecodeError::InvalidLength { len: 3, .. })
        ));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let bytes = Bytes::from_static(&[0, 0, 0, 1, 0xff]);
        assert_eq!(String::from_bytes(bytes), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn lenient_fields_read_null_as_empty_and_write_it_back_as_empty() {
        let null = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
        let empty = Bytes::from_static(&[0, 0, 0, 0]);
        assert_eq!(Bytes::from_bytes(null.clone()), Ok(Bytes::new()));
        assert_eq!(Bytes::new().to_bytes(), empty);
        assert_eq!(Vec::<String>::from_bytes(null), Ok(Vec::new()));
        assert_eq!(Vec::<String>::new().to_bytes(), empty);
    }

    #[test]
    fn strict_fields_refuse_null_and_accept_empty() {
        let null = || Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]));
        let empty = || Reader::new(Bytes::from_static(&[0, 0, 0, 0]));
        assert_eq!(
            read_non_null_buffer(&mut null()),
            Err(DecodeError::UnexpectedNull { what: "buffer" })
        );
        assert_eq!(read_non_null_buffer(&mut empty()), Ok(Bytes::new()));
        assert_eq!(
            read_non_null_vec::<String>(&mut null()),
            Err(DecodeError::UnexpectedNull { what: "vector" })
        );
        assert_eq!(read_non_null_vec::<String>(&mut empty()), Ok(Vec::new()));
        // Other negative counts stay length errors.
        let mut minus_two = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]));
        assert!(matches!(
            read_non_null_vec::<String>(&mut minus_two),
            Err(DecodeError::InvalidLength { len: -2, .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let bytes = Bytes::from_static(&[0, 0, 0, 1, 9]);
        assert_eq!(i32::from_bytes(bytes), Err(DecodeError::TrailingBytes(1)));
    }
}
