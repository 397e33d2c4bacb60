//! A znode's data in one thin heap block: a pointer-sized handle to `[length: u32][bytes]`,
//! so 100 bytes of data cost one 112-byte malloc chunk and 8 bytes in the node.
//!
//! Large data (at least [`LARGE`] bytes) keeps the `Bytes` it arrived in, behind the
//! same thin handle (tagged by a length of `u32::MAX`), so reads of big values stay
//! zero-copy; small data is copied into each reply instead (one small allocation).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::fmt;
use std::ptr::NonNull;

use bytes::Bytes;

/// Data of this many bytes or more is kept as its `Bytes` (shared, not copied).
pub const LARGE: usize = 4096;

/// The length word of a large blob.
const LARGE_TAG: u32 = u32::MAX;

/// The allocation behind a large blob; the tag comes first, where a small blob keeps
/// its length.
#[repr(C)]
struct Large {
    tag: u32,
    bytes: Bytes,
}

/// Owned, immutable znode data behind one pointer.
pub struct Blob(NonNull<u8>);

// SAFETY: a blob owns its allocation and never mutates it after construction; `Bytes`
// (inside a large blob) is itself Send + Sync.
unsafe impl Send for Blob {}
// SAFETY: as above: shared access is read-only.
unsafe impl Sync for Blob {}

/// Layout of a small blob of `len` bytes: the length word, then the bytes.
fn small_layout(len: usize) -> Layout {
    match Layout::from_size_align(4 + len, 4) {
        Ok(layout) => layout,
        // Unreachable: small blobs are shorter than LARGE.
        Err(_) => Layout::new::<u32>(),
    }
}

impl Blob {
    /// A blob holding `data` (shared when large, copied when small).
    pub fn new(data: &Bytes) -> Blob {
        if data.len() >= LARGE {
            let large = Box::new(Large {
                tag: LARGE_TAG,
                bytes: data.clone(),
            });
            return Blob(NonNull::from(Box::leak(large)).cast());
        }
        Blob::copy_of(data)
    }

    /// A blob holding a copy of `data` (shared `Bytes` when large).
    pub fn copy_of(data: &[u8]) -> Blob {
        if data.len() >= LARGE {
            return Blob::new(&Bytes::copy_from_slice(data));
        }
        let layout = small_layout(data.len());
        // SAFETY: the layout has a non-zero size (at least the length word).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the block holds 4 + len bytes, aligned for a u32; `data` does not
        // overlap a fresh allocation. `len < LARGE` fits a u32.
        unsafe {
            ptr.as_ptr().cast::<u32>().write(data.len() as u32);
            std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr().add(4), data.len());
        }
        Blob(ptr)
    }

    /// The length word: the data's length, or [`LARGE_TAG`].
    fn tag(&self) -> u32 {
        // SAFETY: both kinds of block begin with an aligned, initialised u32.
        unsafe { self.0.as_ptr().cast::<u32>().read() }
    }

    /// The data.
    pub fn as_slice(&self) -> &[u8] {
        match self.tag() {
            // SAFETY: a large blob's block is a live `Large` (made by Box::new).
            LARGE_TAG => unsafe { &self.0.cast::<Large>().as_ref().bytes },
            // SAFETY: a small blob's block holds `len` initialised bytes after the word.
            len => unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(4), len as usize) },
        }
    }

    /// The data as `Bytes`: shared when large, a fresh copy when small.
    pub fn to_bytes(&self) -> Bytes {
        match self.tag() {
            // SAFETY: as in `as_slice`.
            LARGE_TAG => unsafe { self.0.cast::<Large>().as_ref().bytes.clone() },
            _ => Bytes::copy_from_slice(self.as_slice()),
        }
    }

    /// Bytes of data.
    pub fn len(&self) -> usize {
        match self.tag() {
            LARGE_TAG => self.as_slice().len(),
            len => len as usize,
        }
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        match self.tag() {
            // SAFETY: the block was made by Box::new(Large) and is dropped once.
            LARGE_TAG => unsafe { drop(Box::from_raw(self.0.cast::<Large>().as_ptr())) },
            // SAFETY: the block was allocated with exactly this layout.
            len => unsafe { dealloc(self.0.as_ptr(), small_layout(len as usize)) },
        }
    }
}

impl Clone for Blob {
    fn clone(&self) -> Blob {
        match self.tag() {
            // SAFETY: as in `as_slice`.
            LARGE_TAG => Blob::new(unsafe { &self.0.cast::<Large>().as_ref().bytes }),
            _ => Blob::copy_of(self.as_slice()),
        }
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Blob) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_data_read_back_as_written() {
        for len in [0, 1, 3, 100, 104, LARGE - 1, LARGE, LARGE + 1, 100_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let blob = Blob::new(&Bytes::from(data.clone()));
            assert_eq!(blob.len(), len);
            assert_eq!(blob.as_slice(), &data[..]);
            assert_eq!(&blob.to_bytes()[..], &data[..]);
            let copy = blob.clone();
            drop(blob);
            assert_eq!(copy.as_slice(), &data[..]);
            assert_eq!(Blob::copy_of(&data), copy);
        }
    }

    #[test]
    fn large_data_is_shared_not_copied() {
        let data = Bytes::from(vec![7u8; LARGE]);
        let blob = Blob::new(&data);
        assert_eq!(blob.to_bytes().as_ptr(), data.as_ptr());
    }

    #[test]
    fn a_blob_is_one_pointer() {
        assert_eq!(
            std::mem::size_of::<Option<Blob>>(),
            std::mem::size_of::<usize>()
        );
    }
}
