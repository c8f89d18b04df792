"""Read a pickle as plain data, running none of its code.

A pickle is a program for a small stack machine; ``pickle.load`` runs it, and its ``GLOBAL`` and
``REDUCE`` instructions import and call anything the file names (``os.system``, ``builtins.exec``).
:func:`read_pickle` runs the same instructions (decoded as :func:`pickletools.genops` decodes them)
on its own machine, which resolves no name and calls nothing:

- numbers, strings, bytes, ``None``, ``True``/``False``, lists, tuples, dicts and sets are built as
  Python builds them;
- a named global (``GLOBAL``, ``STACK_GLOBAL``, an extension code) becomes a :class:`Global`, which
  only holds its module and name;
- a call (``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``INST``, ``OBJ``) becomes a :class:`Call`, which
  only holds what would have been called and its arguments; ``BUILD``, ``SETITEM(S)`` and
  ``APPEND(S)`` on it record the state and items they would have passed (a torch tensor is a
  ``Call`` of ``torch._utils._rebuild_tensor_v2``, an ``OrderedDict`` a ``Call`` with items);
- a persistent id (how ``torch.save`` refers to tensor storages) becomes a :class:`Persistent`.

Nothing is imported, called or looked up, whatever the pickle says, so crafted data cannot run code.
Memory stays within a small multiple of the input: each instruction adds at most one reference, a
length field can only read the bytes that are there (unlike ``pickle``'s C reader, which allocates
what a length field claims before reading), and integers written in decimal are limited by
Python's own digit limit. Dictionary keys and set members must be scalars (or flat tuples of
scalars), so hashing never recurses into hostile nesting; callers walk the result along the paths
they know, never recursively. Anything the machine cannot do (out-of-band buffers, an unknown
instruction, a stack underflow, data cut short) raises :class:`PickleError`.

>>> import pickle
>>> read_pickle(pickle.dumps({"epoch": 3, "loss": [0.5, 0.25]}))
{'epoch': 3, 'loss': [0.5, 0.25]}
>>> read_pickle(pickle.dumps(print))
Global(module='builtins', name='print')
>>> call = read_pickle(b"cos\\nsystem\\n(S'touch /tmp/pwned'\\ntR.")   # os.system("touch ...")
>>> call.func, call.args
(Global(module='os', name='system'), ('touch /tmp/pwned',))
"""

from __future__ import annotations

import io
import pickletools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any


class PickleError(ValueError):
    """The bytes are not a pickle this reader can follow (damaged, cut short, or unsupported)."""


@dataclass(frozen=True)
class Global:
    """A name the pickle refers to (``module.name``); never imported."""

    module: str
    name: str


@dataclass(eq=False)
class Call:
    """What a pickle would have called (``func(*args, **kwargs)``); never called. ``state`` is what
    ``BUILD`` would have set, ``items``/``append`` what ``SETITEM(S)``/``APPEND(S)`` would have
    added to the result (an ``OrderedDict``'s entries, say)."""

    func: Any
    args: Any = ()
    kwargs: Any = None
    state: Any = None
    items: list[tuple[Any, Any]] = field(default_factory=list)
    append: list[Any] = field(default_factory=list)

    def __repr__(self) -> str:  # never the arguments: they may be huge or nested
        return f"Call({self.func!r}, ...)"


@dataclass(eq=False)
class Persistent:
    """A persistent id (``torch.save``'s reference to a tensor storage); never resolved."""

    pid: Any

    def __repr__(self) -> str:
        return "Persistent(...)"


_SCALARS = (str, bytes, int, float, bool, type(None), Global, Call, Persistent)
_MAX_PROTOCOL = 5


