# torch_env.sh: the environment every PyTorch baseline runs under (sourced by
# the bench/run_*.sh scripts), as the array TORCH_ENV for `env`:
# - OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, so that Debian's OpenBLAS
#   picks its own kernel for this CPU (the engine keeps them: they only pin the
#   OpenBLAS it falls back to);
# - glibc's mmap and trim thresholds at 1 GiB, the setting the engine gives
#   itself (src/util/memory.c): PyTorch's CPU allocator frees its tensors to
#   glibc too, and on a virtual machine where a page fault is expensive its
#   training ran 2.5-3x faster with it (bench/RESULTS.md, 2026-12-06). Neither
#   side is measured paying for faults the other avoids.
TORCH_ENV=(-u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
  GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824)
