//! A capture file mapped into memory that survives the file shrinking.
//!
//! Reading a page of a shared mapping past the file's current end raises
//! SIGBUS, which kills the process by default: another program truncating a
//! capture while `gatewatch replay` reads it would stop the sensor. Each
//! [`Mapping`] registers its address range in a fixed table; the SIGBUS
//! handler installed here maps zero-filled anonymous pages over the rest of
//! a registered range that faulted, marks it, and returns, so the faulting
//! read finishes with zeros. The reader checks [`Mapping::shrunk`] after
//! touching each record and stops with a named problem before handing out
//! bytes that were not in the file.
//!
//! Invariants:
//! - A fault outside every registered range is not ours: the handler puts
//!   back the action that was there before and returns, so the fault repeats
//!   under it (the standard library's guard-page report, or the default).
//! - The handler only loads atomics and calls `mmap(2)`, a system call that
//!   is async-signal-safe on Linux.
//! - A range is registered for as long as the mapping lives (the workers'
//!   zero-copy batches hold it), and unregistered before it is unmapped.

use memmap2::Mmap;
use std::fs::File;
use std::ops::Deref;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Mappings that can be registered at once; one more falls back to reading
/// the file as a stream (`Mapping::open` answers `None`).
const SLOTS: usize = 64;

struct Slot {
    claimed: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    shrunk: AtomicBool,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        claimed: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        shrunk: AtomicBool::new(false),
    }
}; SLOTS];

/// The SIGBUS action found when the handler was installed; `None` when it
/// could not be installed (then no file is mapped).
static PREVIOUS: OnceLock<Option<libc::sigaction>> = OnceLock::new();
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// A read-only shared mapping of a whole file, registered with the handler.
pub struct Mapping {
    map: Mmap,
    slot: usize,
}

impl Mapping {
    /// Map `f` (a regular file), or `None` when it cannot be mapped safely:
    /// the handler could not be installed, every slot is taken, or mmap
    /// failed. The caller then reads the file as a stream.
    pub fn open(f: &File) -> Option<Mapping> {
        if PREVIOUS.get_or_init(install).is_none() {
            return None;
        }
        let slot = TABLE.iter().position(|s| {
            s.claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        // SAFETY: the mapping is only read. A file that shrinks while mapped
        // makes reads past its new end fault; the handler registered below
        // turns that into zero-filled pages and a mark, never a crash.
        let map = match unsafe { Mmap::map(f) } {
            Ok(m) => m,
            Err(_) => {
                TABLE[slot].claimed.store(false, Ordering::Release);
                return None;
            }
        };
        let s = &TABLE[slot];
        let start = map.as_ptr() as usize;
        s.shrunk.store(false, Ordering::Relaxed);
        s.end.store(start + map.len(), Ordering::Release);
        s.start.store(start, Ordering::Release);
        Some(Mapping { map, slot })
    }

    /// Whether a read past the file's end has happened: the file shrank
    /// since it was mapped, and bytes read since may be zeros.
    #[inline]
    pub fn shrunk(&self) -> bool {
        TABLE[self.slot].shrunk.load(Ordering::Acquire)
    }

    /// Give the kernel an access-pattern hint for the whole mapping.
    pub fn advise(&self, advice: memmap2::Advice) {
        let _ = self.map.advise(advice);
    }

    /// Release the page-cache pages of `[from, to)` from this mapping, `to`
    /// rounded down to a page; answers where the release ended. `from` is
    /// page-aligned (0, or an earlier answer).
    pub fn release(&self, from: usize, to: usize) -> usize {
        let to = to & !(PAGE.load(Ordering::Relaxed) - 1);
        if to > from {
            // SAFETY: the mapping is shared and read-only, so after DONTNEED
            // any access to the range re-reads the same file bytes (or faults
            // into the handler if the file has shrunk since).
            let _ = unsafe {
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
        to.max(from)
    }
}

impl Deref for Mapping {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        s.start.store(0, Ordering::Release);
        s.end.store(0, Ordering::Release);
        s.claimed.store(false, Ordering::Release);
    }
}

/// Read the last byte of `data` so a record that reaches past the file's
/// new end faults now, before [`Mapping::shrunk`] is checked.
#[inline]
pub fn touch(data: &[u8]) {
    if let Some(last) = data.last() {
        // SAFETY: `last` is a valid reference; the volatile read only keeps
        // the compiler from dropping a load whose value is not used.
        let _ = unsafe { std::ptr::read_volatile(last) };
    }
}

/// Install the SIGBUS handler; the previous action, or `None` on failure.
fn install() -> Option<libc::sigaction> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as usize, Ordering::Relaxed);
    }
    // SAFETY: all-zero is a valid sigaction; the fields are set below and
    // the handler has the three-argument form SA_SIGINFO asks for.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_sigbus as *const () as usize;
        act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut act.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(libc::SIGBUS, &act, &mut old) == 0).then_some(old)
    }
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for s in &TABLE {
        let start = s.start.load(Ordering::Acquire);
        let end = s.end.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= end {
            continue;
        }
        let from = addr & !(page - 1);
        // SAFETY: [from, end) lies inside a live registered mapping (it is
        // unregistered before it is unmapped); replacing its pages with
        // private zero pages keeps every reference into it valid.
        let p = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            s.shrunk.store(true, Ordering::Release);
            return;
        }
    }
    if let Some(Some(old)) = PREVIOUS.get() {
        // SAFETY: `old` is the action that was installed before ours.
        unsafe { libc::sigaction(libc::SIGBUS, old, std::ptr::null_mut()) };
    }
}
