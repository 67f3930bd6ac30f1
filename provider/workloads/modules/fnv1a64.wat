;; FNV-1a 64-bit hash of each input: the result has one line per input, the hash as 16
;; lowercase hex digits then "\n" (FNV-1a of the empty input is cbf29ce484222325).
;; Follows the ComputeMarket WebAssembly ABI (provider/workloads/WASM.md); args are ignored.
(module
  (memory (export "memory") 1)

  ;; Bump allocator: memory above $heap is free; it is never given back (one run per instance).
  (global $heap (mut i32) (i32.const 1024))

  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $ptr i32) (local $end i32) (local $pages i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
    ;; pages needed to hold $end bytes, rounded up
    (local.set $pages
      (i32.add (i32.shr_u (local.get $end) (i32.const 16))
               (i32.ne (i32.and (local.get $end) (i32.const 0xffff)) (i32.const 0))))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  ;; FNV-1a over len bytes at ptr.
  (func $fnv1a (param $ptr i32) (param $len i32) (result i64)
    (local $hash i64) (local $end i32)
    (local.set $hash (i64.const 0xcbf29ce484222325))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $ptr) (local.get $end)))
        (local.set $hash
          (i64.mul (i64.xor (local.get $hash) (i64.extend_i32_u (i32.load8_u (local.get $ptr))))
                   (i64.const 0x100000001b3)))
        (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
        (br $next)))
    (local.get $hash))

  ;; Writes the 16 hex digits of $value and a newline at $out.
  (func $hex_line (param $value i64) (param $out i32)
    (local $i i32) (local $nibble i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 16)))
        (local.set $nibble
          (i32.wrap_i64
            (i64.and (i64.shr_u (local.get $value)
                                (i64.extend_i32_u (i32.sub (i32.const 60) (i32.shl (local.get $i) (i32.const 2)))))
                     (i64.const 0xf))))
        (i32.store8 (i32.add (local.get $out) (local.get $i))
          (select (i32.add (local.get $nibble) (i32.const 0x30))   ;; '0'..'9'
                  (i32.add (local.get $nibble) (i32.const 0x57))   ;; 'a'..'f'
                  (i32.lt_u (local.get $nibble) (i32.const 10))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.store8 (i32.add (local.get $out) (i32.const 16)) (i32.const 0x0a)))

  ;; Input: u32 frame count, then (u32 length, bytes) per frame; frame 0 is the args.
  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (local $count i32) (local $at i32) (local $size i32) (local $out i32) (local $i i32)
    (local.set $count (i32.load (local.get $ptr)))
    ;; skip the count and the args frame
    (local.set $at (i32.add (local.get $ptr) (i32.const 4)))
    (local.set $at (i32.add (i32.add (local.get $at) (i32.const 4)) (i32.load (local.get $at))))
    (local.set $out (call $alloc (i32.mul (i32.sub (local.get $count) (i32.const 1)) (i32.const 17))))
    (local.set $i (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $size (i32.load (local.get $at)))
        (call $hex_line
          (call $fnv1a (i32.add (local.get $at) (i32.const 4)) (local.get $size))
          (i32.add (local.get $out) (i32.mul (i32.sub (local.get $i) (i32.const 1)) (i32.const 17))))
        (local.set $at (i32.add (i32.add (local.get $at) (i32.const 4)) (local.get $size)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.mul (i32.sub (local.get $count) (i32.const 1)) (i32.const 17)))))
)
