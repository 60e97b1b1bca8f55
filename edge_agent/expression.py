"""The small, safe condition language of collection campaigns, evaluated on numpy columns.

Owns: parsing a condition string into a frozen expression tree, and evaluating that tree over
full-rate sample columns (one boolean per row). Nothing is ever passed to `eval`: the grammar is a
hand-written recursive-descent parser with a length and a nesting limit, so a campaign pushed from
the cloud cannot run code on the car. Leaves to others: when a condition fires (`edge_agent.trigger`).

Grammar (lowest precedence first)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | NAME | FUNC "(" expr ")" | WINDOW "(" NAME "," NUMBER ")" | "(" expr ")"

NAME is a catalogue VSS path (`Vehicle.Acceleration.Longitudinal`), the constant `g`
(9.80665 m/s^2) or the event `new_dtc` (true on the row where a stored DTC appeared). FUNC is `abs`.
WINDOW is `avg`, `min` or `max` of a signal over the trailing NUMBER seconds (0 < s <= 600), e.g.
`avg(Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature, 60) > 110`: the value at a row
aggregates that signal's samples with time in (t - s, t], ignoring missing ones, and is missing
when there are none. The window reaches back across flushes (the collector keeps the history).
A missing sample (NaN) makes every comparison false, as in SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

STANDARD_GRAVITY_MS2 = 9.80665
NEW_DTC = "new_dtc"
CONSTANTS = {"g": STANDARD_GRAVITY_MS2}
FUNCTIONS = ("abs",)
WINDOW_FUNCTIONS = ("avg", "min", "max")
MAX_WINDOW_S = 600.0
MAX_EXPRESSION_CHARS = 500
MAX_DEPTH = 32

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op><=|>=|==|!=|[<>+\-*/(),]))"
)
_COMPARE = {"<", "<=", ">", ">=", "==", "!="}


class ExpressionError(ValueError):
    """The condition text is not in the language (the campaign is rejected)."""


@dataclass(frozen=True, slots=True)
class Number:
    value: float


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-", "not", "abs"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # arithmetic, comparison, "and", "or"
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Window:
    func: str  # "avg", "min", "max"
    name: str  # a signal
    seconds: float


Node = Number | Name | Unary | Binary | Window


def parse(text: str) -> Node:
    """Parse a condition. Raises ExpressionError for bad syntax, unknown functions or excess size."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"condition longer than {MAX_EXPRESSION_CHARS} characters")
    tokens = _tokenize(text)
    parser = _Parser(tokens)
    node = parser.expr(0)
    if parser.pos != len(tokens):
        raise ExpressionError(f"unexpected {tokens[parser.pos]!r} at token {parser.pos}")
    return node


def names_in(node: Node) -> frozenset[str]:
    """Every signal or event name the tree reads (constants excluded)."""
    if isinstance(node, Name):
        return frozenset() if node.name in CONSTANTS else frozenset({node.name})
    if isinstance(node, Window):
        return frozenset({node.name})
    if isinstance(node, Unary):
        return names_in(node.operand)
    if isinstance(node, Binary):
        return names_in(node.left) | names_in(node.right)
    return frozenset()


def longest_window_s(node: Node) -> float:
    """The longest trailing window the tree reads (0 without window functions): how much history
    the caller must prepend to the rows so that windows starting in an earlier flush are whole."""
    if isinstance(node, Window):
        return node.seconds
    if isinstance(node, Unary):
        return longest_window_s(node.operand)
    if isinstance(node, Binary):
        return max(longest_window_s(node.left), longest_window_s(node.right))
    return 0.0


