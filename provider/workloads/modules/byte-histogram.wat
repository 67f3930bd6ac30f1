;; Byte histogram of all inputs together: the result is 256 counts, one per byte value 0..255,
;; each an unsigned 64-bit little-endian integer (2048 bytes in all).
;; Follows the ComputeMarket WebAssembly ABI (provider/workloads/WASM.md); args are ignored.
(module
  (memory (export "memory") 1)

  ;; The counts live at 0..2047; the bump allocator hands out memory from 2048 up.
  (global $heap (mut i32) (i32.const 2048))

  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $ptr i32) (local $end i32) (local $pages i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
    (local.set $pages
      (i32.add (i32.shr_u (local.get $end) (i32.const 16))
               (i32.ne (i32.and (local.get $end) (i32.const 0xffff)) (i32.const 0))))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (local $count i32) (local $at i32) (local $end i32) (local $i i32) (local $slot i32)
    (local.set $count (i32.load (local.get $ptr)))
    (local.set $at (i32.add (local.get $ptr) (i32.const 4)))
    (local.set $at (i32.add (i32.add (local.get $at) (i32.const 4)) (i32.load (local.get $at))))
    (local.set $i (i32.const 1))
    (block $frames_done
      (loop $next_frame
        (br_if $frames_done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $end (i32.add (i32.add (local.get $at) (i32.const 4)) (i32.load (local.get $at))))
        (local.set $at (i32.add (local.get $at) (i32.const 4)))
        (block $bytes_done
          (loop $next_byte
            (br_if $bytes_done (i32.ge_u (local.get $at) (local.get $end)))
            (local.set $slot (i32.shl (i32.load8_u (local.get $at)) (i32.const 3)))
            (i64.store (local.get $slot) (i64.add (i64.load (local.get $slot)) (i64.const 1)))
            (local.set $at (i32.add (local.get $at) (i32.const 1)))
            (br $next_byte)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next_frame)))
    ;; the counts start at address 0: (0 << 32) | 2048
    (i64.const 2048))
)
