//! A cache prefetch hint.

/// Asks the CPU to bring the `bytes` bytes at `p` into its caches, one 64-byte line at a
/// time (at most 16 lines). Only a hint: it reads nothing, changes nothing a program can
/// see and cannot fault, whatever the address (a dangling or null `p` is fine). A no-op on
/// other architectures than x86-64.
#[inline(always)]
pub fn prefetch(p: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let lines = bytes.div_ceil(64).min(16);
        for k in 0..lines {
            // SAFETY: PREFETCHT0 is a hint with no architectural effect: it does not fault on
            // any address, mapped or not (Intel SDM, PREFETCHh), and `wrapping_add` computes
            // the address without dereferencing it. SSE, which provides it, is part of the
            // x86-64 baseline.
            unsafe {
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                    p.wrapping_add(k * 64).cast(),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

#[cfg(test)]
mod tests {
    use super::prefetch;

    #[test]
    fn any_address_is_fine() {
        let v = vec![7u8; 4096];
        prefetch(v.as_ptr(), v.len());
        prefetch(std::ptr::null(), 1024);
        prefetch(usize::MAX as *const u8, 64);
        assert_eq!(v[4095], 7, "the data is untouched");
    }
}
