"""Built-ins over input blobs, one task per input: word-count and sort-dedup. Known answers,
tokenization and record rules, fan-out equal to one big input, malformed inputs refused."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from marketplace.protocol.hashing import sha256
from marketplace.protocol.spec import JobSpec, parse_spec
from provider.workloads import InvalidArguments, InvalidInput, plan, run_job, run_task


def job(name: str, args: dict[str, Any], inputs: Sequence[bytes]) -> tuple[JobSpec, dict[str, bytes]]:
    spec = parse_spec(
        {
            "workload": {"kind": "builtin", "name": name},
            "args": args,
            "inputs": [sha256(data).hex() for data in inputs],
            "limits": {"fuel": 10**9, "memory_mb": 64, "timeout_s": 30},
        }
    )
    return spec, {sha256(data).hex(): data for data in inputs}


def result(name: str, args: dict[str, Any], inputs: Sequence[bytes]) -> bytes:
    return run_job(*job(name, args, inputs)).output


def counts(inputs: Sequence[bytes], **args: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result("word-count", args, inputs))
    return document


# word-count


def test_word_count_output_is_canonical_json() -> None:
    assert result("word-count", {}, [b"b a a"]) == b'{"counts":{"a":2,"b":1},"distinct":2,"tokens":3}'


def test_word_count_tokenization_by_hand() -> None:
    text = "Hello, hello world! Don't stop\u2014naïve 東京 \u201cquoted\u201d café\tcafé\ufeffend_x2"
    assert counts([text.encode()]) == {
        "tokens": 13,
        "distinct": 12,
        "counts": {
            "Hello": 1,
            "hello": 1,
            "world": 1,
            "Don": 1,
            "t": 1,
            "stop": 1,
            "naïve": 1,
            "東京": 1,
            "quoted": 1,
            "café": 2,
            "end": 1,
            "x2": 1,
        },
    }


def test_word_count_lowercase_folds_ascii_only() -> None:
    assert counts(["ÉCOLE école Ab AB ab".encode()], lowercase=True)["counts"] == {
        "École": 1,
        "école": 1,
        "ab": 3,
    }


def test_word_count_top_breaks_ties_by_code_point() -> None:
    document = counts([b"b b a a c d d d"], top=3)
    assert document == {"tokens": 8, "distinct": 4, "top": [["d", 3], ["a", 2], ["b", 2]]}


def test_word_count_fan_out_equals_one_input_with_everything() -> None:
    parts = [b"the cat sat\non the mat", "the café\n".encode(), b"", b"mat mat"]
    spec = job("word-count", {}, parts)
    tasks = plan(*spec).tasks
    assert [task.inputs for task in tasks] == [(part,) for part in parts]
    assert run_job(*spec).output == result("word-count", {}, [b"\n".join(parts)])
    # And the merge is the sum of the parts' counts.
    partials = [json.loads(run_task(task).output)["counts"] for task in tasks]
    merged = json.loads(run_job(*spec).output)["counts"]
    assert merged["the"] == sum(partial.get("the", 0) for partial in partials) == 3


def test_word_count_long_text_is_counted_across_chunk_cuts() -> None:
    text = ("alpha beta " * 150_000).encode()  # 1.6 MB: more than one tokenizer chunk
    assert counts([text]) == {"tokens": 300_000, "distinct": 2, "counts": {"alpha": 150_000, "beta": 150_000}}


def test_word_count_refuses_invalid_utf8_before_running() -> None:
    with pytest.raises(InvalidInput, match="input 1 is not UTF-8 text: invalid start byte at byte 3"):
        plan(*job("word-count", {}, [b"fine", b"bad\xff"]))
    with pytest.raises(InvalidInput, match="not UTF-8"):  # an encoded surrogate
        plan(*job("word-count", {}, [b"\xed\xa0\x80"]))


def test_word_count_needs_an_input() -> None:
    with pytest.raises(InvalidInput, match="at least one input"):
        plan(*job("word-count", {}, []))


@pytest.mark.parametrize("args", [{"top": 0}, {"lowercase": "yes"}, {"lowercase": 1}, {"stem": True}])
def test_word_count_refuses_bad_args(args: dict[str, Any]) -> None:
    with pytest.raises(InvalidArguments, match="word-count"):
        plan(*job("word-count", args, [b"x"]))


# sort-dedup


def test_sort_dedup_by_hand() -> None:
    assert result("sort-dedup", {}, [b"pear\napple\nfig\napple\n"]) == b"apple\nfig\npear\n"
    assert result("sort-dedup", {"unique": False}, [b"pear\napple\napple"]) == b"apple\napple\npear\n"
    assert result("sort-dedup", {"reverse": True}, [b"b\na\nc\na\n"]) == b"c\nb\na\n"


def test_sort_dedup_orders_bytewise() -> None:
    records = ["é", "ab", "a\r", "a", "B", ""]
    data = "\n".join(records).encode() + b"\n"
    assert result("sort-dedup", {}, [data]) == "\n".join(["", "B", "a", "a\r", "ab", "é"]).encode() + b"\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", b""), (b"\n", b"\n"), (b"a\nb", b"a\nb\n"), (b"a\nb\n", b"a\nb\n"), (b"b\n\na\n", b"\na\nb\n")],
)
def test_sort_dedup_record_boundaries(data: bytes, expected: bytes) -> None:
    assert result("sort-dedup", {}, [data]) == expected


@pytest.mark.parametrize(
    "args", [{}, {"unique": False}, {"reverse": True}, {"unique": False, "reverse": True}]
)
def test_sort_dedup_fan_out_equals_sorting_everything_at_once(args: dict[str, Any]) -> None:
    parts = [b"m\nz\na\nm\n", b"b\nm", b"\xff\x00\n\nq\n"]
    spec = job("sort-dedup", args, parts)
    job_plan = plan(*spec)
    assert len(job_plan.tasks) == 3
    outputs = [run_task(task).output for task in job_plan.tasks]
    assert outputs[1] == (b"m\nb\n" if args.get("reverse") else b"b\nm\n")
    every_record = sorted(
        [record for part in parts for record in part.removesuffix(b"\n").split(b"\n")],
        reverse=bool(args.get("reverse")),
    )
    if args.get("unique", True):
        every_record = sorted(set(every_record), reverse=bool(args.get("reverse")))
    expected = b"".join(record + b"\n" for record in every_record)
    one_input = b"".join(part if part.endswith(b"\n") else part + b"\n" for part in parts)
    assert run_job(*spec).output == expected == result("sort-dedup", args, [one_input])


def test_sort_dedup_needs_an_input_and_strict_args() -> None:
    with pytest.raises(InvalidInput, match="at least one input"):
        plan(*job("sort-dedup", {}, []))
    with pytest.raises(InvalidArguments, match="unique"):
        plan(*job("sort-dedup", {"unique": "no"}, [b"x"]))
