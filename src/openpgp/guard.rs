//! sequoia on hostile input. Anyone can post an article or mail a request,
//! and sequoia has panicked on such input before (an unwrap in its parser,
//! an integer overflow in ECDH). A panic there means "this input is junk",
//! never "retry later" or "stop reading the newsgroup".

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run `f` on untrusted input; a panic inside becomes `None`.
///
/// `AssertUnwindSafe` is sound here because every caller either owns what
/// `f` touches or only hands it immutable/reloadable state (the unlocked
/// key pairs do not change while decrypting).
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}
