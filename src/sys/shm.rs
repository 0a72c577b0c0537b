//! Records shared between processes: an anonymous shared mapping made
//! before fork, which every process forked afterwards sees at the same
//! place. A record type is declared with [`shared_records!`], which lets
//! it hold only [`Plain`] fields (atomics and arrays of them): any byte
//! pattern another process writes is then a valid value, all-zero (a
//! fresh mapping) included, and no field points into one process's memory.

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8};

/// A field type valid for every byte pattern, written and read only
/// through shared references (atomics), holding no pointer.
///
/// # Safety
///
/// Implemented here for the atomic integers and arrays of them, and by
/// [`shared_records!`] for structs made only of such fields.
pub unsafe trait Plain: Sync {}

// SAFETY: atomic integers are valid for every bit pattern, are written
// through shared references, and hold no pointer.
unsafe impl Plain for AtomicU8 {}
// SAFETY: as above.
unsafe impl Plain for AtomicU16 {}
// SAFETY: as above.
unsafe impl Plain for AtomicU32 {}
// SAFETY: as above.
unsafe impl Plain for AtomicU64 {}
// SAFETY: an array of Plain values is Plain: no padding between them, and
// each element is valid for every bit pattern.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// Declares a `#[repr(C)]` struct of [`Plain`] fields as a record that can
/// live in [`Shared`] memory (a field of another type does not compile).
macro_rules! shared_records {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        $vis struct $name {
            $($(#[$fmeta])* $fvis $field: $ty),*
        }
        const _: () = {
            /// Compiles only for a Plain field type.
            const fn plain<T: $crate::sys::shm::Plain>() {}
            $(plain::<$ty>();)*
        };
        // SAFETY: #[repr(C)] and every field is Plain (checked just above),
        // so the struct is valid for every byte pattern (padding between
        // atomics carries no meaning) and holds no pointer.
        #[allow(unsafe_code)]
        unsafe impl $crate::sys::shm::Plain for $name {}
    };
}
pub(crate) use shared_records;

/// `len` records of type `T` in an anonymous shared mapping (all zero at
/// first), unmapped when dropped.
pub struct Shared<T: Plain> {
    /// The first record.
    base: *mut T,
    /// How many records.
    len: usize,
    /// The mapping's length in bytes.
    bytes: usize,
    /// Owns the records.
    _records: PhantomData<T>,
}

// SAFETY: T is Plain, so Sync, and only reached through shared references;
// the mapping stays valid until Drop, which needs exclusive ownership.
unsafe impl<T: Plain> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Plain> Sync for Shared<T> {}

impl<T: Plain> Shared<T> {
    /// A fresh mapping of `len` zeroed records (at least one), shared with
    /// the processes this one forks afterwards.
    pub fn new(len: usize) -> io::Result<Self> {
        let len = len.max(1);
        let bytes = len * size_of::<T>();
        // SAFETY: a fresh anonymous mapping, placed by the kernel (no
        // address asked for), so it overlaps nothing of ours; the kernel
        // zero-fills it, a valid T for a Plain T.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Shared {
            base: base.cast(),
            len,
            bytes,
            _records: PhantomData,
        })
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Record `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&T> {
        // SAFETY: in bounds; the page is mapped (and page-aligned, so each
        // T is aligned: the records follow each other at size_of::<T>(), a
        // multiple of T's alignment) for as long as self lives, and a
        // Plain T is valid whatever another process wrote.
        (index < self.len).then(|| unsafe { &*self.base.add(index) })
    }

    /// From now on this process only reads the records (a write would
    /// stop it with SIGSEGV, never corrupt them).
    pub fn read_only(&self) {
        self.protect(libc::PROT_READ);
    }

    /// From now on this process does not touch the records at all (a
    /// touch would stop it with SIGSEGV).
    pub fn seal(&self) {
        self.protect(libc::PROT_NONE);
    }

    /// Changes what this process may do with the mapping.
    fn protect(&self, prot: libc::c_int) {
        // SAFETY: changes access to our own mapping only; an access the new
        // protection refuses faults (SIGSEGV) rather than reading or
        // writing anything else.
        unsafe { libc::mprotect(self.base.cast(), self.bytes, prot) };
    }
}

impl<T: Plain> Drop for Shared<T> {
    fn drop(&mut self) {
        // SAFETY: our own mapping; no reference to a record outlives self
        // (get borrows self).
        unsafe { libc::munmap(self.base.cast(), self.bytes) };
    }
}
