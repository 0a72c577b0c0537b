//! Process titles (what `ps` shows) of the processes the supervisor forks.

use std::ffi::CString;

use crate::httpd::ffi;

/// How far past argv[0] the kernel's argument strings can lie.
const ARGV_AREA: usize = 128 * 1024;

/// Overwrites the process title (what `ps` shows) with `title`.
///
/// # Safety
/// `server` must be the live main server; the process must be a fork of the
/// Apache parent whose argv memory is still in place.
pub(super) unsafe fn set_process_title(server: *mut ffi::server_rec, title: &str) {
    // SAFETY: caller's contract; argv strings are contiguous in the
    // process's initial stack area, which we only overwrite within bounds.
    unsafe {
        let process = (*server).process;
        if process.is_null() || (*process).argc < 1 {
            return;
        }
        let argv = (*process).argv;
        let argc = (*process).argc as usize;
        let start = *argv as *mut u8;
        // The strings the kernel laid out from argv[0] on are ours to
        // overwrite; httpd copied the option letters themselves ("-f",
        // "-X") into a pool, elsewhere: those are skipped (overwriting up
        // to an `-X` given last crashed the process).
        let mut end = start.add(libc::strlen(*argv) + 1);
        for i in 1..argc {
            let arg = *argv.add(i) as *mut u8;
            if arg < start || arg as usize - start as usize > ARGV_AREA {
                continue;
            }
            end = end.max(arg.add(libc::strlen(arg.cast()) + 1));
        }
        let room = end.offset_from(start) as usize;
        if room < 2 {
            return;
        }
        std::ptr::write_bytes(start, 0, room);
        let n = title.len().min(room - 1);
        std::ptr::copy_nonoverlapping(title.as_ptr(), start, n);
        if let Ok(c) = CString::new(&title.as_bytes()[..title.len().min(15)]) {
            libc::prctl(libc::PR_SET_NAME, c.as_ptr());
        }
    }
}
