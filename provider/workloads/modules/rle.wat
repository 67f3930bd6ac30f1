;; Run-length encoding of all inputs concatenated: the result is (count, byte) pairs of bytes,
;; count 1..255, longer runs split into several pairs ("aaab" -> 03 61 01 62).
;; Follows the ComputeMarket WebAssembly ABI (provider/workloads/WASM.md); args are ignored.
(module
  (memory (export "memory") 1)

  (global $heap (mut i32) (i32.const 1024))

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
    (local $count i32) (local $at i32) (local $end i32) (local $i i32)
    (local $out i32) (local $write i32) (local $byte i32) (local $run i32)
    (local.set $count (i32.load (local.get $ptr)))
    (local.set $at (i32.add (local.get $ptr) (i32.const 4)))
    (local.set $at (i32.add (i32.add (local.get $at) (i32.const 4)) (i32.load (local.get $at))))
    ;; the input bytes are fewer than the frame's, so twice the frame always holds the pairs
    (local.set $out (call $alloc (i32.shl (local.get $len) (i32.const 1))))
    (local.set $write (local.get $out))
    (local.set $i (i32.const 1))
    (block $frames_done
      (loop $next_frame
        (br_if $frames_done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $end (i32.add (i32.add (local.get $at) (i32.const 4)) (i32.load (local.get $at))))
        (local.set $at (i32.add (local.get $at) (i32.const 4)))
        (block $bytes_done
          (loop $next_byte
            (br_if $bytes_done (i32.ge_u (local.get $at) (local.get $end)))
            (if (i32.and (i32.eq (i32.load8_u (local.get $at)) (local.get $byte))
                         (i32.and (i32.ne (local.get $run) (i32.const 0))
                                  (i32.lt_u (local.get $run) (i32.const 255))))
              (then (local.set $run (i32.add (local.get $run) (i32.const 1))))
              (else
                (if (local.get $run)
                  (then
                    (i32.store8 (local.get $write) (local.get $run))
                    (i32.store8 (i32.add (local.get $write) (i32.const 1)) (local.get $byte))
                    (local.set $write (i32.add (local.get $write) (i32.const 2)))))
                (local.set $byte (i32.load8_u (local.get $at)))
                (local.set $run (i32.const 1))))
            (local.set $at (i32.add (local.get $at) (i32.const 1)))
            (br $next_byte)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next_frame)))
    (if (local.get $run)
      (then
        (i32.store8 (local.get $write) (local.get $run))
        (i32.store8 (i32.add (local.get $write) (i32.const 1)) (local.get $byte))
        (local.set $write (i32.add (local.get $write) (i32.const 2)))))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.sub (local.get $write) (local.get $out)))))
)