def evaluate(
    node: Node, columns: Mapping[str, np.ndarray], n_rows: int, ts_ns: np.ndarray | None = None
) -> np.ndarray:
    """Evaluate to a boolean array of `n_rows`. Missing names read as all-NaN. Pure, no I/O.
    `ts_ns` (increasing, one per row) is needed by window functions; without it they raise
    ValueError."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = _eval(node, columns, n_rows, ts_ns)
    return _truth(out)


def trailing_window(func: str, values: np.ndarray, ts_ns: np.ndarray, seconds: float) -> np.ndarray:
    """Per row i: `func` (avg/min/max) of the non-NaN values with ts in (ts[i] - seconds, ts[i]];
    NaN when there are none. Vectorised: prefix sums for avg, a sparse table for min/max."""
    n = values.shape[0]
    if n == 0:
        return np.empty(0)
    start = np.searchsorted(ts_ns, ts_ns - round(seconds * 1e9), side="right")
    end = np.arange(n)  # inclusive
    if func == "avg":
        present = ~np.isnan(values)
        sums = np.concatenate(([0.0], np.cumsum(np.where(present, values, 0.0))))
        counts = np.concatenate(([0], np.cumsum(present)))
        total, count = sums[end + 1] - sums[start], counts[end + 1] - counts[start]
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
    pick = np.fmin if func == "min" else np.fmax  # ignores NaN unless both are NaN
    levels = [values.astype(np.float64)]
    while (1 << len(levels)) <= n:
        half = 1 << (len(levels) - 1)
        prev = levels[-1]
        levels.append(pick(prev[:-half], prev[half:]))  # level k: over [i, i + 2^k)
    length = end - start + 1
    k = np.floor(np.log2(length)).astype(np.int64)
    out = np.empty(n)
    for level in np.unique(k).tolist():
        rows = np.flatnonzero(k == level)
        table = levels[level]
        out[rows] = pick(table[start[rows]], table[end[rows] - (1 << level) + 1])
    return out


def _truth(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.bool_:
        return values
    return (values != 0) & ~np.isnan(values)


def _eval(node: Node, columns: Mapping[str, np.ndarray], n: int, ts_ns: np.ndarray | None) -> np.ndarray:
    if isinstance(node, Number):
        return np.full(n, node.value)
    if isinstance(node, Window):
        if ts_ns is None:
            raise ValueError("window functions need the rows' timestamps")
        col = columns.get(node.name)
        values = np.full(n, np.nan) if col is None else np.asarray(col, dtype=np.float64)
        return trailing_window(node.func, values, ts_ns, node.seconds)
    if isinstance(node, Name):
        if node.name in CONSTANTS:
            return np.full(n, CONSTANTS[node.name])
        col = columns.get(node.name)
        return np.full(n, np.nan) if col is None else np.asarray(col, dtype=np.float64)
    if isinstance(node, Unary):
        value = _eval(node.operand, columns, n, ts_ns)
        if node.op == "not":
            return ~_truth(value)
        numeric = value.astype(np.float64)
        return -numeric if node.op == "-" else np.abs(numeric)
    left, right = _eval(node.left, columns, n, ts_ns), _eval(node.right, columns, n, ts_ns)
    if node.op == "and":
        return _truth(left) & _truth(right)
    if node.op == "or":
        return _truth(left) | _truth(right)
    a, b = left.astype(np.float64), right.astype(np.float64)
    result: np.ndarray
    match node.op:
        case "+":
            result = a + b
        case "-":
            result = a - b
        case "*":
            result = a * b
        case "/":
            result = a / b
        case "<":
            result = a < b
        case "<=":
            result = a <= b
        case ">":
            result = a > b
        case ">=":
            result = a >= b
        case "==":
            result = a == b
        case _:  # "!=": NaN must not count as "different"
            result = (a != b) & ~np.isnan(a) & ~np.isnan(b)
    return result


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionError(f"cannot read {text[pos : pos + 10]!r} at character {pos}")
        tokens.append(match.group(match.lastgroup or "op"))
        pos = match.end()
    if not tokens:
        raise ExpressionError("empty condition")
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        tok = self._peek()
        if tok is None:
            raise ExpressionError("condition ends early")
        self.pos += 1
        return tok

    def _depth(self, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"condition nests deeper than {MAX_DEPTH}")
        return depth + 1

    def expr(self, depth: int) -> Node:
        depth = self._depth(depth)
        node = self._and(depth)
        while self._peek() == "or":
            self.pos += 1
            node = Binary("or", node, self._and(depth))
        return node

    def _and(self, depth: int) -> Node:
        node = self._not(depth)
        while self._peek() == "and":
            self.pos += 1
            node = Binary("and", node, self._not(depth))
        return node

    def _not(self, depth: int) -> Node:
        if self._peek() == "not":
            self.pos += 1
            return Unary("not", self._not(self._depth(depth)))
        return self._compare(depth)

    def _compare(self, depth: int) -> Node:
        node = self._sum(depth)
        if self._peek() in _COMPARE:
            op = self._take()
            node = Binary(op, node, self._sum(depth))
            if self._peek() in _COMPARE:
                raise ExpressionError("chained comparisons are not allowed; use 'and'")
        return node

    def _sum(self, depth: int) -> Node:
        node = self._product(depth)
        while self._peek() in ("+", "-"):
            op = self._take()
            node = Binary(op, node, self._product(depth))
        return node

    def _product(self, depth: int) -> Node:
        node = self._unary(depth)
        while self._peek() in ("*", "/"):
            op = self._take()
            node = Binary(op, node, self._unary(depth))
        return node

    def _unary(self, depth: int) -> Node:
        if self._peek() == "-":
            self.pos += 1
            return Unary("-", self._unary(self._depth(depth)))
        return self._atom(depth)

    def _atom(self, depth: int) -> Node:
        tok = self._take()
        if tok == "(":
            node = self.expr(depth)
            if self._take() != ")":
                raise ExpressionError("missing ')'")
            return node
        if tok[0].isdigit() or tok[0] == ".":
            return Number(float(tok))
        if tok[0].isalpha() or tok[0] == "_":
            if tok in ("and", "or", "not"):
                raise ExpressionError(f"unexpected keyword {tok!r}")
            if self._peek() == "(" and tok in WINDOW_FUNCTIONS:
                return self._window(tok)
            if self._peek() == "(":
                if tok not in FUNCTIONS:
                    known = ", ".join(FUNCTIONS + WINDOW_FUNCTIONS)
                    raise ExpressionError(f"unknown function {tok!r}; known: {known}")
                self.pos += 1
                node = self.expr(depth)
                if self._take() != ")":
                    raise ExpressionError("missing ')'")
                return Unary(tok, node)
            return Name(tok)
        raise ExpressionError(f"unexpected {tok!r}")

    def _window(self, func: str) -> Window:
        self.pos += 1  # "("
        name = self._take()
        if not (name[0].isalpha() or name[0] == "_") or name in ("and", "or", "not") or name in CONSTANTS:
            raise ExpressionError(f"{func}() takes a signal name first, not {name!r}")
        if self._take() != ",":
            raise ExpressionError(f"{func}(signal, seconds): missing ','")
        seconds = self._take()
        if not (seconds[0].isdigit() or seconds[0] == "."):
            raise ExpressionError(f"{func}() takes a number of seconds, not {seconds!r}")
        if not 0 < float(seconds) <= MAX_WINDOW_S:
            raise ExpressionError(f"{func}() window must be in (0, {MAX_WINDOW_S:g}] seconds")
        if self._take() != ")":
            raise ExpressionError("missing ')'")
        return Window(func, name, float(seconds))
