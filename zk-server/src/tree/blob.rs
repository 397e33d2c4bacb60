//! A znode's data in one thin block: a pointer-sized handle to `[length: u32][bytes]`.
//!
//! Small blocks (length word and data together at most [`ARENA_MAX`] bytes) are slots
//! in shared pages, by size class of 4 bytes, so 100 bytes of data cost 104 bytes
//! (a malloc chunk of its own would cost 112, its header and rounding included) and 8
//! in the node. A freed slot goes on its class's free list for the next blob of that
//! class; pages are kept for reuse, not returned (as glibc keeps most of its heap).
//! Blocks above [`ARENA_MAX`] are malloc'ed one by one.
//!
//! Large data (at least [`LARGE`] bytes) keeps the `Bytes` it arrived in, behind the
//! same thin handle (tagged by a length of `u32::MAX`), so reads of big values stay
//! zero-copy; small data is copied into each reply instead (one small allocation).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::fmt;
use std::ptr::NonNull;
use std::sync::{Mutex, PoisonError};

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

/// Blocks (length word included) up to this many bytes are arena slots.
pub const ARENA_MAX: usize = 256;

/// The arena's size classes are this many bytes apart (the length word's alignment).
const GRAIN: usize = 4;

/// Size classes: slots of 8, 12, ... [`ARENA_MAX`] bytes (a free slot holds a pointer).
const CLASSES: usize = ARENA_MAX / GRAIN - 1;

/// Bytes per arena page.
const PAGE: usize = 32 * 1024;

/// One size class: its free slots (a list threaded through them) and the unused rest
/// of its newest page.
struct Class {
    free: *mut u8,
    bump: *mut u8,
    left: usize,
}

// SAFETY: the pointers are into pages owned by the arena for the life of the process;
// a class is only touched under its mutex.
unsafe impl Send for Class {}

/// The arena: one mutex per size class (taken to make or free a small blob; reads
/// take none).
static ARENA: [Mutex<Class>; CLASSES] = [const {
    Mutex::new(Class {
        free: std::ptr::null_mut(),
        bump: std::ptr::null_mut(),
        left: 0,
    })
}; CLASSES];

/// The arena slot size for `len` bytes of data, or `None` above [`ARENA_MAX`].
fn slot_size(len: usize) -> Option<usize> {
    let size = (4 + len).div_ceil(GRAIN) * GRAIN;
    (size <= ARENA_MAX).then_some(size.max(8))
}

fn class_of(size: usize) -> &'static Mutex<Class> {
    &ARENA[size / GRAIN - 2]
}

/// A slot of `size` bytes (a multiple of 4, 8 to [`ARENA_MAX`]), 4-aligned.
fn arena_alloc(size: usize) -> NonNull<u8> {
    let mut class = class_of(size)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(slot) = NonNull::new(class.free) {
        // SAFETY: a free slot holds the next free slot's address (written by
        // `arena_free`), unaligned.
        class.free = unsafe { slot.as_ptr().cast::<*mut u8>().read_unaligned() };
        return slot;
    }
    if class.left < size {
        let layout = page_layout();
        // SAFETY: the page layout has a non-zero size.
        let page = unsafe { alloc(layout) };
        if page.is_null() {
            handle_alloc_error(layout);
        }
        // The tail of the previous page (less than a slot) is left unused.
        class.bump = page;
        class.left = PAGE;
    }
    let slot = class.bump;
    // SAFETY: `size <= left`, so the slot and the new bump stay inside the page.
    class.bump = unsafe { slot.add(size) };
    class.left -= size;
    // SAFETY: `bump` points into a live page (never null once a page is made).
    unsafe { NonNull::new_unchecked(slot) }
}

/// Gives slot `slot` of `size` bytes back to its class.
///
/// # Safety
/// `slot` came from `arena_alloc(size)` and is not used afterwards.
unsafe fn arena_free(slot: NonNull<u8>, size: usize) {
    let mut class = class_of(size)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // SAFETY: the slot is at least 8 bytes and ours now; the link may be unaligned.
    unsafe { slot.as_ptr().cast::<*mut u8>().write_unaligned(class.free) };
    class.free = slot.as_ptr();
}

fn page_layout() -> Layout {
    match Layout::from_size_align(PAGE, 8) {
        Ok(layout) => layout,
        // Unreachable: PAGE is a small power of two.
        Err(_) => Layout::new::<u64>(),
    }
}

/// Layout of a small blob of `len` bytes malloc'ed on its own: the length word, then
/// the bytes.
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
        let ptr = match slot_size(data.len()) {
            Some(size) => arena_alloc(size),
            None => {
                let layout = small_layout(data.len());
                // SAFETY: the layout has a non-zero size (at least the length word).
                let raw = unsafe { alloc(layout) };
                let Some(ptr) = NonNull::new(raw) else {
                    handle_alloc_error(layout)
                };
                ptr
            }
        };
        // SAFETY: the block (slot or allocation) holds at least 4 + len bytes, aligned for a u32; `data` does not
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

    /// Bytes the block takes: an arena slot's size, or the length word and data as
    /// requested (a large blob: its data).
    pub fn stored_len(&self) -> usize {
        match self.tag() {
            LARGE_TAG => self.len(),
            len => slot_size(len as usize).unwrap_or(4 + len as usize),
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
            len => match slot_size(len as usize) {
                // SAFETY: the slot came from the arena for this length, and is dropped once.
                Some(size) => unsafe { arena_free(self.0, size) },
                // SAFETY: the block was allocated with exactly this layout.
                None => unsafe { dealloc(self.0.as_ptr(), small_layout(len as usize)) },
            },
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
        for len in [
            0,
            1,
            3,
            4,
            5,
            100,
            104,
            251,
            252,
            253,
            LARGE - 1,
            LARGE,
            LARGE + 1,
            100_000,
        ] {
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
    fn freed_slots_are_reused_and_blobs_stay_intact() {
        let blobs: Vec<Blob> = (0..2000u32)
            .map(|i| Blob::copy_of(&i.to_le_bytes().repeat(25)))
            .collect();
        let mut kept = Vec::new();
        for (i, blob) in blobs.into_iter().enumerate() {
            if i % 2 == 0 {
                kept.push((i as u32, blob));
            }
        }
        let again: Vec<Blob> = (0..1000u32)
            .map(|i| Blob::copy_of(&[i as u8; 100]))
            .collect();
        for (i, blob) in kept {
            assert_eq!(blob.as_slice(), &i.to_le_bytes().repeat(25)[..]);
        }
        for (i, blob) in again.iter().enumerate() {
            assert_eq!(blob.as_slice(), &[i as u8; 100][..]);
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