def read_pickle(data: bytes, *, persistent: list[Persistent] | None = None) -> Any:
    """The object ``data`` pickles, built from plain data and inert placeholders (see the module
    docstring); :class:`PickleError` if it cannot be followed to its ``STOP``. Every
    :class:`Persistent` made is also appended to ``persistent`` when a list is given."""
    machine = _Machine([] if persistent is None else persistent)
    run = machine.handlers
    try:
        for name, arg in _instructions(bytes(data)):
            handler = run.get(name)
            if handler is None:  # NEXT_BUFFER, READONLY_BUFFER (out-of-band data), or newer
                raise PickleError(f"not a readable pickle (instruction {name} is not supported)")
            if handler(arg):
                return machine.result
    except PickleError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, UnicodeDecodeError) as exc:
        raise PickleError(f"not a readable pickle ({type(exc).__name__}: {_short(exc)})") from None
    raise PickleError("not a readable pickle (no STOP: cut short?)")


def _instructions(data: bytes) -> Iterator[tuple[str, Any]]:
    """Each instruction of ``data`` and its argument, as :func:`pickletools.genops` decodes them
    (the same names and values; a ValueError where genops raises one), up to ``STOP``. The binary
    arguments a checkpoint is made of are unpacked here, straight from the bytes (genops reads each
    through a file object and a Python function: over a third of the walk's time); the text ones
    of protocols 0 and 1 by pickletools' own readers. A length field only ever slices the bytes
    that are there.

    >>> list(_instructions(b"\\x80\\x04K\\x07."))
    [('PROTO', 4), ('BININT1', 7), ('STOP', None)]
    """
    pos, end = 0, len(data)
    while True:
        if pos >= end:
            raise ValueError("pickle exhausted before seeing STOP")
        op = _DECODE[data[pos]]
        if op is None:
            raise ValueError(f"at position {pos}, opcode {data[pos : pos + 1]!r} unknown")
        name, size, unpack, convert, reader = op
        pos += 1
        if unpack is not None:  # a fixed-size number, or the length of what follows
            if pos + size > end:
                raise ValueError(f"not enough data in stream to read {name}'s argument")
            (arg,) = unpack(data, pos)
            pos += size
            if convert is not None:
                if arg < 0:
                    raise ValueError(f"{name}'s byte count < 0")
                if pos + arg > end:
                    raise ValueError(
                        f"expected {arg} bytes in {name}'s argument, but only {end - pos} remain"
                    )
                arg, pos = convert(data[pos : pos + arg]), pos + arg
        elif reader is not None:  # a line of text: pickletools' reader, where it ends
            stream = io.BytesIO(data)
            stream.seek(pos)
            arg = reader(stream)
            pos = stream.tell()
        else:
            arg = None
        yield name, arg
        if name == "STOP":
            return


def _decode_table() -> list[tuple | None]:
    """Instruction byte -> (name, argument size, unpack, convert, reader), None for a byte that
    is no instruction, from pickletools' own table: ``unpack`` a fixed-size number (``convert``
    then turns that many following bytes into the argument), else ``reader`` a line-based
    argument, else no argument."""
    numbers = {"uint1": "<B", "uint2": "<H", "int4": "<i", "uint4": "<I", "uint8": "<Q", "float8": ">d"}
    text = partial(str, encoding="utf-8", errors="surrogatepass")  # as pickletools decodes them
    counted = {  # argument -> (its length field, what its bytes become)
        "string1": ("uint1", partial(str, encoding="latin-1")),
        "string4": ("int4", partial(str, encoding="latin-1")),
        "bytes1": ("uint1", bytes),
        "bytes4": ("uint4", bytes),
        "bytes8": ("uint8", bytes),
        "bytearray8": ("uint8", bytearray),
        "unicodestring1": ("uint1", text),
        "unicodestring4": ("uint4", text),
        "unicodestring8": ("uint8", text),
        "long1": ("uint1", pickletools.decode_long),
        "long4": ("int4", pickletools.decode_long),
    }
    table: list[tuple | None] = [None] * 256
    for op in pickletools.opcodes:
        arg = op.arg.name if op.arg is not None else None
        field, convert = counted.get(arg, (arg, None))
        if field in numbers:
            unpack = struct.Struct(numbers[field])
            table[ord(op.code)] = (op.name, unpack.size, unpack.unpack_from, convert, None)
        else:
            table[ord(op.code)] = (op.name, 0, None, None, op.arg.reader if op.arg is not None else None)
    return table


