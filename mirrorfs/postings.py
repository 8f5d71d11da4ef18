"""The on-disk form of postings: Whoosh's W3 codec with compact blocks.

Whoosh pickles each block of postings (protocol 2) as tuples of Python ints,
floats and, per posting, a pickled list of positions wrapped in a bytes object
— which protocol 2 writes as a call to `_codecs.encode`: two thirds of the
index were that overhead. Here a block is three flat arrays (document number
deltas, weights, positions) as raw bytes, compressed with zlib's fastest
level; reading one is a few C calls instead of unpickling thousands of
objects. Only the bytes change: Whoosh's matchers see the same ids, weights
and values as with its own codec.
"""

from __future__ import annotations

import zlib
from array import array
from itertools import accumulate
from pickle import dumps, loads

from whoosh import formats
from whoosh.codec.whoosh3 import (
    WHOOSH3_HEADER_MAGIC,
    W3Codec,
    W3LeafMatcher,
    W3PostingsWriter,
)
from whoosh.matching import ListMatcher
from whoosh.system import emptybytes
from whoosh.util.numeric import length_to_byte
from whoosh.util.numlists import delta_encode

# zlib level 1: nearly the size of level 6 at a fraction of the time.
COMPRESSION = 1
# A block smaller than this is stored as it is (zlib would not shrink it).
_COMPRESS_MIN = 64


def _typecode(values) -> str:
    top = max(values, default=0)
    return "B" if top < 0x100 else "H" if top < 0x10000 else "I" if top < 0x100000000 else "Q"


def pack_ints(values: list[int]) -> bytes:
    """Non-negative ints as one typecode byte and a native array of the smallest width."""
    code = _typecode(values)
    return code.encode("ascii") + array(code, values).tobytes()


def unpack_ints(data: bytes) -> array:
    """The ints of `pack_ints`."""
    out = array(chr(data[0]))
    out.frombytes(data[1:])
    return out


class CompactPositions(formats.Positions):
    """Positions as packed deltas (a byte each for most words) instead of a pickled list."""

    def encode(self, poslist):
        base = 0
        deltas = []
        for pos in poslist:
            deltas.append(pos - base)
            base = pos
        return pack_ints(deltas)

    def decode_positions(self, valuestring):
        return list(accumulate(unpack_ints(valuestring)))

    def decode_frequency(self, valuestring):
        return (len(valuestring) - 1) // array(chr(valuestring[0])).itemsize

    def decode_weight(self, valuestring):
        return self.decode_frequency(valuestring) * self.field_boost


class CompactPostingsWriter(W3PostingsWriter):
    """W3 posting blocks as flat arrays (see the module docstring)."""

    def _write_block(self, last=False):
        if self._byteids:  # term vectors: mirrorfs stores none, keep Whoosh's form
            return super()._write_block(last)
        if not self._blockcount:
            self._postfile.write(WHOOSH3_HEADER_MAGIC)
        self._terminfo.add_block(self)
        ids = self._ids
        weights = self._weights
        if all(w == 1.0 for w in weights):
            wdata = None
        elif all(w == weights[0] for w in weights):
            wdata = weights[0]
        else:
            wdata = weights.tobytes()
        fixedsize = self._format.fixed_value_size()
        values = self._values
        if fixedsize is None or fixedsize < 0:
            vdata = (pack_ints([len(v) for v in values]), emptybytes.join(values))
        elif fixedsize == 0:
            vdata = None
        else:
            vdata = emptybytes.join(values)
        databytes = dumps((pack_ints(list(delta_encode(ids))), wdata, vdata), 5)
        comp = COMPRESSION if len(databytes) >= _COMPRESS_MIN else 0
        if comp:
            databytes = zlib.compress(databytes, comp)
        infobytes = dumps((len(ids), ids[-1], self._maxweight, comp,
                           length_to_byte(self._minlength), length_to_byte(self._maxlength)), 2)
        blocklength = len(infobytes) + len(databytes)
        self._postfile.write_int(-blocklength if last else blocklength)
        self._postfile.write(infobytes)
        self._postfile.write(databytes)
        self._blockcount += 1
        self._new_block()


class CompactLeafMatcher(W3LeafMatcher):
    """Reads CompactPostingsWriter blocks into the tuples W3LeafMatcher works on."""

    def _read_data(self):
        b = self._postfile.get(self._dataoffset, self._nextoffset - self._dataoffset)
        if self._compression:
            b = zlib.decompress(b)
        ids, wdata, vdata = loads(b)
        if isinstance(wdata, bytes):
            weights = array("f")
            weights.frombytes(wdata)
            wdata = weights
        fixedsize = self._fixedsize
        if (fixedsize is None or fixedsize < 0) and vdata is not None:
            lengths, joined = vdata
            ends = list(accumulate(unpack_ints(lengths)))
            vdata = tuple(joined[a:b] for a, b in zip([0] + ends[:-1], ends))
        self._data = (unpack_ints(ids), wdata, vdata)


class CompactCodec(W3Codec):
    """W3Codec writing and reading compact posting blocks (pickled into each segment)."""

    # No per-block field-length statistics: writing them looked up the length
    # of every posting's document in the column just written (a file read per
    # posting, a sixth of a cold build), and nothing reads them — ranking has
    # no length normalisation (mirrorfs.scoring) and field lengths themselves
    # are still stored per document.
    length_stats = False

    def __init__(self, blocklimit=128, compression=COMPRESSION, inlinelimit=1):
        super().__init__(blocklimit=blocklimit, compression=compression, inlinelimit=inlinelimit)

    def postings_writer(self, dbfile, byteids=False):
        return CompactPostingsWriter(dbfile, blocklimit=self._blocklimit, byteids=byteids,
                                     compression=self._compression, inlinelimit=self._inlinelimit)

    def postings_reader(self, dbfile, terminfo, format_, term=None, scorer=None):
        if terminfo.is_inlined():
            ids, weights, values = terminfo.inlined_postings()
            return ListMatcher(ids, weights, values, format_, scorer=scorer, term=term, terminfo=terminfo)
        offset, length = terminfo.extent()
        return CompactLeafMatcher(dbfile, offset, length, format_, term=term, scorer=scorer)
