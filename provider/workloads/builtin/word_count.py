"""`word-count`: token counts over UTF-8 text inputs, one task per input, merged exactly.

Tokenization (fixed here, not taken from the Unicode database, whose character classes change
between Python versions): the input is decoded as strict UTF-8; a token is a maximal run of
code points that are not separators. Separators are every ASCII code point except 0-9, A-Z and
a-z; U+0080-U+00BF (C1 controls, no-break space, Latin-1 punctuation and signs); U+00D7 and
U+00F7 (the multiplication and division signs); U+2000-U+206F (general punctuation: spaces,
dashes, quotes, ...); U+3000-U+303F (CJK symbols and punctuation); U+FEFF (byte-order mark).
So "don't" is two tokens, "naïve" and "東京" are one each. With `lowercase`, only ASCII A-Z
fold to a-z (Unicode case mapping also changes between versions).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence

from pydantic import Field

from marketplace.protocol.hashing import canonical_json

from ..deadline import Deadline
from ..errors import InvalidInput
from .base import Args, Builtin, Cost, Part

_SEPARATORS = r"\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\xbf\xd7\xf7\u2000-\u206f\u3000-\u303f\ufeff"
TOKEN = re.compile(f"[^{_SEPARATORS}]+")
SEPARATOR = re.compile(f"[{_SEPARATORS}]")
# Characters tokenized between deadline checks (cut at a separator, so no token is split).
_CHUNK = 1 << 20


class WordCountArgs(Args):
    lowercase: bool = Field(False, description="fold ASCII A-Z to a-z before counting")
    top: int | None = Field(
        None, ge=1, le=100_000, description="report only the `top` most frequent tokens instead of all"
    )


class WordCountPart(Args):
    lowercase: bool = False


def decode_text(data: bytes, index: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"input {index} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def count_tokens(text: str, deadline: Deadline) -> Counter[str]:
    counts: Counter[str] = Counter()
    position = 0
    while position < len(text):
        deadline.check()
        cut = SEPARATOR.search(text, min(position + _CHUNK, len(text)))
        end = cut.start() if cut is not None else len(text)
        counts.update(TOKEN.findall(text, position, end))
        position = end  # > position: the search starts at least one character on
    return counts


class WordCount(Builtin[WordCountArgs, WordCountPart]):
    name = "word-count"
    description = (
        "Counts tokens (runs of non-separator code points, documented in the module) in UTF-8 text; "
        "canonical JSON with the total, the number of distinct tokens and each token's count."
    )
    inputs_doc = "one or more UTF-8 text blobs (one task each); the counts of all of them are added up"
    cost_doc = (
        "1 fuel per input byte plus 1 per input: fuel = total input bytes + number of inputs. "
        "Memory: about 10 bytes per input byte for a task, 4 per byte of all inputs for the merge."
    )
    args_model = WordCountArgs
    part_model = WordCountPart

    def split(self, args: WordCountArgs, inputs: Sequence[bytes]) -> list[Part[WordCountPart]]:
        if not inputs:
            raise InvalidInput(f"{self.name} needs at least one input")
        for index, data in enumerate(inputs):
            decode_text(data, index)
        part = WordCountPart(lowercase=args.lowercase)
        return [Part(part, (data,)) for data in inputs]

    def cost(self, part: WordCountPart, inputs: Sequence[bytes]) -> Cost:
        size = sum(len(data) for data in inputs)
        return Cost(fuel=size + len(inputs), memory_bytes=10 * size + 1024)

    def reduce_cost(self, args: WordCountArgs, parts: Sequence[Part[WordCountPart]]) -> Cost:
        size = sum(len(data) for part in parts for data in part.inputs)
        return Cost(fuel=0, memory_bytes=4 * size + 1024)

    def run(self, part: WordCountPart, inputs: Sequence[bytes], deadline: Deadline) -> bytes:
        counts: Counter[str] = Counter()
        for index, data in enumerate(inputs):
            counts.update(
                count_tokens(decode_text(data.lower() if part.lowercase else data, index), deadline)
            )
        return canonical_json({"tokens": counts.total(), "counts": dict(counts)})

    def combine(self, args: WordCountArgs, outputs: Sequence[bytes], deadline: Deadline) -> bytes:
        counts: Counter[str] = Counter()
        for index, output in enumerate(outputs):
            deadline.check()
            try:
                partial = json.loads(output)["counts"]
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"task {index}'s output is not a word-count partial: {exc}") from None
            counts.update(partial)
        result: dict[str, object] = {"tokens": counts.total(), "distinct": len(counts)}
        if args.top is None:
            result["counts"] = dict(counts)
        else:
            # Most frequent first; ties in code-point order of the token, so the list is total.
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            result["top"] = [[token, count] for token, count in ranked[: args.top]]
        return canonical_json(result)