_DECODE = _decode_table()


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


def _key(value: Any) -> Any:
    """``value`` as a dict key or set member: a scalar, or a flat tuple of scalars."""
    if isinstance(value, _SCALARS) or (
        isinstance(value, tuple) and all(isinstance(v, _SCALARS) for v in value)
    ):
        return value
    raise PickleError(f"not a readable pickle (a {type(value).__name__} as a dict key or set member)")


def _pairs(items: list[Any], what: str) -> list[tuple[Any, Any]]:
    if len(items) % 2:
        raise PickleError(f"not a readable pickle ({what} with an odd number of items)")
    return list(zip(items[::2], items[1::2]))


class _Machine:
    """The stack machine: one handler per instruction (each returns True at ``STOP`` only)."""

    def __init__(self, persistent: list[Persistent]) -> None:
        self.persistent = persistent
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.result: Any = None
        push = self.stack.append  # the list's own method: no call of ours for the commonest instructions
        self.handlers: dict[str, Any] = {
            **{name: push for name in _ARGUMENT},
            **{name: self.put for name in ("PUT", "BINPUT", "LONG_BINPUT")},
            **{name: self.get for name in ("GET", "BINGET", "LONG_BINGET")},
            **{name: self.extension for name in ("EXT1", "EXT2", "EXT4")},
            "APPEND": lambda _: self.append([self.pop()]),
            "APPENDS": lambda _: self.append(self.pop_mark()),
            "SETITEM": lambda _: self.set_items(list(self.pops(2))),
            "SETITEMS": lambda _: self.set_items(self.pop_mark()),
            "ADDITEMS": lambda _: self.add_items(self.pop_mark()),
            "NONE": lambda _: push(None),
            "NEWTRUE": lambda _: push(True),
            "NEWFALSE": lambda _: push(False),
            "BYTEARRAY8": lambda arg: push(bytes(arg)),
            "EMPTY_LIST": lambda _: push([]),
            "EMPTY_DICT": lambda _: push({}),
            "EMPTY_SET": lambda _: push(set()),
            "EMPTY_TUPLE": lambda _: push(()),
            "TUPLE1": lambda _: push((self.pop(),)),
            "TUPLE2": lambda _: push(self.pops(2)),
            "TUPLE3": lambda _: push(self.pops(3)),
            "TUPLE": lambda _: push(tuple(self.pop_mark())),
            "LIST": lambda _: push(self.pop_mark()),
            "FROZENSET": lambda _: push(frozenset(_key(i) for i in self.pop_mark())),
            "DICT": lambda _: push({_key(k): v for k, v in _pairs(self.pop_mark(), "DICT")}),
            "PROTO": self.proto,
            "FRAME": lambda _: None,
            "STOP": self.stop,
            "MARK": lambda _: self.marks.append(len(self.stack)),
            "POP": self.discard,
            "POP_MARK": lambda _: self.pop_mark(),
            "DUP": lambda _: push(self.top()),
            "MEMOIZE": lambda _: self.memo.__setitem__(len(self.memo), self.top()),
            "GLOBAL": lambda arg: push(Global(*_split_global(arg))),
            "STACK_GLOBAL": self.stack_global,
            "INST": lambda arg: push(Call(Global(*_split_global(arg)), tuple(self.pop_mark()))),
            "OBJ": self.obj,
            "REDUCE": self.call,
            "NEWOBJ": self.call,
            "NEWOBJ_EX": self.call_ex,
            "BUILD": self.build,
            "PERSID": self.persistent_id,
            "BINPERSID": lambda _: self.persistent_id(self.pop()),
        }

    def floor(self) -> int:
        return self.marks[-1] if self.marks else 0

    def pop(self) -> Any:
        if len(self.stack) <= self.floor():
            raise PickleError("not a readable pickle (stack underflow)")
        return self.stack.pop()

    def pops(self, count: int) -> tuple[Any, ...]:
        items = [self.pop() for _ in range(count)]
        return tuple(items[::-1])

    def top(self) -> Any:
        if len(self.stack) <= self.floor():
            raise PickleError("not a readable pickle (stack underflow)")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise PickleError("not a readable pickle (no MARK)")
        at = self.marks.pop()
        items = self.stack[at:]
        del self.stack[at:]
        return items

    def proto(self, version: int) -> None:
        if version > _MAX_PROTOCOL:
            raise PickleError(f"not a readable pickle (protocol {version})")

    def stop(self, _: Any) -> bool:
        self.result = self.pop()
        return True

    def discard(self, _: Any) -> None:  # POP: the top item, or the mark when nothing is above it
        if len(self.stack) > self.floor():
            self.stack.pop()
        else:
            self.pop_mark()

    def put(self, index: int) -> None:  # top() inline: a checkpoint's commonest instruction
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise PickleError("not a readable pickle (stack underflow)")
        self.memo[int(index)] = self.stack[-1]

    def get(self, index: int) -> None:
        if int(index) not in self.memo:
            raise PickleError(f"not a readable pickle (memo {index} was never stored)")
        self.stack.append(self.memo[int(index)])

    def persistent_id(self, pid: Any) -> None:
        self.persistent.append(Persistent(pid))
        self.stack.append(self.persistent[-1])

    def extension(self, code: int) -> None:
        self.stack.append(Global("copyreg extension", str(code)))

    def stack_global(self, _: Any) -> None:
        attribute, module = self.pop(), self.pop()
        if not isinstance(module, str) or not isinstance(attribute, str):
            raise PickleError("not a readable pickle (STACK_GLOBAL of non-strings)")
        self.stack.append(Global(module, attribute))

    def obj(self, _: Any) -> None:
        items = self.pop_mark()
        if not items:
            raise PickleError("not a readable pickle (OBJ without a class)")
        self.stack.append(Call(items[0], tuple(items[1:])))

    def call(self, _: Any) -> None:  # REDUCE and NEWOBJ: recorded, never called
        args = self.pop()
        self.stack.append(Call(self.pop(), args))

    def call_ex(self, _: Any) -> None:
        kwargs, args = self.pop(), self.pop()
        self.stack.append(Call(self.pop(), args, kwargs))

    def build(self, _: Any) -> None:
        state, target = self.pop(), self.top()
        if not isinstance(target, Call):
            raise PickleError(f"not a readable pickle (BUILD on a {type(target).__name__})")
        target.state = state

    def append(self, items: list[Any]) -> None:
        target = self.top()
        if isinstance(target, list):
            target.extend(items)
        elif isinstance(target, Call):
            target.append.extend(items)
        else:
            raise PickleError(f"not a readable pickle (APPEND to a {type(target).__name__})")

    def set_items(self, items: list[Any]) -> None:
        target, pairs = self.top(), _pairs(items, "SETITEMS")
        if isinstance(target, dict):
            target.update((_key(k), v) for k, v in pairs)
        elif isinstance(target, Call):
            target.items.extend(pairs)
        else:
            raise PickleError(f"not a readable pickle (SETITEM on a {type(target).__name__})")

    def add_items(self, items: list[Any]) -> None:
        target = self.top()
        if isinstance(target, set):
            target.update(_key(i) for i in items)
        elif isinstance(target, Call):
            target.append.extend(items)
        else:
            raise PickleError(f"not a readable pickle (ADDITEMS to a {type(target).__name__})")


def _split_global(arg: Any) -> tuple[str, str]:
    module, _, name = str(arg).partition(" ")
    return module, name


# instructions that push their decoded argument (decoded from the bytes that are there)
_ARGUMENT = (
    "INT BININT BININT1 BININT2 LONG LONG1 LONG4 FLOAT BINFLOAT STRING BINSTRING SHORT_BINSTRING "
    "UNICODE BINUNICODE SHORT_BINUNICODE BINUNICODE8 BINBYTES SHORT_BINBYTES BINBYTES8"
).split()
