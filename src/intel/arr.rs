//! Read-only arrays of plain integers that either own their elements (built
//! from feed text) or view them in place inside a verified snapshot file's
//! bytes (see `snap/`). The matcher reads both through one `&[T]`, so a
//! snapshot loaded from a file matches with the same code, at the same
//! speed, as one built from the feeds.
//!
//! Invariants:
//! - An [`Arr`] never changes after it is made: it has no `&mut` access.
//! - A view is made only by [`Arr::view`], which checks that the bytes lie
//!   inside the buffer and are aligned for `T`, on a little-endian host
//!   (the file's byte order). The buffer is kept alive by the view's `Arc`.
//! - [`Plain`] is implemented only for types every bit pattern of which is
//!   a valid value and that have no padding (integers and arrays of them),
//!   so viewing arbitrary (even corrupt) bytes is never undefined
//!   behaviour; a wrong value can only make a lookup miss or hit wrongly,
//!   which `snap::read` guards against by checking the tables it views.

use std::io::Read;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::Arc;

/// A type that may be read from any suitably aligned bytes.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid value, and
/// the type must have no padding bytes and no interior mutability.
pub unsafe trait Plain: Copy + Send + Sync + 'static {}

// SAFETY: integers: any bits are a value, no padding.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl Plain for u64 {}
// SAFETY: as above.
unsafe impl Plain for u128 {}

/// One 64-byte line: the alignment of every array in a snapshot file.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// Bytes read from a file into memory aligned to 64 bytes, never changed
/// afterwards. Reading (rather than mapping) the file means a file
/// rewritten or truncated after it was verified cannot change what the
/// matcher reads, nor fault under it.
pub struct Buf {
    lines: Vec<Line>,
    len: usize,
}

impl Buf {
    /// Read exactly `len` bytes from `r`.
    pub fn read_from(r: &mut impl Read, len: usize) -> std::io::Result<Buf> {
        // Zeroed allocation: large ones come from fresh (lazily zeroed)
        // pages, so this costs no pass over the memory before the read.
        let mut lines = vec![Line([0; 64]); len.div_ceil(64)];
        let bytes = lines_as_bytes_mut(&mut lines);
        r.read_exact(&mut bytes[..len])?;
        Ok(Buf { lines, len })
    }

