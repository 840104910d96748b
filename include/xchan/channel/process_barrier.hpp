// An asymmetric barrier pair for the threads of this process (membarrier(2)): the light
// side is a compiler barrier, the heavy side makes every running thread of the process
// pass a full memory barrier. Used by EventCount so that a notifier on the fast path pays
// no locked instruction and a waiter pays one syscall when it parks.
#pragma once

namespace xchan::platform {

/// Registers the process for heavy_barrier() (once; thread-safe). Returns false if the
/// kernel refuses (too old, or filtered): then callers must use symmetric fences.
[[nodiscard]] bool process_barrier_available() noexcept;

/// Orders, for every thread of this process, its memory accesses before the call against
/// those after it, as if each had run a full fence. Needs process_barrier_available().
/// Any thread; costs a syscall (and an interrupt to each CPU running one of our threads).
void heavy_barrier() noexcept;

/// The notifier's half: only stops the compiler from moving accesses across it; the
/// heavy_barrier() of the other side supplies the hardware ordering.
inline void light_barrier() noexcept { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

}  // namespace xchan::platform