    /// A copy of `bytes`, aligned (tests and in-memory loading).
    pub fn copy_of(bytes: &[u8]) -> Buf {
        let mut lines = vec![Line([0; 64]); bytes.len().div_ceil(64)];
        lines_as_bytes_mut(&mut lines)[..bytes.len()].copy_from_slice(bytes);
        Buf {
            lines,
            len: bytes.len(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `lines` holds at least `len` initialised bytes; `u8` has
        // alignment 1.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.len) }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn lines_as_bytes_mut(lines: &mut [Line]) -> &mut [u8] {
    // SAFETY: `Line` is 64 plain bytes without padding.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast::<u8>(), lines.len() * 64) }
}

/// Who keeps an [`Arr`]'s memory alive.
enum Owner {
    /// A vector taken apart (its capacity; pointer and length are the
    /// array's), given back to the allocator on drop.
    Heap { cap: usize },
    /// A verified file's bytes.
    Buf(#[allow(dead_code)] Arc<Buf>),
}

/// A read-only array: owned, or a view into a [`Buf`].
pub struct Arr<T: Plain> {
    ptr: NonNull<T>,
    len: usize,
    owner: Owner,
}

// SAFETY: an `Arr` is immutable and its elements are plain `Send + Sync`
// values; the owner is a heap block only this value frees, or an `Arc` of
// immutable bytes.
unsafe impl<T: Plain> Send for Arr<T> {}
// SAFETY: as above: shared access only ever reads.
unsafe impl<T: Plain> Sync for Arr<T> {}

impl<T: Plain> Arr<T> {
    pub fn from_vec(v: Vec<T>) -> Arr<T> {
        let mut v = std::mem::ManuallyDrop::new(v);
        let (len, cap) = (v.len(), v.capacity());
        Arr {
            ptr: NonNull::new(v.as_mut_ptr()).unwrap_or(NonNull::dangling()),
            len,
            owner: Owner::Heap { cap },
        }
    }

    /// `count` elements at byte `offset` of `buf`, in place; `None` when
    /// they do not lie inside it, are not aligned for `T`, or the host is
    /// not little-endian (the file's byte order).
    pub fn view(buf: &Arc<Buf>, offset: usize, count: usize) -> Option<Arr<T>> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let bytes = count.checked_mul(size_of::<T>())?;
        let end = offset.checked_add(bytes)?;
        if end > buf.len() {
            return None;
        }
        let base = buf.lines.as_ptr().cast::<u8>();
        // SAFETY: `offset <= end <= len` bytes of the same allocation.
        let p = unsafe { base.add(offset) };
        if !(p as usize).is_multiple_of(align_of::<T>()) {
            return None;
        }
        Some(Arr {
            ptr: NonNull::new(p.cast::<T>().cast_mut())?,
            len: count,
            owner: Owner::Buf(buf.clone()),
        })
    }

    /// Heap memory the array holds itself (a view holds none of its own).
    pub fn heap_bytes(&self) -> usize {
        match self.owner {
            Owner::Heap { cap } => cap * size_of::<T>(),
            Owner::Buf(_) => self.len * size_of::<T>(),
        }
    }
}

impl<T: Plain> Deref for Arr<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` is aligned and valid for `len` reads of `T` for as
        // long as `owner` lives (checked in `view`, or taken from a vector),
        // and nothing writes there (no `&mut` access exists).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Plain> Drop for Arr<T> {
    fn drop(&mut self) {
        if let Owner::Heap { cap } = self.owner {
            // SAFETY: pointer, length and capacity of the vector taken apart
            // in `from_vec`, given back once.
            drop(unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), self.len, cap) });
        }
    }
}

impl<T: Plain> Default for Arr<T> {
    fn default() -> Self {
        Arr::from_vec(Vec::new())
    }
}

impl<T: Plain> From<Vec<T>> for Arr<T> {
    fn from(v: Vec<T>) -> Self {
        Arr::from_vec(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_and_viewed_arrays_read_the_same() {
        let owned = Arr::from_vec(vec![1u32, 2, 3]);
        assert_eq!(&*owned, &[1, 2, 3]);
        let mut bytes = vec![0u8; 64];
        for (i, x) in [7u64, 8, 9].iter().enumerate() {
            bytes[8 + i * 8..16 + i * 8].copy_from_slice(&x.to_le_bytes());
        }
        let buf = Arc::new(Buf::copy_of(&bytes));
        let v = Arr::<u64>::view(&buf, 8, 3).unwrap();
        assert_eq!(&*v, &[7, 8, 9]);
        drop(buf);
        assert_eq!(v[2], 9, "the view keeps the bytes alive");
    }

    #[test]
    fn views_outside_or_misaligned_are_refused() {
        let buf = Arc::new(Buf::copy_of(&[0u8; 100]));
        assert!(Arr::<u64>::view(&buf, 96, 1).is_none());
        assert!(Arr::<u64>::view(&buf, 4, 1).is_none());
        assert!(Arr::<u128>::view(&buf, 8, 1).is_none());
        assert!(Arr::<u32>::view(&buf, 96, 1).is_some());
        assert!(Arr::<u32>::view(&buf, usize::MAX - 2, 1).is_none());
        assert!(Arr::<u32>::view(&buf, 0, usize::MAX / 2).is_none());
        assert_eq!(Arr::<u32>::default().len(), 0);
    }

    #[test]
    fn a_short_read_is_an_error() {
        let mut r: &[u8] = &[1, 2, 3];
        assert!(Buf::read_from(&mut r, 4).is_err());
        let mut r: &[u8] = &[1, 2, 3];
        assert_eq!(Buf::read_from(&mut r, 3).unwrap().bytes(), &[1, 2, 3]);
    }
}
